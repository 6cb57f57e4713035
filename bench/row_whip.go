package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/player"
)

// whipRuns is how many browser publishes the row times.
const whipRuns = 3

// rowWHIP: a browser publishes over WHIP to a node that does not own the
// input; how long until a viewer on the third node can start.
func rowWHIP(ctx context.Context, t *testing.T, _ *Env, r *Row) error {
	load0 := load1()
	defer func() {
		r.note("Load average (1 min) %.1f at the row's start, %.1f at its end (2 cores, shared).", load0, load1())
	}()
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	api := c.Node(0)
	profile := api.CreateProfile(t, map[string]any{
		"name": "whip bench", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 300, "audio_bitrate_kbps": 64, "fps": 15},
			{"name": "90p", "width": 160, "height": 90, "video_bitrate_kbps": 100, "audio_bitrate_kbps": 48, "fps": 15},
		},
	})
	r.Method = fmt.Sprintf("Three in-process nodes on loopback. Headless Chromium (testcluster/player's WHIP publisher: fake camera "+
		"320×240 at 15 fps and fake microphone, H.264 preferred, the stream key as bearer token) publishes over WHIP to the "+
		"WebRTC port of a node that does not own a new input; the owner transcodes it (two rungs, 180p and 90p at 15 fps, "+
		"ultrafast, 1 s segments, latency low, Opus into AAC). The clock starts when the page POSTs its offer (`Date.now()` just "+
		"before the fetch; browser and bench share the machine's clock) and stops at the first poll (every %s through the third "+
		"node, the viewer's: `master.m3u8`, then the first variant's and the audio rendition's media playlists) at which both "+
		"list a part, and at which both list a whole segment. %d runs, a new input and a new browser each; median.", pollEvery, whipRuns)

	var part, seg, answered, connected []float64
	for i := range whipRuns {
		if i > 0 && ctxLeft(ctx) < 45*time.Second {
			r.note("stopped after %d runs: row time budget", i)
			break
		}
		var p, s, ans, conn time.Duration
		var runErr error
		t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) {
			p, s, ans, conn, runErr = whipOnce(ctx, t, c, profile, i)
		})
		if runErr != nil {
			return runErr
		}
		if t.Failed() {
			return fmt.Errorf("whip run %d failed (see the test log)", i)
		}
		part, seg = append(part, p.Seconds()), append(seg, s.Seconds())
		answered, connected = append(answered, float64(ans.Milliseconds())), append(connected, float64(conn.Milliseconds()))
	}
	r.add("WHIP POST → first part listed on the viewer's node", "s", part, 2).headline()
	r.add("WHIP POST → first segment listed on the viewer's node", "s", seg, 2).headline()
	r.add("WHIP POST → SDP answer received (page)", "ms", answered, 0)
	r.add("SDP answer → peer connection connected (page)", "ms", connected, 0)
	r.note("No goal is set for WHIP; the RTMP publish row's goal (≤ 1.5 s to a part on the same node) is the nearest comparison. "+
		"Polling every %s adds up to %s to each sample.", pollEvery, pollEvery)
	return nil
}

// whipOnce is one browser publish into a new input; it returns the times
// from the WHIP POST to a part and to a segment in both playlists on the
// viewer's node, from the POST to the answer, and from the answer to the
// peer connection being connected.
func whipOnce(ctx context.Context, t *testing.T, c *testcluster.Cluster, profile string, i int) (part, seg, answered, connected time.Duration, err error) {
	api := c.Node(0)
	in := api.CreateInput(t, map[string]any{"name": fmt.Sprintf("whip bench %d", i), "profile_id": profile, "reconnect_window_seconds": 0})
	m, ok := api.ClusterHandle().Owner(in.ID)
	if !ok {
		return 0, 0, 0, 0, fmt.Errorf("input %s has no owner", in.ID)
	}
	var ingest, viewer *testcluster.Node
	for _, n := range c.Nodes() {
		switch {
		case n.Name() == m.Name:
		case ingest == nil:
			ingest = n
		default:
			viewer = n
		}
	}
	if ingest == nil || viewer == nil {
		return 0, 0, 0, 0, fmt.Errorf("owner %s is not one of the three nodes", m.Name)
	}
	whipURL := ingest.WaitInput(t, in.ID).Ingest.WHIP
	pub := player.PublishWHIP(t, player.WHIPOptions{
		URL:   strings.Replace(whipURL, "/"+in.StreamKey+"/", "/"+in.ID+"/", 1),
		Token: in.StreamKey,
	})
	defer func() {
		pub.Stop()
		deadline := time.Now().Add(15 * time.Second)
		for ingest.State().Session(in.ID) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var partAt, segAt time.Time
	var playlists []string
	deadline := time.Now().Add(60 * time.Second)
	for partAt.IsZero() || segAt.IsZero() {
		polled := time.Now()
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, 0, err
		}
		if polled.After(deadline) {
			return 0, 0, 0, 0, fmt.Errorf("input %s not playable on %s 60 s after the page started: %s\nconsole:\n%s",
				in.ID, viewer.Name(), pub.State(), pub.Console())
		}
		if playlists == nil {
			playlists, _ = mediaPlaylists(ctx, viewer.HTTPURL(), in.ID)
		}
		parts, segs := len(playlists) > 0, len(playlists) > 0
		for _, u := range playlists {
			b, _, err := get(ctx, u)
			if err != nil {
				parts, segs = false, false
				break
			}
			s, p := playlistCounts(b)
			parts = parts && (p > 0 || s > 0)
			segs = segs && s > 0
		}
		if parts && partAt.IsZero() {
			partAt = polled
		}
		if segs && segAt.IsZero() {
			segAt = polled
		}
		if err := sleepCtx(ctx, pollEvery-time.Since(polled)); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	st := pub.State()
	if st.PostedAt == 0 || st.State == "failed" {
		return 0, 0, 0, 0, fmt.Errorf("the page did not publish: %s", st)
	}
	posted := time.UnixMicro(int64(st.PostedAt * 1000))
	t.Logf("whip run %d: %s; owner %s, ingest %s, viewer %s", i, st, m.Name, ingest.Name(), viewer.Name())
	// The page's answeredMs and connectedMs count from its own start:
	// their difference is the ICE and DTLS handshake after the answer.
	if st.ConnectedMs == 0 {
		return 0, 0, 0, 0, fmt.Errorf("playable but the page never saw its peer connection connected: %s", st)
	}
	answered = time.Duration((st.AnsweredMs - st.PostedMs) * float64(time.Millisecond))
	connected = time.Duration((st.ConnectedMs - st.AnsweredMs) * float64(time.Millisecond))
	return partAt.Sub(posted), segAt.Sub(posted), answered, connected, nil
}
