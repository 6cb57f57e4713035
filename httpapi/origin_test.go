package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	secretContent = "TOP-SECRET-7f3a9c-do-not-serve"
	masterM3U8    = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n"
	indexM3U8     = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2.0,\nseg_1.ts\n"
)

var segmentBytes = []byte("\x47segment-payload-0123456789abcdef")

// originFixture is one node that owns input "mine" (files on disk) and not
// input "theirs" (owned by remoteOrigin).
type originFixture struct {
	*testEnv
	base string // holds secret.txt and the output dir
	out  string // the output dir of "mine"

	mu   sync.Mutex
	seen []string // RequestURI of every request the test server received
}

func newOriginFixture(t *testing.T) *originFixture {
	t.Helper()
	e := newEnv(t)
	base, out := makeOutputTree(t, e.b)
	return &originFixture{testEnv: e, base: base, out: out}
}

// makeOutputTree writes the output folder of "mine" (owned by b) and, next
// to it, files that must never be served; "theirs" is owned elsewhere.
func makeOutputTree(t testing.TB, b *fakeBackend) (base, out string) {
	t.Helper()
	base = t.TempDir()
	out = filepath.Join(base, "hls", "mine")
	write := func(rel, content string) {
		p := filepath.Join(base, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("secret.txt", secretContent)
	write("hls/secret.txt", secretContent)
	write("hls/theirs/master.m3u8", secretContent) // another input's folder, next door
	write("hls/mine/master.m3u8", masterM3U8)
	write("hls/mine/720p/index.m3u8", indexM3U8)
	write("hls/mine/720p/seg_1.ts", string(segmentBytes))
	write("hls/mine/720p/init.mp4", "init")
	write("hls/mine/manifest.mpd", "<MPD/>")
	write("hls/mine/.hidden", secretContent)
	write("hls/mine/720p/.seg_2.ts.tmp", secretContent)
	// Links inside the folder that lead outside it.
	require.NoError(t, os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(out, "leak.ts")))
	require.NoError(t, os.Symlink("../../secret.txt", filepath.Join(out, "720p", "rel.ts")))
	require.NoError(t, os.Symlink(base, filepath.Join(out, "up")))
	require.NoError(t, os.Symlink(filepath.Join(base, "hls", "theirs"), filepath.Join(out, "theirs")))
	// A link that stays inside is harmless.
	require.NoError(t, os.Symlink("720p/seg_1.ts", filepath.Join(out, "alias.ts")))

	b.addInput(t, "mine")
	b.addInput(t, "theirs")
	b.own("mine", out)
	return base, out
}

// server starts a real HTTP server over the API and a client that does not
// follow redirects, so the test sees exactly what a player would.
func (f *originFixture) server() (*httptest.Server, *http.Client) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.RequestURI)
		f.mu.Unlock()
		f.api.ServeHTTP(w, r)
	}))
	f.t.Cleanup(srv.Close)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return srv, c
}

// get sends a request for a raw (already escaped) request URI.
func (f *originFixture) get(srv *httptest.Server, c *http.Client, method, rawURI string, hdr ...string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, srv.URL+rawURI, nil)
	require.NoError(f.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	require.NotContains(f.t, string(b), secretContent, "%s %s leaked a file from outside the folder", method, rawURI)
	f.mu.Lock()
	last := f.seen[len(f.seen)-1]
	f.mu.Unlock()
	require.Equal(f.t, rawURI, last, "the client changed the URL on the way: the test would not test what it says")
	return resp, string(b)
}

func TestOriginServesOwnedFiles(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	tests := []struct {
		path, ctype, cache, body string
	}{
		{"/live/mine/master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1", masterM3U8},
		{"/live/mine/720p/index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1", indexM3U8},
		{"/live/mine/720p/seg_1.ts", "video/mp2t", "public, max-age=31536000, immutable", string(segmentBytes)},
		{"/live/mine/720p/init.mp4", "video/mp4", "public, max-age=2", "init"},
		{"/live/mine/manifest.mpd", "application/dash+xml", "public, max-age=1", "<MPD/>"},
		{"/live/mine/alias.ts", "video/mp2t", "public, max-age=31536000, immutable", string(segmentBytes)},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.get(srv, c, http.MethodGet, tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, tc.cache, resp.Header.Get("Cache-Control"))
			require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
			require.Equal(t, tc.body, body)
			require.Equal(t, strconv.Itoa(len(tc.body)), resp.Header.Get("Content-Length"))
			require.Empty(t, resp.Header.Get("X-Request-Id"), "the hot path skips the API middleware")

			// HEAD: same headers, no body.
			resp, body = f.get(srv, c, http.MethodHead, tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, tc.cache, resp.Header.Get("Cache-Control"))
			require.Equal(t, strconv.Itoa(len(tc.body)), resp.Header.Get("Content-Length"))
			require.Empty(t, body)
		})
	}
	origin := func(kind, code string) float64 {
		return counterValue(t, f.reg, "dionysia_origin_responses_total", map[string]string{"kind": kind, "code": code})
	}
	require.Equal(t, 4.0, origin("segment", "200"), "seg_1.ts and alias.ts, GET and HEAD")
	require.Equal(t, 6.0, origin("playlist", "200"))
	require.Equal(t, 2.0, origin("init", "200"))
}

