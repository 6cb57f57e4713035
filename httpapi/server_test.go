package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func TestNewNeedsBackend(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
}

func TestNewRefusesARegistryUsedTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(Config{Backend: newFakeBackend(t), Registerer: reg, Logger: quietLogger()})
	require.NoError(t, err)
	_, err = New(Config{Backend: newFakeBackend(t), Registerer: reg})
	require.Error(t, err)
}

func TestAuth(t *testing.T) {
	e := newEnv(t, withTokens("first-token", " second-token ", "  "))
	e.b.addInput(t, "demo")

	tests := []struct {
		name   string
		header string // Authorization; "" = none
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"prefix of a token", "Bearer first", http.StatusUnauthorized},
		{"token with a suffix", "Bearer first-tokenx", http.StatusUnauthorized},
		{"both tokens", "Bearer first-token second-token", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"blank configured token is not a token", "Bearer   ", http.StatusUnauthorized},
		{"basic auth", "Basic Zmlyc3QtdG9rZW4=", http.StatusUnauthorized},
		{"no scheme", "first-token", http.StatusUnauthorized},
		{"first token", "Bearer first-token", http.StatusOK},
		{"second token, trimmed in config", "Bearer second-token", http.StatusOK},
		{"surrounding spaces", "Bearer  first-token ", http.StatusOK},
		{"scheme is case-insensitive", "bearer first-token", http.StatusOK},
		{"scheme in capitals", "BEARER first-token", http.StatusOK},
		{"another scheme with a token", "Token first-token", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			for _, target := range []string{"/v1/profiles", "/v1/inputs/demo", "/v1/nodes"} {
				rec := e.do(http.MethodGet, target, nil, hdr...)
				if tc.status == http.StatusUnauthorized {
					requireAPIError(t, rec, http.StatusUnauthorized, "Authorization")
					require.Equal(t, `Bearer realm="dionysia"`, rec.Header().Get("WWW-Authenticate"))
					require.NotContains(t, rec.Body.String(), "first-token")
				} else {
					require.Equal(t, tc.status, rec.Code, rec.Body.String())
				}
			}
		})
	}

	// Writes are refused before anything is decoded or proposed.
	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs", `{"name":"x"}`), http.StatusUnauthorized, "Authorization")
	requireAPIError(t, e.do(http.MethodDelete, "/v1/inputs/demo", nil, "Authorization", "Bearer nope"), http.StatusUnauthorized, "Authorization")
	require.Empty(t, e.b.commands())
	require.NotNil(t, e.b.State().Input("demo"))

	// Health and media need no token.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/readyz", nil).Code)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "master.m3u8"), []byte(masterM3U8), 0o644))
	e.b.ownedBy("demo", dir)
	live := e.do(http.MethodGet, "/live/demo/master.m3u8", nil)
	require.Equal(t, http.StatusOK, live.Code, "the origin is public")
}

func TestNoTokensMeansOpen(t *testing.T) {
	for _, tokens := range [][]string{nil, {}, {"", "  "}} {
		e := newEnv(t, withTokens(tokens...))
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/profiles", nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/profiles", nil, "Authorization", "Bearer whatever").Code)
	}
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

	rec = e.do(http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	ready := decodeBody[map[string]string](t, rec)
	require.Equal(t, "ready", ready["status"])

	e.b.setReadyErr(errors.New("no raft leader yet"))
	rec = e.do(http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Equal(t, map[string]string{"status": "not ready", "error": "no raft leader yet"}, decodeBody[map[string]string](t, rec))
	require.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodHead, "/readyz", nil).Code)
	// Liveness does not depend on readiness.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodHead, "/healthz", nil).Code)

	e.b.setReadyErr(nil)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/readyz", nil).Code)
}

