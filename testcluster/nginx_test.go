package testcluster_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// noFollow is a client that hands back redirects as they are, like a
// player's first look at a response.
var noFollow = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// originHits counts the requests an origin got, by request URI.
type originHits struct {
	mu   sync.Mutex
	hits map[string]int
}

func (o *originHits) count(uri string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[uri]
}

// newOrigin is a stand-in node: /cached is cacheable for a minute (the
// body names the query, so a wrong cache key shows), /redirect answers 307
// with no-store like a node that does not own the stream, anything else is
// 200 and no-store.
func newOrigin(t *testing.T, name string, hits *originHits) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.mu.Lock()
		hits.hits[r.URL.RequestURI()]++
		hits.mu.Unlock()
		w.Header().Set("X-Origin", name)
		switch r.URL.Path {
		case "/cached":
			w.Header().Set("Cache-Control", "max-age=60")
		case "/redirect":
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Location", "http://owner.example:8080/live/x/master.m3u8?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		default:
			w.Header().Set("Cache-Control", "no-store")
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.URL.RawQuery)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNginxCache(t *testing.T) {
	hits := &originHits{hits: map[string]int{}}
	a, b := newOrigin(t, "a", hits), newOrigin(t, "b", hits)
	ng := testcluster.StartNginxCache(t, []string{a.URL, strings.TrimPrefix(b.URL, "http://")})

	tests := []struct {
		name         string
		uri          string
		requests     int
		wantStatus   int
		wantBody     string
		wantLocation string
		wantCache    []string // X-Cache of each response
		wantOrigin   int      // requests the origins got
	}{
		{name: "cacheable 200 is a HIT the second time", uri: "/cached?v=1", requests: 3,
			wantStatus: 200, wantBody: "/cached v=1", wantCache: []string{"MISS", "HIT", "HIT"}, wantOrigin: 1},
		{name: "the query string is part of the key", uri: "/cached?v=2", requests: 2,
			wantStatus: 200, wantBody: "/cached v=2", wantCache: []string{"MISS", "HIT"}, wantOrigin: 1},
		{name: "no-store is not cached", uri: "/fresh?x=y", requests: 2,
			wantStatus: 200, wantBody: "/fresh x=y", wantCache: []string{"MISS", "MISS"}, wantOrigin: 2},
		{name: "a 307 reaches the client as it is", uri: "/redirect?token=abc", requests: 2,
			wantStatus: http.StatusTemporaryRedirect, wantLocation: "http://owner.example:8080/live/x/master.m3u8?token=abc",
			wantCache: []string{"MISS", "MISS"}, wantOrigin: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.requests {
				resp, err := noFollow.Get(ng.URL() + tc.uri)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
				require.Equal(t, tc.wantLocation, resp.Header.Get("Location"))
				require.Equal(t, tc.wantCache[i], resp.Header.Get("X-Cache"), "request %d", i)
				if tc.wantBody != "" {
					require.Equal(t, tc.wantBody, string(body))
				}
			}
			require.Equal(t, tc.wantOrigin, hits.count(tc.uri))
			// The access log has every response, in order.
			var got []testcluster.Resp
			testcluster.Eventually(t, 5*time.Second, "the access log lines for "+tc.uri, func() error {
				got = got[:0]
				for _, r := range ng.Responses() {
					if r.URI == tc.uri {
						got = append(got, r)
					}
				}
				if len(got) != tc.requests {
					return fmt.Errorf("%d lines for %s: %+v", len(got), tc.uri, got)
				}
				return nil
			})
			for i, r := range got {
				require.Equal(t, tc.wantStatus, r.Status)
				require.Equal(t, tc.wantCache[i], r.Cache)
				if r.Cache == "HIT" {
					require.Empty(t, r.UpstreamStatus)
				} else {
					require.Equal(t, fmt.Sprint(tc.wantStatus), r.UpstreamStatus)
				}
			}
		})
	}
}

// TestNginxCacheSkipsDeadOrigin: with one origin down every request is
// still answered, by the live one, and the log shows the failed attempt.
func TestNginxCacheSkipsDeadOrigin(t *testing.T) {
	hits := &originHits{hits: map[string]int{}}
	live := newOrigin(t, "live", hits)
	port, err := testcluster.FreePort() // nothing listens there
	require.NoError(t, err)
	dead := fmt.Sprintf("127.0.0.1:%d", port)
	ng := testcluster.StartNginxCache(t, []string{"http://" + dead, live.URL})

	const n = 6
	for i := range n {
		resp, err := noFollow.Get(fmt.Sprintf("%s/fresh?i=%d", ng.URL(), i))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
		require.Equal(t, "live", resp.Header.Get("X-Origin"))
	}
	var rs []testcluster.Resp
	testcluster.Eventually(t, 5*time.Second, "the access log", func() error {
		if rs = ng.Responses(); len(rs) != n {
			return fmt.Errorf("%d lines: %+v", len(rs), rs)
		}
		return nil
	})
	tried := 0
	for _, r := range rs {
		require.Equal(t, http.StatusOK, r.Status)
		if strings.Contains(r.Upstream, dead) {
			tried++
			require.Equal(t, "502, 200", r.UpstreamStatus, "%+v", r)
		}
	}
	// The dead origin was tried at least once, then left alone for a while.
	require.GreaterOrEqual(t, tried, 1)
	require.Less(t, tried, n)
}
