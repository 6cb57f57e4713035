package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/hlscheck"
	"github.com/dionysia/dionysia/testcluster/player"
)

// viewerProfile is the ladder of TestViewersNeverNotice: two small
// renditions at 15 fps, 1 s segments with LL-HLS parts, cheap enough for
// three nodes, two browsers and two publishers on a 2-core box.
func viewerProfile(videoKbps int) map[string]any {
	return map[string]any{
		"name":            "viewers",
		"segment_seconds": 1,
		"video_preset":    "ultrafast",
		"latency":         "low",
		"renditions": []map[string]any{
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": videoKbps, "audio_bitrate_kbps": 64, "fps": 15},
			{"name": "90p", "width": 160, "height": 90, "video_bitrate_kbps": videoKbps / 3, "audio_bitrate_kbps": 64, "fps": 15},
		},
	}
}

// viewerStatus is the part of /v1/inputs/{id}/status this test reads.
type viewerStatus struct {
	State      string `json:"state"`
	OwnerNode  string `json:"owner_node"`
	IngestNode string `json:"ingest_node"`
}

func viewerGetStatus(n *testcluster.Node, id string) (viewerStatus, error) {
	var st viewerStatus
	r, err := n.Do(http.MethodGet, "/v1/inputs/"+id+"/status", nil)
	if err != nil {
		return st, err
	}
	if r.Status != http.StatusOK {
		return st, fmt.Errorf("status: %d %s", r.Status, r.Body)
	}
	return st, viewerJSON(r.Body, &st)
}

// viewerRouteOwner is the owner /v1/route names, asked of node n.
func viewerRouteOwner(n *testcluster.Node, id string) (string, error) {
	r, err := n.Do(http.MethodGet, "/v1/route/"+id, nil)
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusOK {
		return "", fmt.Errorf("route: %d %s", r.Status, r.Body)
	}
	var rt struct {
		Owner string `json:"owner"`
	}
	return rt.Owner, viewerJSON(r.Body, &rt)
}

// viewerTranscoders is the number of transcoders node n runs (its
// dionysia_transcoders_running gauge).
func viewerTranscoders(n *testcluster.Node) (int, error) {
	r, err := n.Do(http.MethodGet, "/metrics", nil)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(r.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, "dionysia_transcoders_running "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				return 0, err
			}
			return int(v), nil
		}
	}
	return 0, fmt.Errorf("%s: no dionysia_transcoders_running in /metrics", n.Name())
}

// viewerHLSJS is the version of the hls.js the players run (the player
// package finds it like HLSJSPath: $DIONYSIA_HLSJS, else bin/hls.min.js).
func viewerHLSJS() string {
	b, err := os.ReadFile(testcluster.HLSJSPath())
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if m := regexp.MustCompile(`"(\d+\.\d+\.\d+[-.0-9a-z]*)"`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown"
}

func viewerJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %q: %w", b, err)
	}
	return nil
}

// viewerPoller fetches media playlists every 300 ms, as a player would,
// and feeds every 200 answer to an hlscheck.Media per URL.
type viewerPoller struct {
	checks map[string]*hlscheck.Media // by URL
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	statuses map[string]map[int]int // URL -> status -> count
	errs     map[string]int         // URL -> transport errors
	lastErr  string
}

