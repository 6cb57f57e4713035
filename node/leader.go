package node

import (
	"context"
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// leaderLoop does what only the leader should: seed a brand-new cluster,
// end the live sessions of ingest nodes that died (their publishers are gone
// and may reconnect anywhere), expire reconnecting sessions whose window
// has run out, and keep the recorded owners of streams true (placement.go). One proposer keeps the expiry from being proposed by every
// node, and the tick bounds how late a stream ends (500 ms).
func (n *Node) leaderLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var leaderSince, rebalancedAt, recordingsAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.clu.IsLeader() {
			leaderSince = time.Time{}
			continue
		}
		if leaderSince.IsZero() {
			leaderSince = time.Now()
		}
		if !n.state.Initialized() {
			n.seed(ctx)
			continue
		}
		n.reapSessions(ctx, time.Since(leaderSince))
		n.expireSessions(ctx)
		// Give gossip a few seconds after taking over before moving
		// anything: a new leader's member view may still be filling in.
		rebalance := time.Since(leaderSince) > rebalanceEvery && time.Since(rebalancedAt) >= rebalanceEvery
		if rebalance {
			rebalancedAt = time.Now()
		}
		n.placeSessions(ctx, rebalance, time.Since(leaderSince))
		if time.Since(recordingsAt) >= 2*time.Second {
			recordingsAt = time.Now()
			n.manageRecordings(ctx)
		}
	}
}

func (n *Node) seed(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A new leader may not have applied everything yet; the barrier makes
	// Initialized() trustworthy before deciding to seed.
	if err := n.clu.Barrier(bctx); err != nil || n.state.Initialized() {
		return
	}
	res, err := n.clu.Apply(bctx, n.initCommand())
	switch {
	case err != nil:
		n.log.Warn("seed cluster", "err", err)
	case res.Err != nil:
		n.log.Warn("seed cluster", "err", res.Err)
	case res.Changed:
		n.log.Info("new cluster seeded", "default_profile", DefaultProfileID, "demo_input", !n.cfg.NoDemo)
	}
}

// reapSessions clears the sessions of ingest nodes that memberlist declared
// dead or that left. A node the leader has never heard of is given a grace
// period after the leader took over, since gossip may still be converging.
func (n *Node) reapSessions(ctx context.Context, leaderFor time.Duration) {
	states := map[string]string{}
	for _, m := range n.clu.Members() {
		states[m.Name] = m.State
	}
	done := map[string]bool{}
	for _, s := range n.state.Sessions() {
		node := s.IngestNode
		// A reconnecting session has no publisher on its ingest node any
		// more: it waits for its deadline, whatever became of the node.
		if done[node] || !s.Live() {
			continue
		}
		st, known := states[node]
		gone := (known && (st == "dead" || st == "left")) || (!known && leaderFor > 15*time.Second)
		if !gone {
			continue
		}
		done[node] = true
		res, err := n.apply(ctx, fsm.Command{Op: fsm.OpClearNodeSessions, At: time.Now().UTC(), Node: node})
		if err != nil {
			n.log.Warn("clear sessions of a dead ingest node", "ingest_node", node, "err", err)
			continue
		}
		if res.Changed {
			n.log.Info("ended live sessions of a departed ingest node", "ingest_node", node, "state", st)
		}
	}
}

// expireSessions removes the reconnecting sessions whose deadline has passed.
// The command names the session, so an expiry racing with a reconnect
// (a new session replaced the old one) changes nothing.
func (n *Node) expireSessions(ctx context.Context) {
	now := time.Now()
	for _, s := range n.state.Sessions() {
		if s.Live() || now.Before(s.ReconnectDeadline(n.state.Input(s.InputID))) {
			continue
		}
		res, err := n.apply(ctx, fsm.Command{Op: fsm.OpExpireSession, At: now.UTC(), ID: s.InputID, Session: &fsm.Session{ID: s.ID}})
		switch {
		case err != nil:
			n.log.Warn("expire reconnecting session", "input", s.InputID, "err", err)
		case res.Err != nil:
			n.log.Warn("expire reconnecting session", "input", s.InputID, "err", res.Err)
		case res.Changed:
			n.log.Info("stream ended: reconnect window over", "input", s.InputID, "ended_at", s.EndedAt)
			n.hooks.emit(sessionEvent(fsm.EventInputIdle, s, now, s.IngestNode))
		}
	}
}
