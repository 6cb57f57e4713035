package httpapi

import (
	"bufio"
	"fmt"
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

	"github.com/dionysia/dionysia/packager"
)

const (
	secretContent = "TOP-SECRET-7f3a9c-do-not-serve"
	masterM3U8    = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO=\"audio\"\n720p/index.m3u8\n"
	indexM3U8 = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"s1-i1.mp4\"\n#EXTINF:2.000,\ns1-100.m4s\n"
	// theirsMaster is what the owner of "theirs" (another node) answers.
	theirsMaster = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n"
	theirsIndex  = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"t9-i1.mp4\"\n#EXTINF:2.000,\nt9-7.m4s\n"
)

var segmentBytes = []byte("\x00\x00\x00\x10moofsegment-payload-0123456789abcdef")

// originFixture is one node that owns input "mine" (its packager's files,
// on disk) and not input "theirs" (owned by remoteOrigin, whose answers are
// on disk too).
type originFixture struct {
	*testEnv
	base string // holds secret.txt and the output dir
	out  string // the output dir of "mine"

	mu   sync.Mutex
	seen []string // RequestURI of every request the test server received
}

func newOriginFixture(t *testing.T, opts ...envOption) *originFixture {
	t.Helper()
	e := newEnv(t, opts...)
	base, out := makeOutputTree(t, e.b)
	return &originFixture{testEnv: e, base: base, out: out}
}

// withRedirectOrigin answers /live requests for streams other nodes own with
// a 307 to their owner (--origin-mode redirect).
func withRedirectOrigin() envOption { return func(c *Config) { c.RedirectOrigin = true } }

// makeOutputTree writes the output folder of "mine" (owned by b) and, next
// to it, files that must never be served; "theirs" is owned elsewhere, and
// what its owner answers is in a folder of its own.
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
	write("hls/mine/720p/s1-100.m4s", string(segmentBytes))
	write("hls/mine/720p/s1-i1.mp4", "init")
	write("hls/mine/manifest.mpd", "<MPD/>")
	write("hls/mine/.hidden", secretContent)
	write("hls/mine/720p/.s1-101.m4s.tmp", secretContent)
	write("owner-of-theirs/theirs/master.m3u8", theirsMaster)
	write("owner-of-theirs/theirs/360p/index.m3u8", theirsIndex)
	write("owner-of-theirs/theirs/360p/t9-7.m4s", string(segmentBytes))
	// Links inside the folder that lead outside it, named like segments so
	// that only the confinement refuses them.
	require.NoError(t, os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(out, "leak.m4s")))
	require.NoError(t, os.Symlink("../../secret.txt", filepath.Join(out, "720p", "rel.m4s")))
	require.NoError(t, os.Symlink(base, filepath.Join(out, "up")))
	require.NoError(t, os.Symlink(filepath.Join(base, "hls", "theirs"), filepath.Join(out, "theirs")))
	// A link that stays inside is harmless.
	require.NoError(t, os.Symlink("720p/s1-100.m4s", filepath.Join(out, "alias.m4s")))

	b.addInput(t, "mine")
	b.addInput(t, "theirs")
	b.own("mine", out)
	b.ownedBy("theirs", filepath.Join(base, "owner-of-theirs", "theirs"))
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
		{"/live/mine/720p/s1-100.m4s", "video/iso.segment", "public, max-age=31536000, immutable", string(segmentBytes)},
		{"/live/mine/720p/s1-i1.mp4", "video/mp4", "public, max-age=31536000, immutable", "init"},
		{"/live/mine/manifest.mpd", "application/dash+xml", "public, max-age=1", "<MPD/>"},
		{"/live/mine/alias.m4s", "video/iso.segment", "public, max-age=31536000, immutable", string(segmentBytes)},
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
	require.Equal(t, 4.0, origin("segment", "200"), "s1-100.m4s and alias.m4s, GET and HEAD")
	require.Equal(t, 6.0, origin("playlist", "200"))
	require.Equal(t, 2.0, origin("init", "200"))
}

