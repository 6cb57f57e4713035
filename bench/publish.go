package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// publisher pushes a generated file to an RTMP URL at its native rate
// (-re, stream copy), so it costs almost no CPU and frame N leaves it about
// N/SourceFPS seconds after its first packet.
type publisher struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr bytes.Buffer
}

func startPublisher(file, url string, loop bool) (*publisher, error) {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re"}
	if loop {
		args = append(args, "-stream_loop", "-1")
	}
	args = append(args, "-i", file, "-c", "copy")
	switch {
	case strings.HasPrefix(url, "srt://"):
		args = append(args, "-f", "mpegts")
	case strings.HasPrefix(url, "rtsp://"):
		args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp")
	default:
		args = append(args, "-f", "flv")
	}
	args = append(args, url)
	p := &publisher{cmd: exec.Command("ffmpeg", args...), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start publisher: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *publisher) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the publish like an encoder's stop button, then kills.
func (p *publisher) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// firstByteProxy sits between a publisher and mediamtx's RTMP listener and
// records when the publisher's first byte arrives: "the first packet of the
// publish", measured where the node would see it, without touching the node.
type firstByteProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	first  time.Time
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFirstByteProxy(target string) (*firstByteProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &firstByteProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *firstByteProxy) Addr() string { return p.ln.Addr().String() }

// First is when the first byte arrived (zero until then).
func (p *firstByteProxy) First() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

func (p *firstByteProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			buf := make([]byte, 32*1024)
			marked := false
			for {
				n, err := c.Read(buf)
				if n > 0 && !marked {
					marked = true
					p.mu.Lock()
					if p.first.IsZero() {
						p.first = time.Now()
					}
					p.mu.Unlock()
				}
				if n > 0 {
					if _, werr := up.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			up.Close()
		}()
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}

func (p *firstByteProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// firstSeen is a proxy in front of an ingest listener that notes when the
// publisher's first byte (or datagram) arrived.
type firstSeen interface {
	Addr() string
	First() time.Time
	Close()
}

// firstDatagramProxy is firstByteProxy for SRT: it relays UDP datagrams
// between one publisher and mediamtx's SRT listener and records when the
// first one arrived (the SRT handshake's first packet).
type firstDatagramProxy struct {
	pc    net.PacketConn
	up    *net.UDPConn
	mu    sync.Mutex
	first time.Time
	peer  net.Addr
	wg    sync.WaitGroup
}

func newFirstDatagramProxy(target string) (*firstDatagramProxy, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		pc.Close()
		return nil, err
	}
	up, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	p := &firstDatagramProxy{pc: pc, up: up}
	p.wg.Add(2)
	go p.fromPublisher()
	go p.fromServer()
	return p, nil
}

func (p *firstDatagramProxy) Addr() string { return p.pc.LocalAddr().String() }

func (p *firstDatagramProxy) First() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

func (p *firstDatagramProxy) fromPublisher() {
	defer p.wg.Done()
	buf := make([]byte, 64*1024)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.first.IsZero() {
			p.first = time.Now()
		}
		p.peer = from
		p.mu.Unlock()
		if _, err := p.up.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *firstDatagramProxy) fromServer() {
	defer p.wg.Done()
	buf := make([]byte, 64*1024)
	for {
		n, err := p.up.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		peer := p.peer
		p.mu.Unlock()
		if peer != nil {
			_, _ = p.pc.WriteTo(buf[:n], peer)
		}
	}
}

func (p *firstDatagramProxy) Close() {
	p.pc.Close()
	p.up.Close()
	p.wg.Wait()
}
