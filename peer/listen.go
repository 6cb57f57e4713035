package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// raftPreface opens a raft connection in plain mode. It is no HTTP method's
// first letter (nor ASCII), so one byte tells raft from internal HTTP.
const raftPreface = 0xD1

// Listener carries raft and internal HTTP on the cluster port. Each accepted
// connection is handed to raft or to the HTTP server once its TLS handshake
// (ALPN names the protocol) or, in plain mode, its first byte says which;
// that happens on the connection's own goroutine, so a peer that stalls
// cannot hold up the others.
type Listener struct {
	p    *Peer
	ln   net.Listener
	log  *slog.Logger
	raft *chanListener
	http *chanListener

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // accepted, not yet handed over
}

// Listen starts splitting ln's connections. Close stops it and closes ln.
func (p *Peer) Listen(ln net.Listener, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{p: p, ln: ln, log: log, done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	l.raft = newChanListener(ln.Addr(), l.done)
	l.http = newChanListener(ln.Addr(), l.done)
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Raft is the listener raft's transport accepts from.
func (l *Listener) Raft() net.Listener { return l.raft }

// HTTP is the listener the internal HTTP server serves.
func (l *Listener) HTTP() net.Listener { return l.http }

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes the TCP listener and every connection not
// handed over yet, and waits for the accept loop.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		// A peer that stalls its handshake must not hold up a shutdown.
		l.mu.Lock()
		for c := range l.pending {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.log.Error("cluster port: accept failed", "err", err)
			return
		}
		delay = 0
		l.mu.Lock()
		l.pending[conn] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.route(conn)
			l.mu.Lock()
			delete(l.pending, conn)
			l.mu.Unlock()
		}()
	}
}

// route hands conn to raft or HTTP, or closes it.
func (l *Listener) route(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(handshakeWait))
	target, c, err := l.classify(conn)
	if err != nil {
		// Refused peers are logged: a node with another key or another CA
		// ends here, and an operator needs to see it.
		l.log.Warn("cluster port: connection refused", "remote", conn.RemoteAddr().String(), "err", err)
		_ = conn.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	if !target.deliver(c) {
		_ = c.Close()
	}
}

func (l *Listener) classify(conn net.Conn) (*chanListener, net.Conn, error) {
	if l.p.TLS() {
		tc := tls.Server(conn, l.p.serverTLS())
		if err := tc.Handshake(); err != nil {
			return nil, nil, fmt.Errorf("tls handshake: %w", err)
		}
		switch tc.ConnectionState().NegotiatedProtocol {
		case alpnRaft:
			return l.raft, tc, nil
		case alpnHTTP:
			return l.http, tc, nil
		default:
			return nil, nil, errors.New("no known protocol negotiated (ALPN)")
		}
	}
	br := bufio.NewReaderSize(conn, 512)
	b, err := br.Peek(1)
	if err != nil {
		return nil, nil, fmt.Errorf("read first byte: %w", err)
	}
	if b[0] == raftPreface {
		_, _ = br.Discard(1)
		return l.raft, &bufConn{Conn: conn, r: br}, nil
	}
	return l.http, &bufConn{Conn: conn, r: br}, nil
}

// DialRaft opens a raft connection to a peer's cluster port.
func (p *Peer) DialRaft(address string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = handshakeWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if p.TLS() {
		d := tls.Dialer{NetDialer: &net.Dialer{}, Config: p.clientTLS(alpnRaft)}
		conn, err := d.DialContext(ctx, "tcp", address)
		if err != nil {
			return nil, fmt.Errorf("raft dial %s: %w", address, err)
		}
		return conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{raftPreface}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// bufConn is a connection whose first bytes were peeked.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by Listener.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   <-chan struct{} // the parent's
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr, done <-chan struct{}) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: done, closed: make(chan struct{})}
}

func (c *chanListener) deliver(conn net.Conn) bool {
	select {
	case c.conns <- conn:
		return true
	case <-c.closed:
		return false
	case <-c.done:
		return false
	}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.conns:
		return conn, nil
	case <-c.closed:
		return nil, net.ErrClosed
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }
