package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
)

// Placement of live streams (issue 11, DESIGN "second wave" rule 6): the
// owner of a stream is chosen by load when its session starts, recorded in
// raft with the session, and resolved on the ring by every node alike
// (cluster.Ring.OwnerOf). The leader keeps the records true: it records
// the stand-in of a dead owner, and it moves a few streams at a time off
// nodes above the load bound, each move a make-before-break handover.

const (
	// rebalanceEvery paces the leader's moves: a handover takes a few
	// seconds (the new owner's first segment), so a change of the member
	// set becomes a trickle of handovers, not a stampede.
	rebalanceEvery = 5 * time.Second
	// movesPerNode bounds the streams one node hands over per round.
	movesPerNode = 2
	// pinnedFor: a stream placed or moved this recently is not moved (its
	// handover may still be under way).
	pinnedFor = 30 * time.Second
	// loadBound is how far above the cluster's mean utilisation a node
	// may be before the leader moves streams off it (the ring's own
	// bounded-load factor).
	loadBound = 1.25
)

// errNoCapacity refuses a publish that fits on no node.
var errNoCapacity = errors.New("no node has room for this stream")

// owner is the member that produces an input's stream now: the owner its
// session records, resolved on the ring (its standby while it is dead or
// draining), or the ring's owner for an input that never had one.
func (n *Node) owner(inputID string) (cluster.Member, bool) {
	return n.clu.OwnerOf(inputID, n.recordedOwner(inputID))
}

// standby is the member the owner copies its output to: the one that
// produces the stream once the owner is gone.
func (n *Node) standby(inputID string) (cluster.Member, bool) {
	return n.clu.StandbyOf(inputID, n.recordedOwner(inputID))
}

// recordedOwner is the owner an input's session records or, once the
// session is over, the one it last recorded: that node ends the playlists
// and serves them (ENDLIST, the last segments) while players and CDNs
// still ask.
func (n *Node) recordedOwner(inputID string) string {
	if o := n.state.SessionOwner(inputID); o != "" {
		return o
	}
	n.lastOwnerMu.RLock()
	defer n.lastOwnerMu.RUnlock()
	return n.lastOwner[inputID]
}

// rememberOwners keeps every session's recorded owner for recordedOwner.
func (n *Node) rememberOwners(sessions []*fsm.Session) {
	n.lastOwnerMu.Lock()
	defer n.lastOwnerMu.Unlock()
	for _, s := range sessions {
		if s.Owner != "" {
			n.lastOwner[s.InputID] = s.Owner
		}
	}
	for id := range n.lastOwner {
		if !n.state.HasInput(id) {
			delete(n.lastOwner, id)
		}
	}
}

// candidates are the placement candidates of an input on a ring.
func candidates(r *cluster.Ring, inputID string) []fsm.Candidate {
	return r.PlacementCandidates(inputID)
}

// expectedOwner guesses who will own an input's stream once its session
// is recorded: the owner it has (a reconnect, a backup encoder), else the
// node fsm.Place picks on what this node knows now. Other publishes may be
// placed first, so it is a guess: good for warming a cache, never for
// routing.
func (n *Node) expectedOwner(inputID string) string {
	if s := n.state.Session(inputID); s != nil && s.Owner != "" {
		if o, ok := n.clu.OwnerOf(inputID, s.Owner); ok {
			return o.Name
		}
	}
	in := n.state.Input(inputID)
	if in == nil {
		return ""
	}
	owner, _ := fsm.Place(candidates(n.clu.Ring(), inputID), n.state.Loads(), n.streamCost(in), fsm.PlacementChoices)
	return owner
}

// streamCost is what an input's stream costs with its current profile.
func (n *Node) streamCost(in *fsm.Input) int {
	return n.state.Profile(in.ProfileID).Cost()
}

// admit decides, at the publish auth hook, whether a new stream of an
// input can be placed: on a node with room for its ladder or, when the
// input allows it, as passthrough. A publish that continues a session
// (a reconnect, a backup encoder) is admitted: its stream already has an
// owner. The state machine decides again when the session is recorded;
// this early answer is what lets the encoder see a refusal at once.
func (n *Node) admit(in *fsm.Input) error {
	return admission(candidates(n.clu.Ring(), in.ID), n.state.Loads(), n.state.Session(in.ID), in, n.streamCost(in))
}

