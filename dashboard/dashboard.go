package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"time"
)

//go:embed static/index.html static/app.js static/app.css
var static embed.FS

// Config builds the dashboard handler.
type Config struct {
	// HLSJSPath is the hls.min.js file served at /assets/hls.min.js; empty
	// or missing = 404 with a hint (the page then falls back to the
	// browser's native HLS, where there is one).
	HLSJSPath string
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentSecurityPolicy keeps the page to its own scripts and styles. Media
// and fetches may leave the origin: /live redirects to the owning node, and
// hls.js fetches its segments from there. hls.js makes its transmuxing
// worker from a blob: URL.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: http: https:; connect-src 'self' http: https:; worker-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the dashboard: the page at / (and /index.html), its
// embedded assets under /assets/, and hls.js from cfg.HLSJSPath. Everything
// else is a plain 404, so the API router can hand it every path it does not
// know; there are no directory listings.
func Handler(cfg Config) http.Handler {
	files := map[string]asset{
		"/":               mustAsset("static/index.html", "text/html; charset=utf-8"),
		"/assets/app.js":  mustAsset("static/app.js", "text/javascript; charset=utf-8"),
		"/assets/app.css": mustAsset("static/app.css", "text/css; charset=utf-8"),
	}
	files["/index.html"] = files["/"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/assets/hls.min.js" {
			if !allowRead(w, r) {
				return
			}
			serveHLSJS(w, r, cfg.HLSJSPath)
			return
		}
		a, ok := files[r.URL.Path]
		if !ok {
			http.Error(w, "404 not found: "+r.URL.Path+" (the dashboard is at /, the API under /v1/)", http.StatusNotFound)
			return
		}
		if !allowRead(w, r) {
			return
		}
		h.Set("Content-Type", a.contentType)
		// Revalidated on every load: a node upgrade must not leave an old
		// app.js beside a new index.html.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if strings.HasPrefix(a.contentType, "text/html") {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Referrer-Policy", "no-referrer")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	return false
}

func serveHLSJS(w http.ResponseWriter, r *http.Request, path string) {
	const hint = "404 hls.min.js is not installed on this node, so the dashboard's preview player " +
		"falls back to the browser's native HLS (Safari). Run `make deps` (it fetches hls.js into bin/hls.min.js) " +
		"or start the node with --hlsjs <path to hls.min.js>."
	if path == "" {
		http.Error(w, hint, http.StatusNotFound)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, hint, http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.Error(w, hint, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func mustAsset(name, contentType string) asset {
	b, err := static.ReadFile(name)
	if err != nil {
		panic("dashboard: embedded " + name + " missing: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return asset{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}