func TestOriginRangeOnSegment(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/720p/s1-100.m4s", "Range", "bytes=1-8")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, string(segmentBytes[1:9]), body)
	require.Equal(t, "bytes 1-8/"+strconv.Itoa(len(segmentBytes)), resp.Header.Get("Content-Range"))
	require.Equal(t, "video/iso.segment", resp.Header.Get("Content-Type"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

	resp, _ = f.get(srv, c, http.MethodGet, "/live/mine/720p/s1-100.m4s", "Range", "bytes=-4")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)

	// Ranges work on what a non-owner fetched from the owner too.
	resp, body = f.get(srv, c, http.MethodGet, "/live/theirs/360p/t9-7.m4s", "Range", "bytes=0-3")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, string(segmentBytes[:4]), body)

	resp, _ = f.get(srv, c, http.MethodGet, "/live/mine/720p/s1-100.m4s", "Range", "bytes=1000-2000")
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

// TestOriginAnswersStreamsOwnedElsewhere: by default every node answers
// every /live request itself; a stream another node owns comes from
// Backend.Live (the node fetches it from the owner), never as a redirect.
func TestOriginAnswersStreamsOwnedElsewhere(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	tests := []struct {
		uri, ctype, cache, body string
	}{
		{"/live/theirs/master.m3u8?token=abc&x=1", "application/vnd.apple.mpegurl", "public, max-age=1", theirsMaster},
		{"/live/theirs/360p/index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1", theirsIndex},
		{"/live/theirs/360p/t9-7.m4s", "video/iso.segment", "public, max-age=31536000, immutable", string(segmentBytes)},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := f.get(srv, c, method, tc.uri)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, tc.uri, body)
			require.Empty(t, resp.Header.Get("Location"), "no redirect without RedirectOrigin")
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, tc.cache, resp.Header.Get("Cache-Control"))
			require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
			require.Equal(t, strconv.Itoa(len(tc.body)), resp.Header.Get("Content-Length"))
			if method == http.MethodGet {
				require.Equal(t, tc.body, body)
			} else {
				require.Empty(t, body)
			}
		}
	}
	require.Zero(t, counterValue(t, f.reg, "dionysia_origin_redirects_total", nil))
	// Live got the input, the file and the query (a blocking reload's
	// directives must reach the owner).
	require.Contains(t, f.b.liveCallList(), "theirs master.m3u8 token=abc&x=1")

	// Errors of Live, whoever owns the stream: the packager's not found and
	// bad request, and "retry" for anything that wraps ErrUnavailable (the
	// owner does not answer, the cluster is moving the stream).
	errs := []struct {
		err         error
		status      int
		kind, code  string
		retry, body string
	}{
		{packager.ErrNotFound, http.StatusNotFound, "segment", "404", "", "not found"},
		{fmt.Errorf("fetch: %w", packager.ErrNotFound), http.StatusNotFound, "segment", "404", "", "not found"},
		{&packager.BadRequestError{Msg: "_HLS_msn 99 is too far ahead of the live edge (7)"}, http.StatusBadRequest, "segment", "400", "", "too far ahead"},
		{fmt.Errorf("%w: the stream's node does not answer: dial tcp: refused", ErrUnavailable), http.StatusServiceUnavailable, "segment", "503", "1", "retry"},
	}
	for _, id := range []string{"theirs", "mine"} {
		for _, tc := range errs {
			f.b.setLiveErr(tc.err)
			before := counterValue(t, f.reg, "dionysia_origin_responses_total", map[string]string{"kind": tc.kind, "code": tc.code})
			resp, body := f.get(srv, c, http.MethodGet, "/live/"+id+"/360p/t9-8.m4s")
			require.Equal(t, tc.status, resp.StatusCode, "%s %v: %s", id, tc.err, body)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, "max-age=1", resp.Header.Get("Cache-Control"), "errors are cached briefly")
			require.Equal(t, tc.retry, resp.Header.Get("Retry-After"))
			require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
			require.Contains(t, body, tc.body)
			require.Equal(t, before+1, counterValue(t, f.reg, "dionysia_origin_responses_total", map[string]string{"kind": tc.kind, "code": tc.code}))
		}
	}
	f.b.setLiveErr(nil)

	// No node can serve (no route): 503, not a redirect to nowhere.
	f.b.setRouteErr(fmt.Errorf("%w: no alive node on the ring", ErrUnavailable))
	resp, _ := f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Empty(t, resp.Header.Get("Location"))
}

