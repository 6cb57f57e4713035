package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/hlscheck"
	"github.com/dionysia/dionysia/testcluster/player"
)

const (
	contRounds = 3
	// contGap is how long the encoder stays away in the reconnect event.
	contGap = 2 * time.Second
	// contPlayOn is media the player must play after an event is over
	// (the new producer's segments are in the playlist) before its stalls
	// are read: it plays about a second behind the live edge, so the seam
	// is behind it by then.
	contPlayOn = 3 * time.Second
	// contCPUWindow is each transcoder CPU sample.
	contCPUWindow = 10 * time.Second
	// contViewers ask one non-owner for the same new file at once.
	contViewers = 100
	// contFetchSamples is how many new segments (and hinted parts) are
	// requested by contViewers viewers.
	contFetchSamples = 5
	contRendition    = "180p"
	// contRecover is how long a player may take to play again after an
	// event before its run counts as failed.
	contRecover = 30 * time.Second
)

// contProfile is the row's small ladder: cheap enough for three nodes, a
// hot standby and a browser on 2 cores.
func contProfile(videoKbps int) map[string]any {
	return map[string]any{
		"name":            "continuity",
		"segment_seconds": 1,
		"video_preset":    "ultrafast",
		"latency":         "low",
		"renditions": []map[string]any{
			{"name": contRendition, "width": 320, "height": 180, "video_bitrate_kbps": videoKbps, "audio_bitrate_kbps": 64, "fps": 15},
			{"name": "90p", "width": 160, "height": 90, "video_bitrate_kbps": videoKbps / 3, "audio_bitrate_kbps": 64, "fps": 15},
		},
	}
}

// Events of the row, in the report's order, with their goals (seconds of
// the longest stall; 0 = no goal).
var contEvents = []struct {
	key, metric string
	goal        float64
	goalText    string
}{
	{"reconnect", "encoder reconnect after a 2 s gap: longest stall", contGap.Seconds() + 1, "≤ 3 s (gap + 1 s)"},
	{"kill", "owner killed (SIGKILL): longest stall", 3, "≤ 3 s"},
	{"hotkill", "owner killed, hot standby: longest stall", 1, "≤ 1 s"},
	{"drain", "drain of the owner: longest stall", 0.5, "≤ 0.5 s"},
	{"profile", "profile change: longest stall", 0.5, "≤ 0.5 s"},
	{"undrain", "undrain (the stream moves back): longest stall", 0, ""},
}

// contResults is what every round adds to.
type contResults struct {
	samples    map[string][]float64 // event -> longest stall, s
	fatal      map[string][]string  // event -> fatal player errors (a new player took over)
	stuck      map[string][]string  // event -> players that did not play again (a new one took over)
	detect     map[string][]float64 // kill -> the player's node routes to another owner, s
	segsIn     map[string][]float64 // kill -> the new owner's segments in the playlist, s
	slate      int                  // reconnects whose slate segments were listed during the gap
	cpuOne     []float64            // transcoder CPU s per minute, one transcoder
	cpuHot     []float64            // the same with a hot standby
	kills      int
	leaderKill int
	coalSeg    []float64 // internal fetches per new segment
	coalPart   []float64 // internal fetches per hinted part
	players    int       // players started
	fetches    int       // playlist fetches checked
	discs      int       // discontinuities they showed
	violations []string  // RFC 8216 rules they broke
	lastPlayer string
}

// contRun is one cluster of the row, its stream and its player.
type contRun struct {
	ctx  context.Context
	t    testing.TB
	c    *testcluster.Cluster
	in   testcluster.Input
	pid  string
	kbps int
	// owner is the input's ring owner (the node drained and killed),
	// ingest the node the publisher uses, viewer the player's node; the
	// ingest and viewer nodes are never killed.
	owner, ingest, viewer *testcluster.Node
	rtmp                  string
	pubOpts               testcluster.PublishOptions
	pub                   *testcluster.Publisher
	p                     *player.Player
	watch                 *playlistWatch
	res                   *contResults
}