func TestApplyErrors(t *testing.T) {
	requests := []struct{ method, target, body string }{
		{http.MethodPost, "/v1/inputs", `{"name":"x"}`},
		{http.MethodPatch, "/v1/inputs/demo", `{"name":"x"}`},
		{http.MethodDelete, "/v1/inputs/demo", ``},
		{http.MethodPost, "/v1/inputs/demo/rotate-key", ``},
		{http.MethodPost, "/v1/profiles", okProfileJSON},
		{http.MethodPut, "/v1/profiles/default", okProfileJSON},
		{http.MethodDelete, "/v1/profiles/default", ``},
	}
	for _, rq := range requests {
		t.Run(rq.method+" "+rq.target, func(t *testing.T) {
			e := newEnv(t)
			e.b.addInput(t, "demo")
			var body any
			if rq.body != "" {
				body = rq.body
			}

			e.b.setApplyErr(fmt.Errorf("forward to leader: %w", ErrUnavailable))
			rec := e.do(rq.method, rq.target, body)
			eb := requireAPIError(t, rec, http.StatusServiceUnavailable, "")
			require.Equal(t, "1", rec.Header().Get("Retry-After"))
			require.Contains(t, eb.Error, "forward to leader")

			e.b.setApplyErr(errBoom)
			rec = e.do(rq.method, rq.target, body)
			requireAPIError(t, rec, http.StatusInternalServerError, "")
			require.Empty(t, rec.Header().Get("Retry-After"))

			require.NotNil(t, e.b.State().Input("demo"), "nothing was applied")
		})
	}
}

func TestUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	e.b.addInput(t, "demo")
	for _, target := range []string{
		"/v1/nope", "/v1", "/v1/", "/v1/inputs/demo/nope", "/v1/inputs/", "/v1/profiles/a/b",
		"/v2/inputs", "/", "/live", "/healthz/x", "/metrics",
	} {
		t.Run(target, func(t *testing.T) {
			eb := requireAPIError(t, e.do(http.MethodGet, target, nil), http.StatusNotFound, "")
			require.NotEmpty(t, eb.Error)
		})
	}
	requireAPIError(t, e.do(http.MethodPost, "/v1/nope", `{}`), http.StatusNotFound, "")
	require.Empty(t, e.b.commands())
}

// methodCases are requests whose path exists with other methods.
var methodCases = []struct{ method, target string }{
	{http.MethodPost, "/healthz"},
	{http.MethodDelete, "/readyz"},
	{http.MethodPost, "/v1/route/demo"},
	{http.MethodPut, "/v1/inputs"},
	{http.MethodDelete, "/v1/profiles"},
	{http.MethodPost, "/v1/inputs/demo"},
	{http.MethodPut, "/v1/inputs/demo"},
	{http.MethodPatch, "/v1/profiles/default"},
	{http.MethodGet, "/v1/inputs/demo/rotate-key"},
	{http.MethodPost, "/v1/inputs/demo/status"},
	{http.MethodPost, "/v1/nodes"},
	{http.MethodDelete, "/v1/cluster"},
}

// TestWrongMethodOutsideSubrouter covers the routes gorilla/mux gets right:
// the top-level ones and the last route of the /v1 subrouter.
func TestWrongMethodOutsideSubrouter(t *testing.T) {
	e := newEnv(t)
	e.b.addInput(t, "demo")
	for _, tc := range methodCases[:3] {
		eb := requireAPIError(t, e.do(tc.method, tc.target, nil), http.StatusMethodNotAllowed, "")
		require.Contains(t, eb.Error, tc.method)
		require.Contains(t, eb.Error, tc.target)
	}
}

func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t)
	e.b.addInput(t, "demo")
	for _, tc := range methodCases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			eb := requireAPIError(t, e.do(tc.method, tc.target, nil), http.StatusMethodNotAllowed, "")
			require.Contains(t, eb.Error, tc.method)
		})
	}
	require.NotNil(t, e.b.State().Input("demo"))
	require.Empty(t, e.b.commands())
}

