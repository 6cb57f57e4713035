package bench

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

// rowAPI: create-input latency through the leader and a follower, and read
// throughput.
func rowAPI(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	c.WaitRaftServers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	var follower *testcluster.Node
	for _, n := range c.Nodes() {
		if n != leader {
			follower = n
			break
		}
	}
	const rounds, perRound = 5, 20
	r.Method = fmt.Sprintf("Three in-process nodes (raft on raft-boltdb, fsync on). Writes: `POST /v1/inputs` one at a time from one "+
		"keep-alive client, %d rounds of %d alternating between the leader and a follower (which forwards to the leader); p50/p99 "+
		"over all of them. Reads: `wrk -t2 -c%d -d%ds` on `GET /v1/inputs/<id>`, alternating follower and leader, 2 rounds each; "+
		"medians.", rounds, perRound, wrkConns, int(wrkDuration.Seconds()))
	var viaLeader, viaFollower []float64
	var lastID string
	for round := range rounds {
		for _, target := range []*testcluster.Node{leader, follower} {
			for i := range perRound {
				start := time.Now()
				resp, err := target.Do(http.MethodPost, "/v1/inputs", map[string]any{"name": fmt.Sprintf("api %d %d", round, i)})
				ms := float64(time.Since(start)) / float64(time.Millisecond)
				if err != nil {
					return fmt.Errorf("create input via %s: %w", target.Name(), err)
				}
				if resp.Status != http.StatusCreated {
					return fmt.Errorf("create input via %s: %d %s", target.Name(), resp.Status, resp.Body)
				}
				var in testcluster.Input
				resp.JSON(t, &in)
				lastID = in.ID
				if target == leader {
					viaLeader = append(viaLeader, ms)
				} else {
					viaFollower = append(viaFollower, ms)
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	pl := r.addValue("create input via the leader, p50", "ms", percentile(viaLeader, 50), 2)
	pl.headline()
	r.addValue("create input via the leader, p99", "ms", percentile(viaLeader, 99), 2)
	fl := r.addValue("create input via a follower, p50", "ms", percentile(viaFollower, 50), 2)
	fl.headline()
	r.addValue("create input via a follower, p99", "ms", percentile(viaFollower, 99), 2)
	if b := percentile(viaLeader, 50); b > 0 {
		fl.Baseline, fl.BaselineName, fl.Ratio = num(round(b, 2)), "via the leader", num(round(percentile(viaFollower, 50)/b, 2))
	}

	if _, err := lookWrk(); err != nil {
		r.note("reads skipped: %v", err)
		return nil
	}
	var readF, readL []float64
	for range 2 {
		for _, target := range []*testcluster.Node{follower, leader} {
			w, err := runWrk(ctx, target.HTTPURL()+"/v1/inputs/"+lastID, wrkConns, wrkDuration)
			if err != nil {
				return err
			}
			if w.Errors > 0 {
				r.note("reads on %s: %d errors in one round (%s)", target.Name(), w.Errors, w.ErrText)
			}
			if target == leader {
				readL = append(readL, w.RPS)
			} else {
				readF = append(readF, w.RPS)
			}
		}
	}
	r.add("reads/s (GET /v1/inputs/<id>) on a follower", "req/s", readF, 0).headline()
	r.add("reads/s (GET /v1/inputs/<id>) on the leader", "req/s", readL, 0)
	r.note("%d writes per path; p99 of %d samples is its second-highest value.", len(viaLeader), len(viaLeader))
	return nil
}
