package cluster

import (
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// Placement of live streams on the ring: what the state machine needs to
// place a new stream (fsm.Place), and the leader's plans that keep the
// recorded owners true. Pure functions of a Ring and the sessions, so the
// node and the scale simulation run the same code.

// Candidates are every member of the ring in key's candidate order, with
// the capacity each advertises: fsm.Place takes the least loaded of the
// first few, and the rest only when those are full.
func (r *Ring) PlacementCandidates(key string) []fsm.Candidate {
	ms := r.Candidates(key, len(r.members))
	out := make([]fsm.Candidate, len(ms))
	for i, m := range ms {
		out[i] = fsm.Candidate{Name: m.Name, Capacity: m.Meta.Capacity}
	}
	return out
}

// StandIns re-records the sessions whose owner is gone (dead or left, as
// gone says) to the member that stands in for it on this ring: nothing
// moves, every node already routes there; the record just stops naming a
// node that may come back empty. A draining owner is not gone: its
// streams go back to it when it is undrained.
func (r *Ring) StandIns(sessions []*fsm.Session, gone func(name string) bool) []fsm.Move {
	var moves []fsm.Move
	for _, s := range sessions {
		if s.Owner == "" || !gone(s.Owner) {
			continue
		}
		if o, ok := r.OwnerOf(s.InputID, s.Owner); ok && o.Name != s.Owner {
			moves = append(moves, fsm.Move{InputID: s.InputID, SessionID: s.ID, Owner: o.Name})
		}
	}
	return moves
}

// RebalancePolicy bounds the leader's moves.
type RebalancePolicy struct {
	// Bound is how far above the mean utilisation a node may be before
	// streams move off it.
	Bound float64
	// MovesPerNode is how many streams one node hands over per round.
	MovesPerNode int
	// Settle: a stream placed or moved this recently stays (its
	// make-before-break handover may still be under way).
	Settle time.Duration
}

// PlanMoves turns the ring and the sessions into fsm.Rebalance's view.
// Loads are by the member that produces each stream now (a draining
// node's streams count on its stand-in); a stream may go to one of the
// first fsm.PlacementChoices members of its candidate order.
func (r *Ring) PlanMoves(sessions []*fsm.Session, now time.Time, p RebalancePolicy) []fsm.Move {
	load := map[string]int{}
	var streams []fsm.PlacedStream
	for _, s := range sessions {
		if s.Owner == "" {
			continue
		}
		o, ok := r.OwnerOf(s.InputID, s.Owner)
		if !ok {
			continue
		}
		load[o.Name] += s.Cost
		var cands []string
		for _, m := range r.Candidates(s.InputID, fsm.PlacementChoices) {
			cands = append(cands, m.Name)
		}
		streams = append(streams, fsm.PlacedStream{
			InputID: s.InputID, SessionID: s.ID, Owner: o.Name, Cost: s.Cost, Candidates: cands,
			// A stream on a stand-in stays: its recorded owner comes back
			// (undrain) or is re-recorded (death) first. A reconnecting one
			// has no publisher to move with.
			Pinned: o.Name != s.Owner || !s.Live() || now.Sub(s.PlacedAt) < p.Settle,
		})
	}
	nodes := make([]fsm.NodeLoad, 0, len(r.members))
	for _, m := range r.members {
		nodes = append(nodes, fsm.NodeLoad{Name: m.Name, Capacity: m.Meta.Capacity, Load: load[m.Name]})
	}
	return fsm.Rebalance(nodes, streams, p.Bound, p.MovesPerNode)
}