func TestOriginRangeOnSegment(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/720p/seg_1.ts", "Range", "bytes=1-8")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, string(segmentBytes[1:9]), body)
	require.Equal(t, "bytes 1-8/"+strconv.Itoa(len(segmentBytes)), resp.Header.Get("Content-Range"))
	require.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

	resp, _ = f.get(srv, c, http.MethodGet, "/live/mine/720p/seg_1.ts", "Range", "bytes=-4")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)

	resp, _ = f.get(srv, c, http.MethodGet, "/live/mine/720p/seg_1.ts", "Range", "bytes=1000-2000")
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
}

func TestOriginPreflightAndMethods(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	for _, p := range []string{"/live/mine/master.m3u8", "/live/theirs/master.m3u8", "/live/unknown/x.ts"} {
		resp, body := f.get(srv, c, http.MethodOptions, p, "Origin", "https://player.example", "Access-Control-Request-Method", "GET")
		require.Equal(t, http.StatusNoContent, resp.StatusCode, p)
		require.Empty(t, body)
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Range")
		require.NotEmpty(t, resp.Header.Get("Access-Control-Max-Age"))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		resp, body := f.get(srv, c, m, "/live/mine/master.m3u8")
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
		require.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Allow"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.Contains(t, body, `"error"`)
	}
}

func TestOriginRedirectsToOwner(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	for _, uri := range []string{
		"/live/theirs/master.m3u8",
		"/live/theirs/master.m3u8?token=abc&x=1",
		"/live/theirs/720p/seg_1.ts?token=a%2Fb%3D&exp=1700000000",
		"/live/theirs/720p/index.m3u8?",
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := f.get(srv, c, method, uri)
			require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, uri)
			require.Equal(t, remoteOrigin+uri, resp.Header.Get("Location"), "%s %s", method, uri)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "a CDN must not remember the owner")
			require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
			if method == http.MethodHead {
				require.Empty(t, body)
			}
		}
	}
	require.Equal(t, 8.0, counterValue(t, f.reg, "dionysia_origin_redirects_total", nil))

	// The query is kept byte for byte, escaping included, when driven directly.
	rec := f.do(http.MethodGet, "/live/theirs/master.m3u8?sig=a+b%20c&x=%2F", nil)
	require.Equal(t, http.StatusTemporaryRedirect, rec.Code)
	require.Equal(t, remoteOrigin+"/live/theirs/master.m3u8?sig=a+b%20c&x=%2F", rec.Header().Get("Location"))
}

func TestOriginMisses(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	for _, uri := range []string{
		"/live/unknown/master.m3u8",     // no such input
		"/live/mine/nope.m3u8",          // owned, file missing
		"/live/mine/720p/seg_999.ts",    // a segment not yet (or no longer) there
		"/live/mine/720p",               // a directory
		"/live/mine/720p/",              // a directory, slash
		"/live/mine/",                   // the folder itself
		"/live/mine",                    // no file
		"/live/",                        // nothing
		"/live/Mine/master.m3u8",        // ids are lowercase
		"/live/mine/master.m3u8/",       // trailing slash
		"/live/mine/master.m3u8?x=/../", // a query cannot change the path
	} {
		resp, body := f.get(srv, c, http.MethodGet, uri)
		if strings.HasSuffix(uri, "?x=/../") {
			require.Equal(t, http.StatusOK, resp.StatusCode, uri)
			require.Equal(t, masterM3U8, body)
			continue
		}
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", uri, body)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), uri)
		require.Equal(t, "max-age=1", resp.Header.Get("Cache-Control"), "misses are cached briefly: %s", uri)
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, body, `"error"`)
	}

	// An owned input whose stream has not started has no folder yet.
	f.b.addInput(t, "idle")
	f.b.own("idle", filepath.Join(f.base, "hls", "idle"))
	resp, _ := f.get(srv, c, http.MethodGet, "/live/idle/master.m3u8")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// No node can serve: 503, not a redirect to nowhere.
	f.b.setRouteErr(ErrUnavailable)
	resp, _ = f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Location"))
}

