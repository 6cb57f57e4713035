package testcluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Sniffer captures TCP and UDP payloads on the loopback interface with a
// raw AF_PACKET socket (needs root or CAP_NET_RAW), as an attacker on the
// nodes' network would see them. Only packets to or from the given ports
// are kept, each flow's payloads in capture order, so that a secret split
// across two segments is still found.
type Sniffer struct {
	fd    int
	ports map[uint16]bool

	mu     sync.Mutex
	flows  map[string][]byte
	pkts   int
	done   chan struct{}
	stopFn func()
}

// StartSniffer starts capturing on lo; it skips the test when raw sockets
// are not allowed (not root). It stops when the test ends, or at Stop.
func StartSniffer(t testing.TB, ports ...int) *Sniffer {
	t.Helper()
	const ethPAll = 0x0003
	proto := int(htons(ethPAll))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("sniffing lo needs a raw socket (root or CAP_NET_RAW): %v", err)
	}
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("lo: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatalf("bind raw socket to lo: %v", err)
	}
	// Reads wake up now and then, so Stop never waits for traffic.
	tv := syscall.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		t.Fatalf("raw socket timeout: %v", err)
	}
	// A large buffer: media flows fast on lo, and a dropped packet could
	// hide a secret.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<20)
	s := &Sniffer{fd: fd, ports: map[uint16]bool{}, flows: map[string][]byte{}, done: make(chan struct{})}
	for _, p := range ports {
		s.ports[uint16(p)] = true
	}
	stop := make(chan struct{})
	go s.run(stop)
	var once sync.Once
	s.stopFn = func() {
		once.Do(func() {
			close(stop)
			<-s.done
			syscall.Close(fd)
		})
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop ends the capture; what was captured stays readable.
func (s *Sniffer) Stop() { s.stopFn() }

func (s *Sniffer) run(stop <-chan struct{}) {
	defer close(s.done)
	buf := make([]byte, 1<<17)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, from, err := syscall.Recvfrom(s.fd, buf, 0)
		if err != nil {
			continue // timeout or interrupted
		}
		// On lo every packet is seen leaving and arriving: keep one.
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == syscall.PACKET_OUTGOING {
			continue
		}
		s.packet(buf[:n])
	}
}

// packet keeps an Ethernet frame's IPv4 TCP/UDP payload when one of its
// ports is watched.
func (s *Sniffer) packet(f []byte) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total > len(ip) || total < ihl {
		return
	}
	l4 := ip[ihl:total]
	var payload []byte
	switch ip[9] {
	case syscall.IPPROTO_TCP:
		if len(l4) < 20 {
			return
		}
		off := int(l4[12]>>4) * 4
		if off > len(l4) {
			return
		}
		payload = l4[off:]
	case syscall.IPPROTO_UDP:
		if len(l4) < 8 {
			return
		}
		payload = l4[8:]
	default:
		return
	}
	if len(l4) < 4 {
		return
	}
	sp, dp := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
	if !s.ports[sp] && !s.ports[dp] {
		return
	}
	key := fmt.Sprintf("%d %d>%d", ip[9], sp, dp)
	s.mu.Lock()
	s.pkts++
	s.flows[key] = append(s.flows[key], payload...)
	s.mu.Unlock()
}

// Captured returns every watched flow's bytes ("proto src>dst" → bytes) and
// the number of packets kept.
func (s *Sniffer) Captured() (map[string][]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.flows))
	for k, v := range s.flows {
		out[k] = append([]byte(nil), v...)
	}
	return out, s.pkts
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