// rowContinuity: the longest stall a real low-latency player sees through
// encoder reconnects, owner kills (with and without hot standby), drains
// and profile changes; the CPU a hot standby costs; internal fetches per
// new file while many viewers ask a non-owner for it.
func rowContinuity(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	if why := browserReady(e); why != "" {
		return skip(why)
	}
	r.Method = fmt.Sprintf("Three in-process nodes (testcluster), a small ladder (320×180 + 160×90 at 15 fps, x264 ultrafast, 1 s "+
		"segments, latency low) and a 320×180 15 fps test-pattern publisher (`testcluster.Publish`) on a node that does not own the "+
		"input. An hls.js 1.6 player in low-latency mode (testcluster/player, headless Chromium) plays `master.m3u8` through the "+
		"third node. Each event is timed from just before it happens until the new producer's segments are in the playlist (a "+
		"new `EXT-X-DISCONTINUITY` and a whole segment after it, seen by polling the first variant's playlist through the "+
		"player's node every 250 ms) and the player has then played %s more; the figure is the longest stall the player's page "+
		"measured in that time (media time not moving while playing, to ~100 ms). %d rounds, each on two fresh clusters. "+
		"Cluster A: the encoder stops and comes back after %s (same key, same node; the input's default 30 s reconnect "+
		"window); a profile change (PUT with another bitrate); drain of the owner (`POST /v1/nodes/<owner>/drain`, until its "+
		"transcoder has stopped) and undrain; SIGKILL of the owner (`testcluster.Kill`: no leave, its ffmpeg and mediamtx "+
		"stopped). Cluster B: `hot_standby: true` set by PATCH, and once the standby's transcoder runs, SIGKILL of the owner. "+
		"A player that reports a fatal error, or does not play again within 30 s, counts as a failed run of its event (a miss) "+
		"and is replaced by a new one. Medians of the rounds. Hot standby CPU (cluster B): user+sys of every transcoder ffmpeg (/proc/<pid>/stat) over %s, before and "+
		"after the PATCH. Coalescing (first cluster A): as soon as the owner lists a new segment, %d concurrent clients ask "+
		"the ingest node (not the owner, asked by nobody else) for it; `dionysia_origin_internal_fetches_total` on that node is "+
		"read before and after; the same for the part the owner's `EXT-X-PRELOAD-HINT` announces (asked before it exists, as "+
		"LL-HLS players do). Segments/s through a non-owner versus the owner (a real ~0.8 MB segment): see the routing row.",
		contPlayOn, contRounds, contGap, contCPUWindow, contViewers)
	res := &contResults{samples: map[string][]float64{}, fatal: map[string][]string{}, stuck: map[string][]string{},
		detect: map[string][]float64{}, segsIn: map[string][]float64{}}
	defer res.report(r)

	perRound := 150 * time.Second
	for round := range contRounds {
		if round > 0 && ctxLeft(ctx) < perRound {
			r.note("stopped after %d rounds: row time budget", round)
			break
		}
		start := time.Now()
		for _, part := range []string{"a", "b"} {
			var err error
			t.Run(fmt.Sprintf("round%d%s", round+1, part), func(t *testing.T) {
				// A cluster that fails to start (on this shared box: a port
				// another test process took meanwhile) is started once more;
				// what fails after the setup is the row's.
				var cr *contRun
				for attempt := 1; attempt <= 2; attempt++ {
					if cr, err = startContRunSoft(ctx, t, res); err == nil {
						break
					}
					if attempt == 1 && ctx.Err() == nil {
						t.Logf("continuity: setup failed, once more: %v", err)
						r.note("round %d, cluster %s: setup failed and was retried once: %v", round+1, strings.ToUpper(part), err)
					}
				}
				if err != nil {
					return
				}
				defer cr.stop()
				if part == "a" {
					err = cr.clusterA(len(res.coalSeg) == 0)
				} else {
					err = cr.clusterB()
				}
			})
			if err == nil && t.Failed() {
				err = fmt.Errorf("aborted by a test helper (see the test log)")
			}
			if err != nil {
				return fmt.Errorf("round %d, cluster %s: %w", round+1, strings.ToUpper(part), err)
			}
		}
		perRound = max(perRound, time.Since(start)+10*time.Second)
		t.Logf("continuity: round %d took %s", round+1, time.Since(start).Round(time.Second))
	}
	return nil
}

// startContRunSoft is startContRun where a test helper's Fatal during the
// setup fails the setup, not the test (see softT).
func startContRunSoft(ctx context.Context, t *testing.T, res *contResults) (*contRun, error) {
	st := &softT{TB: t, setup: true}
	var cr *contRun
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		cr, err = startContRun(ctx, st, res)
	}()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setup = false
	if st.failed {
		return nil, fmt.Errorf("setup: %s", st.msg)
	}
	return cr, err
}

