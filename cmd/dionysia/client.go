package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Where the client commands find a node when neither --addr nor
// DIONYSIA_ADDR says otherwise: the default of `dionysia node` on this host.
const defaultAddr = "http://127.0.0.1:8080"

// requestTimeout bounds one API call. Writes on a follower are forwarded to
// the leader, and an election may be under way: give them time, not forever.
const requestTimeout = 30 * time.Second

// client is a small HTTP client of the /v1 API. It keeps the server's JSON
// as bytes so that --json can print exactly what the server said.
type client struct {
	base  string // http://host:port, no trailing slash
	token string
	http  *http.Client
}

func newClient(addr, token string) (*client, error) {
	base, err := normalizeAddr(addr)
	if err != nil {
		return nil, err
	}
	return &client{base: base, token: token, http: &http.Client{Timeout: requestTimeout}}, nil
}

// normalizeAddr accepts what people type: "http://h:p", "h:p" or ":p".
func normalizeAddr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("--addr is empty")
	}
	if !strings.Contains(addr, "://") {
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--addr %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--addr %q: no host", addr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// apiError is a non-2xx answer: the server's {"error","field"} when it sent
// one, else the status and the start of the body.
type apiError struct {
	Status  int
	Message string
	Field   string
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString(" (")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q, ", e.Field)
	}
	fmt.Fprintf(&b, "HTTP %d)", e.Status)
	return b.String()
}

// netError is a request that got no HTTP answer at all.
type netError struct {
	Addr string
	Err  error
}

func (e *netError) Error() string {
	if errors.Is(e.Err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("cannot connect to %s: connection refused (is a dionysia node running there? set --addr or DIONYSIA_ADDR)", e.Addr)
	}
	return fmt.Sprintf("request to %s failed: %v", e.Addr, e.Err)
}

func (e *netError) Unwrap() error { return e.Err }

// writeAttempts bounds how often a POST is sent; retryPause is the pause
// before the second try, doubled for each one after it.
const (
	writeAttempts = 4
	retryPause    = 250 * time.Millisecond
)

// do sends one request with an optional JSON body and returns the response
// body of a 2xx answer, or an *apiError / *netError.
//
// A POST goes out with an Idempotency-Key and is sent again, under the same
// key, when its fate is unknown: no answer (the connection broke or timed
// out after it was sent), a 504 (the node could not learn whether the
// leader applied it) or a 409 saying the first try is still running. The
// server applies it once and answers every try alike.
func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		payload = b
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	key := ""
	if method == http.MethodPost {
		key = rand.Text()
	}
	pause := retryPause
	for attempt := 1; ; attempt++ {
		b, err := c.send(ctx, method, path, payload, key)
		if err == nil || key == "" || attempt == writeAttempts || !outcomeUnknown(err) {
			return b, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		pause *= 2
	}
}

// outcomeUnknown tells whether a failed write may have been applied, so
// that it is worth sending again under its idempotency key.
func outcomeUnknown(err error) bool {
	var ne *netError
	if errors.As(err, &ne) {
		// A refused connection sent nothing; anything else may have.
		return !errors.Is(ne.Err, syscall.ECONNREFUSED)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusGatewayTimeout || (ae.Status == http.StatusConflict && ae.Field == "Idempotency-Key")
	}
	return false
}

// send makes one try of a request.
func (c *client) send(ctx context.Context, method, path string, payload []byte, idempotencyKey string) ([]byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dionysia-cli")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &netError{Addr: c.base, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &netError{Addr: c.base, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	return nil, decodeAPIError(resp.StatusCode, b)
}

func decodeAPIError(status int, body []byte) *apiError {
	var eb struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if err := json.Unmarshal(body, &eb); err == nil && eb.Error != "" {
		return &apiError{Status: status, Message: eb.Error, Field: eb.Field}
	}
	// Not our API (a proxy, a wrong --addr): show what came back.
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &apiError{Status: status, Message: "unexpected answer: " + msg}
}

// getJSON fetches path and decodes it into v, returning the raw body too.
func (c *client) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	return c.doJSON(ctx, http.MethodGet, path, nil, v)
}

// doJSON is do followed by decoding the answer into v (when v is not nil).
func (c *client) doJSON(ctx context.Context, method, path string, body, v any) ([]byte, error) {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if v != nil && len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			return b, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return b, nil
}

// pathID escapes an id for use as one path segment.
func pathID(id string) string { return url.PathEscape(id) }
