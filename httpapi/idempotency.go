package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// IdempotencyHeader makes a POST safe to retry (IETF httpapi draft
// "The Idempotency-Key HTTP Header Field"): the cluster keeps the first
// answer for fsm.IdempotencyTTL and gives it to every retry of the same
// request.
const IdempotencyHeader = "Idempotency-Key"

// replayedHeader marks an answer that a retry got from the store.
const replayedHeader = "Idempotent-Replayed"

const (
	maxIdempotencyKey = 255
	// idempotentTimeout bounds a request once it has begun: it runs to the
	// end even when the client goes away, so that its answer is stored
	// for the retry. Shorter than fsm.IdempotencyLease, so that a retry
	// never takes over an attempt that is still running.
	idempotentTimeout = 20 * time.Second
)

type idemKeyCtx struct{}

// idempotencyKey is the key the write of this request is tagged with, or "".
func idempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(idemKeyCtx{}).(string)
	return k
}

// parseIdempotencyKey reads the header's value: a structured-field string
// ("…", RFC 8941) as the draft says, or, as most clients send it, the bare
// token.
func parseIdempotencyKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", badRequest(IdempotencyHeader, "send one Idempotency-Key header")
	}
	v := strings.TrimSpace(values[0])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		s, ok := unquoteSF(v[1 : len(v)-1])
		if !ok {
			return "", badRequest(IdempotencyHeader, "Idempotency-Key is not a valid quoted string")
		}
		v = s
	}
	if v == "" || len(v) > maxIdempotencyKey {
		return "", badRequest(IdempotencyHeader, "Idempotency-Key must be 1-255 characters")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", badRequest(IdempotencyHeader, "Idempotency-Key must be printable ASCII")
		}
	}
	return v, nil
}

// unquoteSF undoes a structured-field string's escapes, which are only
// \" and \\; a lone quote inside is not allowed.
func unquoteSF(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return "", false
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", false
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// fingerprint identifies a request, so that a key sent again with another
// request is caught.
func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + "\n" + path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent wraps a POST handler. Without the header the request runs as
// it is. With it, the request begins through raft (one attempt at a time
// per key), runs with its write tagged with the key, and finishes by
// storing its answer; a retry gets that answer back, a retry while the
// first attempt runs gets 409, and the same key with another method, path
// or body gets 422. An answer of 5xx is not stored: the key is released
// (the write under it, if any, still applies only once) so that the retry
// runs again.
func (a *API) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values, ok := r.Header[IdempotencyHeader]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		key, err := parseIdempotencyKey(values)
		if err != nil {
			writeError(w, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, decodeError(err))
			return
		}
		// Clients must not be able to reach the keys package cluster makes up.
		key = "api/" + key
		attempt := newRequestID() + newRequestID()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotentTimeout)
		defer cancel()

		res, err := a.b.Apply(ctx, fsm.Command{Op: fsm.OpBeginRequest, At: time.Now().UTC(), Idempotency: &fsm.Idempotency{
			Key: key, Fingerprint: fingerprint(r.Method, r.URL.Path, body), Attempt: attempt,
		}})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			writeError(w, err)
			return
		}
		if res.Response != nil {
			replay(w, res.Response)
			return
		}

		rec := newBufferedWriter()
		r = r.WithContext(context.WithValue(ctx, idemKeyCtx{}, key))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(rec, r)

		var stored *fsm.StoredResponse
		if rec.status < 500 {
			stored = &fsm.StoredResponse{Status: rec.status, ContentType: rec.h.Get("Content-Type"), Location: rec.h.Get("Location"), Body: rec.body.Bytes()}
		}
		_, err = a.b.Apply(ctx, fsm.Command{Op: fsm.OpFinishRequest, At: time.Now().UTC(),
			Idempotency: &fsm.Idempotency{Key: key, Attempt: attempt}, Response: stored})
		if err != nil {
			// The key stays in flight until its lease runs out; a retry is
			// then taken over, and its write still applies only once.
			a.log.Warn("store the answer of an idempotent request", "path", r.URL.Path, "status", rec.status, "err", err)
		}
		rec.copyTo(w)
	})
}

func replay(w http.ResponseWriter, s *fsm.StoredResponse) {
	h := w.Header()
	if s.ContentType != "" {
		h.Set("Content-Type", s.ContentType)
	}
	if s.Location != "" {
		h.Set("Location", s.Location)
	}
	h.Set("Cache-Control", "no-store")
	h.Set(replayedHeader, "true")
	w.WriteHeader(s.Status)
	_, _ = w.Write(s.Body)
}

// bufferedWriter holds an answer until it is stored.
type bufferedWriter struct {
	h      http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func newBufferedWriter() *bufferedWriter {
	return &bufferedWriter{h: http.Header{}, status: http.StatusOK}
}

func (b *bufferedWriter) Header() http.Header { return b.h }

func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.h {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