// TestOriginCachePolicy: what a CDN may keep. Segments, parts and init
// segments never change under their names; playlists change every segment
// (or part); a blocking reload's answer is specific to its query and may be
// kept a little longer.
func TestOriginCachePolicy(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	const immutable = "public, max-age=31536000, immutable"
	for uri, want := range map[string]string{
		"/live/mine/720p/s1-100.m4s":                              immutable,
		"/live/mine/720p/s1-i1.mp4":                               immutable,
		"/live/theirs/360p/t9-7.m4s":                              immutable,
		"/live/mine/master.m3u8":                                  "public, max-age=1",
		"/live/mine/manifest.mpd":                                 "public, max-age=1",
		"/live/mine/720p/index.m3u8":                              "public, max-age=1",
		"/live/theirs/360p/index.m3u8":                            "public, max-age=1",
		"/live/mine/720p/index.m3u8?_HLS_msn=100":                 "public, max-age=6",
		"/live/mine/720p/index.m3u8?_HLS_msn=100&_HLS_part=2":     "public, max-age=6",
		"/live/theirs/360p/index.m3u8?_HLS_msn=7&_HLS_part=0":     "public, max-age=6",
		"/live/mine/720p/index.m3u8?_HLS_skip=YES":                "public, max-age=1",
		"/live/mine/720p/index.m3u8?_HLS_msn=100&_HLS_skip=YES":   "public, max-age=6",
		"/live/theirs/360p/index.m3u8?_HLS_msn=8&_HLS_part=1&x=1": "public, max-age=6",
	} {
		resp, body := f.get(srv, c, http.MethodGet, uri)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", uri, body)
		require.Equal(t, want, resp.Header.Get("Cache-Control"), uri)
		require.Empty(t, resp.Header.Get("Last-Modified"), "%s: no validators", uri)
		// The directives reach Live untouched.
		if _, q, ok := strings.Cut(uri, "?"); ok {
			v, err := url.ParseQuery(q)
			require.NoError(t, err)
			calls := f.b.liveCallList()
			require.True(t, strings.HasSuffix(calls[len(calls)-1], " "+v.Encode()), "%s: Live saw %q", uri, calls[len(calls)-1])
		}
	}
}

// TestOriginRedirectMode: with RedirectOrigin (--origin-mode redirect) a
// node sends players of a stream another node owns there with a 307, query
// kept; its own streams it serves itself, and a request another node
// forwarded is never sent on.
func TestOriginRedirectMode(t *testing.T) {
	f := newOriginFixture(t, withRedirectOrigin())
	srv, c := f.server()
	for _, uri := range []string{
		"/live/theirs/master.m3u8",
		"/live/theirs/master.m3u8?token=abc&x=1",
		"/live/theirs/360p/t9-7.m4s?token=a%2Fb%3D&exp=1700000000",
		"/live/theirs/360p/index.m3u8?",
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
	require.Empty(t, f.b.liveCallList(), "a redirect asks Live for nothing")

	// The query is kept byte for byte, escaping included, when driven directly.
	rec := f.do(http.MethodGet, "/live/theirs/master.m3u8?sig=a+b%20c&x=%2F", nil)
	require.Equal(t, http.StatusTemporaryRedirect, rec.Code)
	require.Equal(t, remoteOrigin+"/live/theirs/master.m3u8?sig=a+b%20c&x=%2F", rec.Header().Get("Location"))

	// Its own streams it serves.
	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/master.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, masterM3U8, body)

	// A forwarded request is answered, never redirected again.
	resp, body = f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8", "X-Dionysia-Hop", "1")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Location"))
	require.Equal(t, theirsMaster, body)

	// No route: nothing to redirect to; Live says why (503).
	f.b.setRouteErr(fmt.Errorf("%w: no alive node on the ring", ErrUnavailable))
	resp, _ = f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Location"))
	require.Equal(t, 9.0, counterValue(t, f.reg, "dionysia_origin_redirects_total", nil), "8 over HTTP, 1 driven directly")
}

