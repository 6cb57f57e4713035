package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// rowSim: the placement simulation (sim.go) at the size: 100
// nodes, 10 000 streams, no media.
func rowSim(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	cfg := simConfig{Nodes: 100, Streams: 10000, Capacity: 1000, Seed: 1, Churn: 10 * time.Minute, MeanLife: time.Hour}
	r.Method = fmt.Sprintf("No media: the real cluster.Ring (candidate order, stand-ins, rebalance plan) and fsm.State (StartSession "+
		"placing with fsm.Place, PlaceSessions) driven by a simulated clock. %d nodes advertising %d cost units each; %d streams "+
		"(60%% passthrough = 1 unit, 30%% a 360p ultrafast rung = 4, 10%% the default 720/480/360 ladder = 48) start one after "+
		"the other; then a node joins; then the busiest node dies; the leader's round (every 5 s) runs until nothing moves after "+
		"each change. Then %s of churn (each stream ends with probability 1/%s per second and its input publishes again) counts "+
		"the commands applied (raft writes). The same run with equal streams (all passthrough) gives the stream spread.",
		cfg.Nodes, cfg.Capacity, cfg.Streams, cfg.Churn, cfg.MeanLife)
	res, err := runSim(cfg)
	if err != nil {
		return err
	}
	eq, err := runSim(simConfig{Nodes: 100, Streams: 10000, Capacity: 1000, Seed: 1, Passthrough: true})
	if err != nil {
		return err
	}
	t.Logf("sim: %+v", res)
	r.addValue("equal streams: spread max/min streams per node", "×", eq.SpreadStreams, 2).headline().goal("≤ 1.25", eq.SpreadStreams <= 1.25)
	r.addValue("mixed profiles: spread max/min cost per node", "×", res.SpreadCost, 2)
	r.addValue("mixed profiles: busiest node over the mean utilisation", "×", res.MaxOverMean, 2).goal("≤ 1.25", res.MaxOverMean <= 1.25)
	r.addValue("a 101st node joins: streams moved", "streams", float64(res.JoinMoved), 0).headline()
	r.addValue("the busiest node dies: streams failed over to its stand-in", "streams", float64(res.DeathFailover), 0)
	r.addValue("… the stand-in's utilisation right after", "%", res.StandInUtil*100, 0)
	r.addValue("… streams then moved by the rebalance", "streams", float64(res.DeathMoved), 0).headline()
	r.addValue("… leader rounds (5 s) until nothing moves", "rounds", float64(res.DeathRounds), 0)
	r.addValue("… busiest node afterwards", "%", res.DeathMaxUtilAfter*100, 0).goal("≤ 100 %", res.DeathMaxUtilAfter <= 1)
	r.addValue("raft writes/s, 10 000 streams of mean 1 h", "writes/s", res.WritesPerSec, 1).headline()
	r.addValue("one rebalance plan over 10 000 sessions (leader CPU every 5 s)", "ms", res.PlanMillis, 1)
	r.addValue("one StartSession apply at 10 000 sessions", "µs", res.FillApplyMicros, 0)
	r.note("equal streams: %d nodes die/join the same way: %d failed over, %d moved afterwards in %d rounds",
		eq.Nodes, eq.DeathFailover, eq.DeathMoved, eq.DeathRounds)
	r.note("heartbeats are no raft writes: load and cost travel in gossip metadata; raft's own heartbeats are AppendEntries RPCs, "+
		"HeartbeatTimeout/10 apart (100 ms here) to every follower, voter or not: %d followers ≈ %d RPCs/s from the leader",
		cfg.Nodes-1, (cfg.Nodes-1)*10)
	return nil
}
