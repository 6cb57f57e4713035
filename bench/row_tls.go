package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// tlsCluster is one of the two clusters the tls row compares.
type tlsCluster struct {
	name       string
	follower   *testcluster.Node // a follower that answers /live itself
	redirector *testcluster.Node // --origin-mode redirect
	inputID    string            // owned by another node than redirector
	writes     []float64         // ms
	redirects  []float64         // req/s
}

// rowTLS: the cost of mutual TLS between nodes on what crosses them.
// Forwarded writes go follower → leader over the cluster port; a redirect
// is answered from the local ring and crosses no node, so it measures what
// the rest of the node pays.
func rowTLS(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	start := func(name string, opts testcluster.Options) (*tlsCluster, error) {
		opts.Nodes = 3
		opts.Configure = func(i int, cfg *node.Config) { cfg.RedirectOrigin = i == 2 }
		c := testcluster.Start(t, opts)
		c.WaitMembers(3, 30*time.Second)
		c.WaitRaftServers(3, 30*time.Second)
		leader := c.WaitLeader(30 * time.Second)
		c.WaitReady(30 * time.Second)
		tc := &tlsCluster{name: name, redirector: c.Node(2)}
		for _, n := range c.Nodes()[:2] {
			if n != leader {
				tc.follower = n
			}
		}
		if tc.follower == nil {
			tc.follower = c.Node(2)
		}
		for try := 0; tc.inputID == "" && try < 20; try++ {
			in := leader.CreateInput(t, map[string]any{"name": fmt.Sprintf("tls %d", try)})
			owner, err := routeOwner(ctx, leader.HTTPURL(), in.ID)
			if err != nil {
				return nil, err
			}
			if owner != tc.redirector.Name() {
				tc.inputID = in.ID
			}
		}
		if tc.inputID == "" {
			return nil, fmt.Errorf("%s: no input of 20 landed off the redirecting node", name)
		}
		return tc, nil
	}
	plain, err := start("plain", testcluster.Options{Plain: true})
	if err != nil {
		return err
	}
	tlsc, err := start("mutual TLS", testcluster.Options{ClusterKey: key})
	if err != nil {
		return err
	}
	const rounds, perRound = 6, 20
	r.Method = fmt.Sprintf("Two 3-node in-process clusters side by side, one without a cluster key (plain node-to-node "+
		"traffic) and one with (mutual TLS 1.3 on raft and internal calls). Writes: `POST /v1/inputs` one at a time "+
		"through a follower (forwarded to the leader over the cluster port), %d per cluster alternating write by write "+
		"(A B B A); p50 over all. Redirects: `wrk -t2 -c%d -d%ds` on `/live/<id>/master.m3u8` of the node in redirect "+
		"mode, 3 rounds alternating; medians.", rounds*perRound, wrkConns, int(wrkDuration.Seconds()))
	// Write by write, in the order A B B A: load from the other engineers
	// on this box changes from second to second, and both clusters see
	// the same.
	for i := range rounds * perRound {
		order := []*tlsCluster{plain, tlsc}
		if i%2 == 1 {
			order = []*tlsCluster{tlsc, plain}
		}
		for _, tc := range order {
			begin := time.Now()
			resp, err := tc.follower.Do(http.MethodPost, "/v1/inputs", map[string]any{"name": fmt.Sprintf("w %d", i)})
			ms := float64(time.Since(begin)) / float64(time.Millisecond)
			if err != nil {
				return fmt.Errorf("%s: create input via %s: %w", tc.name, tc.follower.Name(), err)
			}
			if resp.Status != http.StatusCreated {
				return fmt.Errorf("%s: create input: %d %s", tc.name, resp.Status, resp.Body)
			}
			tc.writes = append(tc.writes, ms)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	p50 := func(xs []float64) []float64 { return []float64{percentile(xs, 50)} }
	res := r.compare("forwarded write p50, TLS vs plain", "ms", p50(tlsc.writes), p50(plain.writes), "plain", 2).headline()
	res.goal("≤ 1.1×", res.Ratio != nil && *res.Ratio <= 1.1)
	r.compare("forwarded write p99, TLS vs plain", "ms", []float64{percentile(tlsc.writes, 99)}, []float64{percentile(plain.writes, 99)}, "plain", 2)

	if _, err := exec.LookPath("wrk"); err != nil {
		r.note("redirects skipped: wrk is not installed (scripts/bench-deps.sh installs it)")
		return nil
	}
	for round := range 3 {
		order := []*tlsCluster{plain, tlsc}
		if round%2 == 1 {
			order = []*tlsCluster{tlsc, plain}
		}
		for _, tc := range order {
			u := tc.redirector.HTTPURL() + "/live/" + tc.inputID + "/master.m3u8"
			if err := expect(ctx, u, http.StatusTemporaryRedirect, "", 0); err != nil {
				return fmt.Errorf("%s: %w", tc.name, err)
			}
			w, err := runWrk(ctx, u, wrkConns, wrkDuration)
			if err != nil {
				return err
			}
			if w.Errors > 0 {
				r.note("%s redirects: %d errors in one round (%s)", tc.name, w.Errors, w.ErrText)
			}
			tc.redirects = append(tc.redirects, w.RPS)
		}
	}
	res = r.compare("redirects/s, TLS vs plain", "req/s", tlsc.redirects, plain.redirects, "plain", 0).headline()
	res.goal("≥ 0.91× (cost ≤ 1.1×)", res.Ratio != nil && *res.Ratio >= 1/1.1)
	r.note("%d forwarded writes per cluster. Both clusters and wrk share the same 2 cores.", len(plain.writes))
	return nil
}