func TestUnknownRouteWithAuth(t *testing.T) {
	e := newEnv(t, withTokens("tok"))
	requireAPIError(t, e.do(http.MethodGet, "/v1/nope", nil, "Authorization", "Bearer tok"), http.StatusNotFound, "")
	// Without a token, an unmatched /v1 request never reaches a handler;
	// whether it says 401 or 404, it must be a JSON error and not a 2xx.
	rec := e.do(http.MethodGet, "/v1/nope", nil)
	require.Contains(t, []int{http.StatusUnauthorized, http.StatusNotFound}, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

func TestDashboardFallback(t *testing.T) {
	b := newFakeBackend(t)
	api, err := New(Config{Logger: quietLogger(), Backend: b, Dashboard: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("dashboard " + r.URL.Path))
	})})
	require.NoError(t, err)
	e := &testEnv{t: t, b: b, api: api}
	rec := e.do(http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "dashboard /", rec.Body.String())
	// /v1 keeps its own JSON 404.
	requireAPIError(t, e.do(http.MethodGet, "/v1/nope", nil), http.StatusNotFound, "")
}

func TestMetricsAndInternalRoutes(t *testing.T) {
	b := newFakeBackend(t)
	api, err := New(Config{
		Logger:  quietLogger(),
		Backend: b,
		Tokens:  []string{"tok"},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) }),
	})
	require.NoError(t, err)
	e := &testEnv{t: t, b: b, api: api}
	rec := e.do(http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "metrics", rec.Body.String())
	// Internal endpoints live on the cluster port (package peer), never on
	// the public one.
	rec = e.do(http.MethodPost, "/internal/apply", nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/healthz", nil, "X-Request-Id", "abc-123")
	require.Equal(t, "abc-123", rec.Header().Get("X-Request-Id"))

	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	a := e.do(http.MethodGet, "/v1/profiles", nil).Header().Get("X-Request-Id")
	b := e.do(http.MethodGet, "/v1/nope", nil).Header().Get("X-Request-Id")
	require.Regexp(t, hex16, a)
	require.Regexp(t, hex16, b)
	require.NotEqual(t, a, b)

	// An absurdly long id is replaced, not echoed.
	long := strings.Repeat("x", 65)
	got := e.do(http.MethodGet, "/healthz", nil, "X-Request-Id", long).Header().Get("X-Request-Id")
	require.Regexp(t, hex16, got)
	require.Equal(t, strings.Repeat("y", 64), e.do(http.MethodGet, "/healthz", nil, "X-Request-Id", strings.Repeat("y", 64)).Header().Get("X-Request-Id"))

	// Errors carry it too, so a user can quote it.
	require.Equal(t, "err-1", e.do(http.MethodPost, "/v1/inputs", `[]`, "X-Request-Id", "err-1").Header().Get("X-Request-Id"))
}

