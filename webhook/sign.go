package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	SignatureHeader = "Dionysia-Signature"
	EventIDHeader   = "Dionysia-Event-Id"
	EventTypeHeader = "Dionysia-Event-Type"
)

// DefaultTolerance is how far a signature's time may be from the
// receiver's clock; older requests are refused as replays.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrNoSignature = errors.New("webhook: no valid signature")
	ErrBadHeader   = errors.New("webhook: malformed signature header")
	ErrTooOld      = errors.New("webhook: signature time outside the tolerance")
	ErrEmptySecret = errors.New("webhook: empty secret")
)

// Signature is the hex HMAC-SHA256 of "<t>.<body>" under secret.
func Signature(secret string, t int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Header is the Dionysia-Signature value for body signed at time at.
func Header(secret string, at time.Time, body []byte) string {
	t := at.Unix()
	return fmt.Sprintf("t=%d,v1=%s", t, Signature(secret, t, body))
}

// Verify checks a Dionysia-Signature header against body and secret at time
// now: the header's time must be within tolerance of now (0 means
// DefaultTolerance), and one of its v1 signatures must match. Several v1
// values are accepted so that a sender may sign with an old and a new
// secret while a secret is being rotated.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return ErrEmptySecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var (
		t    int64
		hasT bool
		sigs []string
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ErrBadHeader
			}
			t, hasT = n, true
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if !hasT || len(sigs) == 0 {
		return ErrBadHeader
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrTooOld
	}
	want := []byte(Signature(secret, t, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrNoSignature
}

// AdmissionRequest is the JSON body a node POSTs to a publish admission URL
// (publish_auth_url) before it accepts a publish. The stream key is never
// sent: the receiver decides by input id.
type AdmissionRequest struct {
	InputID   string    `json:"input_id"`
	InputName string    `json:"input_name"`
	Protocol  string    `json:"protocol"`
	IP        string    `json:"ip"`
	Node      string    `json:"node"`
	Query     string    `json:"query,omitempty"`
	At        time.Time `json:"at"`
}
