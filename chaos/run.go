package chaos

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// Timing shapes every fault of a run.
type Timing struct {
	Warm     time.Duration // workload before the fault
	Fault    time.Duration // how long the fault lasts
	Recover  time.Duration // workload after the heal
	Checker  time.Duration // porcupine's time limit
	Converge time.Duration // after the heal: every node back, every acked write everywhere
}

// Registers per fault: few enough that clients race on each, enough to
// spread porcupine's work over partitions.
const registers = 3

// StartStream creates a profile and an input, publishes a test pattern into
// node ingest from the client namespace, and starts watching the playlist
// through node watch. It returns once the stream plays.
func (s *Suite) StartStream(ctx context.Context, ingest, watch int, publishFor time.Duration) {
	t := s.t
	t.Helper()
	status, b, err := s.do(ctx, http.MethodPost, s.Procs[ingest].HTTP()+"/v1/profiles", streamProfile())
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, "create profile: %s", b)
	var prof struct {
		ID string `json:"id"`
	}
	require.NoError(t, jsonUnmarshal(b, &prof))
	status, b, err = s.do(ctx, http.MethodPost, s.Procs[ingest].HTTP()+"/v1/inputs", map[string]any{"name": "chaos stream", "profile_id": prof.ID})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, "create input: %s", b)
	var in struct {
		ID        string `json:"id"`
		StreamKey string `json:"stream_key"`
	}
	require.NoError(t, jsonUnmarshal(b, &in))
	s.input, s.streamKey = in.ID, in.StreamKey
	s.publish(ingest, publishFor)
	s.watcher = &Watcher{s: s, input: s.input, start: s.start, node: watch}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watcher.run(wctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, s.waitFor(60*time.Second, "the stream playing through "+s.Procs[watch].Name, func() error {
		_, err := s.watcher.newest(ctx, watch)
		return err
	}))
}

func (s *Suite) publish(ingest int, d time.Duration) {
	url := fmt.Sprintf("rtmp://%s:1935/live/%s", s.Procs[ingest].IP, s.streamKey)
	s.pub = testcluster.Publish(s.t, url, testcluster.PublishOptions{
		Width: 320, Height: 180, FPS: 15, Duration: d,
		Wrap: []string{"ip", "netns", "exec", s.Net.Client},
	})
	s.ingest = ingest
}

// movePublisher reconnects the encoder to node to, as an operator would move
// it off a node about to be cut off; the input's reconnect window keeps the
// stream going meanwhile.
func (s *Suite) movePublisher(ctx context.Context, to int, d time.Duration) error {
	s.pub.Stop()
	s.publish(to, d)
	return s.waitFor(30*time.Second, "the stream live again through "+s.Procs[to].Name, func() error {
		var in struct {
			State string `json:"state"`
		}
		if err := s.getJSON(ctx, to, "/v1/inputs/"+s.input, &in); err != nil {
			return err
		}
		if in.State != "live" {
			return fmt.Errorf("input is %s", in.State)
		}
		return nil
	})
}

