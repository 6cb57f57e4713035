package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
)

// The scale simulation drives the real placement code with many nodes and
// streams and no media: cluster.Ring (candidate order, stand-ins, the
// rebalance plan) and fsm.State (StartSession placing with fsm.Place,
// PlaceSessions) exactly as the nodes run them, with a clock of its own.
// Raft writes are the commands applied to the state machine.

type simConfig struct {
	Nodes, Streams int
	Capacity       int // per node, cost units
	Seed           uint64
	// Churn: simulated time after the fill during which streams end and
	// start again (mean duration MeanLife), to measure raft writes/s.
	Churn, MeanLife time.Duration
	// Passthrough makes every stream passthrough (cost 1), like the
	// bench's scale row; otherwise streams follow simMix.
	Passthrough bool
}

// simMix are the profiles the simulated streams use: most streams are
// passthrough or a small ladder, some the default ladder.
var simMix = []struct {
	name  string
	share float64
	p     fsm.Profile
}{
	{"passthrough", 0.6, fsm.Profile{Renditions: []fsm.Rendition{{Passthrough: true}}}},
	{"360p ultrafast", 0.3, fsm.Profile{VideoPreset: "ultrafast", Renditions: []fsm.Rendition{{Width: 640, Height: 360}}}},
	{"default ladder", 0.1, fsm.Profile{VideoPreset: "veryfast", Renditions: []fsm.Rendition{
		{Width: 1280, Height: 720}, {Width: 854, Height: 480}, {Width: 640, Height: 360}}}},
}

type simResult struct {
	Nodes, Streams, Capacity int
	Refused                  int
	MeanCost                 float64
	// After the fill: streams and cost per node, max/min.
	SpreadStreams, SpreadCost float64
	MaxUtil                   float64
	// MaxOverMean is the busiest node's utilisation over the mean: what
	// placement bounds (fsm.PlacementBound).
	MaxOverMean     float64
	FillApplyMicros float64 // real time per StartSession apply
	// One node joins: streams moved, leader rounds until nothing moves.
	JoinMoved, JoinRounds int
	JoinNewNodeStreams    int
	// One node dies: streams whose producer changed at once (failover),
	// the stand-in's utilisation then, streams moved by the rebalance
	// afterwards, and its rounds.
	DeathFailover, DeathMoved, DeathRounds int
	StandInUtil, DeathMaxUtilAfter         float64
	// Churn: raft writes per second (session starts and ends, moves) and
	// their mix.
	WritesPerSec                 float64
	Starts, Ends, MoveWrites     int
	PlanMillis                   float64 // real time of one rebalance plan
	ChurnSpreadCost, ChurnMaxUtl float64
}

type sim struct {
	cfg     simConfig
	st      *fsm.State
	members []cluster.Member
	ring    *cluster.Ring
	now     time.Time
	rng     *rand.Rand
	cost    map[string]int // input id -> cost of its profile
	writes  int
	policy  cluster.RebalancePolicy
	seq     int
}

