package testcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// portMu and usedPorts keep one test binary from handing the same port to two
// nodes.
var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a loopback port that is free for both TCP and UDP (gossip
// and SRT need both). It picks below the kernel's ephemeral range: ports the
// kernel hands out by itself (outgoing connections, listeners on port 0 such
// as mediamtx's auth hook) then never collide with a port a test node has
// been given but not bound yet.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 10000, 20000
	}
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if usedPorts[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		usedPorts[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port found")
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 20000 {
		return 32768
	}
	return n
}
