package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

// capRing is a ring of members that advertise 100 cost units each.
func capRing(names ...string) *Ring {
	var ms []Member
	for _, n := range names {
		ms = append(ms, Member{Name: n, State: StateAlive, Meta: Meta{Capacity: 100}})
	}
	return NewRing(ms)
}

func TestPlanMoves(t *testing.T) {
	now := time.Now()
	policy := RebalancePolicy{Bound: 1.25, MovesPerNode: 2, Settle: 30 * time.Second}
	members := capRing
	// 24 streams placed on three nodes as the state machine would.
	three := members("n1", "n2", "n3")
	st := fsm.New(nil)
	require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpInit, At: now, Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p"}}}).Err)
	for i := range 24 {
		id := string(rune('a'+i/10)) + string(rune('0'+i%10))
		require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: id, StreamKey: "k" + id, Enabled: true}}).Err)
		res := st.ApplyCommand(fsm.Command{Op: fsm.OpStartSession, At: now.Add(-time.Hour), Session: &fsm.Session{InputID: id, ID: "s" + id, IngestNode: "n1"},
			Placement: &fsm.Placement{Candidates: three.PlacementCandidates(id), Cost: 1}})
		require.NoError(t, res.Err)
	}
	require.Equal(t, map[string]int{"n1": 8, "n2": 8, "n3": 8}, st.Loads(), "three choices among three nodes: an even split")
	sessions := st.Sessions()

	require.Empty(t, three.PlanMoves(sessions, now, policy), "balanced: nothing moves")

	four := members("n1", "n2", "n3", "n4")
	moves := four.PlanMoves(sessions, now, policy)
	require.NotEmpty(t, moves, "a fourth node joins: it takes a few")
	require.LessOrEqual(t, len(moves), 24/4)
	for _, m := range moves {
		require.Equal(t, "n4", m.Owner)
	}

	// A stream placed (or moved) a moment ago stays put.
	require.Empty(t, four.PlanMoves(sessionsPlacedAt(sessions, now), now, policy))

	// A node drained: its streams run on its stand-in and are left there
	// (they go back on undrain), while the rest is not shuffled.
	require.Empty(t, members("n2", "n3").PlanMoves(onlyOwner(sessions, "n1"), now, policy))
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

func TestStandIns(t *testing.T) {
	r := capRing("a", "b", "c")
	sessions := []*fsm.Session{
		{InputID: "i1", ID: "s1", Owner: "dead"},
		{InputID: "i2", ID: "s2", Owner: "drained"},
		{InputID: "i3", ID: "s3", Owner: "a"},
		{InputID: "i4", ID: "s4"},
	}
	gone := func(n string) bool { return n == "dead" }
	moves := r.StandIns(sessions, gone)
	standIn, _ := r.OwnerOf("i1", "dead")
	require.Equal(t, []fsm.Move{{InputID: "i1", SessionID: "s1", Owner: standIn.Name}}, moves,
		"only the dead owner's stream is re-recorded, to whoever already stands in for it")
}

func TestPlacementCandidates(t *testing.T) {
	r := NewRing([]Member{{Name: "a", Meta: Meta{Capacity: 7}}, {Name: "b", Meta: Meta{Capacity: 9}}})
	cs := r.PlacementCandidates("k")
	require.Len(t, cs, 2)
	byName := map[string]int{}
	for i, m := range r.Candidates("k", 2) {
		require.Equal(t, m.Name, cs[i].Name, "ring order")
		byName[m.Name] = cs[i].Capacity
	}
	require.Equal(t, map[string]int{"a": 7, "b": 9}, byName)
}
