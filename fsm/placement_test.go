package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func cands(spec ...any) []Candidate {
	var out []Candidate
	for i := 0; i < len(spec); i += 2 {
		out = append(out, Candidate{Name: spec[i].(string), Capacity: spec[i+1].(int)})
	}
	return out
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cands  []Candidate
		loads  map[string]int
		cost   int
		first  int
		want   string
		wantOK bool
	}{
		{"empty cluster goes to the ring's first", cands("a", 100, "b", 100, "c", 100), nil, 10, 3, "a", true},
		{"least loaded of the first three", cands("a", 100, "b", 100, "c", 100), map[string]int{"a": 20, "b": 10, "c": 30}, 10, 3, "b", true},
		{"a tie goes to the earlier in ring order", cands("a", 100, "b", 100, "c", 100), map[string]int{"a": 20, "b": 10, "c": 10}, 10, 3, "b", true},
		// mean with the stream 36/400: a ends at 0.11, under 1.25x that.
		{"only the first few compete while under the bound", cands("a", 100, "b", 100, "c", 100, "d", 100),
			map[string]int{"a": 10, "b": 10, "c": 10, "d": 5}, 1, 3, "a", true},
		// mean 70/400: a would be at 0.3, above 1.25x that; d is not.
		{"the first few above the bound: the next in ring order under it", cands("a", 100, "b", 100, "c", 100, "d", 100, "e", 100),
			map[string]int{"a": 20, "b": 20, "c": 20, "e": 0, "d": 1}, 10, 3, "d", true},
		{"everyone above the bound: the least utilised that fits", cands("a", 100, "b", 100),
			map[string]int{"a": 90, "b": 80}, 15, 1, "b", true},
		{"utilisation, not raw load: a bigger node takes more",
			cands("small", 100, "big", 400), map[string]int{"small": 20, "big": 60}, 10, 3, "big", true},
		{"a candidate without room is skipped", cands("a", 100, "b", 100, "c", 100), map[string]int{"a": 5, "b": 95, "c": 50}, 10, 3, "a", true},
		{"exactly full fits", cands("a", 30, "b", 30), map[string]int{"a": 20, "b": 25}, 10, 3, "a", true},
		// mean 120/220: c ends at 0.6, under 1.25x that.
		{"the first few are full: the next in ring order under the bound", cands("a", 10, "b", 10, "c", 100, "d", 100),
			map[string]int{"a": 10, "b": 10, "c": 50, "d": 40}, 10, 2, "c", true},
		{"fits nowhere", cands("a", 10, "b", 10), map[string]int{"a": 5, "b": 5}, 10, 3, "", false},
		{"unknown capacity has no limit", cands("a", 0, "b", 10), map[string]int{"a": 500, "b": 5}, 10, 3, "a", true},
		{"no candidates", nil, nil, 1, 3, "", false},
		{"first larger than the list", cands("a", 100), nil, 1, 10, "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Place(tc.cands, tc.loads, tc.cost, tc.first)
			require.Equal(t, tc.wantOK, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRebalance(t *testing.T) {
	equal := func(loads ...int) []NodeLoad {
		var out []NodeLoad
		for i, l := range loads {
			out = append(out, NodeLoad{Name: string(rune('a' + i)), Capacity: 100, Load: l})
		}
		return out
	}
	unit := func(owner string, n int, candidates ...string) []PlacedStream {
		var out []PlacedStream
		for i := range n {
			id := owner + string(rune('0'+i/10)) + string(rune('0'+i%10))
			out = append(out, PlacedStream{InputID: id, SessionID: "s" + id, Owner: owner, Cost: 1, Candidates: candidates})
		}
		return out
	}
	join := append(append(append(unit("a", 8, "a", "b", "d"), unit("b", 8, "b", "c", "d")...), unit("c", 8, "c", "d", "a")...), nil...)
	for _, tc := range []struct {
		name    string
		nodes   []NodeLoad
		streams []PlacedStream
		max     int
		want    map[string]int // moves per target
		moves   int
	}{
		{"balanced: nothing moves", equal(8, 8, 8), join[:24], 2, nil, 0},
		{"a fourth node joins: one stream off each node above the bound",
			equal(8, 8, 8, 0), join, 2, map[string]int{"d": 3}, 3},
		{"a node under the bound keeps its streams though a new node is idle",
			// mean 2.4, bound 3: nobody is above it.
			equal(3, 3, 3, 3, 0), append(append(append(unit("a", 3, "a", "e"), unit("b", 3, "b", "e")...), unit("c", 3, "c", "e")...), unit("d", 3, "d", "e")...), 2, nil, 0},
		{"a single stream never ping-pongs", equal(1, 0, 0), unit("a", 1, "a", "b", "c"), 2, nil, 0},
		// a sheds past the 3 per round until it is within its capacity
		// (10), then stops though it is still above the bound (8.3).
		{"over capacity sheds until within it, then a few at a time",
			[]NodeLoad{{Name: "a", Capacity: 10, Load: 16}, {Name: "b", Capacity: 10, Load: 2}, {Name: "c", Capacity: 10, Load: 2}},
			unit("a", 16, "a", "b", "c"), 3, map[string]int{"b": 3, "c": 3}, 6},
		// mean 5, bound 6.25: b takes 6, and a stays above the bound for want
		// of another candidate.
		{"only candidates are targets, up to the bound", equal(20, 0, 0, 0), unit("a", 20, "a", "b"), 20, map[string]int{"b": 6}, 6},
		{"pinned streams stay", equal(8, 8, 8, 0), func() []PlacedStream {
			s := unit("a", 8, "a", "d")
			for i := range s {
				s[i].Pinned = true
			}
			return s
		}(), 2, nil, 0},
		{"a target that would go over the bound is skipped",
			[]NodeLoad{{Name: "a", Capacity: 100, Load: 30}, {Name: "b", Capacity: 100, Load: 14}, {Name: "c", Capacity: 100, Load: 0}},
			// mean 44/300: at most 18 per node; b would reach 29.
			[]PlacedStream{{InputID: "big", SessionID: "s", Owner: "a", Cost: 15, Candidates: []string{"a", "b", "c"}}}, 2, map[string]int{"c": 1}, 1},
		{"no capacity known: nothing to compare", []NodeLoad{{Name: "a", Load: 9}, {Name: "b"}}, unit("a", 9, "a", "b"), 2, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves := Rebalance(tc.nodes, tc.streams, 1.25, tc.max)
			require.Len(t, moves, tc.moves, "%+v", moves)
			got := map[string]int{}
			for _, m := range moves {
				got[m.Owner]++
			}
			if tc.want == nil {
				tc.want = map[string]int{}
			}
			require.Equal(t, tc.want, got)
			// Deterministic: the leader and a replay plan the same.
			require.Equal(t, moves, Rebalance(tc.nodes, tc.streams, 1.25, tc.max))
		})
	}
}

// placementState has a default profile and inputs a (refuse) and p
// (passthrough on overload).
func placementState(t *testing.T) *State {
	t.Helper()
	s := New(nil)
	for _, c := range []Command{
		initCmd(),
		{Op: OpCreateInput, At: t0, Input: &Input{ID: "a", StreamKey: "ka", Enabled: true, ReconnectWindowSeconds: 30}},
		{Op: OpCreateInput, At: t0, Input: &Input{ID: "b", StreamKey: "kb", Enabled: true}},
		{Op: OpCreateInput, At: t0, Input: &Input{ID: "p", StreamKey: "kp", Enabled: true, Overload: OverloadPassthrough}},
	} {
		require.NoError(t, s.ApplyCommand(c).Err)
	}
	return s
}

func startCmd(input, id, ingest string, at time.Duration, cost int, cs []Candidate) Command {
	return Command{Op: OpStartSession, At: t0.Add(at), Session: &Session{InputID: input, ID: id, IngestNode: ingest},
		Placement: &Placement{Candidates: cs, Cost: cost}}
}

func TestStartSessionPlacement(t *testing.T) {
	three := cands("n1", 20, "n2", 20, "n3", 20)
	t.Run("least loaded candidate, recorded with cost and time", func(t *testing.T) {
		s := placementState(t)
		r := s.ApplyCommand(startCmd("a", "s1", "n3", time.Second, 10, three))
		require.NoError(t, r.Err)
		require.Equal(t, "n1", r.Session.Owner)
		require.Equal(t, 10, r.Session.Cost)
		require.Equal(t, t0.Add(time.Second), r.Session.PlacedAt)
		require.Empty(t, r.Session.MovedFrom)
		r = s.ApplyCommand(startCmd("b", "s2", "n3", 2*time.Second, 10, three))
		require.Equal(t, "n2", r.Session.Owner)
		require.Equal(t, map[string]int{"n1": 10, "n2": 10}, s.Loads())
		require.Equal(t, "n2", s.SessionOwner("b"))
		require.Empty(t, s.SessionOwner("p"))
	})
	t.Run("sticky across a reconnect, even when another node is idler", func(t *testing.T) {
		s := placementState(t)
		require.Equal(t, "n1", s.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, three)).Session.Owner)
		require.True(t, s.ApplyCommand(Command{Op: OpEndSession, At: t0.Add(time.Second), ID: "a", Session: &Session{ID: "s1"}}).Changed)
		r := s.ApplyCommand(startCmd("a", "s2", "n2", 2*time.Second, 10, three))
		require.NoError(t, r.Err)
		require.Equal(t, "n1", r.Session.Owner)
		require.Equal(t, t0, r.Session.PlacedAt, "placed when it was first placed")
	})
	t.Run("a reconnect whose owner is gone is placed again", func(t *testing.T) {
		s := placementState(t)
		require.Equal(t, "n1", s.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, three)).Session.Owner)
		s.ApplyCommand(Command{Op: OpEndSession, At: t0.Add(time.Second), ID: "a", Session: &Session{ID: "s1"}})
		r := s.ApplyCommand(startCmd("a", "s2", "n2", 2*time.Second, 10, cands("n2", 20, "n3", 20)))
		require.Equal(t, "n2", r.Session.Owner)
	})
	t.Run("full: refused with the capacity field", func(t *testing.T) {
		s := placementState(t)
		small := cands("n1", 10, "n2", 10)
		require.NoError(t, s.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, small)).Err)
		require.NoError(t, s.ApplyCommand(startCmd("p", "s2", "n1", 0, 10, small)).Err)
		r := s.ApplyCommand(startCmd("b", "s3", "n1", 0, 10, small))
		require.Equal(t, CodeConflict, ErrorCode(r.Err))
		require.Equal(t, FieldCapacity, r.Err.(*Error).Field)
		require.Nil(t, s.Session("b"))
	})
	t.Run("full: passthrough when the input allows it", func(t *testing.T) {
		s := placementState(t)
		small := cands("n1", 11, "n2", 11)
		require.NoError(t, s.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, small)).Err)
		require.NoError(t, s.ApplyCommand(startCmd("b", "s2", "n1", 0, 10, small)).Err)
		r := s.ApplyCommand(startCmd("p", "s3", "n1", 0, 10, small))
		require.NoError(t, r.Err)
		require.True(t, r.Session.Passthrough)
		require.Equal(t, PassthroughCost, r.Session.Cost)
		require.Equal(t, "n1", r.Session.Owner)
		// Even passthrough needs room.
		s2 := placementState(t)
		require.NoError(t, s2.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, cands("n1", 10))).Err)
		require.Equal(t, FieldCapacity, s2.ApplyCommand(startCmd("p", "s3", "n1", 0, 10, cands("n1", 10))).Err.(*Error).Field)
	})
	t.Run("without placement nothing is recorded (older proposers)", func(t *testing.T) {
		s := placementState(t)
		r := s.ApplyCommand(Command{Op: OpStartSession, At: t0, Session: &Session{InputID: "a", ID: "s1", IngestNode: "n1"}})
		require.NoError(t, r.Err)
		require.Empty(t, r.Session.Owner)
		require.Empty(t, s.Loads())
	})
}