func TestNodesClusterRoute(t *testing.T) {
	e := newEnv(t)
	e.b.addInput(t, "demo")
	e.b.addInput(t, "mine")
	e.b.own("mine", t.TempDir())

	nodes := decodeBody[map[string][]NodeInfo](t, e.do(http.MethodGet, "/v1/nodes", nil))
	require.Equal(t, e.b.Nodes(), nodes["nodes"])

	cl := decodeBody[ClusterInfo](t, e.do(http.MethodGet, "/v1/cluster", nil))
	require.Equal(t, "self", cl.Leader)
	require.Len(t, cl.Servers, 1)

	rec := e.do(http.MethodGet, "/v1/route/demo", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"input_id":"demo","owner":"other","origin":"http://other:8080","local":false}`, rec.Body.String())
	rec = e.do(http.MethodGet, "/v1/route/mine", nil)
	require.JSONEq(t, `{"input_id":"mine","owner":"self","origin":"http://self:8080","local":true}`, rec.Body.String())

	requireAPIError(t, e.do(http.MethodGet, "/v1/route/nope", nil), http.StatusNotFound, "id")

	e.b.setRouteErr(fmt.Errorf("%w: no alive node on the ring", ErrUnavailable))
	rec = e.do(http.MethodGet, "/v1/route/demo", nil)
	requireAPIError(t, rec, http.StatusServiceUnavailable, "")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
}

// panickyBackend panics where a buggy node might.
type panickyBackend struct{ *fakeBackend }

func (panickyBackend) Nodes() []NodeInfo { panic("nodes exploded") }

func TestPanicBecomes500(t *testing.T) {
	b := newFakeBackend(t)
	api, err := New(Config{Logger: quietLogger(), Backend: panickyBackend{b}})
	require.NoError(t, err)
	e := &testEnv{t: t, b: b, api: api}
	rec := e.do(http.MethodGet, "/v1/nodes", nil)
	eb := requireAPIError(t, rec, http.StatusInternalServerError, "")
	require.NotContains(t, eb.Error, "exploded", "panic values are logged, not shown")
	require.NotEmpty(t, rec.Header().Get("X-Request-Id"))
}

func TestRequestMetrics(t *testing.T) {
	e := newEnv(t)
	e.b.addInput(t, "demo")
	for range 3 {
		e.do(http.MethodGet, "/v1/inputs/demo", nil)
	}
	e.do(http.MethodGet, "/v1/inputs/nope", nil)
	e.do(http.MethodGet, "/v1/definitely/not/a/route", nil)

	// Routes are labelled by template, never by id.
	require.Equal(t, 3.0, counterValue(t, e.reg, "dionysia_http_requests_total", map[string]string{"route": "/v1/inputs/{id}", "method": "GET", "code": "200"}))
	require.Equal(t, 1.0, counterValue(t, e.reg, "dionysia_http_requests_total", map[string]string{"route": "/v1/inputs/{id}", "method": "GET", "code": "404"}))
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				require.NotContains(t, lp.GetValue(), "demo")
				require.NotContains(t, lp.GetValue(), "definitely")
			}
		}
	}
}

// Health probes hit every node every few seconds: they are logged at debug,
// everything else at info.
func TestProbesAreLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	b := newFakeBackend(t)
	api, err := New(Config{Backend: b, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	e := &testEnv{t: t, b: b, api: api}
	e.do(http.MethodGet, "/healthz", nil)
	e.do(http.MethodGet, "/readyz", nil)
	require.Empty(t, buf.String())
	e.do(http.MethodGet, "/v1/profiles", nil)
	require.Contains(t, buf.String(), "path=/v1/profiles")
}

func TestAsAPIError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		field  string
	}{
		{fmt.Errorf("x: %w", ErrUnavailable), http.StatusServiceUnavailable, ""},
		{errors.New("x"), http.StatusInternalServerError, ""},
		{&fsm.Error{Code: fsm.CodeNotFound, Field: "id", Message: "m"}, http.StatusNotFound, "id"},
		{&fsm.Error{Code: fsm.CodeNotFound, Field: "profile_id", Message: "m"}, http.StatusBadRequest, "profile_id"},
		{&fsm.Error{Code: fsm.CodeConflict, Field: "id", Message: "m"}, http.StatusConflict, "id"},
		{&fsm.Error{Code: fsm.CodeInvalid, Field: "stream_key", Message: "m"}, http.StatusBadRequest, "stream_key"},
		{fmt.Errorf("apply: %w", &fsm.Error{Code: fsm.CodeConflict, Message: "m"}), http.StatusConflict, ""},
	}
	for _, tc := range tests {
		ae := asAPIError(tc.err)
		require.Equal(t, tc.status, ae.Status, tc.err.Error())
		require.Equal(t, tc.field, ae.Field)
	}
	ae := badRequest("f", "m")
	require.Same(t, ae, asAPIError(fmt.Errorf("wrapped: %w", ae)))
}
