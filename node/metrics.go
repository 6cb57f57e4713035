package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// nodeCollector reads the node's gauges at scrape time, so nothing has to
// keep them up to date.
type nodeCollector struct {
	n                                              *Node
	members, leader, term, commit, lastContact     *prometheus.Desc
	inputs, live, owned, transcoders, mtxRestarts  *prometheus.Desc
	transFPS, transSpeed, transDrop, transRestarts *prometheus.Desc
	transStarts                                    *prometheus.Desc
	capacity, cost, refused                        *prometheus.Desc
	rendFPS, rendKbps, ingestBytes, shieldFetches  *prometheus.Desc
	ingestPollErrors                               *prometheus.Desc
}

func (n *Node) registerMetrics() error {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("dionysia_"+name, help, labels, nil)
	}
	return n.reg.Register(&nodeCollector{
		n:             n,
		members:       d("cluster_members", "Members by gossip state.", "state"),
		leader:        d("raft_leader", "1 when this node is the raft leader."),
		term:          d("raft_term", "Current raft term."),
		commit:        d("raft_commit_index", "Raft commit index."),
		lastContact:   d("raft_last_contact_seconds", "Time since the leader was last heard from (0 on the leader)."),
		inputs:        d("inputs", "Inputs in the cluster."),
		live:          d("live_streams", "Live sessions in the cluster."),
		owned:         d("owned_streams", "Inputs this node owns on the ring."),
		transcoders:   d("transcoders_running", "ffmpeg transcoders this node runs."),
		mtxRestarts:   d("mediamtx_restarts_total", "Restarts of the co-located mediamtx."),
		transFPS:      d("transcoder_fps", "Encoding frame rate per input.", "input"),
		transSpeed:    d("transcoder_speed", "Encoding speed per input (1 = realtime).", "input"),
		transDrop:     d("transcoder_dropped_frames", "Frames dropped by the transcoder per input.", "input"),
		transRestarts: d("transcoder_restarts", "Restarts of the transcoder of an input.", "input"),
		transStarts:   d("transcoder_starts_total", "Transcoders started by this node."),
		rendFPS:       d("rendition_fps", "Output frame rate per rendition.", "input", "rendition"),
		rendKbps:      d("rendition_bitrate_kbps", "Bitrate of the segments listed in a rendition's playlist.", "input", "rendition"),
		ingestBytes:   d("ingest_bytes_total", "Bytes received from the publisher of an input on this node.", "input"),
		capacity:      d("transcode_capacity_units", "What this node offers for transcoding, in cost units."),
		cost:          d("transcode_cost_units", "What the streams this node owns cost, in cost units."),
		refused:       d("publish_refused_total", "Publishes this node refused, by reason (capacity: no node had room).", "reason"),
		shieldFetches: d("origin_internal_fetches_total", "/live files this node fetched from the owning node for its viewers (after coalescing)."),
		ingestPollErrors: d("ingest_poll_errors_total",
			"Failed polls of the co-located mediamtx's API: while they fail, publishes on this node neither go live nor end."),
	})
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.leader, c.term, c.commit, c.lastContact, c.inputs, c.live,
		c.owned, c.transcoders, c.mtxRestarts, c.transFPS, c.transSpeed, c.transDrop, c.transRestarts, c.transStarts, c.rendFPS, c.rendKbps, c.ingestBytes, c.shieldFetches, c.ingestPollErrors,
		c.capacity, c.cost, c.refused} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	states := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	for _, m := range n.clu.Members() {
		states[m.State]++
	}
	for s, v := range states {
		g(c.members, float64(v), s)
	}
	ri := n.clu.RaftState()
	leader := 0.0
	if n.clu.IsLeader() {
		leader = 1
	}
	g(c.leader, leader)
	g(c.term, float64(ri.Term))
	g(c.commit, float64(ri.CommitIndex))
	g(c.lastContact, float64(ri.LastContactMillis)/1000)
	ins := n.state.Inputs()
	g(c.inputs, float64(len(ins)))
	live := 0
	for _, s := range n.state.Sessions() {
		if s.Live() {
			live++
		}
	}
	g(c.live, float64(live))
	owned := 0
	for _, in := range ins {
		if m, ok := n.owner(in.ID); ok && m.Name == n.cfg.Name {
			owned++
		}
	}
	g(c.owned, float64(owned))
	running := n.streams.running()
	g(c.transcoders, float64(len(running)))
	n.streams.mu.Lock()
	starts := n.streams.starts
	n.streams.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.transStarts, prometheus.CounterValue, float64(starts))
	for id, r := range running {
		st := r.t.Stats()
		g(c.transFPS, st.FPS, id)
		g(c.transSpeed, st.Speed, id)
		g(c.transDrop, float64(st.DropFrames), id)
		g(c.transRestarts, float64(r.t.Restarts()), id)
		// Per-rendition figures: the status endpoint computes them from
		// the same sources (progress and the media playlists).
		status := n.baseStatus(id)
		n.fillLocalStatus(status)
		for _, rs := range status.Renditions {
			g(c.rendFPS, rs.FPS, id, rs.Name)
			g(c.rendKbps, rs.BitrateKbps, id, rs.Name)
		}
	}
	for id, b := range n.ing.bytesByInput() {
		ch <- prometheus.MustNewConstMetric(c.ingestBytes, prometheus.CounterValue, float64(b), id)
	}
	ch <- prometheus.MustNewConstMetric(c.mtxRestarts, prometheus.CounterValue, float64(n.mtx.Restarts()))
	for _, m := range n.clu.Members() {
		if m.Local {
			g(c.capacity, float64(m.Meta.Capacity))
			g(c.cost, float64(m.Meta.Cost))
		}
	}
	refused := n.refused.counts()
	for _, reason := range []string{"capacity", "disabled", "unknown_key"} {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(refused[reason]), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.shieldFetches, prometheus.CounterValue, float64(n.shield.Fetches()))
	ch <- prometheus.MustNewConstMetric(c.ingestPollErrors, prometheus.CounterValue, float64(n.ing.pollErrors.Load()))
}