func TestPlaceSessions(t *testing.T) {
	s := placementState(t)
	three := cands("n1", 20, "n2", 20, "n3", 20)
	s.ApplyCommand(startCmd("a", "s1", "n1", 0, 10, three))
	s.ApplyCommand(startCmd("b", "s2", "n1", 0, 10, three))
	r := s.ApplyCommand(Command{Op: OpPlaceSessions, At: t0.Add(time.Minute), Moves: []Move{
		{InputID: "a", SessionID: "s1", Owner: "n3"},
		{InputID: "b", SessionID: "old", Owner: "n3"}, // a newer publish: left alone
		{InputID: "p", SessionID: "x", Owner: "n3"},   // no session
	}})
	require.True(t, r.Changed)
	require.Equal(t, "n3", s.SessionOwner("a"))
	require.Equal(t, t0.Add(time.Minute), s.Session("a").PlacedAt)
	require.Equal(t, "n1", s.Session("a").MovedFrom)
	require.Equal(t, "n2", s.SessionOwner("b"))
	require.False(t, s.ApplyCommand(Command{Op: OpPlaceSessions, At: t0, Moves: []Move{{InputID: "a", SessionID: "s1", Owner: "n3"}}}).Changed)

	// The log round-trips and a snapshot keeps the placement.
	b, err := (Command{Op: OpPlaceSessions, Moves: []Move{{InputID: "a", SessionID: "s1", Owner: "n3"}}}).Encode()
	require.NoError(t, err)
	c, err := DecodeCommand(b)
	require.NoError(t, err)
	require.Equal(t, "n3", c.Moves[0].Owner)
	var buf bytes.Buffer
	require.NoError(t, s.WriteSnapshot(&buf))
	s2 := New(nil)
	require.NoError(t, s2.Restore(&buf))
	require.Equal(t, s.Loads(), s2.Loads())
	require.Equal(t, s.Session("a"), s2.Session("a"))
}