func startViewerPoller(urls []string) *viewerPoller {
	p := &viewerPoller{checks: map[string]*hlscheck.Media{}, stop: make(chan struct{}), done: make(chan struct{}),
		statuses: map[string]map[int]int{}, errs: map[string]int{}}
	for _, u := range urls {
		p.checks[u] = &hlscheck.Media{Name: u}
		p.statuses[u] = map[int]int{}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, u := range urls {
				resp, err := client.Get(u)
				if err != nil {
					p.mu.Lock()
					p.errs[u]++
					p.lastErr = err.Error()
					p.mu.Unlock()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				at := time.Now()
				p.mu.Lock()
				p.statuses[u][resp.StatusCode]++
				if err != nil {
					p.errs[u]++
					p.lastErr = err.Error()
				}
				p.mu.Unlock()
				if err == nil && resp.StatusCode == http.StatusOK {
					_ = p.checks[u].Add(body, at) // violations are kept for the end
				}
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *viewerPoller) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *viewerPoller) summary(u string) hlscheck.Summary { return p.checks[u].Summary() }

func (p *viewerPoller) report(u string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("statuses %v, transport errors %d (last %q)", p.statuses[u], p.errs[u], p.lastErr)
}

// viewerRow is one line of the stall table.
type viewerRow struct {
	event, player string
	longest       time.Duration // longest stall since the event began
	lost          time.Duration // wall time minus media time played since the event began (stalls, skips)
	again         time.Duration // time to play 3 s once the event was over
	took          time.Duration // wall time of the event
}

// TestViewersNeverNotice (issue 9): two real players (hls.js low-latency
// through a node that does not own the stream, hls.js standard through an
// nginx cache in front of all three nodes) watch one stream while it goes
// through everything that happens to a live stream: the encoder drops and
// reconnects, the profile changes, the owner is drained (and undrained), a
// backup publisher takes over, and the owner is killed. After each event
// both players play on; the media playlists stay valid RFC 8216 across
// every seam; nginx never hands a player anything but a 200.
func TestViewersNeverNotice(t *testing.T) {
	if testing.Short() {
		t.Skip("real players over a 3-node cluster; skipped with -short")
	}
	testcluster.Media(t)
	began := time.Now()
	// hls.js up to 1.6.16 can lose a discontinuity that appears on the
	// segment its last playlist named in EXT-X-PRELOAD-HINT, which is where
	// a seam of a low-latency stream often lands (hls.js#7962, fixed in
	// 1.6.17); with playlist delta updates that failed the low-latency
	// player at the first seam. The version tells such a failure apart.
	t.Logf("players run hls.js %s", viewerHLSJS())

	c := startThree(t, testcluster.Options{})
	profile := c.Node(0).CreateProfile(t, viewerProfile(300))
	in := c.Node(0).CreateInput(t, map[string]any{"name": "viewers", "profile_id": profile})
	owner, ingest, viewer := roles(t, c, in.ID)
	t.Logf("owner %s, first publisher on %s, low-latency player and playlist checks through %s", owner.Name(), ingest.Name(), viewer.Name())

	pubOpts := testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15, Duration: 10 * time.Minute}
	rtmp := func(n *testcluster.Node) string { return n.WaitInput(t, in.ID).Ingest.RTMP }
	pub := testcluster.Publish(t, rtmp(ingest), pubOpts)

	pb := testcluster.WaitPlayable(t, viewer, in.ID, 2, 3, 60*time.Second)
	require.Len(t, pb.Audio, 1)
	masterPath := "/live/" + in.ID + "/master.m3u8"
	checkMaster := func() {
		t.Helper()
		r := viewer.MustDo(t, http.MethodGet, masterPath, nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		require.NoError(t, hlscheck.Multivariant(r.Body), "master playlist:\n%s", r.Body)
	}
	checkMaster()
	videoURL, audioURL := pb.MediaURL[pb.Variants[0].URI], pb.MediaURL[pb.Audio[0]]
	require.True(t, strings.HasPrefix(videoURL, viewer.HTTPURL()+"/"), videoURL)
	poll := startViewerPoller([]string{videoURL, audioURL})
	t.Cleanup(poll.Stop)
	t.Logf("stream playable through %s after %s", viewer.Name(), time.Since(began).Round(100*time.Millisecond))

	var origins []string
	for _, n := range c.Running() {
		origins = append(origins, n.HTTPURL())
	}
	cdn := testcluster.StartNginxCache(t, origins)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Which node answered each request of the CDN's player (playlists,
		// parts, segments), last first: two nodes that disagree, or a
		// segment that failed, show up here.
		var lines []string
		rs := cdn.Responses()
		for i := len(rs) - 1; i >= 0 && len(lines) < 300; i-- {
			lines = append(lines, rs[i].String())
		}
		t.Logf("nginx answers, newest first:\n%s", strings.Join(lines, "\n"))
	})

	ll := player.Start(t, player.Options{URL: viewer.HTTPURL() + masterPath, LowLatency: true, Name: "hls.js LL via " + viewer.Name()})
	std := player.Start(t, player.Options{URL: cdn.URL() + masterPath, Name: "hls.js via nginx"})
	players := []*player.Player{ll, std}
	names := []string{"hls.js LL via " + viewer.Name(), "hls.js via nginx"}
	for i, p := range players {
		s := p.WaitPlaying(60 * time.Second)
		t.Logf("%s playing: %s", names[i], s)
	}
	watchStart := make([]player.Mark, len(players))
	for i, p := range players {
		watchStart[i] = p.Mark()
	}

	// Helpers over the status API, asked of the viewer's node like an
	// operator would.
	status := func() viewerStatus {
		t.Helper()
		st, err := viewerGetStatus(viewer, in.ID)
		require.NoError(t, err)
		return st
	}
	routeOwner := func() string {
		t.Helper()
		o, err := viewerRouteOwner(viewer, in.ID)
		require.NoError(t, err)
		return o
	}
	byName := func(name string) *testcluster.Node {
		t.Helper()
		for _, n := range c.Nodes() {
			if n.Name() == name {
				return n
			}
		}
		t.Fatalf("no node %q", name)
		return nil
	}
	// seam waits until the polled playlists show want more discontinuities
	// than before and at least one complete segment after them: the new
	// producer's segments are in.
	seam := func(what string, before hlscheck.Summary, want int, timeout time.Duration) {
		t.Helper()
		testcluster.Eventually(t, timeout, what, func() error {
			s := poll.summary(videoURL)
			if s.Discontinuities < before.Discontinuities+want {
				return fmt.Errorf("%d discontinuities, want %d (%s)", s.Discontinuities, before.Discontinuities+want, poll.report(videoURL))
			}
			if s.MaxMSN <= before.MaxMSN+uint64(want) {
				return fmt.Errorf("newest segment %d, want past %d", s.MaxMSN, before.MaxMSN+uint64(want))
			}
			return nil
		})
	}

	// waitPlaying waits until every player has played d of media since
	// its mark, and returns how long each took (polled together, so one
	// player's wait does not add to the other's time). A fatal player
	// error fails the test at once.
	waitPlaying := func(what string, marks []player.Mark, d, timeout time.Duration) []time.Duration {
		t.Helper()
		took := make([]time.Duration, len(players))
		ok := make([]bool, len(players))
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			all := true
			for i, p := range players {
				if ok[i] {
					continue
				}
				s := p.Stats()
				require.Empty(t, s.Fatal, "%s: %s: fatal player error: %s\nconsole:\n%s", what, names[i], s, p.Console())
				if s.Played-marks[i].Played >= d.Seconds() {
					ok[i], took[i] = true, time.Since(marks[i].At)
				} else {
					all = false
				}
			}
			if all {
				return took
			}
			select {
			case <-deadline.C:
				for i, p := range players {
					if !ok[i] {
						t.Fatalf("%s: %s has not played %s of media within %s: %s\nconsole:\n%s", what, names[i], d, timeout, p.Stats(), p.Console())
					}
				}
			case <-tick.C:
			}
		}
	}

	var rows []viewerRow
	event := func(name string, do func()) {
		t.Helper()
		t.Logf("==== event %s at %s", name, time.Now().Format("15:04:05.000"))
		marks := make([]player.Mark, len(players))
		for i, p := range players {
			marks[i] = p.Mark()
		}
		start := time.Now()
		do()
		// The event is over (its checks say the new producer's
		// segments are in); the players must play on.
		for i, p := range players {
			p.WaitAdvancingSince(marks[i], 3*time.Second, 30*time.Second)
		}
		settled := make([]player.Mark, len(players))
		for i, p := range players {
			settled[i] = p.Mark()
		}
		again := waitPlaying(name, settled, 3*time.Second, 30*time.Second)
		took := time.Since(start)
		for i, p := range players {
			s := p.Stats()
			wall := time.Since(marks[i].At)
			lost := wall - time.Duration((s.Played-marks[i].Played)*float64(time.Second))
			r := viewerRow{event: name, player: names[i], longest: p.LongestStallSince(marks[i]), lost: max(lost, 0), again: again[i], took: took}
			rows = append(rows, r)
			t.Logf("event %s: %s: longest stall %s, media behind wall clock by %s over %s, played 3 s after the event in %s (%d stalls so far, latency %.1fs)",
				name, names[i], r.longest.Round(10*time.Millisecond), r.lost.Round(10*time.Millisecond), wall.Round(10*time.Millisecond),
				r.again.Round(10*time.Millisecond), s.Stalls, s.Latency)
		}
	}

	// (a) The encoder drops and comes back within the reconnect window:
	// the owner plays the slate meanwhile (the playlists keep growing),
	// then the same playlists go on.
	event("(a) encoder reconnect", func() {
		before := poll.summary(videoURL)
		stoppedAt := time.Now()
		pub.Stop()
		// The deliberate gap an encoder's reconnect loop leaves.
		gap := time.NewTimer(2 * time.Second)
		testcluster.Eventually(t, 5*time.Second, "the input reconnecting", func() error {
			if st := status(); st.State != "reconnecting" {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		t.Logf("reconnecting %s after the publisher stopped", time.Since(stoppedAt).Round(10*time.Millisecond))
		<-gap.C
		// During the gap only the slate produces: it is in the playlists
		// (a discontinuity) and they grew past it.
		seam("the slate's segments during the gap", before, 1, 3*time.Second)
		require.Equal(t, "reconnecting", status().State, "still reconnecting when the slate's segments are checked")
		mid := poll.summary(videoURL)
		t.Logf("gap: newest segment %d at the stop, %d before the publisher is back (%d discontinuities since)",
			before.MaxMSN, mid.MaxMSN, mid.Discontinuities-before.Discontinuities)
		pub = testcluster.Publish(t, rtmp(ingest), pubOpts)
		testcluster.Eventually(t, 10*time.Second, "live again", func() error {
			if st := status(); st.State != "live" || st.IngestNode != ingest.Name() {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		seam("the new transcoder's segments", mid, 1, 20*time.Second)
	})

	// (d) A profile change starts a new transcoder that replaces the old
	// one make-before-break.
	event("(d) profile change", func() {
		before := poll.summary(videoURL)
		r := viewer.MustDo(t, http.MethodPut, "/v1/profiles/"+profile, viewerProfile(450))
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		seam("the new profile's segments", before, 1, 20*time.Second)
	})

	// (c) Drain the owner: the stream moves make-before-break; then undrain
	// it, and it moves back the same way.
	drainMove := func(verb string, node *testcluster.Node, wantOwner func(string) error) {
		t.Helper()
		before := poll.summary(videoURL)
		from := routeOwner()
		r := viewer.MustDo(t, http.MethodPost, "/v1/nodes/"+node.Name()+"/"+verb, nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		at := time.Now()
		var to string
		testcluster.Eventually(t, 10*time.Second, "the route after "+verb, func() error {
			to = routeOwner()
			return wantOwner(to)
		})
		testcluster.Eventually(t, 10*time.Second, "status naming the new owner", func() error {
			if st := status(); st.OwnerNode != to {
				return fmt.Errorf("status %+v, want owner %s", st, to)
			}
			return nil
		})
		seam("the new owner's segments", before, 1, 30*time.Second)
		testcluster.Eventually(t, 30*time.Second, "the old owner's transcoder to stop", func() error {
			n, err := viewerTranscoders(byName(from))
			if err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("%s still runs %d transcoders", from, n)
			}
			return nil
		})
		t.Logf("%s %s: the stream moved %s -> %s, old transcoder stopped after %s", verb, node.Name(), from, to, time.Since(at).Round(10*time.Millisecond))
	}
	drained := byName(routeOwner())
	event("(c) drain the owner", func() {
		drainMove("drain", drained, func(o string) error {
			if o == drained.Name() {
				return fmt.Errorf("route still names the drained node %s", o)
			}
			return nil
		})
	})
	event("(c') undrain it", func() {
		drainMove("undrain", drained, func(o string) error {
			if o != drained.Name() {
				return fmt.Errorf("route names %s, want the undrained %s back", o, drained.Name())
			}
			return nil
		})
	})

	// (e) A backup publisher on another node waits while the first is
	// live (no flapping), and takes over when the first one ends. It
	// publishes to the viewer's node, which is never killed.
	event("(e) backup publisher takes over", func() {
		before := poll.summary(videoURL)
		first := viewer.State().Session(in.ID)
		require.NotNil(t, first)
		require.Equal(t, ingest.Name(), first.IngestNode)
		backup := testcluster.Publish(t, rtmp(viewer), pubOpts)
		testcluster.Eventually(t, 15*time.Second, "the backup publisher waiting on "+viewer.Name(), func() error {
			b, err := os.ReadFile(viewer.LogPath)
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), "publisher waiting: input already live on node "+ingest.Name()) {
				if done, err := backup.Exited(); done {
					return fmt.Errorf("backup publisher exited: %v: %s", err, backup.Stderr())
				}
				return fmt.Errorf("%s has not logged the waiting publisher", viewer.Name())
			}
			return nil
		})
		tick := time.NewTicker(500 * time.Millisecond)
		for i := 0; i < 5; i++ {
			<-tick.C
			st := status()
			s := viewer.State().Session(in.ID)
			require.Equal(t, ingest.Name(), st.IngestNode, "poll %d: the first publisher stays (no flapping): %+v", i, st)
			require.Equal(t, "live", st.State)
			require.NotNil(t, s)
			require.Equal(t, first.ID, s.ID, "poll %d: the session stays the first publisher's", i)
		}
		tick.Stop()
		stoppedAt := time.Now()
		pub.Stop()
		testcluster.Eventually(t, 10*time.Second, "the backup publisher's session", func() error {
			if st := status(); st.State != "live" || st.IngestNode != viewer.Name() {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		t.Logf("backup publisher on %s live %s after the first one stopped", viewer.Name(), time.Since(stoppedAt).Round(10*time.Millisecond))
		pub = backup
		seam("the backup's segments", before, 1, 20*time.Second)
	})

	// (b) The owner is killed (no hand-over): its standby serves the copy
	// and continues the stream.
	event("(b) owner killed", func() {
		before := poll.summary(videoURL)
		victim := byName(routeOwner())
		require.NotEqual(t, viewer.Name(), victim.Name(), "the low-latency player's node must survive")
		killedAt := time.Now()
		c.Kill(victim.Index)
		var to string
		testcluster.Eventually(t, 30*time.Second, "a new owner", func() error {
			to = routeOwner()
			if to == victim.Name() {
				return fmt.Errorf("route still names the dead %s", to)
			}
			return nil
		})
		detected := time.Since(killedAt)
		seam("the new owner's segments", before, 1, 30*time.Second)
		t.Logf("owner %s killed: route names %s after %s, its segments in the playlists after %s",
			victim.Name(), to, detected.Round(10*time.Millisecond), time.Since(killedAt).Round(10*time.Millisecond))
		// The new owner was the standby: its relay was already reading the
		// source (a warm pull), and its transcoder joins that read, cached
		// GOP and all, instead of opening another and waiting for the
		// publisher's next keyframe.
		starts := relayLines(t, byName(to).LogPath, `msg="relay client playing"`, in.StreamKey, killedAt)
		require.NotEmpty(t, starts, "the new owner's transcoder read the relay")
		require.Empty(t, relayLines(t, byName(to).LogPath, `msg="relay source connected"`, in.StreamKey, killedAt),
			"the new owner's relay opened a new read of the source at the takeover: the standby's warm read was closed first")
		testcluster.Eventually(t, 10*time.Second, "status naming the new owner", func() error {
			if st := status(); st.OwnerNode != to || st.State != "live" {
				return fmt.Errorf("status %+v, want live on %s", st, to)
			}
			return nil
		})
	})

	poll.Stop()
	checkMaster()
	for i, p := range players {
		s := p.Stats()
		require.Empty(t, s.Fatal, names[i])
		t.Logf("%s at the end: %s; longest stall over the whole watch %s", names[i], s, p.LongestStallSince(watchStart[i]).Round(10*time.Millisecond))
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-32s %-22s %13s %13s %14s %10s\n", "event", "player", "longest stall", "wall - media", "3 s played in", "event took")
	for _, r := range rows {
		fmt.Fprintf(&table, "%-32s %-22s %13s %13s %14s %10s\n", r.event, r.player, r.longest.Round(10*time.Millisecond),
			r.lost.Round(10*time.Millisecond), r.again.Round(10*time.Millisecond), r.took.Round(100*time.Millisecond))
	}
	t.Logf("MEASURED stalls per event (both players started once, never restarted):\n%s", table.String())

	// The playlists a player polled through the viewer's node broke no rule
	// across every seam, and show them: slate + reconnect (2), profile (1),
	// drain (1), undrain (1), backup (1), failover (1). Reported together
	// with the CDN's answers below (assert, not require): one run shows
	// every problem.
	const wantSeams = 7
	for _, u := range []string{videoURL, audioURL} {
		sum := poll.summary(u)
		t.Logf("%s: %+v; %s", u, sum, poll.report(u))
		assert.Empty(t, poll.checks[u].Violations(), "%s: RFC 8216 violations", u)
		assert.GreaterOrEqual(t, sum.Discontinuities, wantSeams, "%s: discontinuities", u)
		assert.False(t, sum.Ended, u)
	}

	// Everything nginx answered the player was a 200: no redirect, and no
	// error made it through (nginx tries the next node on 502/503/504).
	var bad []string
	byStatus, retried := map[int]int{}, 0
	for _, r := range cdn.Responses() {
		byStatus[r.Status]++
		if strings.Contains(r.UpstreamStatus, ",") {
			retried++
		}
		// 499: the player gave up on a request itself (nothing was
		// answered to it).
		if r.Status != http.StatusOK && r.Status != 499 {
			bad = append(bad, fmt.Sprintf("%d %s (origin said %s from %s, cache %q)", r.Status, r.URI, r.UpstreamStatus, r.Upstream, r.Cache))
		}
	}
	t.Logf("nginx: responses by status %v, %d retried on another node", byStatus, retried)
	assert.Empty(t, bad, "responses other than 200 reached the player through nginx")
	t.Logf("whole test: %s", time.Since(began).Round(time.Second))
}

// relayLines lists the lines of a node's log after since that carry msg
// (as logged: msg="...") for the source with the given stream key.
func relayLines(t *testing.T, logPath, msg, streamKey string, since time.Time) []string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, msg) || !strings.Contains(line, "/live/"+streamKey+" ") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && !at.Before(since) {
			out = append(out, line)
		}
	}
	return out
}