// softT is the testing.TB of a cluster's helpers: while setup is set, a
// Fatal (a node that did not start, a stream not playable in time) records
// the failure and ends only the goroutine running the setup, so that the
// row can try once more without failing the test; afterwards it is the
// test's own. What the failed attempt started is still stopped when the
// subtest ends (its cleanups are the test's).
type softT struct {
	testing.TB
	mu     sync.Mutex
	setup  bool
	failed bool
	msg    string
}

func (s *softT) soft(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.setup {
		return false
	}
	if !s.failed {
		s.failed, s.msg = true, msg
	}
	return true
}

func (s *softT) Fatalf(format string, args ...any) {
	if s.soft(fmt.Sprintf(format, args...)) {
		s.TB.Logf("setup failed: "+format, args...)
		runtime.Goexit()
	}
	s.TB.Fatalf(format, args...)
}

func (s *softT) Fatal(args ...any) {
	if s.soft(fmt.Sprint(args...)) {
		s.TB.Log(append([]any{"setup failed:"}, args...)...)
		runtime.Goexit()
	}
	s.TB.Fatal(args...)
}

func (s *softT) FailNow() {
	if s.soft("FailNow") {
		runtime.Goexit()
	}
	s.TB.FailNow()
}

func (s *softT) Errorf(format string, args ...any) {
	if s.soft(fmt.Sprintf(format, args...)) {
		s.TB.Logf("setup failed: "+format, args...)
		return
	}
	s.TB.Errorf(format, args...)
}

func (s *softT) Error(args ...any) {
	if s.soft(fmt.Sprint(args...)) {
		s.TB.Log(append([]any{"setup failed:"}, args...)...)
		return
	}
	s.TB.Error(args...)
}

func (s *softT) Fail() {
	if s.soft("Fail") {
		return
	}
	s.TB.Fail()
}

// Failed also says true for a failed setup: testcluster then logs the
// nodes' last lines when it stops them.
func (s *softT) Failed() bool {
	s.mu.Lock()
	f := s.failed
	s.mu.Unlock()
	return f || s.TB.Failed()
}

// startContRun starts a cluster, the input, its publisher, the playlist
// watch and the player.
func startContRun(ctx context.Context, t testing.TB, res *contResults) (*contRun, error) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	if dir := os.Getenv("BENCH_NODE_LOGS"); dir != "" {
		// Runs before the cluster stops (cleanups run last-in first-out).
		t.Cleanup(func() { keepNodeLogs(t, c, dir) })
	}
	c.WaitMembers(3, 30*time.Second)
	c.WaitRaftServers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	cr := &contRun{ctx: ctx, t: t, c: c, kbps: 300, res: res}
	cr.pid = leader.CreateProfile(t, contProfile(cr.kbps))
	cr.in = leader.CreateInput(t, map[string]any{"name": "continuity", "profile_id": cr.pid})
	owner, err := routeOwner(ctx, leader.HTTPURL(), cr.in.ID)
	if err != nil {
		return nil, err
	}
	for _, n := range c.Nodes() {
		switch {
		case n.Name() == owner:
			cr.owner = n
		case cr.ingest == nil:
			cr.ingest = n
		default:
			cr.viewer = n
		}
	}
	if cr.owner == nil || cr.viewer == nil {
		return nil, fmt.Errorf("owner %q is not a node", owner)
	}
	cr.rtmp = cr.ingest.WaitInput(t, cr.in.ID).Ingest.RTMP
	cr.pubOpts = testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15, Duration: 10 * time.Minute}
	cr.pub = testcluster.Publish(t, cr.rtmp, cr.pubOpts)
	pb := testcluster.WaitPlayable(t, cr.viewer, cr.in.ID, 2, 3, 60*time.Second)
	cr.watch = startPlaylistWatch(pb.MediaURL[pb.Variants[0].URI])
	if err := cr.startPlayer(); err != nil {
		cr.stop()
		return nil, err
	}
	t.Logf("continuity: owner %s, publisher on %s, player on %s", cr.owner.Name(), cr.ingest.Name(), cr.viewer.Name())
	return cr, nil
}

