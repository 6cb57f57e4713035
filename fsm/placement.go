package fsm

import (
	"cmp"
	"slices"
)

// PlacementChoices is how many of the ring's first candidates for an input
// compete on load for a new stream. Three choices already even out
// placement by hash almost completely (the "power of d choices"), while the
// ring still decides most of the order, so the standby (the candidate
// after the owner) stays predictable.
const PlacementChoices = 3

// What an input asks for when no node has room for its profile.
const (
	// OverloadRefuse (the default) refuses the publish: the encoder gets an
	// error instead of a stream that falls behind realtime.
	OverloadRefuse = "refuse"
	// OverloadPassthrough carries the stream as passthrough only (the
	// source copied, one rendition) when its ladder fits nowhere.
	OverloadPassthrough = "passthrough"
)

// Candidate is a node a stream may be placed on.
type Candidate struct {
	Name string `json:"name"`
	// Capacity is what the node advertises, in cost units (see Cost); 0
	// means unknown and is treated as no limit.
	Capacity int `json:"capacity,omitempty"`
}

// Placement travels with StartSession: what the proposer knows and the
// state machine cannot (which nodes are alive and serving, in the ring's
// order for the input, and their capacity), and the stream's cost, fixed
// by the proposer so that replaying the log never depends on the version
// of the cost model.
type Placement struct {
	Candidates []Candidate `json:"candidates"`
	Cost       int         `json:"cost"`
}

// Move gives a live session a new owner (OpPlaceSessions): the leader
// re-records streams whose owner died, and spreads load. Session names the
// session, so a move never applies to a newer publish of the input.
type Move struct {
	InputID   string `json:"input_id"`
	SessionID string `json:"session_id"`
	Owner     string `json:"owner"`
}

// fits reports whether load plus cost stays within capacity (0: no limit).
func fits(load, cost, capacity int) bool {
	return capacity <= 0 || load+cost <= capacity
}

// lessUsed orders two candidates by utilisation after adding cost:
// (la+cost)/ca < (lb+cost)/cb, cross-multiplied so that it is exact. A
// candidate without a known capacity compares by load alone.
func lessUsed(la, ca, lb, cb, cost int) bool {
	if ca <= 0 || cb <= 0 {
		return la < lb
	}
	return (la+cost)*cb < (lb+cost)*ca
}

// PlacementBound is how far above the mean utilisation of the candidates
// a node may go by taking a new stream while another candidate has room
// under it: consistent hashing with bounded loads, applied to the cost of
// live streams instead of to keys.
const PlacementBound = 1.25

// Place chooses the owner of a new stream of cost cost among candidates in
// ring order (every serving node). loads is what each node already
// carries, in cost units. In order of preference:
//
//  1. the least utilised (after placing it) of the first `first`
//     candidates that stays within its capacity and under the bound
//     (PlacementBound times the mean utilisation with this stream),
//     ties to the earlier one;
//  2. else, walking on in ring order, the first candidate that does;
//  3. else the least utilised candidate that has room at all.
//
// ok is false when no candidate has room. Pure and deterministic: the
// state machine calls it while applying StartSession.
func Place(cands []Candidate, loads map[string]int, cost, first int) (string, bool) {
	first = max(0, min(first, len(cands)))
	total, capacity := cost, 0
	for _, c := range cands {
		total += loads[c.Name]
		capacity += max(c.Capacity, 0)
	}
	under := func(c Candidate) bool {
		l := loads[c.Name] + cost
		if !fits(loads[c.Name], cost, c.Capacity) {
			return false
		}
		if c.Capacity <= 0 || capacity <= 0 {
			return true
		}
		// l/cap <= bound*total/capacity, cross-multiplied; a node may
		// always take one stream when it has nothing.
		return loads[c.Name] == 0 || float64(l)*float64(capacity) <= PlacementBound*float64(total)*float64(c.Capacity)
	}
	least := func(group []Candidate, ok func(Candidate) bool) int {
		best := -1
		for i, c := range group {
			if ok(c) && (best < 0 || lessUsed(loads[c.Name], c.Capacity, loads[group[best].Name], group[best].Capacity, cost)) {
				best = i
			}
		}
		return best
	}
	if i := least(cands[:first], under); i >= 0 {
		return cands[i].Name, true
	}
	for _, c := range cands[first:] {
		if under(c) {
			return c.Name, true
		}
	}
	if i := least(cands, func(c Candidate) bool { return fits(loads[c.Name], cost, c.Capacity) }); i >= 0 {
		return cands[i].Name, true
	}
	return "", false
}