// RunFault runs the workload through one fault and checks everything the
// package promises. Violations are returned in the result, not failed here,
// so that one bad fault still leaves a full report.
func (s *Suite) RunFault(t testing.TB, f Fault, tm Timing, publishFor time.Duration) *FaultResult {
	t.Helper()
	ctx := context.Background()
	res := &FaultResult{Name: f.Name, What: f.What, Nodes: len(s.Procs)}
	require.NoError(t, s.waitConverged(tm.Converge), "cluster before %s", f.Name)
	require.NoError(t, checkDisks(s.health(ctx)), "before %s", f.Name)
	leader, err := s.leaderIndex(ctx)
	require.NoError(t, err)
	roles := Roles{Leader: leader, N: len(s.Procs)}
	for i := range s.Procs {
		if i != leader {
			roles.Followers = append(roles.Followers, i)
		}
	}
	victims := f.Victims(roles)
	isVictim := map[int]bool{}
	for _, v := range victims {
		isVictim[v] = true
	}
	majoritySide := others(len(s.Procs), victims)
	res.Victims = names(s.Procs, victims)
	res.OldLeader = s.Procs[leader].Name

	if s.input != "" {
		if isVictim[s.ingest] {
			require.NoError(t, s.movePublisher(ctx, majoritySide[0], publishFor))
		}
		s.watcher.SetNode(majoritySide[len(majoritySide)-1])
	}
	// Bounded like every wait of the suite: a cluster that cannot take a
	// write fails the fault instead of hanging the run.
	rctx, cancel := context.WithTimeout(ctx, tm.Converge)
	keys, err := s.createRegisters(rctx, registers)
	cancel()
	require.NoError(t, err, "before %s", f.Name)

	hist := &History{}
	w := &Workload{s: s, keys: keys, hist: hist, start: s.start, tag: f.Name}
	wctx, stopClients := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range s.Procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(wctx, i, i)
		}()
	}
	defer func() { stopClients(); wg.Wait() }()
	phase(tm.Warm)

	faultStart := time.Since(s.start)
	heal, err := f.Inject(ctx, s, victims)
	require.NoError(t, err, "inject %s", f.Name)
	injected := time.Since(s.start)
	healed := false
	defer func() {
		if !healed {
			_ = heal(ctx)
		}
	}()
	faultFor := tm.Fault
	if f.Duration > 0 {
		faultFor = f.Duration
	}
	phase(faultFor)
	faultEnd := time.Since(s.start)
	require.NoError(t, heal(ctx), "heal %s", f.Name)
	healed = true
	phase(tm.Recover)
	stopClients()
	wg.Wait()

	ops := hist.Ops()
	c := countWrites(ops)
	res.Attempted, res.Acked, res.Failed, res.Unknown = c.Attempted, c.Acked, c.Failed, c.Unknown

	// Every node back, and every acked create listed by every node.
	checks := time.Now()
	if err := s.waitConverged(tm.Converge); err != nil {
		res.violate("the cluster did not recover within %s of the heal: %v", tm.Converge, err)
	}
	var lost, doubled []string
	missing := make([]int, len(s.Procs)) // acked creates node i does not list
	listErr := s.waitFor(tm.Converge, "every acked write on every node", func() error {
		lost, doubled = nil, nil
		for i := range s.Procs {
			listed, err := s.listInputs(ctx, i)
			if err != nil {
				return err
			}
			l, d := lostAndDoubled(ops, listed)
			missing[i] = len(l)
			lost, doubled = append(lost, l...), append(doubled, d...)
		}
		if len(lost) > 0 {
			return fmt.Errorf("missing: %v", lost)
		}
		return nil
	})
	res.Recovered = time.Since(checks)
	res.Health = s.health(ctx)
	if listErr != nil && len(lost) == 0 {
		res.violate("could not list every node's inputs after the heal: %v", listErr)
	}
	res.Lost, res.Doubled = len(dedupe(lost)), len(dedupe(doubled))
	if res.Lost > 0 {
		// Which node lacks what, and where its raft stands: a node whose
		// log stops short of the leader's receives nothing; one whose
		// applied index trails its commit index does not apply; a full
		// disk explains either.
		var who []string
		for i, m := range missing {
			if m > 0 {
				who = append(who, fmt.Sprintf("%s lacks %d", s.Procs[i].Name, m))
			}
		}
		var raft []string
		for _, h := range res.Health {
			raft = append(raft, h.String())
		}
		res.violate("acked creates missing %s after the heal (%s of %d acked creates): %s; raft and disks then: %s",
			tm.Converge, strings.Join(who, ", "), countCreates(ops), abbreviate(dedupe(lost), 12), strings.Join(raft, "; "))
	}
	if res.Doubled > 0 {
		res.violate("creates applied twice: %v", dedupe(doubled))
	}

	viz := filepath.Join(s.base, f.Name+"-porcupine.html")
	checked := time.Now()
	lin, err := checkLinearizable(ops, tm.Checker, viz)
	require.NoError(t, err)
	res.CheckTime = time.Since(checked)
	res.Linearizable = string(lin)
	switch lin {
	case porcupine.Illegal:
		res.violate("register history is not linearizable (porcupine's visualization: %s)", viz)
	case porcupine.Unknown:
		res.violate("porcupine gave up after %s", tm.Checker)
	}

	bad, err := s.doubleLeaders()
	require.NoError(t, err)
	for _, b := range bad {
		res.violate("two leaders in one %s", b)
	}

	views := s.viewsBetween(faultStart, faultEnd+tm.Recover)
	res.NewLeader, res.NewLeaderName, res.Terms = leaderTimes(views, s.Procs, majoritySide, leader, f.LeaderLost, faultStart)
	res.WritesBack = writesBack(ops, isVictim, faultStart, faultEnd)
	res.MajorityFailures = sampleFailures(ops, func(n int) bool { return !isVictim[n] }, faultStart, faultEnd+tm.Recover)
	for _, v := range victims {
		if n := countLines(s.Procs[v].LogPath, "no space left on device"); n > 0 {
			res.Note += fmt.Sprintf("%s logged %d 'no space left on device' errors. ", s.Procs[v].Name, n)
		}
	}
	if f.Minority {
		var hosts []string
		for _, v := range views {
			if v.Leader != "" {
				hosts = append(hosts, v.Leader)
				for _, p := range s.Procs {
					if p.Name == v.Leader {
						hosts = append(hosts, p.IP)
					}
				}
			}
		}
		res.MinorityAnswers = sampleRefusals(ops, isVictim, injected, faultEnd)
		for _, b := range minorityAnswers(ops, isVictim, injected, faultEnd, dedupe(hosts)) {
			res.violate("%s", b)
		}
	}
	if s.watcher != nil {
		res.Stream = judgeStream(s.watcher.Samples(faultStart, faultEnd), faultStart, faultEnd, min(6*time.Second, faultFor/2))
		res.StreamChecked = true
		if !res.Stream.Playable {
			res.violate("the stream stopped on the majority side: %s", res.Stream.Why)
		}
	}
	return res
}