// traversalURIs are sent as-is by a real client.
var traversalURIs = []string{
	"/live/mine/../secret.txt",
	"/live/mine/../../secret.txt",
	"/live/mine/%2e%2e/secret.txt",
	"/live/mine/%2E%2E/%2e%2e/secret.txt",
	"/live/mine/.%2e/secret.txt",
	"/live/mine/..%2fsecret.txt",
	"/live/mine/..%2Fsecret.txt",
	"/live/mine/720p%2f..%2f..%2fsecret.txt",
	"/live/mine/720p%2F..%2F..%2F..%2Fsecret.txt",
	"/live/mine/720p/../../secret.txt",
	"/live/mine/720p/..%2f..%2f..%2fsecret.txt",
	"/live/mine/720p/%2e%2e/%2e%2e/secret.txt",
	"/live/mine/%252e%252e/secret.txt",
	"/live/mine/..%252fsecret.txt",
	"/live/mine/..%5csecret.txt",
	"/live/mine/..%5c..%5csecret.txt",
	"/live/mine/%5c..%5csecret.txt",
	"/live/mine/.hidden",
	"/live/mine/720p/.seg_2.ts.tmp",
	"/live/mine/./master.m3u8",
	"/live/mine//x",
	"/live/mine//secret.txt",
	"/live/mine///..//secret.txt",
	"/live/mine/%2fsecret.txt",
	"/live/mine/%00/secret.txt",
	"/live/mine/secret.txt%00.ts",
	"/live/mine/leak.ts",
	"/live/mine/720p/rel.ts",
	"/live/mine/up/secret.txt",
	"/live/mine/up/hls/secret.txt",
	"/live/mine/theirs/master.m3u8",
	"/live/..%2fsecret.txt",
	"/live/%2e%2e/secret.txt",
	"/live/../secret.txt",
	"/live/mine%2f..%2fsecret.txt",
	"/live/mine/%c0%ae%c0%ae/secret.txt",
	"/live/mine/\u2024\u2024/secret.txt",
}

func TestOriginTraversalOverHTTP(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	for _, uri := range traversalURIs {
		t.Run(uri, func(t *testing.T) {
			if strings.ContainsAny(uri, "\u2024") {
				uri = (&url.URL{Path: uri}).EscapedPath()
			}
			resp, body := f.get(srv, c, http.MethodGet, uri)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s answered: %s", uri, body)
			resp, _ = f.get(srv, c, http.MethodHead, uri)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
		})
	}
}

// TestOriginTraversalRawRequestLine writes the request line itself, so no
// client library can clean or re-escape it.
func TestOriginTraversalRawRequestLine(t *testing.T) {
	f := newOriginFixture(t)
	srv, _ := f.server()
	raw := append([]string{
		`/live/mine/..\secret.txt`,
		`/live/mine/720p\..\..\secret.txt`,
	}, traversalURIs...)
	for _, uri := range raw {
		if strings.ContainsRune(uri, '\u2024') {
			continue
		}
		conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(conn, "GET "+uri+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, uri)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		_ = conn.Close()
		require.NotContains(t, string(b), secretContent, uri)
		// The server may refuse a malformed request line outright (400);
		// it must never serve it.
		require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, resp.StatusCode, "%s: %s", uri, b)
	}
}

// TestOriginTraversalDirect drives the handler with URLs a client would
// normalise or refuse to send.
func TestOriginTraversalDirect(t *testing.T) {
	f := newOriginFixture(t)
	paths := []string{
		"/live/mine/../secret.txt",
		"/live/mine/../../secret.txt",
		"/live/mine/720p/../../secret.txt",
		"/live/mine/./720p/../master.m3u8",
		`/live/mine/..\secret.txt`,
		`/live/mine/720p\..\..\secret.txt`,
		"/live/mine/.hidden",
		"/live/mine//secret.txt",
		"/live/mine/\x00",
		"/live/mine/master.m3u8\x00",
		"/live/mine/C:secret.txt",
		"/live/mine/" + filepath.Join(f.base, "secret.txt"),
		"/live/mine/" + strings.Repeat("a/", 200) + "x.ts",
		"/live/mine/leak.ts",
		"/live/mine/up/secret.txt",
		"/live/../../secret.txt",
		"/live/mine",
	}
	for _, p := range paths {
		// URL.Path set directly (RawPath empty): how a handler sees a
		// request another handler or a proxy rewrote.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL = &url.URL{Path: p}
		rec := httptest.NewRecorder()
		f.api.ServeHTTP(rec, r)
		require.Equal(t, http.StatusNotFound, rec.Code, "%q: %s", p, rec.Body.String())
		require.NotContains(t, rec.Body.String(), secretContent, p)
	}
	// And the ones httptest.NewRequest can parse, as the server would.
	for _, uri := range traversalURIs {
		if strings.ContainsRune(uri, '\u2024') {
			continue
		}
		rec := f.do(http.MethodGet, uri, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, "%q: %s", uri, rec.Body.String())
		require.NotContains(t, rec.Body.String(), secretContent, uri)
	}
}

