package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

const (
	scaleCap    = 24 // streams in all: what fits the suite's time budget
	scaleStep   = 3
	scaleWindow = 8 * time.Second
	// scaleJoinWatch covers the settle time of streams placed at the
	// ramp's last step (30 s) and a few of the leader's rounds (5 s each).
	scaleJoinWatch = 45 * time.Second
	realtimeFloor  = 0.9
)

type scaleStream struct {
	id  string
	pub *publisher
}

// rowScale: passthrough streams a 3-node cluster carries before any falls
// below realtime, how evenly placement by load spreads them, and what a
// fourth node joining moves.
func rowScale(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	pid := leader.CreateProfile(t, map[string]any{
		"name": "passthrough", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "source", "passthrough": true, "video_bitrate_kbps": 3000, "audio_bitrate_kbps": 128}},
	})
	r.Method = fmt.Sprintf("Three in-process nodes, a one-rendition passthrough profile (ffmpeg `-c copy` into 2 s HLS segments). Streams "+
		"of a 720p30 3 Mb/s file are published over RTMP (`-re -stream_loop -1 -c copy`), round-robin over the three nodes' ingest, "+
		"%d at a time up to a cap of %d. After each step every new stream must become playable, then each stream's transcoder "+
		"frame counter (`/v1/inputs/<id>/status`, asked through the leader) is read twice %s apart: frames per second (between "+
		"the two ffmpeg reports, `updated_at`) ÷ %d is its realtime ratio. A stream below %.2f× (or not playable within 30 s) ends the ramp. Evenness is the max/min of streams "+
		"owned per node at the last step; cost against capacity is read from `/v1/nodes`. Then a fourth node joins: for %s the "+
		"owner of every stream is read from `/v1/route` each second (a stream counts as moved once its owner changes) and each "+
		"moved stream's first media playlist is checked to have gone on numbering forward through the node that answers; "+
		"meanwhile every stream's first media playlist is polled through the leader every 250 ms, as a low-latency player "+
		"polls it, and checked with hlscheck (RFC 8216 and LL-HLS rules; how long the newest part stood still).",
		scaleStep, scaleCap, scaleWindow, SourceFPS, realtimeFloor, scaleJoinWatch)

	var streams []*scaleStream
	defer func() {
		for _, s := range streams {
			s.pub.stop()
		}
	}()
	nodes := c.Nodes()
	carried, limitedBy := 0, fmt.Sprintf("cap of %d streams reached", scaleCap)
	var lastOwners map[string]int
	var lastMinRatio, lastCPU float64
	for len(streams) < scaleCap {
		if ctxLeft(ctx) < scaleWindow+40*time.Second+scaleJoinWatch+60*time.Second {
			limitedBy = fmt.Sprintf("row time budget (stopped at %d streams)", len(streams))
			break
		}
		var fresh []*scaleStream
		for range scaleStep {
			i := len(streams)
			in, err := createInput(ctx, leader, map[string]any{"name": fmt.Sprintf("scale %d", i), "profile_id": pid})
			if err != nil {
				return err
			}
			ing := nodes[i%len(nodes)]
			// A follower knows the key once raft has replicated it there;
			// a publish before that is refused and the publisher exits.
			ing.WaitInput(t, in.ID)
			p, err := startPublisher(src, "rtmp://"+ing.Config.RTMPAddr+"/live/"+in.StreamKey, true)
			if err != nil {
				return err
			}
			s := &scaleStream{id: in.ID, pub: p}
			streams = append(streams, s)
			fresh = append(fresh, s)
		}
		stepAt := time.Now()
		var took []string
		for _, s := range fresh {
			if err := pollUntil(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
				ok, _ := playableVia(ctx, leader.HTTPURL(), s.id)
				return ok
			}); err != nil {
				limitedBy = fmt.Sprintf("stream %d not playable within 30 s", len(streams))
				scaleDiagnose(ctx, t, c, leader, s)
				break
			}
			took = append(took, time.Since(stepAt).Round(100*time.Millisecond).String())
		}
		t.Logf("scale: %d streams: the new ones playable after %s", len(streams), strings.Join(took, ", "))
		if strings.HasPrefix(limitedBy, "stream") {
			break
		}
		cpu0, roles0, at0 := cpuBusy(), readCPURoles(), time.Now()
		before := allFrames(ctx, leader.HTTPURL(), streams)
		if err := sleepCtx(ctx, scaleWindow); err != nil {
			return err
		}
		after := allFrames(ctx, leader.HTTPURL(), streams)
		owners := map[string]int{}
		minRatio := 99.0
		for _, s := range streams {
			a, b := after[s.id], before[s.id]
			ratio := 0.0
			if a.ok && b.ok && a.at.After(b.at) {
				ratio = float64(a.frames-b.frames) / a.at.Sub(b.at).Seconds() / SourceFPS
			}
			minRatio = min(minRatio, ratio)
			owners[a.owner]++
		}
		lastCPU = cpuBusy().since(cpu0)
		roles := readCPURoles().since(roles0, time.Since(at0))
		t.Logf("scale: %d streams, slowest %.2f× realtime, owners %v, CPU %.0f%% (load %.1f); of one core: %s",
			len(streams), minRatio, owners, lastCPU*100, load1(), fmtRoles(roles))
		if minRatio < realtimeFloor {
			limitedBy = fmt.Sprintf("at %d streams one fell to %.2f× realtime", len(streams), minRatio)
			break
		}
		carried, lastOwners, lastMinRatio = len(streams), owners, minRatio
	}
	res := r.addValue("passthrough streams carried at ≥ realtime", "streams", float64(carried), 0).headline()
	res.Goal = "cap " + strconv.Itoa(scaleCap)
	r.addValue("slowest stream at that count", "× realtime", lastMinRatio, 2)
	r.addValue("CPU busy at that count (both cores)", "%", lastCPU*100, 0)
	if len(lastOwners) > 0 {
		lo, hi := scaleCap, 0
		for _, n := range nodes {
			k := lastOwners[n.Name()]
			lo, hi = min(lo, k), max(hi, k)
		}
		spread := float64(hi) / float64(max(lo, 1))
		even := r.addValue("spread: max/min streams per node", "×", spread, 2).headline().goal("≤ 1.25", spread <= 1.25)
		if lo == 0 {
			even.Value = nil
			r.note("one node owned no stream")
		}
		r.note("streams per node at %d streams: %s", carried, fmtOwners(nodes, lastOwners))
	}
	r.note("ramp ended: %s", limitedBy)
	if err := scaleCapacity(ctx, leader, r); err != nil {
		return err
	}
	// The join needs the watch, a node's start, and up to 20 s for the
	// numbering checks.
	if carried > 0 && ctxLeft(ctx) > scaleJoinWatch+60*time.Second {
		if err := scaleJoin(ctx, t, c, leader, streams, r); err != nil {
			return err
		}
	} else {
		r.note("the join phase did not run: no time left in the row's budget")
	}
	r.note("The cap keeps the row inside the 20-minute suite; the publishers (%d ffmpeg processes) run on the same 2 cores.", carried)
	return nil
}

