package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

const (
	wrkConns    = 100
	wrkDuration = 6 * time.Second
	segmentSize = 1 << 20
)

// rowRouting: 307s per second from a node versus nginx `return 307`, and a
// 1 MB segment from the owner versus nginx static files.
func rowRouting(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return skip("wrk is not installed (scripts/bench-deps.sh installs it)")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.WaitMembers(2, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	in := leader.CreateInput(t, map[string]any{"name": "routing"})
	owner, err := routeOwner(ctx, leader.HTTPURL(), in.ID)
	if err != nil {
		return err
	}
	var ownerN, router *testcluster.Node
	for _, n := range c.Nodes() {
		if n.Name() == owner {
			ownerN = n
		} else {
			router = n
		}
	}
	if ownerN == nil || router == nil {
		return fmt.Errorf("owner %q: no second node to route through", owner)
	}
	// A 1 MB segment where the owner serves it from (the input need not be
	// live for the origin to serve a file).
	segRel := filepath.Join(in.ID, "720p", "seg_1.ts")
	hlsRoot := filepath.Dir(ownerN.OutputDir(in.ID))
	if err := os.MkdirAll(filepath.Join(hlsRoot, filepath.Dir(segRel)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hlsRoot, segRel), randomBytes(segmentSize), 0o644); err != nil {
		return err
	}

	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = testcluster.FreePort(); err != nil {
			return err
		}
	}
	ownerHTTP := ownerN.HTTPURL()
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
    types { video/mp2t ts; }
    location /live/ {
      alias %s/;
      add_header Access-Control-Allow-Origin * always;
    }
  }`, ports[0], ownerHTTP, ports[1], hlsRoot), ports...)
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
	segPath := "/live/" + in.ID + "/720p/seg_1.ts"
	redirect := map[string]string{
		"dionysia":         router.HTTPURL() + path,
		"nginx":            fmt.Sprintf("http://127.0.0.1:%d%s", ports[0], path),
		"bare Go net/http": "http://" + bareAddr + path,
	}
	segment := map[string]string{
		"dionysia": ownerHTTP + segPath,
		"nginx":    fmt.Sprintf("http://127.0.0.1:%d%s", ports[1], segPath),
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
	for name, u := range redirect {
		if err := check(name+" redirect", u, http.StatusTemporaryRedirect, ownerHTTP+path, 0); err != nil {
			return err
		}
	}
	for name, u := range segment {
		if err := check(name+" segment", u, http.StatusOK, "", segmentSize); err != nil {
			return err
		}
	}

	r.Method = fmt.Sprintf("Two in-process nodes; `wrk -t2 -c%d -d%ds --latency` on the same 2 cores. Redirect: `GET /live/<id>/master.m3u8` on "+
		"the node that does not own the input (307 to the owner, query kept) versus nginx 1.22 with 2 workers and `return 307 <owner>$request_uri` "+
		"(same Location and headers), plus a bare Go net/http handler that only writes the 307 (the floor for any Go router). "+
		"Segment: a 1 MB .ts served by the owner (`/live/<id>/720p/seg_1.ts`, os.Root + http.ServeContent) versus nginx `alias` with "+
		"sendfile on the very same file. Targets are loaded in rotating order, 3 rounds; medians.", wrkConns, int(wrkDuration.Seconds()))

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
	red, err := load(redirect, []string{"dionysia", "nginx", "bare Go net/http"})
	if err != nil {
		return err
	}
	d, ng1, bare := red["dionysia"], red["nginx"], red["bare Go net/http"]
	r.compare("redirects/s", "req/s", d.rps, ng1.rps, "nginx return 307", 0).headline()
	r.compare("redirect p50", "ms", d.p50, ng1.p50, "nginx return 307", 3)
	r.compare("redirect p99", "ms", d.p99, ng1.p99, "nginx return 307", 3)
	r.compare("redirects/s vs a bare Go handler", "req/s", d.rps, bare.rps, "bare Go net/http 307", 0).headline()
	r.compare("redirect p99 vs a bare Go handler", "ms", d.p99, bare.p99, "bare Go net/http 307", 3)

	seg, err := load(segment, []string{"dionysia", "nginx"})
	if err != nil {
		return err
	}
	d, ng1 = seg["dionysia"], seg["nginx"]
	r.compare("1 MB segments/s", "req/s", d.rps, ng1.rps, "nginx static", 0).headline()
	r.compare("1 MB segment p50", "ms", d.p50, ng1.p50, "nginx static", 3)
	r.compare("1 MB segment p99", "ms", d.p99, ng1.p99, "nginx static", 3)
	gbps := func(rps []float64) []float64 {
		out := make([]float64, len(rps))
		for i, x := range rps {
			out[i] = x * segmentSize * 8 / 1e9
		}
		return out
	}
	r.compare("1 MB segment throughput", "Gbit/s", gbps(d.rps), gbps(ng1.rps), "nginx static", 2)
	r.note("wrk, the node and nginx share the same 2 cores, so every figure includes the load generator's own CPU use; ratios are the comparable part.")
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