// admission is admit's decision, pure for its table test. A node that
// knows no serving member yet (it is joining) cannot judge, and leaves the
// decision to the state machine.
func admission(cands []fsm.Candidate, loads map[string]int, s *fsm.Session, in *fsm.Input, cost int) error {
	if (s != nil && s.Owner != "") || len(cands) == 0 {
		return nil
	}
	if _, ok := fsm.Place(cands, loads, cost, fsm.PlacementChoices); ok {
		return nil
	}
	if in.Overload == fsm.OverloadPassthrough {
		if _, ok := fsm.Place(cands, loads, fsm.PassthroughCost, fsm.PlacementChoices); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: the stream costs %d units and the %d serving nodes have %s left", errNoCapacity, cost, len(cands), headroom(cands, loads))
}

// headroom describes what each candidate has left, for the refusal.
func headroom(cands []fsm.Candidate, loads map[string]int) string {
	most := 0
	for _, c := range cands {
		most = max(most, c.Capacity-loads[c.Name])
	}
	return fmt.Sprintf("at most %d", most)
}

// refusals remembers, per input, why its last publish was refused here.
type refusals struct {
	mu    sync.Mutex
	by    map[string]refusal
	total map[string]uint64 // by reason, for the metric
}

type refusal struct {
	Reason string
	At     time.Time
}

func newRefusals() *refusals {
	return &refusals{by: map[string]refusal{}, total: map[string]uint64{}}
}

func (r *refusals) add(inputID, reason, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total[reason]++
	if inputID != "" {
		r.by[inputID] = refusal{Reason: detail, At: time.Now()}
	}
}

func (r *refusals) last(inputID string) (refusal, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.by[inputID]
	return x, ok
}

func (r *refusals) clear(inputID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.by, inputID)
}

func (r *refusals) counts() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.total))
	for k, v := range r.total {
		out[k] = v
	}
	return out
}

// placeSessions, on the leader, keeps the recorded owners true: a session
// whose owner is dead or gone is given to the member that stands in for
// it already (cluster.Ring.StandIns: no stream moves), and streams on
// nodes above the load bound are moved, a few per round
// (cluster.Ring.PlanMoves). A draining owner keeps its record: its standby
// stands in until it is undrained, and then the stream goes back
// (make-before-break both ways).
//
// A member the leader has never heard of counts as gone only once it has
// led for a while (gossip may still be filling in), like reapSessions.
func (n *Node) placeSessions(ctx context.Context, rebalance bool, leaderFor time.Duration) {
	r := n.clu.Ring()
	if len(r.Members()) == 0 {
		return
	}
	state := map[string]string{}
	for _, m := range n.clu.Members() {
		state[m.Name] = m.State
	}
	gone := func(name string) bool {
		st, known := state[name]
		return (known && (st == cluster.StateDead || st == cluster.StateLeft)) || (!known && leaderFor > 15*time.Second)
	}
	sessions := n.state.Sessions()
	if moves := r.StandIns(sessions, gone); len(moves) > 0 {
		n.proposeMoves(ctx, moves, "owner gone: its standby is the owner now")
		return // the next round plans on the new records
	}
	if !rebalance {
		return
	}
	policy := cluster.RebalancePolicy{Bound: loadBound, MovesPerNode: movesPerNode, Settle: pinnedFor}
	if moves := r.PlanMoves(sessions, time.Now(), policy); len(moves) > 0 {
		n.proposeMoves(ctx, moves, "rebalance: moving streams off nodes above the load bound")
	}
}

func (n *Node) proposeMoves(ctx context.Context, moves []fsm.Move, why string) {
	res, err := n.apply(ctx, fsm.Command{Op: fsm.OpPlaceSessions, At: time.Now().UTC(), Moves: moves})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		n.log.Warn("record new owners", "moves", len(moves), "err", err)
		return
	}
	for _, m := range moves {
		n.log.Info(why, "input", m.InputID, "owner", m.Owner)
	}
}

// passthroughOf is the profile a stream carried as passthrough (overload)
// runs: the same packaging, one rendition that copies the source. It
// advertises the ladder's top bitrate, the closest guess of the source's.
func passthroughOf(p *fsm.Profile) *fsm.Profile {
	c := p.Clone()
	src := fsm.Rendition{Name: "source", Passthrough: true}
	for _, r := range p.Renditions {
		if r.VideoBitrateKbps > src.VideoBitrateKbps {
			src.VideoBitrateKbps, src.Width, src.Height = r.VideoBitrateKbps, r.Width, r.Height
		}
		src.AudioBitrateKbps = max(src.AudioBitrateKbps, r.AudioBitrateKbps)
	}
	c.Renditions = []fsm.Rendition{src}
	return c
}