func newSim(cfg simConfig) (*sim, error) {
	s := &sim{cfg: cfg, st: fsm.New(nil), now: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		rng: rand.New(rand.NewPCG(cfg.Seed, 11)), cost: map[string]int{},
		// The leader's policy (node/placement.go).
		policy: cluster.RebalancePolicy{Bound: 1.25, MovesPerNode: 2, Settle: 30 * time.Second}}
	for i := range cfg.Nodes {
		s.members = append(s.members, simMember(fmt.Sprintf("n%03d", i), cfg.Capacity))
	}
	s.ring = cluster.NewRing(s.members)
	if err := s.apply(fsm.Command{Op: fsm.OpInit, Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p"}}}); err != nil {
		return nil, err
	}
	for i := range cfg.Streams {
		id := fmt.Sprintf("in%05d", i)
		if err := s.apply(fsm.Command{Op: fsm.OpCreateInput, Input: &fsm.Input{ID: id, StreamKey: "k" + id, Enabled: true}}); err != nil {
			return nil, err
		}
		x, p := s.rng.Float64(), simMix[len(simMix)-1].p
		if cfg.Passthrough {
			x = 0
		}
		for _, m := range simMix {
			if x < m.share {
				p = m.p
				break
			}
			x -= m.share
		}
		s.cost[id] = p.Cost()
	}
	s.writes = 0
	return s, nil
}

func simMember(name string, capacity int) cluster.Member {
	return cluster.Member{Name: name, State: cluster.StateAlive, Meta: cluster.Meta{Capacity: capacity}}
}

func (s *sim) apply(c fsm.Command) error {
	if c.At.IsZero() {
		c.At = s.now
	}
	s.writes++
	return s.st.ApplyCommand(c).Err
}

// start records a session as an ingest node does: placement from the
// ring's candidates and the stream's cost.
func (s *sim) start(id string) error {
	s.seq++
	return s.apply(fsm.Command{Op: fsm.OpStartSession, Session: &fsm.Session{InputID: id, ID: fmt.Sprintf("s%d", s.seq), IngestNode: "n000"},
		Placement: &fsm.Placement{Candidates: s.ring.PlacementCandidates(id), Cost: s.cost[id]}})
}

// loads is the cost and the streams each member produces now.
func (s *sim) loads() (cost, streams map[string]int) {
	cost, streams = map[string]int{}, map[string]int{}
	for _, ss := range s.st.Sessions() {
		if o, ok := s.ring.OwnerOf(ss.InputID, ss.Owner); ok {
			cost[o.Name] += ss.Cost
			streams[o.Name]++
		}
	}
	return cost, streams
}

func (s *sim) spread(m map[string]int) (ratio float64, maxV int) {
	lo, hi := -1, 0
	for _, mem := range s.ring.Members() {
		v := m[mem.Name]
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if lo <= 0 {
		return 0, hi
	}
	return float64(hi) / float64(lo), hi
}

// settle runs the leader's rounds (every 5 s of simulated time) until a
// round moves nothing; it returns the streams moved and the rounds.
func (s *sim) settle(maxRounds int) (moved, rounds int, err error) {
	for rounds < maxRounds {
		s.now = s.now.Add(5 * time.Second)
		moves := s.ring.PlanMoves(s.st.Sessions(), s.now, s.policy)
		if len(moves) == 0 {
			return moved, rounds, nil
		}
		rounds++
		moved += len(moves)
		if err := s.apply(fsm.Command{Op: fsm.OpPlaceSessions, Moves: moves}); err != nil {
			return moved, rounds, err
		}
	}
	return moved, rounds, nil
}

func (s *sim) producers() map[string]string {
	out := map[string]string{}
	for _, ss := range s.st.Sessions() {
		if o, ok := s.ring.OwnerOf(ss.InputID, ss.Owner); ok {
			out[ss.InputID] = o.Name
		}
	}
	return out
}

func runSim(cfg simConfig) (simResult, error) {
	res := simResult{Nodes: cfg.Nodes, Streams: cfg.Streams, Capacity: cfg.Capacity}
	s, err := newSim(cfg)
	if err != nil {
		return res, err
	}
	total := 0
	for _, c := range s.cost {
		total += c
	}
	res.MeanCost = float64(total) / float64(len(s.cost))

	// Fill: every stream starts, one after the other, as raft orders them.
	ids := make([]string, 0, len(s.cost))
	for id := range s.cost {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	began := time.Now()
	for _, id := range ids {
		if err := s.start(id); err != nil {
			if fsm.ErrorCode(err) != fsm.CodeConflict {
				return res, err
			}
			res.Refused++
		}
		s.now = s.now.Add(10 * time.Millisecond)
	}
	res.FillApplyMicros = float64(time.Since(began).Microseconds()) / float64(len(ids))
	cost, streams := s.loads()
	res.SpreadStreams, _ = s.spread(streams)
	var hi int
	res.SpreadCost, hi = s.spread(cost)
	res.MaxUtil = float64(hi) / float64(cfg.Capacity)
	placed := 0
	for _, c := range cost {
		placed += c
	}
	res.MaxOverMean = res.MaxUtil / (float64(placed) / float64(cfg.Capacity*cfg.Nodes))
	s.now = s.now.Add(time.Minute) // everything has settled

	// A node joins.
	before := s.producers()
	s.members = append(s.members, simMember("new", cfg.Capacity))
	s.ring = cluster.NewRing(s.members)
	res.JoinMoved, res.JoinRounds, err = s.settle(500)
	if err != nil {
		return res, err
	}
	after := s.producers()
	for id, o := range after {
		if o == "new" {
			res.JoinNewNodeStreams++
		}
		_ = before[id]
	}

	// A node dies: the most loaded one.
	cost, _ = s.loads()
	victim := ""
	for _, m := range s.members {
		if victim == "" || cost[m.Name] > cost[victim] {
			victim = m.Name
		}
	}
	before = s.producers()
	s.members = slices.DeleteFunc(s.members, func(m cluster.Member) bool { return m.Name == victim })
	s.ring = cluster.NewRing(s.members)
	after = s.producers()
	standIn := ""
	for id, o := range before {
		if o == victim {
			res.DeathFailover++
			standIn = after[id]
		}
	}
	cost, _ = s.loads()
	res.StandInUtil = float64(cost[standIn]) / float64(cfg.Capacity)
	if moves := s.ring.StandIns(s.st.Sessions(), func(n string) bool { return n == victim }); len(moves) > 0 {
		if err := s.apply(fsm.Command{Op: fsm.OpPlaceSessions, Moves: moves}); err != nil {
			return res, err
		}
	}
	res.DeathMoved, res.DeathRounds, err = s.settle(500)
	if err != nil {
		return res, err
	}
	cost, _ = s.loads()
	_, hi = s.spread(cost)
	res.DeathMaxUtilAfter = float64(hi) / float64(cfg.Capacity)

	// Churn: each stream ends with probability 1/MeanLife per second and
	// its input publishes again at once (arrivals = departures); the
	// leader's round runs every 5 s.
	if cfg.Churn > 0 {
		s.writes = 0
		live := s.st.Sessions()
		p := 1 / cfg.MeanLife.Seconds()
		planTime, plans := time.Duration(0), 0
		for sec := 1; sec <= int(cfg.Churn.Seconds()); sec++ {
			s.now = s.now.Add(time.Second)
			for _, ss := range live {
				if s.rng.Float64() >= p {
					continue
				}
				if err := s.apply(fsm.Command{Op: fsm.OpEndSession, ID: ss.InputID, Session: &fsm.Session{ID: ss.ID}}); err != nil {
					return res, err
				}
				res.Ends++
				if err := s.start(ss.InputID); err != nil && fsm.ErrorCode(err) != fsm.CodeConflict {
					return res, err
				}
				res.Starts++
			}
			if sec%5 == 0 {
				t0 := time.Now()
				moves := s.ring.PlanMoves(s.st.Sessions(), s.now, s.policy)
				planTime += time.Since(t0)
				plans++
				if len(moves) > 0 {
					res.MoveWrites++
					if err := s.apply(fsm.Command{Op: fsm.OpPlaceSessions, Moves: moves}); err != nil {
						return res, err
					}
				}
				live = s.st.Sessions()
			}
		}
		res.WritesPerSec = float64(s.writes) / cfg.Churn.Seconds()
		res.PlanMillis = float64(planTime.Microseconds()) / 1000 / float64(max(plans, 1))
		cost, _ = s.loads()
		res.ChurnSpreadCost, hi = s.spread(cost)
		res.ChurnMaxUtl = float64(hi) / float64(cfg.Capacity)
	}
	return res, nil
}
