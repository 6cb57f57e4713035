package httpapi

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomString(nBytes int) string {
	b := make([]byte, nBytes)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+ panics instead).
	_, _ = rand.Read(b)
	return lowerBase32.EncodeToString(b)
}

// NewID returns a public id: 80 random bits, 16 characters, URL and path safe.
func NewID() string { return randomString(10) }

// NewStreamKey returns a secret stream key: 160 random bits in 32 lowercase
// characters that every encoder accepts in a URL path.
func NewStreamKey() string { return "sk" + randomString(20) }

// NewSecret returns a cluster-internal secret (256 bits).
func NewSecret() string { return randomString(32) }

// isID reports whether s could be an id from NewID or a user-chosen slug; it
// keeps path tricks out of lookups and file paths.
func isID(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
}