// Playlists are rewritten in place every segment, so the origin must not let
// a client or CDN revalidate them into a 304: Last-Modified has a one-second
// resolution, and a playlist rewritten within the same second as the copy a
// CDN holds would be reported "not modified" and go stale.
func TestOriginPlaylistHasNoValidators(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	p := filepath.Join(f.out, "720p", "index.m3u8")

	// The client holds a copy from second T; the playlist is rewritten
	// within that same second.
	now := time.Now().Truncate(time.Second)
	require.NoError(t, os.Chtimes(p, now, now))
	resp, _ := f.get(srv, c, http.MethodGet, "/live/mine/720p/index.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	held := now.UTC().Format(http.TimeFormat)
	require.NoError(t, os.WriteFile(p, []byte(indexM3U8+"#EXTINF:2.0,\nseg_2.ts\n"), 0o644))
	require.NoError(t, os.Chtimes(p, now.Add(900*time.Millisecond), now.Add(900*time.Millisecond)))

	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/720p/index.m3u8", "If-Modified-Since", held)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a rewritten playlist must never be answered 304")
	require.Contains(t, body, "seg_2.ts")
	require.Empty(t, resp.Header.Get("Last-Modified"), "playlists must carry no validators")
}

func TestClassify(t *testing.T) {
	for file, want := range map[string][3]string{
		"master.m3u8":     {"playlist", "application/vnd.apple.mpegurl", "public, max-age=1"},
		"a/index.m3u8":    {"playlist", "application/vnd.apple.mpegurl", "public, max-age=1"},
		"manifest.mpd":    {"playlist", "application/dash+xml", "public, max-age=1"},
		"a/seg_1.ts":      {"segment", "video/mp2t", "public, max-age=31536000, immutable"},
		"a/seg_1.m4s":     {"segment", "video/iso.segment", "public, max-age=31536000, immutable"},
		"a/init.mp4":      {"init", "video/mp4", "public, max-age=2"},
		"a/audio.aac":     {"segment", "audio/aac", "public, max-age=31536000, immutable"},
		"subs/s.vtt":      {"segment", "text/vtt", "public, max-age=31536000, immutable"},
		"readme":          {"other", "application/octet-stream", "public, max-age=1"},
		"master.M3U8":     {"other", "application/octet-stream", "public, max-age=1"},
		"seg.ts.partial":  {"other", "application/octet-stream", "public, max-age=1"},
		"a.m3u8/index.ts": {"segment", "video/mp2t", "public, max-age=31536000, immutable"},
	} {
		k, ct, cc := classify(file)
		require.Equal(t, want, [3]string{k, ct, cc}, file)
	}
}

func TestSplitLivePath(t *testing.T) {
	tests := []struct {
		uri      string
		id, file string
		ok       bool
	}{
		{"/live/mine/master.m3u8", "mine", "master.m3u8", true},
		{"/live/mine/720p/seg_1.ts", "mine", "720p/seg_1.ts", true},
		{"/live/a-b_c/x/y/z.ts", "a-b_c", "x/y/z.ts", true},
		{"/live/mine/seg..ts", "mine", "seg..ts", true}, // dots inside a name are fine
		{"/live/mine/%6Daster.m3u8", "mine", "master.m3u8", true},
		{"/live/mine/../x", "", "", false},
		{"/live/mine/..", "", "", false},
		{"/live/mine/.", "", "", false},
		{"/live/mine/a/./b", "", "", false},
		{"/live/mine/.x", "", "", false},
		{"/live/mine//x", "", "", false},
		{"/live/mine/x/", "", "", false},
		{"/live/mine/", "", "", false},
		{"/live/mine", "", "", false},
		{"/live//x", "", "", false},
		{"/live/MINE/x", "", "", false},
		{"/live/mine/a%2fb", "", "", false},
		{"/live/mine/a%2Fb", "", "", false},
		{"/live/mine/a%5cb", "", "", false},
		{"/live/mine/a%00b", "", "", false},
		{"/live/mine/a%20b", "", "", false},
		{"/live/mine/é.ts", "", "", false},
		{"/live/mine/" + strings.Repeat("a", 257), "", "", false},
		{"/live/mine/" + strings.Repeat("a", 256), "mine", strings.Repeat("a", 256), true},
		{"/live/" + strings.Repeat("a", 65) + "/x", "", "", false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, tc.uri, nil)
		id, file, ok := splitLivePath(r)
		require.Equal(t, tc.ok, ok, tc.uri)
		require.Equal(t, tc.id, id, tc.uri)
		require.Equal(t, tc.file, file, tc.uri)
	}
}
