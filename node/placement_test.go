package node

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

func TestProducedElsewhere(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    fsm.Session
		want bool
	}{
		{"just placed: no producer yet", fsm.Session{PlacedAt: now.Add(-time.Second), StartedAt: now.Add(-time.Second)}, false},
		{"a backup encoder that waited long, placed now", fsm.Session{PlacedAt: now.Add(-time.Second), StartedAt: now.Add(-time.Hour)}, false},
		{"moved a moment ago", fsm.Session{PlacedAt: now.Add(-time.Second), MovedFrom: "n1"}, true},
		{"placed a while ago (the owner is back from a restart)", fsm.Session{PlacedAt: now.Add(-time.Minute)}, true},
		{"recorded before placement: by its start", fsm.Session{StartedAt: now.Add(-time.Minute)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, producedElsewhere(&tc.s, now))
		})
	}
}

func TestHandoverPossible(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	alive := func(node string) bool { return node == "n1" }
	for _, tc := range []struct {
		name string
		s    fsm.Session
		want bool
	}{
		{"moved off a live node (rebalance): it hands over", fsm.Session{PlacedAt: now.Add(-time.Second), MovedFrom: "n1"}, true},
		{"moved off a dead owner: nobody can", fsm.Session{PlacedAt: now.Add(-time.Second), MovedFrom: "n2"}, false},
		{"placed a while ago, never moved (owner back from a restart)", fsm.Session{PlacedAt: now.Add(-time.Minute)}, true},
		{"just placed: no producer yet", fsm.Session{PlacedAt: now.Add(-time.Second)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, handoverPossible(&tc.s, now, alive))
		})
	}
}
