package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzProfileBody: whatever a client sends as a profile, the API answers 2xx
// or 4xx with a JSON error, never panics, never 5xx, and what it accepts
// obeys the validation rules.
func FuzzProfileBody(f *testing.F) {
	for _, seed := range []string{
		okProfileJSON,
		``,
		`{}`,
		`[]`,
		`null`,
		`{"name":"p","segment_seconds":"2"}`,
		`{"name":"p","bogus":1}`,
		`{"name":"p","renditions":[{"name":"a","width":"640"}]}`,
		`{"name":"p","renditions":[{"name":"../x","width":640,"height":360,"video_bitrate_kbps":800}]}`,
		`{"name":"p","renditions":[{"name":"src","passthrough":true}]}`,
		`{"name":"p","renditions":[{"name":"a","width":-9223372036854775808,"height":360,"video_bitrate_kbps":800}]}`,
		`{"name":"p","segment_seconds":1e400}`,
		`{"id":"Low","name":"p"}`,
		`{"id":"default",` + okProfileJSON[1:],
		okProfileJSON + ` x`,
		`{"name":"\u0000"}`,
		`{"name":"p","renditions":[` + strings.Repeat(`{"name":"a","width":640,"height":360,"video_bitrate_kbps":800},`, 9) + `{}]}`,
		strings.Repeat("[", 10001),
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	b := newFakeBackend(f)
	api, err := New(Config{Backend: b, Logger: quietLogger()})
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, body []byte, put bool) {
		// The validator alone.
		var pb profileBody
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&pb) == nil {
			if p, err := pb.toProfile(); err == nil {
				checkProfileInvariants(t, p.Name, p.SegmentSeconds, p.Renditions)
			} else {
				ae := asAPIError(err)
				require.Equal(t, http.StatusBadRequest, ae.Status)
			}
		}

		// And through the handler.
		method, target := http.MethodPost, "/v1/profiles"
		if put {
			method, target = http.MethodPut, "/v1/profiles/default"
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(body)))
		if rec.Code >= 500 || rec.Code < 200 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("%s %q: status %d: %s", method, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var eb errBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb), "error body: %s", rec.Body.String())
			require.NotEmpty(t, eb.Error)
			return
		}
		var got struct {
			ID             string `json:"id"`
			Name           string `json:"name"`
			SegmentSeconds int    `json:"segment_seconds"`
			Renditions     []struct {
				renditionBody
			} `json:"renditions"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.True(t, userID.MatchString(got.ID), got.ID)
		stored := b.State().Profile(got.ID)
		require.NotNil(t, stored)
		checkProfileInvariants(t, stored.Name, stored.SegmentSeconds, stored.Renditions)
	})
}

func checkProfileInvariants[R any](t *testing.T, name string, seg int, rs []R) {
	t.Helper()
	require.NotEmpty(t, strings.TrimSpace(name))
	require.GreaterOrEqual(t, seg, minSegmentSeconds)
	require.LessOrEqual(t, seg, maxSegmentSeconds)
	require.NotEmpty(t, rs)
	require.LessOrEqual(t, len(rs), maxRenditions)
	raw, err := json.Marshal(rs)
	require.NoError(t, err)
	var bodies []renditionBody
	require.NoError(t, json.Unmarshal(raw, &bodies))
	seen := map[string]bool{}
	for _, r := range bodies {
		require.Regexp(t, renditionName, r.Name)
		require.False(t, seen[r.Name], "duplicate rendition %q", r.Name)
		seen[r.Name] = true
		require.Equal(t, filepath.Base(r.Name), r.Name, "a rendition name is one path element")
		require.Zero(t, r.Width%2)
		require.Zero(t, r.Height%2)
		require.GreaterOrEqual(t, r.AudioBitrateKbps, minAudioKbps)
		require.LessOrEqual(t, r.AudioBitrateKbps, maxAudioKbps)
		require.GreaterOrEqual(t, r.FPS, 0)
		require.LessOrEqual(t, r.FPS, maxFPS)
		if !r.Passthrough {
			require.GreaterOrEqual(t, r.Width, minDimension)
			require.LessOrEqual(t, r.Width, maxWidth)
			require.GreaterOrEqual(t, r.Height, minDimension)
			require.LessOrEqual(t, r.Height, maxHeight)
			require.GreaterOrEqual(t, r.VideoBitrateKbps, minVideoKbps)
			require.LessOrEqual(t, r.VideoBitrateKbps, maxVideoKbps)
		}
	}
}

// FuzzSplitLivePath: whatever the request path, the file splitLivePath
// returns stays inside the input's folder. (A name such as "seg..ts" is
// fine; a ".." path element is not.)
func FuzzSplitLivePath(f *testing.F) {
	for _, seed := range append([]string{
		"/live/mine/master.m3u8",
		"/live/mine/720p/seg_1.ts",
		"/live/mine/seg..ts",
		"/live/mine/%6daster.m3u8",
		`/live/mine/..\secret.txt`,
		"/live/mine/a/b/c/d.ts?x=/../",
		"/live/a/%2e",
		"/live/a/.%2e/b",
		"/live/a/b%2f%2e%2e",
		"/live/a/b/%2e%2e%2f",
		"/live//",
		"/live/a/b\x00",
	}, traversalURIs...) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(r *http.Request) {
			id, file, ok := splitLivePath(r)
			if !ok {
				require.Empty(t, id)
				require.Empty(t, file)
				return
			}
			require.True(t, isID(id), "id %q", id)
			require.NotEmpty(t, file)
			require.False(t, strings.HasPrefix(file, "/"), "file %q is absolute", file)
			require.NotContains(t, file, `\`)
			require.NotContains(t, file, "\x00")
			require.NotContains(t, file, ":")
			for _, seg := range strings.Split(file, "/") {
				require.NotEqual(t, "..", seg, "file %q", file)
				require.NotEqual(t, ".", seg, "file %q", file)
				require.NotEmpty(t, seg, "file %q", file)
				require.False(t, strings.HasPrefix(seg, "."), "file %q has a hidden element", file)
			}
			require.Equal(t, path.Clean(file), file)
			require.True(t, filepath.IsLocal(file), "file %q", file)
			require.True(t, filepath.IsLocal(filepath.FromSlash(file)), "file %q", file)
			joined := filepath.Join("/out", id, filepath.FromSlash(file))
			require.True(t, strings.HasPrefix(joined, "/out/"+id+"/"), "%q escapes to %q", file, joined)
		}
		// As a server parses a request line.
		if u, err := url.ParseRequestURI(s); err == nil {
			check(&http.Request{Method: http.MethodGet, URL: u})
		}
		// As a rewritten request carries it (decoded path, no RawPath).
		check(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: s}})
		if !strings.HasPrefix(s, "/") {
			check(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/live/" + s}})
		}
	})
}

// FuzzOrigin drives the whole origin handler against a real output folder
// with a secret next to it: the secret is never served, nothing panics, and
// only a few statuses are possible.
func FuzzOrigin(f *testing.F) {
	for _, seed := range traversalURIs {
		f.Add(seed)
	}
	for _, seed := range []string{"/live/mine/master.m3u8", "/live/mine/720p/s1-100.m4s", "/live/theirs/master.m3u8?token=abc",
		"/live/theirs/360p/t9-7.m4s", "/live/mine/720p/index.m3u8?_HLS_msn=100&_HLS_part=1", "/live/mine/up/secret.txt"} {
		f.Add(seed)
	}
	b := newFakeBackend(f)
	api, err := New(Config{Backend: b, Logger: quietLogger()})
	require.NoError(f, err)
	base, _ := makeOutputTree(f, b)
	// Every node answers every stream itself: no redirects (that is
	// RedirectOrigin), and the fake's Live never fails but with not found.
	allowed := map[int]bool{http.StatusOK: true, http.StatusPartialContent: true, http.StatusNotFound: true, http.StatusBadRequest: true}

	f.Fuzz(func(t *testing.T, uri string) {
		u, err := url.ParseRequestURI(uri)
		if err != nil || !strings.HasPrefix(u.Path, "/live/") {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: u, RequestURI: uri, Header: http.Header{}, Host: "node.test"}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		require.True(t, allowed[rec.Code], "%q: status %d", uri, rec.Code)
		require.NotContains(t, rec.Body.String(), secretContent, "%q leaked a file outside the folder", uri)
		if rec.Code == http.StatusOK {
			// Whatever was served is a file of mine's folder or of what
			// the owner of theirs serves.
			id, file, ok := splitLivePath(r)
			require.True(t, ok)
			require.Contains(t, []string{"mine", "theirs"}, id)
			require.False(t, strings.Contains(filepath.Join(base, "hls", id, file), ".."))
		}
	})
}