// NodeLoad is one serving node as the rebalancer sees it.
type NodeLoad struct {
	Name     string
	Capacity int // cost units; 0 = unknown (such a node is never a target)
	Load     int // cost of the streams it owns now
}

// PlacedStream is a live stream as the rebalancer sees it.
type PlacedStream struct {
	InputID, SessionID string
	Owner              string // who produces it now
	Cost               int
	// Candidates are the first PlacementChoices serving nodes of the
	// ring's order for the input: where it may go.
	Candidates []string
	// Pinned streams are not moved (placed or moved too recently: a
	// make-before-break handover may still be under way).
	Pinned bool
}

// Rebalance plans moves that bring every node back under the bound:
// utilisation at most bound times the cluster's mean, and load within
// capacity. It only moves streams off a node above the bound, each to the
// least utilised of its candidates that stays under the bound and ends up
// less utilised than the node it leaves; at most maxPerNode streams leave
// one node per call (more only while it is over its capacity), so a change
// becomes a few make-before-break handovers at a time. A node under the bound never loses a stream because
// another node joined. Pure: the leader runs it, and so does the scale
// simulation.
func Rebalance(nodes []NodeLoad, streams []PlacedStream, bound float64, maxPerNode int) []Move {
	load := map[string]int{}
	capacity := map[string]int{}
	totalLoad, totalCap := 0, 0
	for _, n := range nodes {
		load[n.Name], capacity[n.Name] = n.Load, n.Capacity
		totalLoad += n.Load
		totalCap += n.Capacity
	}
	if totalCap <= 0 || totalLoad == 0 {
		return nil
	}
	mean := float64(totalLoad) / float64(totalCap)
	limit := func(name string) float64 {
		c := capacity[name]
		return min(float64(c), bound*mean*float64(c))
	}
	over := func(name string) bool { return capacity[name] > 0 && float64(load[name]) > limit(name) }

	byOwner := map[string][]PlacedStream{}
	for _, s := range streams {
		if !s.Pinned {
			byOwner[s.Owner] = append(byOwner[s.Owner], s)
		}
	}
	sources := slices.Clone(nodes)
	// The most utilised node sheds first: it is the one whose streams
	// suffer.
	slices.SortFunc(sources, func(a, b NodeLoad) int {
		if a.Capacity > 0 && b.Capacity > 0 {
			if c := cmp.Compare(b.Load*a.Capacity, a.Load*b.Capacity); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var moves []Move
	for _, src := range sources {
		own := byOwner[src.Name]
		// Larger streams first (fewer moves), then by id for a stable plan.
		slices.SortFunc(own, func(a, b PlacedStream) int {
			return cmp.Or(cmp.Compare(b.Cost, a.Cost), cmp.Compare(a.InputID, b.InputID))
		})
		moved := 0
		for _, s := range own {
			// A node over its capacity sheds until it is within it: its
			// streams fall behind realtime meanwhile. Above the bound only,
			// a few per round.
			overCapacity := load[src.Name] > capacity[src.Name]
			if (moved >= maxPerNode && !overCapacity) || !over(src.Name) {
				break
			}
			best := ""
			for _, to := range s.Candidates {
				c := capacity[to]
				if to == src.Name || c <= 0 || float64(load[to]+s.Cost) > limit(to) {
					continue
				}
				// Strictly better off than where it is, or it would only
				// move the problem.
				if !lessUsed(load[to], c, load[src.Name]-s.Cost, capacity[src.Name], s.Cost) {
					continue
				}
				if best == "" || lessUsed(load[to], c, load[best], capacity[best], s.Cost) {
					best = to
				}
			}
			if best == "" {
				continue
			}
			load[src.Name] -= s.Cost
			load[best] += s.Cost
			moves = append(moves, Move{InputID: s.InputID, SessionID: s.SessionID, Owner: best})
			moved++
		}
	}
	return moves
}