// stop folds the playlist checks into the results and stops the watch and
// the player (the cluster and the publisher stop with the subtest).
func (cr *contRun) stop() {
	cr.watch.stop()
	sum := cr.watch.summary()
	cr.res.fetches += sum.Fetches
	cr.res.discs += sum.Discontinuities
	v := cr.watch.check.Violations()
	cr.res.violations = append(cr.res.violations, v...)
	for _, x := range v[:min(len(v), 5)] {
		cr.t.Logf("continuity: RFC 8216: %s", x)
	}
	if cr.p != nil {
		cr.res.lastPlayer = cr.p.Stats().String()
		cr.p.Close()
	}
}

// clusterA: reconnect, profile change, drain, undrain, owner kill (and, in
// the first round, coalescing first, while nothing else moves).
func (cr *contRun) clusterA(coalesce bool) error {
	if coalesce {
		var err error
		if cr.res.coalSeg, cr.res.coalPart, err = cr.coalescing(); err != nil {
			return fmt.Errorf("coalescing: %w", err)
		}
	}
	steps := []struct {
		key string
		do  func() error
	}{
		{"reconnect", cr.reconnect},
		{"profile", cr.profileChange},
		{"drain", func() error { return cr.move("drain") }},
		{"undrain", func() error { return cr.move("undrain") }},
		{"kill", func() error { return cr.kill("kill") }},
	}
	for _, s := range steps {
		if err := cr.event(s.key, s.do); err != nil {
			return err
		}
	}
	return nil
}

// clusterB: transcoder CPU without and with a hot standby, then the owner
// killed with the hot standby running.
func (cr *contRun) clusterB() error {
	if err := cr.waitTranscoders(1, 30*time.Second); err != nil {
		return err
	}
	one, err := cr.cpu(1)
	if err != nil {
		return err
	}
	if err := cr.setHot(true); err != nil {
		return err
	}
	if err := cr.waitTranscoders(2, 30*time.Second); err != nil {
		return fmt.Errorf("hot standby: %w", err)
	}
	if err := sleepCtx(cr.ctx, 2*time.Second); err != nil {
		return err
	}
	two, err := cr.cpu(2)
	if err != nil {
		return err
	}
	cr.res.cpuOne, cr.res.cpuHot = append(cr.res.cpuOne, one), append(cr.res.cpuHot, two)
	return cr.event("hotkill", func() error { return cr.kill("hotkill") })
}

// event runs do and records the longest stall the player saw from just
// before it until it has played contPlayOn after do returned.
func (cr *contRun) event(key string, do func() error) error {
	cr.t.Logf("continuity: event %s at %s", key, time.Now().Format("15:04:05.000"))
	m := cr.p.Mark()
	start := time.Now()
	if err := do(); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	took := time.Since(start)
	err := cr.playOn(contPlayOn, contRecover)
	var fe fatalError
	var se stuckError
	switch {
	case errors.As(err, &fe):
		// The viewer would have had to reload the page: the event's run
		// counts as failed, and a new player watches the next ones.
		cr.res.fatal[key] = append(cr.res.fatal[key], fe.msg)
		cr.t.Logf("continuity: %s: FATAL player error (event took %s): %s\nconsole:\n%s", key, took.Round(10*time.Millisecond), fe.msg, consoleTail(cr.p))
		return cr.startPlayer()
	case errors.As(err, &se):
		// Not fatal, but not playing again either: the stall so far is a
		// lower bound, the run failed, and a new player takes over.
		stall := cr.p.LongestStallSince(m)
		cr.res.samples[key] = append(cr.res.samples[key], stall.Seconds())
		cr.res.stuck[key] = append(cr.res.stuck[key], se.msg)
		cr.t.Logf("continuity: %s: the player did not play again within %s (stall %s so far, event took %s): %s\nconsole:\n%s",
			key, contRecover, stall.Round(10*time.Millisecond), took.Round(10*time.Millisecond), se.msg, consoleTail(cr.p))
		return cr.startPlayer()
	case err != nil:
		return fmt.Errorf("%s: %w", key, err)
	}
	stall := cr.p.LongestStallSince(m)
	cr.res.samples[key] = append(cr.res.samples[key], stall.Seconds())
	cr.t.Logf("continuity: %s: longest stall %s (event took %s)", key, stall.Round(10*time.Millisecond), took.Round(10*time.Millisecond))
	return nil
}

