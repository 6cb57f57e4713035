package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// TestPlan: what reconcile does to one input, for every combination of what
// the replicated state wants and what runs here.
func TestPlan(t *testing.T) {
	const k1, k2, k3 = "s1|n0|default|v1", "s1|n0|default|v2", "s2|n1|default|v2"
	live := func(key string) want { return want{owner: true, live: true, key: key} }
	reconnecting := want{owner: true, reconnecting: true}
	noSession := want{owner: true}
	tests := []struct {
		name string
		want want
		have have
		acts []action
	}{
		// Another node owns the input: stop everything, keep the model
		// a while for players reading its last playlist.
		{"not owner, nothing here", want{}, have{}, nil},
		{"not owner of a live input, nothing here", want{live: true, key: k1}, have{}, nil},
		{"not owner any more, transcoding", want{live: true, key: k1}, have{stream: true, cur: k1},
			[]action{actStopCur, actLinger}},
		{"not owner any more, handing over", want{live: true, key: k2}, have{stream: true, cur: k1, next: k2},
			[]action{actStopNext, actStopCur, actLinger}},
		{"not owner any more, slate on", want{reconnecting: true}, have{stream: true, slate: true},
			[]action{actStopSlate, actLinger}},
		{"not owner, everything running", want{}, have{stream: true, cur: k1, next: k2, slate: true},
			[]action{actStopNext, actStopCur, actStopSlate, actLinger}},
		{"not owner, ended stream", want{}, have{stream: true, ended: true}, []action{actLinger}},
		{"not owner, handing over: keep producing until the new owner took over",
			want{live: true, key: k1, handover: true}, have{stream: true, cur: k1}, nil},

		// Hot standby: the standby transcodes too, held, and its output
		// becomes the stream when it takes over.
		{"hot standby with a copy: start held", want{live: true, key: k1, hot: true}, have{stream: true},
			[]action{actStartHot, actLinger}},
		{"hot standby without a copy yet: wait for one", want{live: true, key: k1, hot: true}, have{}, nil},
		{"hot standby running", want{live: true, key: k1, hot: true}, have{stream: true, hot: k1}, []action{actLinger}},
		{"hot standby, profile changed", want{live: true, key: k2, hot: true}, have{stream: true, hot: k1},
			[]action{actStopHot, actStartHot, actLinger}},
		{"no longer the hot standby", want{live: true, key: k1}, have{stream: true, hot: k1},
			[]action{actStopHot, actLinger}},
		{"hot standby becomes the owner: promote", live(k1), have{stream: true, hot: k1}, []action{actPromoteHot}},
		{"owner with an outdated hot transcoder", live(k2), have{stream: true, hot: k1},
			[]action{actStopHot, actStartNext}},

		// The owner, and the session is gone: ENDLIST once, then linger.
		{"no session, nothing here", noSession, have{}, nil},
		{"no session, transcoding", noSession, have{stream: true, cur: k1},
			[]action{actStopCur, actEnd, actLinger}},
		{"no session, slate on (window ran out)", noSession, have{stream: true, slate: true},
			[]action{actStopSlate, actEnd, actLinger}},
		{"no session, next starting", noSession, have{stream: true, next: k1},
			[]action{actStopNext, actEnd, actLinger}},
		{"no session, already ended: no end twice", noSession, have{stream: true, ended: true},
			[]action{actLinger}},

		// Live.
		{"live, nothing here", live(k1), have{}, []action{actNewStream, actStartNext}},
		{"live, stream with nothing running", live(k1), have{stream: true}, []action{actStartNext}},
		{"live, a stale copy: a new stream", live(k1), have{stream: true, stale: true}, []action{actNewStream, actStartNext}},
		{"live, same key running", live(k1), have{stream: true, cur: k1}, nil},
		{"live, same key running, stale next", live(k1), have{stream: true, cur: k1, next: k2},
			[]action{actStopNext}},
		{"profile changed: next starts, cur keeps producing", live(k2), have{stream: true, cur: k1},
			[]action{actStartNext}},
		{"session changed: next starts, cur keeps producing", live(k3), have{stream: true, cur: k2},
			[]action{actStartNext}},
		{"next already starting with the right key", live(k2), have{stream: true, cur: k1, next: k2}, nil},
		{"next starting with the right key, no cur", live(k1), have{stream: true, next: k1}, nil},
		{"next starting with a stale key", live(k3), have{stream: true, cur: k1, next: k2},
			[]action{actStopNext, actStartNext}},
		{"publisher back: the slate stays until next produces", live(k3), have{stream: true, slate: true},
			[]action{actStartNext}},
		{"publisher back, next starting over the slate", live(k3), have{stream: true, next: k3, slate: true}, nil},

		// Reconnecting: the transcoders stop, the slate starts once.
		{"reconnecting, transcoding", reconnecting, have{stream: true, cur: k1},
			[]action{actStopCur, actStartSlate}},
		{"reconnecting, handing over", reconnecting, have{stream: true, cur: k1, next: k2},
			[]action{actStopNext, actStopCur, actStartSlate}},
		{"reconnecting, slate on", reconnecting, have{stream: true, slate: true}, nil},
		{"reconnecting, new owner with nothing here", reconnecting, have{},
			[]action{actNewStream, actStartSlate}},

		// A stream that ended is never continued: a new session is a new
		// stream (new numbering, new file names).
		{"ended stream, new session", live(k3), have{stream: true, ended: true},
			[]action{actNewStream, actStartNext}},
		{"ended stream, reconnecting session", reconnecting, have{stream: true, ended: true},
			[]action{actNewStream, actStartSlate}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		require.False(t, seen[tc.name], "duplicate case %q", tc.name)
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.acts, plan(tc.want, tc.have))
		})
	}
}

