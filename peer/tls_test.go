package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	keyA = bytes.Repeat([]byte{0xA}, 32)
	keyB = bytes.Repeat([]byte{0xB}, 32)
)

func TestClusterCAIsDeterministic(t *testing.T) {
	a1, err := clusterCA(keyA)
	require.NoError(t, err)
	a2, err := clusterCA(keyA)
	require.NoError(t, err)
	require.Equal(t, a1.cert.Raw, a2.cert.Raw, "two nodes with one key build different CAs")
	b, err := clusterCA(keyB)
	require.NoError(t, err)
	require.NotEqual(t, a1.cert.Raw, b.cert.Raw)
	require.NotEqual(t, a1.cert.Subject.CommonName, b.cert.Subject.CommonName)
}

// writeFiles issues a node certificate from key's CA into dir, as an
// operator's PKI would, and returns the three paths.
func writeFiles(t *testing.T, dir string, key []byte, name string) (cert, priv, ca string) {
	t.Helper()
	a, err := clusterCA(key)
	require.NoError(t, err)
	c, err := a.issue(name, []string{"127.0.0.1"}, time.Now())
	require.NoError(t, err)
	chain := pemChain(c)
	k, err := pemKey(c)
	require.NoError(t, err)
	cert, priv, ca = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, "ca-"+name+".crt")
	require.NoError(t, os.WriteFile(cert, chain, 0o600))
	require.NoError(t, os.WriteFile(priv, k, 0o600))
	caPEM := pemChain(tls.Certificate{Certificate: [][]byte{a.cert.Raw}})
	require.NoError(t, os.WriteFile(ca, caPEM, 0o600))
	return cert, priv, ca
}

func TestNewConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeFiles(t, dir, keyA, "n1")
	_, _, caB := writeFiles(t, dir, keyB, "n2")
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("nothing"), 0o600))
	cases := []struct {
		name string
		cfg  Config
		want string // "" = no error
		mode Mode
	}{
		{"nothing: plain", Config{}, "", ModePlain},
		{"cluster key: self-issued", Config{ClusterKey: keyA}, "", ModeSelf},
		{"files", Config{CertFile: cert, KeyFile: key, CAFile: ca}, "", ModeOperator},
		{"files win over the key", Config{ClusterKey: keyB, CertFile: cert, KeyFile: key, CAFile: ca}, "", ModeOperator},
		{"bad key size", Config{ClusterKey: []byte("short")}, "16, 24 or 32 bytes", ""},
		{"cert without key", Config{CertFile: cert, CAFile: ca}, "give all three or none", ""},
		{"missing cert file", Config{CertFile: filepath.Join(dir, "nope"), KeyFile: key, CAFile: ca}, "tls-cert/tls-key", ""},
		{"key of another cert", Config{CertFile: cert, KeyFile: filepath.Join(dir, "n2.key"), CAFile: ca}, "tls-cert/tls-key", ""},
		{"missing CA", Config{CertFile: cert, KeyFile: key, CAFile: filepath.Join(dir, "nope")}, "tls-ca", ""},
		{"CA without PEM", Config{CertFile: cert, KeyFile: key, CAFile: empty}, "no PEM certificate", ""},
		{"cert from another CA", Config{CertFile: cert, KeyFile: key, CAFile: caB}, "does not verify against tls-ca", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.mode, p.Mode())
			require.Equal(t, tc.mode != ModePlain, p.TLS())
			if p.TLS() {
				s := p.ServerTLS()
				require.Equal(t, uint16(tls.VersionTLS13), s.MinVersion)
				require.Equal(t, tls.RequireAndVerifyClientCert, s.ClientAuth)
				chain, k, err := p.CertPEM()
				require.NoError(t, err)
				require.NotEmpty(t, chain)
				require.NotEmpty(t, k)
			} else {
				require.Nil(t, p.ServerTLS())
				_, _, err := p.CertPEM()
				require.Error(t, err)
			}
		})
	}
}

// serve starts a Listener for p on loopback with an internal HTTP server
// behind p.Authenticate, and a goroutine that answers raft connections with
// what they sent.
func serve(t *testing.T, p *Peer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := p.Listen(ln, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := &http.Server{Handler: p.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello peer")
	})), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l.HTTP()) }()
	go func() {
		for {
			c, err := l.Raft().Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { _ = srv.Close(); _ = l.Close() })
	return ln.Addr().String()
}

func raftEcho(p *Peer, addr string) error {
	c, err := p.DialRaft(addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("vote")); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != "vote" {
		return errors.New("raft echo: got " + string(got))
	}
	return nil
}