// scaleDiagnose logs what is known of a stream that does not play: its
// status, its publisher, and what the nodes logged about it.
func scaleDiagnose(ctx context.Context, t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, s *scaleStream) {
	body, _, err := get(ctx, leader.HTTPURL()+"/v1/inputs/"+s.id+"/status")
	pub := "running"
	if s.pub.exited() {
		pub = fmt.Sprintf("exited: %q", s.pub.stderr.String())
	}
	t.Logf("scale: stream %s: status %s (err %v); publisher %s", s.id, bytes.TrimSpace(body), err, pub)
	t.Logf("scale: stream %s in the nodes' logs:\n%s", s.id, nodeLogLines(c, s.id, 40))
}

// nodeLogLines are the last lines of every node's log that name id.
func nodeLogLines(c *testcluster.Cluster, id string, n int) string {
	var out []string
	for _, node := range c.Nodes() {
		b, err := os.ReadFile(node.LogPath)
		if err != nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, id) {
				lines = append(lines, node.Name()+": "+l)
			}
		}
		out = append(out, lines[max(0, len(lines)-n):]...)
	}
	return strings.Join(out, "\n")
}

// createInput creates an input through node n as the CLI does: a write
// that finds no leader for a moment (a loaded box delays heartbeats past
// the leader lease) or whose answer is lost is sent again under the same
// Idempotency-Key, for up to 30 s.
func createInput(ctx context.Context, n *testcluster.Node, body map[string]any) (testcluster.Input, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return testcluster.Input{}, err
	}
	key := fmt.Sprintf("bench-scale-%d", time.Now().UnixNano())
	var in testcluster.Input
	err = pollUntilErr(ctx, 30*time.Second, 500*time.Millisecond, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.HTTPURL()+"/v1/inputs", bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("create input on %s: %s %s", n.Name(), resp.Status, bytes.TrimSpace(msg))
		}
		return json.Unmarshal(msg, &in)
	})
	return in, err
}