// TestPlanConverges: applying a plan's actions to have (as act does, the
// handover aside) and planning again asks for nothing more but lingering,
// which act makes idempotent. Only states reconcile can reach are tried: a
// stream ends (actEnd) only after everything feeding it stopped.
func TestPlanConverges(t *testing.T) {
	wants := []want{
		{}, {owner: true}, {owner: true, live: true, key: "a"}, {owner: true, live: true, key: "b"},
		{owner: true, reconnecting: true}, {live: true, key: "a"}, {live: true, key: "a", handover: true},
	}
	var haves []have
	haves = append(haves, have{})
	for _, ended := range []bool{false, true} {
		haves = append(haves, have{stream: true, ended: ended})
	}
	haves = append(haves, have{stream: true, stale: true})
	keys := []string{"", "a", "b"}
	for _, cur := range keys {
		for _, next := range keys {
			for _, slate := range []bool{false, true} {
				if cur != "" || next != "" || slate {
					haves = append(haves, have{stream: true, cur: cur, next: next, slate: slate})
				}
			}
		}
	}
	for _, w := range wants {
		for _, h := range haves {
			after := applyPlan(w, h, plan(w, h))
			for _, a := range plan(w, after) {
				require.Equal(t, actLinger, a, "want %+v have %+v: after %+v still %v", w, h, after, plan(w, after))
			}
		}
	}
}

// applyPlan is what act does to have.
func applyPlan(w want, h have, acts []action) have {
	for _, a := range acts {
		switch a {
		case actNewStream:
			h = have{stream: true}
		case actStartNext:
			h.next = w.key
		case actStopNext:
			h.next = ""
		case actStopCur:
			h.cur = ""
		case actStartSlate:
			h.slate = true
		case actStopSlate:
			h.slate = false
		case actEnd:
			h.ended = true
		}
	}
	return h
}

// freeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// newClusterOnlyNode builds a node and starts only its cluster (a single
// bootstrapped member, so it owns every input on the ring): enough to drive
// the reconcile logic without mediamtx or the HTTP server.
func newClusterOnlyNode(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{
		Name: "solo", DataDir: t.TempDir(), AdvertiseHost: "127.0.0.1",
		HTTPAddr: freeAddr(t), GossipAddr: freeAddr(t), RaftAddr: freeAddr(t),
		RTMPAddr: freeAddr(t), RTSPAddr: freeAddr(t), SRTAddr: freeAddr(t),
		FFmpeg: "/nonexistent/ffmpeg", MediaMTX: "/nonexistent/mediamtx",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, n.clu.Start(context.Background()))
	t.Cleanup(func() {
		n.streams.stopAll()
		n.clu.Kill()
	})
	return n
}