func httpGet(p *Peer, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := p.NewRequest(ctx, http.MethodGet, addr, "/internal/x", nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// TestPeersAuthenticateEachOther: raft and internal HTTP on one port work
// between nodes of one cluster and fail, in both directions, between nodes
// of different clusters or modes.
func TestPeersAuthenticateEachOther(t *testing.T) {
	dir := t.TempDir()
	certA, privA, caA := writeFiles(t, dir, keyA, "a")
	certB, privB, caB := writeFiles(t, dir, keyB, "b")
	secret := func() string { return "bootstrap" }
	other := func() string { return "another bootstrap" }
	mk := func(cfg Config) *Peer {
		p, err := New(cfg)
		require.NoError(t, err)
		return p
	}
	cases := []struct {
		name           string
		server, client Config
		ok             bool
		httpStatus     int // when the handshake passes but the request is refused
	}{
		{"same cluster key", Config{ClusterKey: keyA, Name: "s"}, Config{ClusterKey: keyA, Name: "c"}, true, 200},
		{"another cluster key", Config{ClusterKey: keyA}, Config{ClusterKey: keyB}, false, 0},
		{"operator files, same CA", Config{CertFile: certA, KeyFile: privA, CAFile: caA}, Config{CertFile: certA, KeyFile: privA, CAFile: caA}, true, 200},
		{"operator files, another CA", Config{CertFile: certA, KeyFile: privA, CAFile: caA}, Config{CertFile: certB, KeyFile: privB, CAFile: caB}, false, 0},
		{"files of the key's CA meet the key", Config{CertFile: certA, KeyFile: privA, CAFile: caA}, Config{ClusterKey: keyA}, true, 200},
		{"TLS server, plain client", Config{ClusterKey: keyA}, Config{Secret: secret}, false, 0},
		{"plain, same secret", Config{Secret: secret}, Config{Secret: secret}, true, 200},
		{"plain, another secret", Config{Secret: secret}, Config{Secret: other}, true, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, cl := mk(tc.server), mk(tc.client)
			addr := serve(t, srv)
			status, err := httpGet(cl, addr)
			raftErr := raftEcho(cl, addr)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, tc.httpStatus, status)
				require.NoError(t, raftErr)
				return
			}
			if tc.httpStatus != 0 {
				require.NoError(t, err)
				require.Equal(t, tc.httpStatus, status)
				return
			}
			require.Error(t, err, "internal HTTP answered (%d) across clusters", status)
			require.Error(t, raftErr, "raft connection accepted across clusters")
		})
	}
}

// TestPlainClientCannotReachTLSHTTP: a peer without TLS that sends a raw
// HTTP request with a guessed token to a TLS cluster port gets nothing.
func TestPlainClientCannotReachTLSHTTP(t *testing.T) {
	p, err := New(Config{ClusterKey: keyA})
	require.NoError(t, err)
	addr := serve(t, p)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.WriteString(c, "GET /internal/x HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	require.NotContains(t, string(b), "hello peer")
	require.NotContains(t, string(b), "HTTP/1.1 200")
}

// TestClientBypassesProxy: internal calls carry credentials (the token in
// plain mode), so they go straight to the peer, never through a proxy named
// by HTTP_PROXY (net/http reads the environment once per process, so the
// transport's Proxy is checked rather than the environment changed).
func TestClientBypassesProxy(t *testing.T) {
	for _, cfg := range []Config{{}, {ClusterKey: keyA}} {
		p, err := New(cfg)
		require.NoError(t, err)
		tr, ok := p.Client().Transport.(*http.Transport)
		require.True(t, ok)
		require.Nil(t, tr.Proxy, "internal calls must not use the environment's proxy")
	}
}

// TestListenerCloseDoesNotWaitForStalledPeers: a connection that never
// finishes its handshake is closed by Close, not waited for.
func TestListenerCloseDoesNotWaitForStalledPeers(t *testing.T) {
	for _, cfg := range []Config{{}, {ClusterKey: keyA}} {
		p, err := New(cfg)
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		l := p.Listen(ln, slog.New(slog.NewTextHandler(io.Discard, nil)))
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		// Let the listener take the connection, then close it.
		require.Eventually(t, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return len(l.pending) == 1
		}, 2*time.Second, 10*time.Millisecond)
		start := time.Now()
		require.NoError(t, l.Close())
		require.Less(t, time.Since(start), time.Second, "Close waited for a stalled handshake")
	}
}
