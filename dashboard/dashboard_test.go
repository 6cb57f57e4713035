package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func TestIndexAtRoot(t *testing.T) {
	h := Handler(Config{})
	for _, p := range []string{"/", "/index.html"} {
		r := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusOK, r.StatusCode, p)
		require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
		require.Contains(t, r.Header.Get("Content-Security-Policy"), "script-src 'self'")
		require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
		b := body(t, r)
		require.Contains(t, b, "<title>Dionysia dashboard</title>")
		require.Contains(t, b, `src="/assets/app.js"`)
		require.Contains(t, b, `href="/assets/app.css"`)
	}
}

func TestAssetsContentTypes(t *testing.T) {
	h := Handler(Config{})
	for path, ct := range map[string]string{
		"/assets/app.js":  "text/javascript; charset=utf-8",
		"/assets/app.css": "text/css; charset=utf-8",
	} {
		r := get(t, h, http.MethodGet, path)
		require.Equal(t, http.StatusOK, r.StatusCode, path)
		require.Equal(t, ct, r.Header.Get("Content-Type"), path)
		require.NotEmpty(t, body(t, r), path)
		etag := r.Header.Get("ETag")
		require.NotEmpty(t, etag, path)

		// Revalidation answers 304 without a body.
		r = get(t, h, http.MethodGet, path, "If-None-Match", etag)
		require.Equal(t, http.StatusNotModified, r.StatusCode, path)

		r = get(t, h, http.MethodHead, path)
		require.Equal(t, http.StatusOK, r.StatusCode, path)
	}
}

// The page must never build markup from server data: app.js has no
// innerHTML, outerHTML, insertAdjacentHTML or document.write at all.
func TestAppJSDoesNotInjectHTML(t *testing.T) {
	b, err := static.ReadFile("static/app.js")
	require.NoError(t, err)
	for _, bad := range []string{".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"} {
		require.NotContains(t, string(b), bad)
	}
}

func TestHLSJSFromPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hls.min.js")
	const js = "/* hls.js stand-in */ var Hls = {};"
	require.NoError(t, os.WriteFile(p, []byte(js), 0o644))
	h := Handler(Config{HLSJSPath: p})

	r := get(t, h, http.MethodGet, "/assets/hls.min.js")
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, js, body(t, r))

	// Picked up again on every request: `make deps` after start is enough.
	require.NoError(t, os.WriteFile(p, []byte(js+" // new"), 0o644))
	r = get(t, h, http.MethodGet, "/assets/hls.min.js")
	require.Equal(t, js+" // new", body(t, r))
}

func TestHLSJSMissing(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unset":     {},
		"missing":   {HLSJSPath: filepath.Join(t.TempDir(), "nope.js")},
		"directory": {HLSJSPath: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			r := get(t, Handler(cfg), http.MethodGet, "/assets/hls.min.js")
			require.Equal(t, http.StatusNotFound, r.StatusCode)
			require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain"))
			b := body(t, r)
			require.Contains(t, b, "make deps")
			require.Contains(t, b, "--hlsjs")
		})
	}
}

func TestNoListingsAndUnknownPaths(t *testing.T) {
	h := Handler(Config{HLSJSPath: filepath.Join(t.TempDir(), "hls.min.js")})
	for _, p := range []string{"/assets/", "/assets", "/static/", "/static/app.js", "/assets/../static/", "/favicon.ico", "/inputs", "/assets/app.js/"} {
		r := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusNotFound, r.StatusCode, p)
		b := body(t, r)
		require.NotContains(t, b, "<pre>", p)
		require.NotContains(t, b, "app.css", p)
	}
}

func TestOnlyReads(t *testing.T) {
	h := Handler(Config{})
	for _, p := range []string{"/", "/assets/app.js", "/assets/hls.min.js"} {
		r := get(t, h, http.MethodPost, p)
		require.Equal(t, http.StatusMethodNotAllowed, r.StatusCode, p)
		require.Equal(t, "GET, HEAD", r.Header.Get("Allow"), p)
	}
}
