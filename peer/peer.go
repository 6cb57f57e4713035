package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Config says where a node's credentials come from. Zero value: plain mode.
type Config struct {
	// ClusterKey (16, 24 or 32 bytes) is the root of every derived key and,
	// without files, of the self-issued certificates.
	ClusterKey []byte
	// CertFile, KeyFile and CAFile are the operator's PEM files; all three
	// or none.
	CertFile, KeyFile, CAFile string
	// Name is the node's name, the subject of a self-issued certificate.
	Name string
	// Hosts go into a self-issued certificate's names (informational:
	// peers are authenticated by their chain, not by host name).
	Hosts []string
	// Secret returns the root secret when there is no cluster key: the
	// one chosen at bootstrap and replicated by raft, "" until known.
	Secret func() string
	// Now is the clock for issuing certificates (nil = time.Now).
	Now func() time.Time
}

// Mode is how nodes authenticate each other.
type Mode string

const (
	ModePlain     Mode = "plain"       // no TLS: a derived token in a header
	ModeSelf      Mode = "cluster-key" // mutual TLS, certificates issued from the cluster key
	ModeOperator  Mode = "files"       // mutual TLS, the operator's certificates
	dialTimeout        = time.Second
	handshakeWait      = 5 * time.Second
)

// Peer is one node's view of node-to-node authentication.
type Peer struct {
	cfg    Config
	mode   Mode
	cert   tls.Certificate
	pool   *x509.CertPool
	client *http.Client
}

// New builds the node's credentials from cfg: it loads or issues the
// certificate, so a bad file or key fails here, at start.
func New(cfg Config) (*Peer, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Secret == nil {
		cfg.Secret = func() string { return "" }
	}
	switch n := len(cfg.ClusterKey); n {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("cluster-key: must be 16, 24 or 32 bytes, not %d", n)
	}
	cfg.ClusterKey = append([]byte(nil), cfg.ClusterKey...)
	p := &Peer{cfg: cfg, mode: ModePlain}
	files := 0
	for _, f := range []string{cfg.CertFile, cfg.KeyFile, cfg.CAFile} {
		if f != "" {
			files++
		}
	}
	switch {
	case files == 3:
		cert, pool, err := loadFiles(cfg.CertFile, cfg.KeyFile, cfg.CAFile)
		if err != nil {
			return nil, err
		}
		p.mode, p.cert, p.pool = ModeOperator, cert, pool
	case files != 0:
		return nil, errors.New("tls-cert, tls-key and tls-ca go together: give all three or none")
	case len(cfg.ClusterKey) > 0:
		ca, err := clusterCA(cfg.ClusterKey)
		if err != nil {
			return nil, err
		}
		name := cfg.Name
		if name == "" {
			name = "dionysia node"
		}
		cert, err := ca.issue(name, cfg.Hosts, cfg.Now())
		if err != nil {
			return nil, err
		}
		p.pool = x509.NewCertPool()
		p.pool.AddCert(ca.cert)
		p.mode, p.cert = ModeSelf, cert
	}
	tr := &http.Transport{
		// Node-to-node calls never go through a proxy from the
		// environment: in plain mode it would see the internal token.
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		// Viewers of one stream on one node become many parallel fetches
		// from its owner.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: handshakeWait,
		TLSClientConfig:     p.clientTLS(alpnHTTP),
	}
	p.client = &http.Client{Transport: tr}
	return p, nil
}

// Mode tells how this node authenticates its peers.
func (p *Peer) Mode() Mode { return p.mode }

// TLS reports whether node-to-node traffic is encrypted and authenticated.
func (p *Peer) TLS() bool { return p.mode != ModePlain }

// Client is the HTTP client of every node-to-node call. Timeouts come from
// the callers' contexts.
func (p *Peer) Client() *http.Client { return p.client }

// Close drops idle connections.
func (p *Peer) Close() { p.client.CloseIdleConnections() }

// Key derives the key of purpose from the root secret: the cluster key, or
// without one the bootstrap secret. nil while neither is known.
func (p *Peer) Key(purpose Purpose) []byte {
	root := p.root()
	if root == nil {
		return nil
	}
	k, err := Derive(root, purpose, 32)
	if err != nil {
		return nil
	}
	return k
}

// KeyHex is Key hex-encoded ("" while unknown).
func (p *Peer) KeyHex(purpose Purpose) string {
	root := p.root()
	if root == nil {
		return ""
	}
	s, _ := DeriveHex(root, purpose)
	return s
}

func (p *Peer) root() []byte {
	if len(p.cfg.ClusterKey) > 0 {
		return p.cfg.ClusterKey
	}
	if s := p.cfg.Secret(); s != "" {
		return []byte(s)
	}
	return nil
}

// ALPN names: one TLS port carries raft and internal HTTP, told apart in
// the handshake.
const (
	alpnRaft = "dionysia-raft/1"
	alpnHTTP = "http/1.1"
)

// serverTLS is the cluster port's TLS configuration: TLS 1.3, a client
// certificate chaining to the cluster's CA required.
func (p *Peer) serverTLS() *tls.Config {
	if !p.TLS() {
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		NextProtos:   []string{alpnRaft, alpnHTTP},
	}
}

// clientTLS verifies the server's chain against the cluster's CA and not
// its host name: nodes are reached by gossiped addresses, and what makes a
// peer trustworthy is a certificate from the cluster's CA, not a name
// (Consul's verify_outgoing without verify_server_hostname).
func (p *Peer) clientTLS(proto string) *tls.Config {
	if !p.TLS() {
		return nil
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.cert},
		// Verification is done in VerifyConnection, without the host name.
		InsecureSkipVerify: true,
		VerifyConnection:   p.verifyServer,
	}
	if proto != "" {
		c.NextProtos = []string{proto}
	}
	return c
}

func (p *Peer) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoChain
	}
	opts := x509.VerifyOptions{
		Roots:         p.pool,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("peer certificate is not from this cluster's CA: %w", err)
	}
	return nil
}

// ServerTLS is the configuration a node serves other TLS endpoints with
// (mediamtx's RTSPS server takes files: see CertPEM); nil in plain mode.
func (p *Peer) ServerTLS() *tls.Config { return p.serverTLS() }

// ClientTLS is for a client of another node's TLS endpoint other than the
// cluster port (RTSPS); nil in plain mode.
func (p *Peer) ClientTLS() *tls.Config { return p.clientTLS("") }

// CertPEM returns the node's certificate chain and key in PEM, for a child
// process that serves TLS; errors in plain mode.
func (p *Peer) CertPEM() (chain, key []byte, err error) {
	if !p.TLS() {
		return nil, nil, errors.New("no TLS certificate in plain mode")
	}
	key, err = pemKey(p.cert)
	if err != nil {
		return nil, nil, err
	}
	return pemChain(p.cert), key, nil
}
