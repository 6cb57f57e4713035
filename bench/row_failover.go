package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// rowFailover: kill a stream's owner, time until it plays through a survivor.
func rowFailover(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	r.Method = "Three in-process nodes on loopback (testcluster defaults: the cluster package's gossip tuning). An input with the default " +
		"profile (2 s segments) is published over RTMP to a node that does not own it, so the ingest survives. Once it plays through " +
		"the third node (the observer), the owner is killed (`testcluster.Kill`: no leave, no leadership hand-over, its ffmpeg and " +
		"mediamtx stopped). Every 100 ms the observer is asked for `/v1/route/<id>` (detection: the owner changed) and for the " +
		"master and first variant playlist, redirects followed (playable: a variant playlist with a segment, served by a node other " +
		"than the dead one). Each run uses a fresh cluster."
	var detect, playable []float64
	leaderKills := 0
	for i := range 3 {
		if i > 0 && ctxLeft(ctx) < 45*time.Second {
			r.note("stopped after %d runs: row time budget", i)
			break
		}
		var d, p time.Duration
		var wasLeader bool
		var runErr error
		t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) {
			d, p, wasLeader, runErr = failoverOnce(ctx, t, src)
		})
		if runErr != nil {
			return runErr
		}
		if t.Failed() {
			return fmt.Errorf("failover run %d failed (see the test log)", i)
		}
		if wasLeader {
			leaderKills++
		}
		detect, playable = append(detect, d.Seconds()), append(playable, p.Seconds())
	}
	r.add("owner killed → new owner on the ring (observer's /v1/route)", "s", detect, 2)
	res := r.add("owner killed → playable through a survivor", "s", playable, 2).headline()
	res.goal("≤ 5 s (DESIGN budget)", median(playable) <= 5)
	r.note("%d of %d killed owners were also the raft leader (their failover includes a leader election).", leaderKills, len(playable))
	return nil
}

func failoverOnce(ctx context.Context, t *testing.T, src string) (detect, playable time.Duration, wasLeader bool, err error) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	in := leader.CreateInput(t, map[string]any{"name": "failover", "profile_id": node.DefaultProfileID})
	owner, err := routeOwner(ctx, leader.HTTPURL(), in.ID)
	if err != nil {
		return 0, 0, false, err
	}
	var ownerN, ingest, observer *testcluster.Node
	for _, n := range c.Nodes() {
		switch {
		case n.Name() == owner:
			ownerN = n
		case ingest == nil:
			ingest = n
		default:
			observer = n
		}
	}
	if ownerN == nil || observer == nil {
		return 0, 0, false, fmt.Errorf("owner %q is not a node", owner)
	}
	pub, err := startPublisher(src, "rtmp://"+ingest.Config.RTMPAddr+"/live/"+in.StreamKey, false)
	if err != nil {
		return 0, 0, false, err
	}
	defer pub.stop()
	if err := pollUntil(ctx, 40*time.Second, 100*time.Millisecond, func() bool {
		ok, _ := playableVia(ctx, observer.HTTPURL(), in.ID)
		return ok
	}); err != nil {
		return 0, 0, false, fmt.Errorf("not playable through %s before the kill: %w", observer.Name(), err)
	}
	wasLeader = ownerN.ClusterHandle().IsLeader()
	deadHost := mustHost(ownerN.HTTPURL())
	killed := time.Now()
	c.Kill(ownerN.Index)
	err = pollUntil(ctx, 40*time.Second, 100*time.Millisecond, func() bool {
		if detect == 0 {
			if o, err := routeOwner(ctx, observer.HTTPURL(), in.ID); err == nil && o != owner {
				detect = time.Since(killed)
			}
		}
		ok, host := playableVia(ctx, observer.HTTPURL(), in.ID)
		if ok && host != deadHost {
			playable = time.Since(killed)
			return true
		}
		return false
	})
	if err != nil {
		return 0, 0, wasLeader, fmt.Errorf("not playable through a survivor after killing %s: %w", owner, err)
	}
	if detect == 0 {
		detect = playable
	}
	return detect, playable, wasLeader, nil
}

// routeOwner asks a node which node owns an input.
func routeOwner(ctx context.Context, nodeURL, inputID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodeURL+"/v1/route/"+inputID, nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("route: %s", resp.Status)
	}
	var rt struct {
		Owner string `json:"owner"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rt); err != nil {
		return "", err
	}
	return rt.Owner, nil
}

func mustHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host
}

// pollUntil calls cond every interval until it is true, timeout passes or
// ctx ends.
func pollUntil(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		start := time.Now()
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		if err := sleepCtx(ctx, interval-time.Since(start)); err != nil {
			return err
		}
	}
}