// startPlayer (re)starts the row's player and waits until it plays.
func (cr *contRun) startPlayer() error {
	if cr.p != nil {
		cr.p.Close()
	}
	cr.res.players++
	cr.p = player.Start(cr.t, player.Options{URL: cr.viewer.HTTPURL() + "/live/" + cr.in.ID + "/master.m3u8", LowLatency: true,
		Name: fmt.Sprintf("hls.js LL via %s (#%d)", cr.viewer.Name(), cr.res.players)})
	if err := cr.playOn(2*time.Second, 60*time.Second); err != nil {
		return fmt.Errorf("the player did not start: %w", err)
	}
	return nil
}

// fatalError is a player that gave up.
type fatalError struct{ msg string }

func (f fatalError) Error() string { return "fatal player error: " + f.msg }

// stuckError is a player that neither plays nor gives up.
type stuckError struct{ msg string }

func (s stuckError) Error() string { return s.msg }

// consoleTail is the last lines a player's page logged.
func consoleTail(p *player.Player) string {
	lines := strings.Split(p.Console(), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// playOn waits until the player has played d of media from now.
func (cr *contRun) playOn(d, timeout time.Duration) error {
	m := cr.p.Mark()
	deadline := time.Now().Add(timeout)
	for {
		s := cr.p.Stats()
		if len(s.Fatal) > 0 {
			return fatalError{strings.Join(s.Fatal, "; ") + " (non-fatal before: " + strings.Join(s.Errors[max(0, len(s.Errors)-3):], "; ") + ")"}
		}
		if s.Played-m.Played >= d.Seconds() {
			return nil
		}
		if time.Now().After(deadline) {
			return stuckError{fmt.Sprintf("readyState %d, buffered to %.2fs, last errors %q", s.ReadyState, s.BufferedEnd,
				s.Errors[max(0, len(s.Errors)-2):])}
		}
		if err := sleepCtx(cr.ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// seam waits until the watched playlist shows want more discontinuities
// than before and a whole segment after them.
func (cr *contRun) seam(before hlscheck.Summary, want int, timeout time.Duration) error {
	var now hlscheck.Summary
	err := pollUntil(cr.ctx, timeout, 100*time.Millisecond, func() bool {
		now = cr.watch.summary()
		return now.Discontinuities >= before.Discontinuities+want && now.MaxMSN > before.MaxMSN+uint64(want)
	})
	if err != nil {
		return fmt.Errorf("%d new discontinuities and a segment after them: %w (before: %d discontinuities, segment %d; now %d, %d; %s)",
			want, err, before.Discontinuities, before.MaxMSN, now.Discontinuities, now.MaxMSN, cr.watch.report())
	}
	return nil
}

func (cr *contRun) reconnect() error {
	before := cr.watch.summary()
	cr.pub.Stop()
	stopped := time.Now()
	if err := cr.waitStatus(10*time.Second, func(st inputStatus) bool { return st.State == "reconnecting" }); err != nil {
		return err
	}
	if err := sleepCtx(cr.ctx, contGap-time.Since(stopped)); err != nil {
		return err
	}
	slate := cr.watch.summary().Discontinuities > before.Discontinuities
	if slate {
		cr.res.slate++
	}
	cr.pub = testcluster.Publish(cr.t, cr.rtmp, cr.pubOpts)
	if err := cr.waitStatus(10*time.Second, func(st inputStatus) bool { return st.State == "live" }); err != nil {
		return err
	}
	want := 1
	if slate {
		want = 2 // the slate's seam, then the new transcoder's
	}
	return cr.seam(before, want, 20*time.Second)
}

func (cr *contRun) profileChange() error {
	before := cr.watch.summary()
	cr.kbps = 750 - cr.kbps // 300 <-> 450
	resp, err := cr.viewer.Do(http.MethodPut, "/v1/profiles/"+cr.pid, contProfile(cr.kbps))
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("PUT profile: %d %s", resp.Status, resp.Body)
	}
	return cr.seam(before, 1, 20*time.Second)
}

// move drains or undrains the owner node: the stream moves make-before-
// break; the event lasts until the old owner's transcoder has stopped.
func (cr *contRun) move(verb string) error {
	before := cr.watch.summary()
	from, err := routeOwner(cr.ctx, cr.viewer.HTTPURL(), cr.in.ID)
	if err != nil {
		return err
	}
	resp, err := cr.viewer.Do(http.MethodPost, "/v1/nodes/"+cr.owner.Name()+"/"+verb, nil)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("%s: %d %s", verb, resp.Status, resp.Body)
	}
	if err := cr.waitRoute(10*time.Second, func(o string) bool { return (o == cr.owner.Name()) == (verb == "undrain") }); err != nil {
		return err
	}
	if err := cr.seam(before, 1, 30*time.Second); err != nil {
		return err
	}
	old := cr.node(from)
	if old == nil {
		return fmt.Errorf("no node %q", from)
	}
	return pollUntilErr(cr.ctx, 30*time.Second, 200*time.Millisecond, func() error {
		n, err := metricValue(old, "dionysia_transcoders_running")
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%s still runs %v transcoders", from, n)
		}
		return nil
	})
}

// kill SIGKILLs the owner and waits for the new owner's segments.
func (cr *contRun) kill(key string) error {
	before := cr.watch.summary()
	cr.res.kills++
	if cr.owner.ClusterHandle().IsLeader() {
		cr.res.leaderKill++
	}
	killed := time.Now()
	cr.c.Kill(cr.owner.Index)
	if err := cr.waitRoute(30*time.Second, func(o string) bool { return o != cr.owner.Name() }); err != nil {
		return err
	}
	cr.res.detect[key] = append(cr.res.detect[key], time.Since(killed).Seconds())
	if err := cr.seam(before, 1, 30*time.Second); err != nil {
		return err
	}
	cr.res.segsIn[key] = append(cr.res.segsIn[key], time.Since(killed).Seconds())
	return nil
}

func (cr *contRun) setHot(on bool) error {
	resp, err := cr.viewer.Do(http.MethodPatch, "/v1/inputs/"+cr.in.ID, map[string]any{"hot_standby": on})
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("PATCH hot_standby=%v: %d %s", on, resp.Status, resp.Body)
	}
	return nil
}

// cpu samples the transcoders' CPU (s per minute); want transcoders must
// run throughout. A window in which one starts or stops is taken again.
func (cr *contRun) cpu(want int) (float64, error) {
	var last error
	for range 3 {
		cpu, n, err := transcoderCPU(cr.ctx, contCPUWindow)
		switch {
		case err != nil:
			last = err
		case n != want:
			last = fmt.Errorf("%d transcoders, want %d", n, want)
		default:
			return cpu * float64(time.Minute) / float64(contCPUWindow), nil
		}
	}
	return 0, fmt.Errorf("transcoder CPU: %w", last)
}

func (cr *contRun) waitTranscoders(want int, timeout time.Duration) error {
	return pollUntilErr(cr.ctx, timeout, 200*time.Millisecond, func() error {
		if n := len(transcoderPIDs()); n != want {
			return fmt.Errorf("%d transcoders running, want %d", n, want)
		}
		return nil
	})
}

func (cr *contRun) node(name string) *testcluster.Node {
	for _, n := range cr.c.Nodes() {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

func (cr *contRun) waitRoute(timeout time.Duration, ok func(owner string) bool) error {
	var last string
	err := pollUntil(cr.ctx, timeout, 100*time.Millisecond, func() bool {
		o, err := routeOwner(cr.ctx, cr.viewer.HTTPURL(), cr.in.ID)
		if err != nil {
			return false
		}
		last = o
		return ok(o)
	})
	if err != nil {
		return fmt.Errorf("route (last owner %q): %w", last, err)
	}
	return nil
}

// inputStatus is the part of /v1/inputs/{id}/status the row reads.
type inputStatus struct {
	State      string `json:"state"`
	OwnerNode  string `json:"owner_node"`
	IngestNode string `json:"ingest_node"`
}

func (cr *contRun) waitStatus(timeout time.Duration, ok func(inputStatus) bool) error {
	var last inputStatus
	return pollUntilErr(cr.ctx, timeout, 100*time.Millisecond, func() error {
		resp, err := cr.viewer.Do(http.MethodGet, "/v1/inputs/"+cr.in.ID+"/status", nil)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return fmt.Errorf("status: %d %s", resp.Status, resp.Body)
		}
		if err := json.Unmarshal(resp.Body, &last); err != nil {
			return err
		}
		if !ok(last) {
			return fmt.Errorf("status %+v", last)
		}
		return nil
	})
}

// coalescing fires contViewers concurrent requests at the ingest node (a
// non-owner nobody else asks) for each of contFetchSamples new segments,
// and for the parts the owner's preload hints announce, and returns the
// internal fetches each cost that node.
func (cr *contRun) coalescing() (segs, parts []float64, err error) {
	asker := cr.ingest
	base := "/live/" + cr.in.ID + "/" + contRendition + "/"
	ownerPlaylist := cr.owner.HTTPURL() + base + "index.m3u8"
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: contViewers, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	measure := func(file string) (float64, error) {
		before, err := metricValue(asker, "dionysia_origin_internal_fetches_total")
		if err != nil {
			return 0, err
		}
		if err := concurrentGets(cr.ctx, hc, asker.HTTPURL()+base+file, contViewers); err != nil {
			return 0, err
		}
		after, err := metricValue(asker, "dionysia_origin_internal_fetches_total")
		if err != nil {
			return 0, err
		}
		return after - before, nil
	}
	last := ""
	for len(segs) < contFetchSamples {
		// The owner's playlist, straight from the owner: the asking node
		// hears of nothing before its viewers do.
		var newest, hint string
		if err := pollUntil(cr.ctx, 10*time.Second, 50*time.Millisecond, func() bool {
			b, _, err := get(cr.ctx, ownerPlaylist)
			if err != nil {
				return false
			}
			newest, hint = newestSegmentAndHint(b)
			return newest != "" && newest != last
		}); err != nil {
			return segs, parts, fmt.Errorf("no new segment on the owner: %w", err)
		}
		last = newest
		n, err := measure(newest)
		if err != nil {
			return segs, parts, err
		}
		segs = append(segs, n)
		if hint != "" {
			n, err := measure(hint)
			if err != nil {
				return segs, parts, err
			}
			parts = append(parts, n)
		}
	}
	return segs, parts, nil
}

// newestSegmentAndHint returns a media playlist's last whole segment URI
// and its preload hint's URI ("" when none).
func newestSegmentAndHint(b []byte) (seg, hint string) {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			if _, rest, ok := strings.Cut(line, `URI="`); ok {
				hint, _, _ = strings.Cut(rest, `"`)
			}
		case !strings.HasPrefix(line, "#"):
			seg = line
		}
	}
	return seg, hint
}