// startLive seeds the state with input in1 (default profile, the given
// reconnect window) live on this node.
func startLive(t *testing.T, n *Node, window int) {
	t.Helper()
	now := time.Now().UTC()
	init := n.initCommand()
	init.Init.DemoInput = nil
	for _, c := range []fsm.Command{
		init,
		{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: "in1", StreamKey: "sk1", Enabled: true,
			ProfileID: DefaultProfileID, ReconnectWindowSeconds: window}},
		{Op: fsm.OpStartSession, At: now, Session: &fsm.Session{
			InputID: "in1", ID: "s1", IngestNode: "solo", Path: "live/sk1", Tracks: []string{"H264", "MPEG-4 Audio"},
		}},
	} {
		require.NoError(t, n.state.ApplyCommand(c).Err)
	}
}

// TestDesiredStreams: what the state asks of the owner, live and then
// reconnecting, and that a profile change changes the key (a new
// transcoder, made before the old one breaks).
func TestDesiredStreams(t *testing.T) {
	n := newClusterOnlyNode(t)
	startLive(t, n, 30)

	d := n.desiredStreams()
	require.Len(t, d, 1)
	w := d["in1"].want
	require.True(t, w.owner, "the only node owns every input")
	require.True(t, w.live)
	require.False(t, w.reconnecting)
	require.True(t, strings.HasPrefix(w.key, "s1|solo|"+DefaultProfileID+"|"), w.key)
	require.Contains(t, d["in1"].source, "rtsp://")
	require.Contains(t, d["in1"].source, "/live/sk1")

	// The profile changes: another key.
	p := n.state.Profile(DefaultProfileID)
	p.VideoPreset = "ultrafast"
	p.UpdatedAt = time.Now().UTC().Add(time.Second)
	require.NoError(t, n.state.ApplyCommand(fsm.Command{Op: fsm.OpUpdateProfile, At: p.UpdatedAt, Profile: p}).Err)
	require.NotEqual(t, w.key, n.desiredStreams()["in1"].want.key)

	// The publisher goes: reconnecting, within the window.
	require.NoError(t, n.state.ApplyCommand(fsm.Command{Op: fsm.OpEndSession, At: time.Now().UTC(), ID: "in1",
		Session: &fsm.Session{ID: "s1"}}).Err)
	w = n.desiredStreams()["in1"].want
	require.True(t, w.owner)
	require.False(t, w.live)
	require.True(t, w.reconnecting)
	require.Equal(t, []action{actNewStream, actStartSlate}, plan(w, have{}))
}

// TestReconcileEndsStreamWhenSessionGoes: with reconnect window 0 the
// session goes with its publisher, and the owner ends its stream at once
// (ENDLIST), then keeps it a while for players reading the last playlist.
func TestReconcileEndsStreamWhenSessionGoes(t *testing.T) {
	n := newClusterOnlyNode(t)
	startLive(t, n, 0)
	require.NoError(t, n.state.ApplyCommand(fsm.Command{Op: fsm.OpEndSession, At: time.Now().UTC(), ID: "in1",
		Session: &fsm.Session{ID: "s1"}}).Err)
	require.Nil(t, n.state.Session("in1"), "no window: the session is gone")

	// The stream this node was producing (its transcoder already gone).
	stream := packager.New(packager.Config{TargetDuration: 2})
	n.streams.mu.Lock()
	n.streams.byID["in1"] = &liveStream{id: "in1", stream: stream}
	n.streams.mu.Unlock()

	for range 2 {
		n.streams.reconcile(context.Background())
		require.True(t, stream.Ended(), "the owner must end a stream whose session is gone")
		n.streams.mu.Lock()
		st := n.streams.byID["in1"]
		n.streams.mu.Unlock()
		require.NotNil(t, st, "an ended stream stays a while")
		require.Same(t, stream, st.stream)
		require.WithinDuration(t, time.Now().Add(streamLinger), st.forgetAt, time.Minute)
	}
}

// TestReconcileStartsNothingOnceStopping: Close cancels the loops' context
// and then stops every transcoder; a reconcile that was already under way
// (or woken by a pending poke) must not start a new transcoder (or stream)
// after that, since its Run would outlive Close.
func TestReconcileStartsNothingOnceStopping(t *testing.T) {
	n := newClusterOnlyNode(t)
	startLive(t, n, 30)
	require.Len(t, n.desiredStreams(), 1, "the node owns the live input")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.streams.stopAll()
	n.streams.reconcile(ctx)

	n.streams.mu.Lock()
	starts, streams := n.streams.starts, len(n.streams.byID)
	n.streams.mu.Unlock()
	require.Zero(t, starts, "transcoders started after the node began stopping")
	require.Zero(t, streams)
	require.Zero(t, n.streams.count())
}
