package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAuthHandler(t *testing.T) {
	var got AuthRequest
	h := &authHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), authorize: func(ctx context.Context, req AuthRequest) error {
		if req.Protocol == "rtmp" {
			got = req
		}
		_, hasDeadline := ctx.Deadline()
		require.True(t, hasDeadline, "Authorize must run with a timeout")
		if req.Path == "live/good" {
			return nil
		}
		return errors.New("nope")
	}}
	// A body as mediamtx v1.15 sends it (id may be null).
	const good = `{"user":"u","password":"p","token":"","ip":"127.0.0.1","action":"publish","path":"live/good","protocol":"rtmp","id":"8f5d6c0e-2d7a-4b1e-9a4c-1c2d3e4f5a6b","query":"a=b"}`
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"allowed", http.MethodPost, "/auth", good, http.StatusOK},
		{"refused", http.MethodPost, "/auth", `{"action":"read","path":"live/bad","id":null}`, http.StatusUnauthorized},
		{"garbage", http.MethodPost, "/auth", `{"action":`, http.StatusBadRequest},
		{"wrong type", http.MethodPost, "/auth", `{"path":42}`, http.StatusBadRequest},
		{"too big", http.MethodPost, "/auth", `{"path":"` + strings.Repeat("a", authMaxBody) + `"}`, http.StatusBadRequest},
		{"get", http.MethodGet, "/auth", "", http.StatusMethodNotAllowed},
		{"other path", http.MethodPost, "/other", good, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			require.Equal(t, tc.want, rec.Code)
		})
	}
	require.Equal(t, AuthRequest{User: "u", Password: "p", IP: "127.0.0.1", Action: "publish", Path: "live/good",
		Protocol: "rtmp", ID: "8f5d6c0e-2d7a-4b1e-9a4c-1c2d3e4f5a6b", Query: "a=b"}, got)
}

func TestAuthHandlerSlowAuthorizeIsCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the auth timeout")
	}
	h := &authHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), authorize: func(ctx context.Context, req AuthRequest) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	// A client that gives up stands for mediamtx closing the connection: the
	// Authorize context must end with it, not only at authTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/auth", strings.NewReader(`{}`))
	require.NoError(t, err)
	start := time.Now()
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err)
	require.Less(t, time.Since(start), authTimeout)
}

// TestAuthHandlerAPI: control API calls are decided by the handler with the
// node's own API password and never reach Authorize; without that password
// (or with none configured) they are refused.
func TestAuthHandlerAPI(t *testing.T) {
	calls := 0
	h := &authHandler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), apiPass: "s3cret",
		authorize: func(ctx context.Context, req AuthRequest) error { calls++; return nil }}
	unset := &authHandler{log: h.log, authorize: h.authorize}
	tests := []struct {
		name string
		h    *authHandler
		body string
		want int
	}{
		{"node's credentials", h, `{"action":"api","user":"dionysia-api","password":"s3cret"}`, http.StatusOK},
		{"no credentials", h, `{"action":"api"}`, http.StatusUnauthorized},
		{"wrong password", h, `{"action":"api","user":"dionysia-api","password":"x"}`, http.StatusUnauthorized},
		{"other user", h, `{"action":"api","user":"admin","password":"s3cret"}`, http.StatusUnauthorized},
		{"no password configured", unset, `{"action":"api","user":"dionysia-api","password":""}`, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/auth", strings.NewReader(tc.body)))
			require.Equal(t, tc.want, rec.Code)
		})
	}
	require.Zero(t, calls, "api requests must not reach Authorize (it may allow anything it does not know)")
}