// concurrentGets sends n GETs for u at the same instant and checks that
// each got the same 200 body length.
func concurrentGets(ctx context.Context, hc *http.Client, u string, n int) error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	sizes := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			sizes[i], err = io.Copy(io.Discard, resp.Body)
			if err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("GET %s: %s", u, resp.Status)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, s := range sizes {
		if s != sizes[0] || s == 0 {
			return fmt.Errorf("GET %s: bodies of %d and %d bytes", u, sizes[0], s)
		}
	}
	return nil
}

// metricValue reads one unlabelled metric from a node's /metrics.
func metricValue(n *testcluster.Node, name string) (float64, error) {
	resp, err := n.Do(http.MethodGet, "/metrics", nil)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(resp.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s in /metrics", n.Name(), name)
}

// report writes what the rounds measured, also when a round failed.
func (res *contResults) report(r *Row) {
	for _, ev := range contEvents {
		s, f, st := res.samples[ev.key], res.fatal[ev.key], res.stuck[ev.key]
		runs := len(s) + len(f)
		if runs == 0 {
			continue
		}
		metric := ev.metric
		var failed []string
		if len(f) > 0 {
			failed = append(failed, fmt.Sprintf("%d fatal player error", len(f)))
			r.note("%s: fatal player error in %d of %d runs: %s", ev.key, len(f), runs, distinct(f))
		}
		if len(st) > 0 {
			failed = append(failed, fmt.Sprintf("%d not playing again within %s", len(st), contRecover))
			r.note("%s: in %d of %d runs the player neither played again within %s nor reported an error (its stall, "+
				"a lower bound, is among the samples): %s", ev.key, len(st), runs, contRecover, distinct(st))
		}
		if len(failed) > 0 {
			metric += fmt.Sprintf(" (%d runs; %s)", runs, strings.Join(failed, ", "))
		}
		x := r.add(metric, "s", s, 2)
		if ev.goal > 0 {
			x.headline().goal(ev.goalText, len(failed) == 0 && median(s) <= ev.goal)
		}
	}
	for _, k := range []struct{ key, name string }{{"kill", "owner killed"}, {"hotkill", "owner killed, hot standby"}} {
		if len(res.detect[k.key]) > 0 {
			r.add(k.name+" → the player's node routes to the new owner", "s", res.detect[k.key], 2)
			r.add(k.name+" → the new owner's segments in the playlist", "s", res.segsIn[k.key], 2)
		}
	}
	if len(res.coalSeg) > 0 {
		x := r.add(fmt.Sprintf("internal fetches per new segment, %d viewers at once on a non-owner", contViewers), "fetches", res.coalSeg, 0).headline()
		x.goal("1", slicesMax(res.coalSeg) <= 1)
	}
	if len(res.coalPart) > 0 {
		x := r.add(fmt.Sprintf("internal fetches per hinted part, %d viewers at once on a non-owner", contViewers), "fetches", res.coalPart, 0)
		x.goal("1", slicesMax(res.coalPart) <= 1)
	}
	if len(res.cpuOne) > 0 {
		r.compare("transcoder CPU with a hot standby (every ffmpeg, s per minute)", "s", res.cpuHot, res.cpuOne, "one transcoder", 2).headline()
	}
	if n := len(res.samples["reconnect"]) + len(res.fatal["reconnect"]); n > 0 {
		r.note("The slate's segments were in the playlist before the encoder came back in %d of %d reconnects.", res.slate, n)
	}
	if res.kills > 0 {
		r.note("%d of %d killed owners were also the raft leader.", res.leaderKill, res.kills)
	}
	if res.fetches > 0 {
		r.note("The polled playlists (%d fetches, %d discontinuities) broke %d RFC 8216 rules (testcluster/hlscheck)%s.",
			res.fetches, res.discs, len(res.violations), firstOf(res.violations))
	}
	if res.players > 0 {
		r.note("Players started: %d (one per cluster, and a new one after each fatal error). The last one at its end: %s.", res.players, res.lastPlayer)
	}
}

// keepNodeLogs copies every node's log into dir as <subtest>-<node>.log
// (BENCH_NODE_LOGS: the cluster's own dir goes when the subtest ends).
func keepNodeLogs(t testing.TB, c *testcluster.Cluster, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("BENCH_NODE_LOGS: %v", err)
		return
	}
	prefix := strings.NewReplacer("/", "-").Replace(t.Name())
	for _, n := range c.Nodes() {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, prefix+"-"+n.Config.Name+".log"), b, 0o644)
		}
	}
}