type frameSample struct {
	ok     bool
	frames uint64
	owner  string
	at     time.Time
}

// allFrames reads every stream's frame counter at once.
func allFrames(ctx context.Context, nodeURL string, streams []*scaleStream) map[string]frameSample {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]frameSample{}
	for _, s := range streams {
		wg.Go(func() {
			f := frames(ctx, nodeURL, s.id)
			mu.Lock()
			out[s.id] = f
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// frames reads a stream's transcoder frame counter, with a few tries: a
// status call that times out on a loaded box says nothing about the
// stream's speed.
func frames(ctx context.Context, nodeURL, id string) frameSample {
	var f frameSample
	for range 3 {
		if f = framesOnce(ctx, nodeURL, id); f.ok {
			break
		}
	}
	return f
}

func framesOnce(ctx context.Context, nodeURL, id string) frameSample {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodeURL+"/v1/inputs/"+id+"/status", nil)
	resp, err := client.Do(req)
	if err != nil {
		return frameSample{}
	}
	defer resp.Body.Close()
	var st struct {
		Owner      string `json:"owner_node"`
		Transcoder *struct {
			Frames    uint64    `json:"frames"`
			UpdatedAt time.Time `json:"updated_at"`
		} `json:"transcoder"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil || st.Transcoder == nil || st.Transcoder.UpdatedAt.IsZero() {
		return frameSample{owner: st.Owner}
	}
	// Timed by ffmpeg's report, not by this call's answer: on a loaded box
	// the call takes up to seconds, which would be counted as frames lost.
	return frameSample{ok: true, frames: st.Transcoder.Frames, owner: st.Owner, at: st.Transcoder.UpdatedAt}
}

func fmtOwners(nodes []*testcluster.Node, owners map[string]int) string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s %d", n.Name(), owners[n.Name()]))
	}
	return strings.Join(s, ", ")
}

// cpuTimes is /proc/stat's aggregate line.
type cpuTimes struct{ busy, total float64 }

func cpuBusy() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ct cpuTimes
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		ct.total += x
		if i != 3 && i != 4 { // idle, iowait
			ct.busy += x
		}
	}
	return ct
}

// since is the busy fraction between two readings.
func (c cpuTimes) since(prev cpuTimes) float64 {
	if d := c.total - prev.total; d > 0 {
		return (c.busy - prev.busy) / d
	}
	return 0
}

// scaleCapacity records the busiest node's cost against its capacity.
func scaleCapacity(ctx context.Context, leader *testcluster.Node, r *Row) error {
	nodes, err := nodeCosts(ctx, leader.HTTPURL())
	if err != nil {
		return err
	}
	worst := 0.0
	var parts []string
	for _, n := range nodes {
		if n.Capacity > 0 {
			worst = max(worst, float64(n.Cost)/float64(n.Capacity))
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", n.Name, n.Cost, n.Capacity))
	}
	r.addValue("busiest node: cost / capacity", "%", worst*100, 0).goal("≤ 100 %", worst <= 1)
	r.note("cost / capacity (units) per node: %s", strings.Join(parts, ", "))
	return nil
}

type nodeCost struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
	Cost     int    `json:"cost"`
}

func nodeCosts(ctx context.Context, nodeURL string) ([]nodeCost, error) {
	body, _, err := get(ctx, nodeURL+"/v1/nodes")
	if err != nil {
		return nil, err
	}
	var out struct {
		Nodes []nodeCost `json:"nodes"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode /v1/nodes: %w", err)
	}
	return out.Nodes, nil
}

// scaleJoin adds a fourth node and counts the streams that move to it,
// checking that each moved stream's numbering goes on and watching every
// stream's first media playlist the way a low-latency player polls it.
func scaleJoin(ctx context.Context, t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, streams []*scaleStream, r *Row) error {
	owner := map[string]string{}
	msn := map[string]uint64{}
	watches := map[string]*playlistWatch{}
	defer func() {
		for _, w := range watches {
			w.stop()
		}
	}()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, s := range streams {
		wg.Go(func() {
			// A loaded box answers slowly now and then: a route read gets
			// a few tries before it fails the row.
			var o string
			err := pollUntilErr(ctx, 10*time.Second, 200*time.Millisecond, func() (err error) {
				o, err = routeOwner(ctx, leader.HTTPURL(), s.id)
				return err
			})
			m := firstMSN(ctx, leader.HTTPURL(), s.id)
			u, uerr := firstVariant(ctx, leader.HTTPURL(), s.id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("owner of %s before the join: %w", s.id, err))
				return
			}
			owner[s.id], msn[s.id] = o, m
			if uerr == nil {
				watches[s.id] = startPlaylistWatch(u)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	c.AddNode()
	c.WaitMembers(4, 30*time.Second)
	moved := map[string]string{}
	deadline := time.Now().Add(scaleJoinWatch)
	for time.Now().Before(deadline) {
		for _, s := range streams {
			if o, err := routeOwner(ctx, leader.HTTPURL(), s.id); err == nil && o != owner[s.id] {
				moved[s.id] = o
			}
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	backwards := 0
	for id := range moved {
		wg.Go(func() {
			if err := pollUntil(ctx, 20*time.Second, 500*time.Millisecond, func() bool { return firstMSN(ctx, leader.HTTPURL(), id) > msn[id] }); err != nil {
				mu.Lock()
				backwards++
				mu.Unlock()
				t.Logf("scale: moved stream %s: numbering did not go past %d", id, msn[id])
			}
		})
	}
	wg.Wait()
	n := len(streams)
	r.addValue("a 4th node joins: streams moved", "streams", float64(len(moved)), 0).headline().
		goal(fmt.Sprintf("≤ %d (a quarter)", n/4), len(moved) <= n/4)
	r.addValue("moved streams whose numbering did not go on", "streams", float64(backwards), 0).goal("0", backwards == 0)
	scaleWatches(t, c, watches, moved, r)
	var to []string
	for id, o := range moved {
		to = append(to, id[:min(8, len(id))]+"→"+o)
	}
	r.note("moved within %s of the join: %s", scaleJoinWatch, strings.Join(to, ", "))
	return scaleCapacity(ctx, leader, r)
}

// partHoldBack is what a low-latency player keeps between itself and the
// newest part (three parts of the default 334 ms): a live edge that stands
// still longer than that empties its buffer.
const partHoldBack = 1.0

// scaleWatches reports what the playlist watches saw through the join: how
// long the newest part stood still on a moved stream (against the streams
// that stayed, which show what polling and the box's load add), and any
// playlist rule a player would trip over.
func scaleWatches(t *testing.T, c *testcluster.Cluster, watches map[string]*playlistWatch, moved map[string]string, r *Row) {
	var stillMoved, stillStayed time.Duration
	badMoved, badStayed, failedMoved, failedStayed := 0, 0, 0, 0
	for id, w := range watches {
		w.stop()
		sum, v, failed := w.summary(), w.check.Violations(), w.failed()
		if _, ok := moved[id]; ok {
			stillMoved = max(stillMoved, sum.LongestPartStall)
			badMoved += len(v)
			failedMoved += failed
			t.Logf("scale: moved stream %s: %d playlist fetches, newest part still for at most %s, %d rule violations %q, %s",
				id, sum.Fetches, sum.LongestPartStall.Round(10*time.Millisecond), len(v), v[:min(3, len(v))], w.report())
			if sum.LongestPartStall.Seconds() > partHoldBack || len(v) > 0 || failed > 0 {
				t.Logf("scale: moved stream %s in the nodes' logs:\n%s", id, nodeLogLines(c, id, 40))
			}
		} else {
			stillStayed = max(stillStayed, sum.LongestPartStall)
			badStayed += len(v)
			failedStayed += failed
		}
	}
	if len(moved) > 0 {
		r.addValue("moved streams: longest time the newest part stood still (polled every 250 ms via the leader)", "s", stillMoved.Seconds(), 2).
			goal(fmt.Sprintf("≤ %.0f s (a low-latency player's hold-back)", partHoldBack), stillMoved.Seconds() <= partHoldBack)
		r.addValue("moved streams: playlist rule violations (hlscheck)", "", float64(badMoved), 0).goal("0", badMoved == 0)
		r.addValue("moved streams: playlist fetches not answered 200", "", float64(failedMoved), 0).goal("0", failedMoved == 0)
	}
	r.addValue("streams that stayed: longest time the newest part stood still", "s", stillStayed.Seconds(), 2)
	r.addValue("streams that stayed: playlist rule violations", "", float64(badStayed), 0)
	r.addValue("streams that stayed: playlist fetches not answered 200", "", float64(failedStayed), 0)
}

// firstMSN is the newest media sequence number of an input's first
// variant, through a node (0 when it cannot be read).
func firstMSN(ctx context.Context, nodeURL, id string) uint64 {
	u, err := firstVariant(ctx, nodeURL, id)
	if err != nil {
		return 0
	}
	mp, _, err := mediaPlaylist(ctx, u)
	if err != nil || mp == nil {
		return 0
	}
	return mp.MediaSequence + uint64(len(mp.Segments))
}
