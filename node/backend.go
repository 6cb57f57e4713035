package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/packager"
	"github.com/dionysia/dionysia/peer"
)

var _ httpapi.Backend = (*Node)(nil)

// State is the local replica of the replicated state.
func (n *Node) State() *fsm.State { return n.state }

// Apply proposes a command through the leader.
func (n *Node) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	return n.apply(ctx, cmd)
}

func (n *Node) apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	res, err := n.clu.Apply(ctx, cmd)
	if err != nil {
		if errors.Is(err, cluster.ErrOutcomeUnknown) {
			return nil, fmt.Errorf("%w: %v", httpapi.ErrOutcomeUnknown, err)
		}
		if errors.Is(err, cluster.ErrNoLeader) {
			return nil, fmt.Errorf("%w: the cluster has no leader right now (is a majority of nodes up?): %v", httpapi.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("%w: %v", httpapi.ErrUnavailable, err)
	}
	return res, nil
}

// Route names the owner of an input and its origin URL.
func (n *Node) Route(inputID string) (httpapi.Route, error) {
	m, ok := n.owner(inputID)
	if !ok {
		return httpapi.Route{}, fmt.Errorf("%w: no alive node on the ring", httpapi.ErrUnavailable)
	}
	return httpapi.Route{InputID: inputID, Owner: m.Name, Origin: "http://" + m.Meta.HTTPAddr, Local: m.Name == n.cfg.Name}, nil
}

// Links are an input's ingest URLs on this node and its playback URL through
// this node (any node redirects to the owner).
func (n *Node) Links(in *fsm.Input) httpapi.Links {
	hp := n.cfg.advertise
	return httpapi.Links{
		Ingest: httpapi.IngestLinks{
			RTMP: "rtmp://" + hp(n.cfg.RTMPAddr) + "/live/" + in.StreamKey,
			// Not query-escaped: ffmpeg 5.1 and OBS pass streamid through
			// verbatim, and mediamtx expects the literal "publish:live/KEY".
			SRT:  "srt://" + hp(n.cfg.SRTAddr) + "?streamid=publish:live/" + in.StreamKey,
			RTSP: "rtsp://" + hp(n.cfg.RTSPAddr) + "/live/" + in.StreamKey,
			// mediamtx's WHIP endpoint is <path>/whip; its clients may send
			// the key as a bearer token instead (see publishInput).
			WHIP: "http://" + hp(n.cfg.WebRTCAddr) + "/live/" + in.StreamKey + "/whip",
		},
		Playback: httpapi.PlaybackLinks{
			HLS:     n.HTTPURL() + "/live/" + in.ID + "/" + packager.MultivariantName,
			DASH:    n.HTTPURL() + "/live/" + in.ID + "/" + packager.ManifestName,
			DVR:     dvrLink(n.HTTPURL(), in, packager.DVRName),
			DVRDASH: dvrLink(n.HTTPURL(), in, packager.DVRManifestName),
		},
	}
}

func dvrLink(base string, in *fsm.Input, name string) string {
	if in.DVRWindowSeconds <= 0 {
		return ""
	}
	return base + "/live/" + in.ID + "/" + name
}

// BaseURL is this node's public URL.
func (n *Node) BaseURL() string { return n.HTTPURL() }

// PlaybackKey signs playback tokens: a key of its own derived from the
// cluster's root secret (peer.Playback), so every node checks a token any
// node issued and a leaked playback key signs playback only.
func (n *Node) PlaybackKey() []byte {
	return n.peer.Key(peer.Playback)
}

// Ready is nil once a leader is known, the state is seeded and mediamtx answers.
func (n *Node) Ready() error {
	if _, ok := n.clu.Leader(); !ok {
		return errors.New("no raft leader yet")
	}
	if !n.state.Initialized() {
		return errors.New("cluster state not seeded yet")
	}
	// A restarted node replays the log it already has only once the leader
	// tells it the commit index; until then its reads are stale.
	if ri := n.clu.RaftState(); ri.AppliedIndex < ri.CommitIndex {
		return fmt.Errorf("catching up with the raft log (applied %d of %d)", ri.AppliedIndex, ri.CommitIndex)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := n.mtx.Ready(ctx); err != nil {
		return fmt.Errorf("mediamtx not ready: %w", err)
	}
	return nil
}

// Nodes lists members with the streams each owns and ingests.
func (n *Node) Nodes() []httpapi.NodeInfo {
	members := n.clu.Members()
	owned := map[string][]string{}
	live := map[string][]string{}
	ingesting := map[string][]string{}
	// An owned stream counts as live while reconnecting too: its owner still
	// serves it and holds its playlists open. Only a live session has a
	// publisher on its ingest node.
	sessions := map[string]bool{}
	for _, s := range n.state.Sessions() {
		sessions[s.InputID] = true
		if s.Live() {
			ingesting[s.IngestNode] = append(ingesting[s.IngestNode], s.InputID)
		}
	}
	for _, in := range n.state.Inputs() {
		if m, ok := n.owner(in.ID); ok {
			owned[m.Name] = append(owned[m.Name], in.ID)
			if sessions[in.ID] {
				live[m.Name] = append(live[m.Name], in.ID)
			}
		}
	}
	out := make([]httpapi.NodeInfo, 0, len(members))
	for _, m := range members {
		out = append(out, httpapi.NodeInfo{
			Name: m.Name, State: m.State, RaftRole: m.RaftRole,
			HTTPAddr: m.Meta.HTTPAddr, RaftAddr: m.Meta.RaftAddr, RTMPAddr: m.Meta.RTMPAddr,
			RTSPAddr: m.Meta.RTSPAddr, SRTAddr: m.Meta.SRTAddr, Load: m.Meta.Load, Draining: m.Meta.Draining, Local: m.Local,
			Capacity: m.Meta.Capacity, Cost: m.Meta.Cost,
			Owned: nonNil(owned[m.Name]), LiveOwned: nonNil(live[m.Name]), IngestLive: nonNil(ingesting[m.Name]),
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	sort.Strings(s)
	return s
}

// Cluster describes membership and raft as this node sees them.
func (n *Node) Cluster() httpapi.ClusterInfo {
	ri := n.clu.RaftState()
	servers := make([]httpapi.RaftServer, 0, len(ri.Servers))
	for _, s := range ri.Servers {
		servers = append(servers, httpapi.RaftServer{ID: s.ID, Address: s.Address, Suffrage: s.Suffrage})
	}
	leader, _ := n.clu.Leader()
	return httpapi.ClusterInfo{
		Node: n.cfg.Name, Leader: leader, Members: n.Nodes(), Servers: servers,
		Raft: map[string]any{
			"state": ri.State, "term": ri.Term, "last_log_index": ri.LastLogIndex, "commit_index": ri.CommitIndex,
			"applied_index": ri.AppliedIndex, "last_contact_ms": ri.LastContactMillis,
		},
	}
}