// TestTime: the clock DASH players synchronise with (UTCTiming).
func TestTime(t *testing.T) {
	e := newEnv(t)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		before := time.Now().Add(-time.Second)
		rec := e.do(method, "/time", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		require.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
		if method == http.MethodHead {
			continue
		}
		body := rec.Body.String()
		require.Regexp(t, `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`, body, "ISO 8601 UTC with milliseconds")
		got, err := time.Parse(time.RFC3339Nano, body)
		require.NoError(t, err)
		require.Equal(t, time.UTC, got.Location())
		require.WithinRange(t, got, before, time.Now().Add(time.Second))
	}
}

func TestOriginMisses(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	for _, uri := range []string{
		"/live/unknown/master.m3u8",     // no such input
		"/live/mine/nope.m3u8",          // owned, file missing
		"/live/mine/720p/s1-999.m4s",    // a segment not yet (or no longer) there
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

	// A stream another node owns, whose owner has no such file.
	resp, _ = f.get(srv, c, http.MethodGet, "/live/theirs/360p/t9-999.m4s")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// No node can serve: 503, not a redirect to nowhere.
	f.b.setRouteErr(ErrUnavailable)
	resp, _ = f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
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
	"/live/mine/720p/.s1-101.m4s.tmp",
	"/live/mine/./master.m3u8",
	"/live/mine//x",
	"/live/mine//secret.txt",
	"/live/mine///..//secret.txt",
	"/live/mine/%2fsecret.txt",
	"/live/mine/%00/secret.txt",
	"/live/mine/secret.txt%00.m4s",
	"/live/mine/leak.m4s",
	"/live/mine/720p/rel.m4s",
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
		"/live/mine/" + strings.Repeat("a/", 200) + "x.m4s",
		"/live/mine/leak.m4s",
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

// Playlists change every segment (or part), so the origin must not let a
// client or CDN revalidate them into a 304: Last-Modified has a one-second
// resolution, and a playlist that changed within the same second as the copy
// a CDN holds would be reported "not modified" and go stale. (Here the
// fake's playlist is a file rewritten on disk; a node's is re-rendered.)
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
	require.NoError(t, os.WriteFile(p, []byte(indexM3U8+"#EXTINF:2.000,\ns1-101.m4s\n"), 0o644))
	require.NoError(t, os.Chtimes(p, now.Add(900*time.Millisecond), now.Add(900*time.Millisecond)))

	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/720p/index.m3u8", "If-Modified-Since", held)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a rewritten playlist must never be answered 304")
	require.Contains(t, body, "s1-101.m4s")
	require.Empty(t, resp.Header.Get("Last-Modified"), "playlists must carry no validators")
}

// TestKindOf: the kind of a file a request failed for, for metrics.
func TestKindOf(t *testing.T) {
	for file, want := range map[string]string{
		"master.m3u8":       "playlist",
		"a/index.m3u8":      "playlist",
		"manifest.mpd":      "playlist",
		"a/s1-100.m4s":      "segment",
		"a/s1-100.3.m4s":    "segment",
		"a/seg_1.ts":        "segment",
		"a/s1-i1.mp4":       "init",
		"readme":            "other",
		"master.M3U8":       "other",
		"seg.m4s.partial":   "other",
		"a.m3u8/index.m4s":  "segment",
		"a/audio/index.mpd": "playlist",
	} {
		require.Equal(t, want, kindOf(file), file)
	}
}

func TestSplitLivePath(t *testing.T) {
	tests := []struct {
		uri      string
		id, file string
		ok       bool
	}{
		{"/live/mine/master.m3u8", "mine", "master.m3u8", true},
		{"/live/mine/720p/s1-100.m4s", "mine", "720p/s1-100.m4s", true},
		{"/live/mine/audio/s1-100.3.m4s", "mine", "audio/s1-100.3.m4s", true},
		{"/live/a-b_c/x/y/z.m4s", "a-b_c", "x/y/z.m4s", true},
		{"/live/mine/seg..m4s", "mine", "seg..m4s", true}, // dots inside a name are fine
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
