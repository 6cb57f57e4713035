package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

const (
	wrkConns    = 100
	wrkDuration = 6 * time.Second
)

// rowRouting: the /live origin. Segments: a live stream's real segment
// answered by its owner (from the packager's memory) and by another node
// (fetched from the owner once, then from that node's shield), versus nginx
// serving the very same bytes as a static file. Redirects: a node started
// with --origin-mode redirect answering 307s, versus nginx `return 307`.
func rowRouting(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return skip("wrk is not installed (scripts/bench-deps.sh installs it)")
	}
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	// Nodes 0 and 1 answer every stream themselves; node 2 redirects.
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Configure: func(i int, cfg *node.Config) {
		cfg.RedirectOrigin = i == 2
	}})
	c.WaitMembers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	redirector := c.Node(2)
	pid := leader.CreateProfile(t, map[string]any{
		"name": "passthrough", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "source", "passthrough": true, "video_bitrate_kbps": 3000, "audio_bitrate_kbps": 128}},
	})
	// An input owned by node 0 or 1 (the ring decides): the other one of
	// them serves it through its shield, node 2 redirects to its owner.
	var (
		in            testcluster.Input
		ownerN, proxy *testcluster.Node
	)
	for try := 0; ownerN == nil && try < 20; try++ {
		in = leader.CreateInput(t, map[string]any{"name": fmt.Sprintf("routing %d", try), "profile_id": pid, "reconnect_window_seconds": 0})
		owner, err := routeOwner(ctx, leader.HTTPURL(), in.ID)
		if err != nil {
			return err
		}
		for i, n := range c.Nodes()[:2] {
			if n.Name() == owner {
				ownerN, proxy = n, c.Node(1-i)
			}
		}
	}
	if ownerN == nil {
		return fmt.Errorf("no input of 20 landed on node 0 or 1")
	}
	ownerHTTP := ownerN.HTTPURL()

	// A live stream, long enough for a few whole segments; then the
	// publisher stops (no reconnect window): the stream ends and its
	// segments stay in the owner's memory while it lingers (2 minutes),
	// which the segment rounds below fit in.
	pub, err := startPublisher(src, "rtmp://"+ownerN.Config.RTMPAddr+"/live/"+in.StreamKey, false)
	if err != nil {
		return err
	}
	defer pub.stop()
	var segPath string
	if err := pollUntil(ctx, 40*time.Second, 200*time.Millisecond, func() bool {
		v, err := firstVariant(ctx, ownerHTTP, in.ID)
		if err != nil {
			return false
		}
		// Past the three 1 s start segments: the largest listed is a
		// whole 2 s one (about 0.75 MB at 3 Mb/s).
		mp, final, err := mediaPlaylist(ctx, v)
		if err != nil || len(mp.Segments) < 5 {
			return false
		}
		big := mp.Segments[0]
		for _, sg := range mp.Segments {
			if sg.Duration > big.Duration {
				big = sg
			}
		}
		ref, err := url.Parse(big.URI)
		if err != nil {
			return false
		}
		segPath = final.ResolveReference(ref).Path
		return true
	}); err != nil {
		return fmt.Errorf("the stream did not list 5 segments on its owner %s: %w", ownerN.Name(), err)
	}
	pub.stop()
	segBody, _, err := get(ctx, ownerHTTP+segPath)
	if err != nil {
		return err
	}
	segmentSize := len(segBody)
	// nginx serves the same bytes under the same path.
	static := filepath.Join(e.Work, "routing-static")
	rel := strings.TrimPrefix(segPath, "/live/")
	if err := os.MkdirAll(filepath.Join(static, filepath.Dir(rel)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(static, rel), segBody, 0o644); err != nil {
		return err
	}

	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = testcluster.FreePort(); err != nil {
			return err
		}
	}
	ng, err := startNginx(e.Work, fmt.Sprintf(`  server {
    listen 127.0.0.1:%d;
    location /live/ {
      add_header Access-Control-Allow-Origin * always;
      add_header Cache-Control no-store always;
      return 307 %s$request_uri;
    }
  }
  server {
    listen 127.0.0.1:%d;
    sendfile on;
    tcp_nopush on;
    types { video/iso.segment m4s; }
    location /live/ {
      alias %s/;
      add_header Access-Control-Allow-Origin * always;
      add_header Cache-Control "public, max-age=31536000, immutable" always;
    }
  }`, ports[0], ownerHTTP, ports[1], static), ports...)
	if err != nil {
		return err
	}
	defer ng.stop()
	bareAddr, stopBare, err := bareRedirect(ownerHTTP)
	if err != nil {
		return err
	}
	defer stopBare()

	path := "/live/" + in.ID + "/master.m3u8"
	redirect := map[string]string{
		"dionysia":         redirector.HTTPURL() + path,
		"nginx":            fmt.Sprintf("http://127.0.0.1:%d%s", ports[0], path),
		"bare Go net/http": "http://" + bareAddr + path,
	}
	segment := map[string]string{
		"dionysia owner":     ownerHTTP + segPath,
		"dionysia non-owner": proxy.HTTPURL() + segPath,
		"nginx":              fmt.Sprintf("http://127.0.0.1:%d%s", ports[1], segPath),
	}
	// The input was created through the leader: a follower answers 404
	// until it has applied that entry, so each check gets a few seconds.
	check := func(what, u string, status int, location string, size int) error {
		var last error
		if err := pollUntil(ctx, 10*time.Second, 100*time.Millisecond, func() bool {
			last = expect(ctx, u, status, location, size)
			return last == nil
		}); err != nil {
			return fmt.Errorf("%s: %w", what, last)
		}
		return nil
	}
	for name, u := range segment {
		if err := check(name+" segment", u, http.StatusOK, "", segmentSize); err != nil {
			return err
		}
	}
	for name, u := range redirect {
		if err := check(name+" redirect", u, http.StatusTemporaryRedirect, ownerHTTP+path, 0); err != nil {
			return err
		}
	}

	r.Method = fmt.Sprintf("Three in-process nodes; `wrk -t2 -c%d -d%ds --latency` on the same 2 cores. Segment: a real %.0f kB fMP4 segment of a "+
		"720p30 3 Mb/s passthrough stream (published, then stopped: the ended stream keeps its segments in memory), `GET "+
		"/live/<id>/<rendition>/<segment>.m4s` answered by its owner (packager memory, http.ServeContent) and by another node "+
		"(fetched from the owner once over the internal channel, then from that node's shield cache), versus nginx 1.22 `alias` "+
		"with sendfile serving the same bytes from a file. Redirect: `GET /live/<id>/master.m3u8` on a node started with "+
		"`--origin-mode redirect` that does not own the input (307 to the owner, query kept) versus nginx with 2 workers and "+
		"`return 307 <owner>$request_uri` (same Location and headers), plus a bare Go net/http handler that only writes the 307 "+
		"(the floor for any Go router). Targets are loaded in rotating order, 3 rounds; medians.",
		wrkConns, int(wrkDuration.Seconds()), float64(segmentSize)/1000)

	type series struct{ rps, p50, p99 []float64 }
	load := func(targets map[string]string, order []string) (map[string]*series, error) {
		out := map[string]*series{}
		for round := range 3 {
			if round > 0 && ctxLeft(ctx) < time.Duration(len(order))*(wrkDuration+2*time.Second) {
				r.note("stopped after %d rounds: row time budget", round)
				break
			}
			for k := range order {
				name := order[(k+round)%len(order)]
				w, err := runWrk(ctx, targets[name], wrkConns, wrkDuration)
				if err != nil {
					return nil, err
				}
				if w.Errors > 0 {
					r.note("%s: %d socket errors or unexpected statuses in one round (%s)", name, w.Errors, w.ErrText)
				}
				s := out[name]
				if s == nil {
					s = &series{}
					out[name] = s
				}
				s.rps, s.p50, s.p99 = append(s.rps, w.RPS), append(s.p50, w.P50), append(s.p99, w.P99)
			}
		}
		return out, nil
	}
	// Segments first: the ended stream lingers only so long.
	seg, err := load(segment, []string{"dionysia owner", "dionysia non-owner", "nginx"})
	if err != nil {
		return err
	}
	own, far, ng1 := seg["dionysia owner"], seg["dionysia non-owner"], seg["nginx"]
	size := fmt.Sprintf("%.0f kB", float64(segmentSize)/1000)
	r.compare(size+" segments/s from the owner", "req/s", own.rps, ng1.rps, "nginx static", 0).headline()
	r.compare(size+" segment p50 from the owner", "ms", own.p50, ng1.p50, "nginx static", 3)
	r.compare(size+" segment p99 from the owner", "ms", own.p99, ng1.p99, "nginx static", 3)
	r.compare(size+" segments/s from another node", "req/s", far.rps, ng1.rps, "nginx static", 0).headline()
	r.compare(size+" segment p99 from another node", "ms", far.p99, ng1.p99, "nginx static", 3)
	// The continuity issue's goal: a node that does not own the stream
	// serves its segments nearly as fast as the owner.
	res := r.compare(size+" segments/s from another node vs from the owner", "req/s", far.rps, own.rps, "the owner", 0).headline()
	res.goal("≥ 0.8×", res.Ratio != nil && *res.Ratio >= 0.8)
	gbps := func(rps []float64) []float64 {
		out := make([]float64, len(rps))
		for i, x := range rps {
			out[i] = x * float64(segmentSize) * 8 / 1e9
		}
		return out
	}
	r.compare("segment throughput from the owner", "Gbit/s", gbps(own.rps), gbps(ng1.rps), "nginx static", 2)
	r.compare("segment throughput from another node", "Gbit/s", gbps(far.rps), gbps(ng1.rps), "nginx static", 2)

	red, err := load(redirect, []string{"dionysia", "nginx", "bare Go net/http"})
	if err != nil {
		return err
	}
	d, ng2, bare := red["dionysia"], red["nginx"], red["bare Go net/http"]
	r.compare("redirects/s (redirect mode)", "req/s", d.rps, ng2.rps, "nginx return 307", 0).headline()
	r.compare("redirect p50", "ms", d.p50, ng2.p50, "nginx return 307", 3)
	r.compare("redirect p99", "ms", d.p99, ng2.p99, "nginx return 307", 3)
	r.compare("redirects/s vs a bare Go handler", "req/s", d.rps, bare.rps, "bare Go net/http 307", 0).headline()
	r.compare("redirect p99 vs a bare Go handler", "ms", d.p99, bare.p99, "bare Go net/http 307", 3)
	r.note("wrk, the nodes and nginx share the same 2 cores, so every figure includes the load generator's own CPU use; ratios are the comparable part.")
	return nil
}

// expect checks one response: status, Location (when set) and body size
// (when > 0).
func expect(ctx context.Context, u string, status int, location string, size int) error {
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != status {
		return fmt.Errorf("GET %s: %s, want %d", u, resp.Status, status)
	}
	if location != "" && resp.Header.Get("Location") != location {
		return fmt.Errorf("GET %s: Location %q, want %q", u, resp.Header.Get("Location"), location)
	}
	if size > 0 && n != int64(size) {
		return fmt.Errorf("GET %s: %d bytes, want %d", u, n, size)
	}
	return nil
}
