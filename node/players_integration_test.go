package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/player"
)

// TestPlayersDASHAndTS: the other two ways to watch. dash.js in its
// low-latency mode plays the MPD of a low-latency CMAF stream through a
// node that does not own it (LL-DASH: the segment being made arrives with
// chunked transfer), and hls.js plays an MPEG-TS profile (standard
// latency, for old devices) — each for a few seconds of media without a
// fatal error. Pinned to another rendition, dash.js and hls.js (low
// latency, through the non-owner) show its picture and play on.
func TestPlayersDASHAndTS(t *testing.T) {
	if testing.Short() {
		t.Skip("real players; skipped with -short")
	}
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.WaitLeader(20 * time.Second)
	c.WaitMembers(2, 20*time.Second)
	c.WaitReady(30 * time.Second)
	n := c.Node(0)

	cmaf := n.CreateProfile(t, viewerProfile(300))
	ts := testcluster.SmallProfile("old devices", 1)
	ts["segment_format"] = "ts"
	ts["latency"] = "standard"
	tsProfile := n.CreateProfile(t, ts)

	ll := n.CreateInput(t, map[string]any{"name": "dash", "profile_id": cmaf})
	old := n.CreateInput(t, map[string]any{"name": "ts", "profile_id": tsProfile})
	testcluster.Publish(t, ll.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15})
	testcluster.Publish(t, old.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360, FPS: 15})

	// Watch the CMAF stream through the node that does not own it.
	var viewer *testcluster.Node
	testcluster.Eventually(t, 20*time.Second, "a route for the CMAF input", func() error {
		var rt struct {
			Owner string `json:"owner"`
		}
		r, err := n.Get("/v1/route/" + ll.ID)
		if err != nil {
			return err
		}
		r.JSON(t, &rt)
		for _, m := range c.Nodes() {
			if m.Name() != rt.Owner {
				viewer = m
			}
		}
		return nil
	})
	require.NotNil(t, viewer)
	testcluster.WaitPlayable(t, viewer, ll.ID, 2, 2, 60*time.Second)
	testcluster.WaitPlayable(t, n, old.ID, 2, 2, 60*time.Second)

	dash := player.Start(t, player.Options{URL: viewer.HTTPURL() + "/live/" + ll.ID + "/manifest.mpd", Engine: player.DASH, LowLatency: true, Name: "dash.js LL via a non-owner"})
	hls := player.Start(t, player.Options{URL: n.HTTPURL() + "/live/" + old.ID + "/master.m3u8", Engine: player.HLS, Name: "hls.js on MPEG-TS"})
	for _, p := range []*player.Player{dash, hls} {
		p.WaitPlaying(45 * time.Second)
		st := p.WaitAdvancing(4*time.Second, 30*time.Second)
		require.Empty(t, st.Fatal)
		t.Logf("%s: longest stall %s, latency %.2fs, %dp", p.URL(), st.LongestStall, st.Latency, st.Height)
	}
	switchRendition(t, dash, 2)
	dash.Close()
	hls.Close()

	// hls.js in low-latency mode on the same ladder, through the same
	// non-owner, switches too.
	llHLS := player.Start(t, player.Options{URL: viewer.HTTPURL() + "/live/" + ll.ID + "/master.m3u8", Engine: player.HLS, LowLatency: true, Name: "hls.js LL via a non-owner"})
	llHLS.WaitPlaying(45 * time.Second)
	require.True(t, llHLS.WaitAdvancing(2*time.Second, 30*time.Second).LowLatency)
	switchRendition(t, llHLS, 2)
}

// switchRendition: the player has want video levels; it is pinned to one
// it does not play now, the decoded picture takes that level's height
// within a few segments, and media time keeps moving without a fatal error.
func switchRendition(t *testing.T, p *player.Player, want int) {
	t.Helper()
	levels := p.Levels()
	require.Len(t, levels, want, "video levels of %s", p.URL())
	now := p.Stats().VideoHeight
	to := -1
	for i, h := range levels {
		if h != now {
			to = i
			break
		}
	}
	require.GreaterOrEqual(t, to, 0, "no level other than the %dp playing in %v", now, levels)
	m := p.Mark()
	p.SwitchTo(to)
	p.Wait(fmt.Sprintf("the picture to switch from %dp to %dp", now, levels[to]), 30*time.Second, func(s player.Stats) bool {
		return s.VideoHeight == levels[to]
	})
	st := p.WaitAdvancingSince(m, 2*time.Second, 30*time.Second)
	require.Empty(t, st.Fatal)
	require.GreaterOrEqual(t, st.LevelSwitches, 1)
	t.Logf("%s: switched %dp → %dp, longest stall since %s", p.URL(), now, levels[to], p.LongestStallSince(m))
}
