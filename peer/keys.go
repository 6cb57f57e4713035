package peer

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Purpose names what a derived key is for. Each purpose is its own HKDF
// "info" label, so keys of different purposes are independent: knowing the
// playback key tells nothing about the media read password or the CA key,
// and none of them reveals the root secret.
type Purpose string

const (
	// NodeCA seeds the Ed25519 key of the self-issued cluster CA.
	NodeCA Purpose = "dionysia/v1/node-ca"
	// Playback signs playback tokens.
	Playback Purpose = "dionysia/v1/playback"
	// MediaRead is the RTSP password a node reads another node's
	// mediamtx with.
	MediaRead Purpose = "dionysia/v1/media-read"
	// InternalToken authenticates internal HTTP calls in plain mode (no
	// TLS); with TLS the client certificate does.
	InternalToken Purpose = "dionysia/v1/internal-token"
)

// hkdfSalt is fixed: the root secrets are uniformly random already (a
// cluster key of 16-32 random bytes, or a 256-bit bootstrap secret), and a
// fixed salt keeps derivation deterministic, which every node relies on.
var hkdfSalt = []byte("dionysia cluster v1")

// Derive returns n bytes for purpose from root with HKDF-SHA256.
// It is deterministic: every node with the same root derives the same key.
func Derive(root []byte, purpose Purpose, n int) ([]byte, error) {
	if len(root) == 0 {
		return nil, fmt.Errorf("derive %s: empty root secret", purpose)
	}
	if purpose == "" {
		return nil, fmt.Errorf("derive: empty purpose")
	}
	k, err := hkdf.Key(sha256.New, root, hkdfSalt, string(purpose), n)
	if err != nil {
		return nil, fmt.Errorf("derive %s: %w", purpose, err)
	}
	return k, nil
}

// DeriveHex is Derive of 32 bytes, hex-encoded, for keys that travel as
// text (passwords, header tokens).
func DeriveHex(root []byte, purpose Purpose) (string, error) {
	k, err := Derive(root, purpose, 32)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(k), nil
}
