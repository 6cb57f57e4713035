package node

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
)

func TestAdmission(t *testing.T) {
	three := []fsm.Candidate{{Name: "a", Capacity: 10}, {Name: "b", Capacity: 10}, {Name: "c", Capacity: 10}}
	refuse := &fsm.Input{ID: "i", Overload: fsm.OverloadRefuse}
	pass := &fsm.Input{ID: "i", Overload: fsm.OverloadPassthrough}
	full := map[string]int{"a": 10, "b": 9, "c": 10}
	for _, tc := range []struct {
		name    string
		cands   []fsm.Candidate
		loads   map[string]int
		session *fsm.Session
		in      *fsm.Input
		cost    int
		refused bool
	}{
		{"room on one node", three, map[string]int{"a": 10, "b": 10, "c": 5}, nil, refuse, 5, false},
		{"full: refused", three, full, nil, refuse, 2, true},
		{"full: passthrough allowed", three, full, nil, pass, 2, false},
		{"full even for passthrough", three, map[string]int{"a": 10, "b": 10, "c": 10}, nil, pass, 2, true},
		{"a reconnect of a placed stream is admitted", three, full, &fsm.Session{Owner: "a"}, refuse, 2, false},
		{"a session without placement does not count", three, full, &fsm.Session{}, refuse, 2, true},
		{"no serving member known: the state machine decides", nil, nil, nil, refuse, 2, false},
		{"unknown capacity never refuses", []fsm.Candidate{{Name: "a"}}, map[string]int{"a": 1000}, nil, refuse, 50, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admission(tc.cands, tc.loads, tc.session, tc.in, tc.cost)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			require.True(t, errors.Is(err, errNoCapacity), "%v", err)
			require.Contains(t, err.Error(), "the stream costs 2 units", "the refusal says why")
		})
	}
}

func TestPlanMoves(t *testing.T) {
	now := time.Now()
	members := func(names ...string) *cluster.Ring {
		var ms []cluster.Member
		for _, n := range names {
			ms = append(ms, cluster.Member{Name: n, State: cluster.StateAlive, Meta: cluster.Meta{Capacity: 100}})
		}
		return cluster.NewRing(ms)
	}
	// 24 streams placed on three nodes as the state machine would.
	three := members("n1", "n2", "n3")
	st := fsm.New(nil)
	require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpInit, At: now, Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p"}}}).Err)
	for i := range 24 {
		id := string(rune('a'+i/10)) + string(rune('0'+i%10))
		require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: id, StreamKey: "k" + id, Enabled: true}}).Err)
		res := st.ApplyCommand(fsm.Command{Op: fsm.OpStartSession, At: now.Add(-time.Hour), Session: &fsm.Session{InputID: id, ID: "s" + id, IngestNode: "n1"},
			Placement: &fsm.Placement{Candidates: candidates(three, id), Cost: 1}})
		require.NoError(t, res.Err)
	}
	require.Equal(t, map[string]int{"n1": 8, "n2": 8, "n3": 8}, st.Loads(), "three choices among three nodes: an even split")
	sessions := st.Sessions()

	require.Empty(t, planMoves(three, sessions, now), "balanced: nothing moves")

	four := members("n1", "n2", "n3", "n4")
	moves := planMoves(four, sessions, now)
	require.NotEmpty(t, moves, "a fourth node joins: it takes a few")
	require.LessOrEqual(t, len(moves), 24/4)
	for _, m := range moves {
		require.Equal(t, "n4", m.Owner)
	}

	// A stream placed (or moved) a moment ago stays put.
	require.Empty(t, planMoves(four, sessionsPlacedAt(sessions, now), now))

	// A node drained: its streams run on its stand-in and are left there
	// (they go back on undrain), while the rest is not shuffled.
	require.Empty(t, planMoves(members("n2", "n3"), onlyOwner(sessions, "n1"), now))
}

func sessionsPlacedAt(ss []*fsm.Session, at time.Time) []*fsm.Session {
	out := make([]*fsm.Session, len(ss))
	for i, s := range ss {
		c := s.Clone()
		c.PlacedAt = at
		out[i] = c
	}
	return out
}

func onlyOwner(ss []*fsm.Session, owner string) []*fsm.Session {
	var out []*fsm.Session
	for _, s := range ss {
		if s.Owner == owner {
			out = append(out, s)
		}
	}
	return out
}

func TestPassthroughOf(t *testing.T) {
	p := &fsm.Profile{ID: "p", Name: "ladder", SegmentSeconds: 2, VideoPreset: "veryfast", Renditions: []fsm.Rendition{
		{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 700, AudioBitrateKbps: 96},
		{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 2800, AudioBitrateKbps: 128},
	}}
	pt := passthroughOf(p)
	require.Equal(t, []fsm.Rendition{{Name: "source", Passthrough: true, Width: 1280, Height: 720, VideoBitrateKbps: 2800, AudioBitrateKbps: 128}}, pt.Renditions)
	require.Equal(t, fsm.PassthroughCost, pt.Cost())
	require.Len(t, p.Renditions, 2, "the stored profile is left alone")
	require.NoError(t, pt.Validate(), "what the transcoder gets is a valid profile")
}
