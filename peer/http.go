package peer

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
)

// tokenHeader carries the internal token in plain mode only.
const tokenHeader = "X-Dionysia-Internal"

// Scheme is the URL scheme of internal calls.
func (p *Peer) Scheme() string {
	if p.TLS() {
		return "https"
	}
	return "http"
}

// URL is the URL of path on the cluster port at hostport.
func (p *Peer) URL(hostport, path string) string {
	return p.Scheme() + "://" + hostport + path
}

// NewRequest makes an internal request to path on the cluster port at
// hostport. With TLS the client certificate authenticates it; in plain mode
// it carries the internal token.
func (p *Peer) NewRequest(ctx context.Context, method, hostport, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL(hostport, path), body)
	if err != nil {
		return nil, err
	}
	if !p.TLS() {
		req.Header.Set(tokenHeader, p.KeyHex(InternalToken))
	}
	return req, nil
}

// Authenticated reports whether r comes from a node of this cluster: over
// TLS, a verified client certificate (the handshake refused any other); in
// plain mode, the internal token.
func (p *Peer) Authenticated(r *http.Request) bool {
	if p.TLS() {
		return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
	}
	want := p.KeyHex(InternalToken)
	got := r.Header.Get(tokenHeader)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Authenticate admits only requests from nodes of this cluster; others get
// 403.
func (p *Peer) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.Authenticated(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"forbidden: not a node of this cluster"}`+"\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}
