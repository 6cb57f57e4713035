package httpapi

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func makeSigned(t *testing.T, b *fakeBackend, ids ...string) {
	t.Helper()
	p := fsm.PlaybackSigned
	for _, id := range ids {
		res := b.state.ApplyCommand(fsm.Command{Op: fsm.OpUpdateInput, ID: id, Patch: &fsm.InputPatch{PlaybackPolicy: &p}})
		require.NoError(t, res.Err)
	}
}

func tokenQuery(b *fakeBackend, id string, exp time.Time) string {
	e := exp.Unix()
	return "exp=" + strconv.FormatInt(e, 10) + "&token=" + SignPlayback(b.PlaybackKey(), id, e)
}

func TestSignedPlayback(t *testing.T) {
	f := newOriginFixture(t)
	makeSigned(t, f.b, "mine", "theirs")
	srv, c := f.server()
	valid := tokenQuery(f.b, "mine", time.Now().Add(time.Hour))
	expired := tokenQuery(f.b, "mine", time.Now().Add(-time.Minute))
	otherInput := tokenQuery(f.b, "theirs", time.Now().Add(time.Hour))

	tests := []struct {
		name   string
		uri    string
		status int
	}{
		{"no token", "/live/mine/master.m3u8", http.StatusForbidden},
		{"no token on a segment", "/live/mine/720p/s1-100.m4s", http.StatusForbidden},
		{"token without exp", "/live/mine/master.m3u8?token=" + SignPlayback(f.b.PlaybackKey(), "mine", 1), http.StatusForbidden},
		{"valid", "/live/mine/master.m3u8?" + valid, http.StatusOK},
		{"valid on a segment", "/live/mine/720p/s1-100.m4s?" + valid, http.StatusOK},
		{"expired", "/live/mine/master.m3u8?" + expired, http.StatusForbidden},
		{"token of another input", "/live/mine/master.m3u8?" + otherInput, http.StatusForbidden},
		{"exp changed after signing", "/live/mine/master.m3u8?" + strings.Replace(valid, "exp=", "exp=9", 1), http.StatusForbidden},
		{"garbage token", "/live/mine/master.m3u8?exp=99999999999&token=zz", http.StatusForbidden},
		{"non-owner refuses before fetching", "/live/theirs/master.m3u8", http.StatusForbidden},
		{"non-owner answers a valid token", "/live/theirs/master.m3u8?" + otherInput, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(srv, c, http.MethodGet, tc.uri)
			require.Equal(t, tc.status, resp.StatusCode, body)
			if tc.status == http.StatusForbidden {
				var e map[string]string
				require.NoError(t, json.Unmarshal([]byte(body), &e))
				require.NotEmpty(t, e["error"])
			}
		})
	}
	for _, call := range f.b.liveCallList() {
		require.Contains(t, call, "token=", "Live was asked for a request the token check refused: %s", call)
	}

	// A signed viewer's playlists carry the token on every URI they list,
	// whichever node owns the stream.
	for _, uri := range []string{"/live/mine/master.m3u8?" + valid, "/live/mine/720p/index.m3u8?" + valid,
		"/live/theirs/master.m3u8?" + otherInput, "/live/theirs/360p/index.m3u8?" + otherInput} {
		valid := uri[strings.Index(uri, "?")+1:]
		resp, body := f.get(srv, c, http.MethodGet, uri)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
		require.Equal(t, "private, max-age=1", resp.Header.Get("Cache-Control"), "a signed playlist is the viewer's own")
		uris := 0
		for _, line := range strings.Split(body, "\n") {
			if line == "" {
				continue
			}
			if !strings.HasPrefix(line, "#") {
				uris++
				require.True(t, strings.HasSuffix(line, "?"+valid), "URI %q lacks the token", line)
			}
			if strings.Contains(line, `URI="`) {
				require.Contains(t, line, "?"+valid+`"`)
			}
		}
		require.Positive(t, uris, "no URI in %s", body)
	}
}