// WorstCase is the longest RunFault can take when every wait runs out:
// the convergence waits before and after, the publisher's move, the
// registers, the workload's phases and porcupine.
func (tm Timing) WorstCase(f Fault) time.Duration {
	faultFor := tm.Fault
	if f.Duration > 0 {
		faultFor = f.Duration
	}
	return 4*tm.Converge + tm.Warm + faultFor + tm.Recover + opTimeout + tm.Checker + time.Minute
}

// phase lets the workload run for d: a phase of the experiment, not a wait
// for a condition.
func phase(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	<-timer.C
}

// leaderTimes is when, after the fault began, every majority-side node
// followed one leader (0 when the old leader kept its place throughout),
// who, and how many terms the window saw. When the fault takes the old
// leader away (leaderLost), only another leader on the majority side counts.
func leaderTimes(views []clusterView, procs []*Proc, majority []int, old int, leaderLost bool, from time.Duration) (time.Duration, string, int) {
	terms := map[uint64]bool{}
	latest := map[int]clusterView{}
	eligible := map[string]bool{}
	for i, p := range procs {
		eligible[p.Name] = !leaderLost || (slices.Contains(majority, i) && i != old)
	}
	found := time.Duration(-1)
	name := ""
	for _, v := range views {
		terms[v.Term] = true
		if !slices.Contains(majority, v.Node) {
			continue
		}
		latest[v.Node] = v
		if found >= 0 || len(latest) < len(majority) {
			continue
		}
		l := ""
		agreed := true
		for _, lv := range latest {
			if lv.Leader == "" || (l != "" && lv.Leader != l) {
				agreed = false
			}
			l = lv.Leader
		}
		if agreed && eligible[l] {
			found, name = v.At-from, l
		}
	}
	if found >= 0 && name == procs[old].Name && !leaderLost {
		// The leader was never in question: it is not a new one.
		found = 0
	}
	return found, name, len(terms)
}

// writesBack is how long majority-side writes kept failing: the longest
// stretch from a failed write's call to the call of the next acked one,
// over the failures called inside [from, to] (0 when none failed; -1 when
// none succeeded after the last). The stretch starts at the first failure,
// not at the fault's start, because some faults bite late (a full disk only
// once raft needs new pages); and each stretch ends at the next success, so
// that a few failures far apart (a leader with a full disk re-elected a
// few times) do not add up to one long outage.
func writesBack(ops []Op, victim map[int]bool, from, to time.Duration) time.Duration {
	var ws []Op
	for _, op := range ops {
		if op.Kind != OpRead && !victim[op.Node] && op.Call >= from {
			ws = append(ws, op)
		}
	}
	slices.SortStableFunc(ws, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	longest, failing := time.Duration(0), time.Duration(-1)
	for _, op := range ws {
		switch {
		case op.Result == OK && failing >= 0:
			longest, failing = max(longest, op.Call-failing), -1
		case op.Result != OK && failing < 0 && op.Call <= to:
			failing = op.Call
		}
	}
	if failing >= 0 {
		return -1
	}
	return longest
}

func names(procs []*Proc, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, procs[i].Name)
	}
	return out
}

// abbreviate lists up to n items and says how many more there were.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, " ")
	}
	return fmt.Sprintf("%s … and %d more", strings.Join(items[:n], " "), len(items)-n)
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
