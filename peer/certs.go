package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// The self-issued CA's validity is fixed, not taken from the clock: every
// node must build byte-for-byte the same CA certificate from the cluster key.
var (
	caNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	caNotAfter  = time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
)

// leafLifetime: a node issues its certificate at every start; a process
// that runs longer than this must be restarted (the ADR says so).
const leafLifetime = 2 * 365 * 24 * time.Hour

// authority is a CA able to issue node certificates.
type authority struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

// clusterCA derives the cluster CA from the cluster key. Ed25519 because its
// key comes from a 32-byte seed (and its signatures need no randomness), so
// the key and the self-signed certificate are the same on every node.
func clusterCA(clusterKey []byte) (*authority, error) {
	seed, err := Derive(clusterKey, NodeCA, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	id := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		// The key's fingerprint in the name: two clusters' CAs never look
		// alike in an error message or a chain.
		Subject:               pkix.Name{Organization: []string{"Dionysia"}, CommonName: "dionysia cluster CA " + hex.EncodeToString(id[:8])},
		NotBefore:             caNotBefore,
		NotAfter:              caNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
		SubjectKeyId:          id[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("self-issued CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-issued CA: %w", err)
	}
	return &authority{cert: cert, key: key}, nil
}

// issue makes a fresh key and a certificate for a node, good for both ends
// of a mutual TLS connection.
func (a *authority) issue(name string, hosts []string, now time.Time) (tls.Certificate, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Dionysia"}, CommonName: name},
		// Clocks of a cluster's nodes may differ a little.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(leafLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// loadFiles reads the operator's certificate, key and CA bundle.
func loadFiles(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("tls-ca: %s holds no PEM certificate", caFile)
	}
	// Refuse at start what every peer would refuse later, with a message
	// that names the file instead of a handshake error on another node.
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: intermediates(cert.Certificate),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls-cert: does not verify against tls-ca (it must chain to it and allow both server and client auth): %w", err)
	}
	return cert, pool, nil
}

func intermediates(chain [][]byte) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range chain[min(1, len(chain)):] {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// pemChain and pemKey encode a certificate chain and its key for a child
// process (mediamtx's RTSPS server).
func pemChain(c tls.Certificate) []byte {
	var out []byte
	for _, der := range c.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

func pemKey(c tls.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

var errNoChain = errors.New("peer presented no certificate")