// distinct lists the different messages (one line, shortened) of a set of
// failures.
func distinct(msgs []string) string {
	var out []string
	seen := map[string]bool{}
	for _, m := range msgs {
		m, _, _ = strings.Cut(m, "\n")
		if len(m) > 240 {
			m = m[:240] + "…"
		}
		key := m[:min(len(m), 48)]
		if !seen[key] {
			seen[key] = true
			out = append(out, "`"+strings.ReplaceAll(m, "`", "'")+"`")
		}
	}
	return strings.Join(out, "; ")
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return "; first: " + v[0]
}

func slicesMax(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// pollUntilErr is pollUntil with the condition's last error in the
// timeout's.
func pollUntilErr(ctx context.Context, timeout, interval time.Duration, cond func() error) error {
	var last error
	err := pollUntil(ctx, timeout, interval, func() bool {
		last = cond()
		return last == nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w: %v", err, last)
	}
	return err
}

// playlistWatch polls a media playlist like a player and checks every
// answer with hlscheck.
type playlistWatch struct {
	url   string
	check *hlscheck.Media
	done  chan struct{}
	quit  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	statuses map[int]int
	errs     int
}

func startPlaylistWatch(u string) *playlistWatch {
	w := &playlistWatch{url: u, check: &hlscheck.Media{Name: u}, done: make(chan struct{}), quit: make(chan struct{}), statuses: map[int]int{}}
	hc := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			resp, err := hc.Get(u)
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				at := time.Now()
				w.mu.Lock()
				w.statuses[resp.StatusCode]++
				w.mu.Unlock()
				if rerr == nil && resp.StatusCode == http.StatusOK {
					_ = w.check.Add(body, at)
				}
			} else {
				w.mu.Lock()
				w.errs++
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *playlistWatch) summary() hlscheck.Summary { return w.check.Summary() }

func (w *playlistWatch) report() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("playlist answers by status %v, %d transport errors", w.statuses, w.errs)
}

// failed counts the fetches that were not answered 200.
func (w *playlistWatch) failed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.errs
	for status, k := range w.statuses {
		if status != http.StatusOK {
			n += k
		}
	}
	return n
}

func (w *playlistWatch) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}