// TestSignedRedirectKeepsToken: in redirect mode the token is checked
// before the redirect, and the redirect keeps it.
func TestSignedRedirectKeepsToken(t *testing.T) {
	f := newOriginFixture(t, withRedirectOrigin())
	makeSigned(t, f.b, "theirs")
	srv, c := f.server()
	resp, _ := f.get(srv, c, http.MethodGet, "/live/theirs/master.m3u8")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "refused before redirecting")
	uri := "/live/theirs/master.m3u8?" + tokenQuery(f.b, "theirs", time.Now().Add(time.Hour))
	resp, _ = f.get(srv, c, http.MethodGet, uri)
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, remoteOrigin+uri, resp.Header.Get("Location"), "the redirect keeps the token")
}

func TestPublicPlaybackIgnoresTokens(t *testing.T) {
	f := newOriginFixture(t)
	srv, c := f.server()
	resp, body := f.get(srv, c, http.MethodGet, "/live/mine/720p/index.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, body, "token=", "public playlists are served as written")
}

func TestPlaybackURLEndpoint(t *testing.T) {
	f := newOriginFixture(t)
	makeSigned(t, f.b, "mine")

	rr := f.do(http.MethodPost, "/v1/inputs/mine/playback-url", map[string]any{"ttl_seconds": 60})
	require.Equal(t, http.StatusOK, rr.Code, rr.Body.String())
	var out struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &out))
	require.WithinDuration(t, time.Now().Add(time.Minute), out.ExpiresAt, 5*time.Second)
	u, err := url.Parse(out.URL)
	require.NoError(t, err)
	require.Equal(t, "/live/mine/master.m3u8", u.Path)

	// The URL it returns plays.
	srv, c := f.server()
	resp, _ := f.get(srv, c, http.MethodGet, u.RequestURI())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Without a body the default TTL (1 h) applies.
	rr = f.do(http.MethodPost, "/v1/inputs/mine/playback-url", nil)
	require.Equal(t, http.StatusOK, rr.Code, rr.Body.String())

	for _, ttl := range []int{5, 604801, -1} {
		rr = f.do(http.MethodPost, "/v1/inputs/mine/playback-url", map[string]any{"ttl_seconds": ttl})
		require.Equal(t, http.StatusBadRequest, rr.Code)
		require.Contains(t, rr.Body.String(), `"field": "ttl_seconds"`)
	}
	rr = f.do(http.MethodPost, "/v1/inputs/nope/playback-url", nil)
	require.Equal(t, http.StatusNotFound, rr.Code)
}

func TestSignPlaylist(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nseg_1.m4s\n#EXTINF:2.0,\nseg_2.m4s?x=1\n"
	out := string(signPlaylist([]byte(in), "exp=1&token=t"))
	require.Equal(t, "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?exp=1&token=t\"\n#EXTINF:2.0,\nseg_1.m4s?exp=1&token=t\n#EXTINF:2.0,\nseg_2.m4s?x=1&exp=1&token=t\n", out)
}

func TestSignMPD(t *testing.T) {
	in := `<MPD><Period><AdaptationSet><SegmentTemplate timescale="1000" initialization="$RepresentationID$/s-i1.mp4" media="$RepresentationID$/s-$Number$.m4s?x=1"></SegmentTemplate></AdaptationSet></Period><UTCTiming value="/time"></UTCTiming></MPD>`
	out := string(signMPD([]byte(in), "exp=1&token=t"))
	require.Equal(t, `<MPD><Period><AdaptationSet><SegmentTemplate timescale="1000" initialization="$RepresentationID$/s-i1.mp4?exp=1&amp;token=t" media="$RepresentationID$/s-$Number$.m4s?x=1&amp;exp=1&amp;token=t"></SegmentTemplate></AdaptationSet></Period><UTCTiming value="/time"></UTCTiming></MPD>`, out)
	d := xml.NewDecoder(strings.NewReader(out))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "still well-formed XML")
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "SegmentTemplate" {
			require.Equal(t, "$RepresentationID$/s-$Number$.m4s?x=1&exp=1&token=t", se.Attr[2].Value)
		}
	}
}
