package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	vecSecret = "whsec_test"
	vecT      = int64(1700000000)
	vecBody   = `{"id":"evt_1","type":"input.live"}`
	// vecSig was computed once with Python's hmac module:
	// hmac.new(b"whsec_test", b'1700000000.{"id":"evt_1","type":"input.live"}', hashlib.sha256).hexdigest()
	vecSig = "8e527f5b64179440fa85edb3fd7c4ecea1f4d31611d6ea3458a22cf615698640"
)

func TestSignatureKnownVector(t *testing.T) {
	require.Equal(t, vecSig, Signature(vecSecret, vecT, []byte(vecBody)))

	// And against crypto/hmac directly, as a receiver would compute it.
	m := hmac.New(sha256.New, []byte(vecSecret))
	m.Write([]byte("1700000000." + vecBody))
	require.Equal(t, hex.EncodeToString(m.Sum(nil)), Signature(vecSecret, vecT, []byte(vecBody)))

	require.Equal(t, "t=1700000000,v1="+vecSig, Header(vecSecret, time.Unix(vecT, 0), []byte(vecBody)))
}

func TestVerify(t *testing.T) {
	at := time.Unix(vecT, 0)
	body := []byte(vecBody)
	h := Header(vecSecret, at, body)

	require.NoError(t, Verify(vecSecret, h, body, at, 0))
	require.NoError(t, Verify(vecSecret, h, body, at.Add(4*time.Minute), 0), "within the default tolerance")
	require.NoError(t, Verify(vecSecret, h, body, at.Add(-4*time.Minute), 0), "a sender's clock slightly ahead")

	tests := []struct {
		name   string
		secret string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"other secret", "whsec_other", h, vecBody, at, ErrNoSignature},
		{"body changed", vecSecret, h, `{"id":"evt_2","type":"input.live"}`, at, ErrNoSignature},
		{"replayed later", vecSecret, h, vecBody, at.Add(6 * time.Minute), ErrTooOld},
		{"time changed", vecSecret, "t=1700000001,v1=" + vecSig, vecBody, at, ErrNoSignature},
		{"no time", vecSecret, "v1=" + vecSig, vecBody, at, ErrBadHeader},
		{"no signature", vecSecret, "t=1700000000", vecBody, at, ErrBadHeader},
		{"garbage", vecSecret, "sha256=abc", vecBody, at, ErrBadHeader},
		{"bad time", vecSecret, "t=soon,v1=" + vecSig, vecBody, at, ErrBadHeader},
		{"empty header", vecSecret, "", vecBody, at, ErrBadHeader},
		{"empty secret", "", h, vecBody, at, ErrEmptySecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, Verify(tc.secret, tc.header, []byte(tc.body), tc.now, 0), tc.want)
		})
	}

	// Rotation: one v1 per secret, either verifies.
	rot := h + ",v1=" + Signature("whsec_new", vecT, body)
	require.NoError(t, Verify(vecSecret, rot, body, at, 0))
	require.NoError(t, Verify("whsec_new", rot, body, at, 0))
	require.ErrorIs(t, Verify(vecSecret, h, body, at.Add(2*time.Second), time.Second), ErrTooOld, "a tighter tolerance")
}
