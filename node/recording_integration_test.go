package node_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/packager"
	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/player"
)

// recordingView is the part of a recording the test reads.
type recordingView struct {
	ID              string    `json:"id"`
	InputID         string    `json:"input_id"`
	Status          string    `json:"status"`
	DurationSeconds float64   `json:"duration_seconds"`
	Bytes           int64     `json:"bytes"`
	Nodes           []string  `json:"nodes"`
	Renditions      []string  `json:"renditions"`
	EndedAt         time.Time `json:"ended_at"`
	Error           string    `json:"error"`
	Playback        struct {
		HLS  string `json:"hls"`
		DASH string `json:"dash"`
	} `json:"playback"`
}

// TestIntegrationRecordingDVRAndVOD records a show on a three-node
// cluster and replays it: a viewer of the DVR playlist (through a node
// that does not own the stream) seeks 60 s back and plays from there, the
// segments that far back coming from the owner's disk, and a dash.js
// viewer of the DVR MPD seeks 25 s back; once the publisher
// stops, the show is one recording, written by the owner and its standby,
// whose VOD playlist plays to its end in hls.js, and its static MPD in
// dash.js, through the third node, which holds none of its files; ffprobe decodes one of its segments; and
// the recording is deleted, files and all, once it expires.
func TestIntegrationRecordingDVRAndVOD(t *testing.T) {
	alongside(t) // most of it waits for 75 s of show; its players measure no stalls
	testcluster.Media(t)
	start := time.Now()
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	profile := c.Node(0).CreateProfile(t, map[string]any{
		"name": "recorded", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 300, "audio_bitrate_kbps": 64, "fps": 15},
		},
	})

	// The settings are validated, naming the field.
	for _, bad := range []map[string]any{
		{"name": "x", "dvr_window_seconds": 10},
		{"name": "x", "dvr_window_seconds": 5 * 3600},
		{"name": "x", "recording_retention_days": -1},
	} {
		r := c.Node(0).MustDo(t, http.MethodPost, "/v1/inputs", bad)
		require.Equal(t, http.StatusBadRequest, r.Status, "%v: %s", bad, r.Body)
		var e struct {
			Field string `json:"field"`
		}
		require.NoError(t, viewerJSON(r.Body, &e))
		_, named := bad[e.Field]
		require.True(t, named && e.Field != "name", "%v: the error names %q", bad, e.Field)
	}

	in := c.Node(0).CreateInput(t, map[string]any{"name": "recorded", "profile_id": profile, "record": true,
		"dvr_window_seconds": 120, "reconnect_window_seconds": 0})
	owner := ownerOf(t, c, in.ID)
	var other *testcluster.Node
	for _, n := range c.Nodes() {
		n.WaitInput(t, in.ID)
	}
	pub := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15})
	testcluster.WaitPlayable(t, owner, in.ID, 1, 2, 60*time.Second)

	// The DVR playlist grows past what the live playlists (and memory)
	// hold: 75 s of segments.
	dvrURL := owner.HTTPURL() + "/live/" + in.ID + "/dvr.m3u8"
	testcluster.Eventually(t, 150*time.Second, "75 s in the DVR playlist", func() error {
		pb, err := testcluster.FetchPlaybackURL(dvrURL)
		if err != nil {
			return err
		}
		for uri, mp := range pb.Media {
			var d float64
			for _, sg := range mp.Segments {
				d += sg.Duration
			}
			if d < 75 {
				return fmt.Errorf("%s spans %.1f s", uri, d)
			}
		}
		return nil
	})
	live, err := testcluster.FetchPlayback(owner, in.ID, "")
	require.NoError(t, err)
	for uri, mp := range live.Media {
		require.LessOrEqual(t, len(mp.Segments), 10, "%s: the live playlist keeps its short window", uri)
	}

	// Which nodes hold the stream: the owner and its standby record it.
	rec := waitRecording(t, c.Node(0), in.ID, "recording")
	require.Len(t, rec.Nodes, 2, "the owner and its standby write the show: %v", rec.Nodes)
	require.Contains(t, rec.Nodes, owner.Name())
	for _, n := range c.Nodes() {
		if !contains(rec.Nodes, n.Name()) {
			other = n
		}
	}
	require.NotNil(t, other)
	t.Logf("owner %s, recorded on %v, third node %s (%s in)", owner.Name(), rec.Nodes, other.Name(), time.Since(start).Round(time.Second))

	// A viewer of the DVR playlist through a node that owns nothing seeks
	// back 60 s: segments that old are on disk only.
	p := player.Start(t, player.Options{URL: other.HTTPURL() + "/live/" + in.ID + "/dvr.m3u8", Name: "dvr"})
	p.WaitPlaying(60 * time.Second)
	var from, to float64
	testcluster.Eventually(t, 20*time.Second, "a DVR window of more than 60 s", func() error {
		s, e, ok := p.Seekable()
		if !ok || e-s < 65 {
			return fmt.Errorf("seekable %.1f-%.1f", s, e)
		}
		return nil
	})
	from = p.Stats().CurrentTime
	to = from - 60
	m := p.Mark()
	p.Seek(to)
	st := p.WaitAdvancingSince(m, 3*time.Second, 60*time.Second)
	require.Less(t, st.CurrentTime, from-50, "the play head went back: %s", st)
	t.Logf("DVR: sought from %.1f s to %.1f s, playing at %.1f s: %s", from, to, st.CurrentTime, st)
	p.Close()

	// The same in DASH: dash.js on the DVR MPD through the third node
	// seeks back past the live MPD's window (10 segments) and plays on,
	// the old segments coming from the owner's disk.
	require.Equal(t, "/live/"+in.ID+"/"+packager.DVRManifestName, strings.TrimPrefix(in.Playback.DVRDASH, c.Node(0).HTTPURL()))
	d := player.Start(t, player.Options{URL: other.HTTPURL() + "/live/" + in.ID + "/" + packager.DVRManifestName, Engine: player.DASH, Name: "dvr dash.js"})
	d.WaitPlaying(60 * time.Second)
	testcluster.Eventually(t, 20*time.Second, "a DASH DVR window of more than 30 s", func() error {
		s, e, ok := d.Seekable()
		if !ok || e-s < 30 {
			return fmt.Errorf("seekable %.1f-%.1f", s, e)
		}
		return nil
	})
	from = d.Stats().CurrentTime
	m = d.Mark()
	d.Seek(from - 25)
	st = d.WaitAdvancingSince(m, 3*time.Second, 60*time.Second)
	require.Less(t, st.CurrentTime, from-18, "dash.js went back past the live window: %s", st)
	t.Logf("DASH DVR: sought from %.1f s to %.1f s, playing at %.1f s: %s", from, from-25, st.CurrentTime, st)
	d.Close()

	// The show ends: one recording, ready.
	pub.Stop()
	rec = waitRecording(t, other, in.ID, "ready")
	require.Greater(t, rec.DurationSeconds, 70.0)
	require.Equal(t, []string{"180p"}, rec.Renditions)
	require.Greater(t, rec.Bytes, int64(0))
	t.Logf("recording %s: %.1f s, %d bytes, on %v", rec.ID, rec.DurationSeconds, rec.Bytes, rec.Nodes)
	require.True(t, strings.HasPrefix(rec.Playback.HLS, other.HTTPURL()+"/vod/"+rec.ID+"/"), rec.Playback.HLS)

	// Its VOD playlists, through the third node.
	vod, err := testcluster.FetchPlaybackURL(rec.Playback.HLS)
	require.NoError(t, err)
	require.Len(t, vod.Variants, 1)
	var total float64
	for uri, mp := range vod.Media {
		require.True(t, mp.Ended, "%s has ENDLIST", uri)
		r, err := other.Get("/vod/" + rec.ID + "/" + uri)
		require.NoError(t, err)
		require.Contains(t, string(r.Body), "#EXT-X-PLAYLIST-TYPE:VOD")
		if uri == vod.Variants[0].URI {
			for _, sg := range mp.Segments {
				total += sg.Duration
			}
		}
	}
	require.InDelta(t, rec.DurationSeconds, total, 2, "the playlist lists the whole show")
	probe, err := testcluster.ProbeSegment(context.Background(), vod, vod.Variants[0].URI, 3)
	require.NoError(t, err)
	codec, w, h, ok := probe.Video()
	require.True(t, ok)
	require.Equal(t, "h264", codec)
	require.Equal(t, [2]int{320, 180}, [2]int{w, h})
	require.Greater(t, probe.Frames, 0)

	// hls.js plays it from the start, and to the end.
	vp := player.Start(t, player.Options{URL: rec.Playback.HLS, Name: "vod"})
	vp.WaitPlaying(60 * time.Second)
	_, end, ok := vp.Seekable()
	require.True(t, ok)
	require.InDelta(t, total, end, 3, "the player sees the whole recording")
	vp.Seek(end - 6)
	st = vp.Wait("the end of the recording", 60*time.Second, func(s player.Stats) bool { return s.Ended })
	t.Logf("VOD played to its end: %s", st)
	vp.Close()

	// The same recording as a static MPD, through the same node: dash.js
	// sees all of it and plays to its end. (Which segments the MPD lists
	// against the HLS playlists is the packager tests' business.)
	require.Equal(t, other.HTTPURL()+"/vod/"+rec.ID+"/manifest.mpd", rec.Playback.DASH)
	r, err := other.Get("/vod/" + rec.ID + "/manifest.mpd")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), `type="static"`)
	dp := player.Start(t, player.Options{URL: rec.Playback.DASH, Engine: player.DASH, Name: "vod dash"})
	dp.WaitPlaying(60 * time.Second)
	_, end, ok = dp.Seekable()
	require.True(t, ok)
	require.InDelta(t, total, end, 3, "dash.js sees the whole recording")
	dp.Seek(end - 6)
	st = dp.Wait("the end of the recording in dash.js", 60*time.Second, func(s player.Stats) bool { return s.Ended })
	require.Empty(t, st.Fatal)
	t.Logf("VOD (DASH) played to its end: %s", st)
	dp.Close()

	// Retention: once expired, the leader deletes it, and every node its
	// files.
	r = other.MustDo(t, http.MethodPatch, "/v1/recordings/"+rec.ID, map[string]any{"expires_at": time.Now().UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	testcluster.Eventually(t, 30*time.Second, "the expired recording deleted", func() error {
		r, err := other.Get("/v1/recordings/" + rec.ID)
		if err != nil {
			return err
		}
		if r.Status != http.StatusNotFound {
			return fmt.Errorf("GET: %d", r.Status)
		}
		return nil
	})
	testcluster.Eventually(t, 60*time.Second, "the recording's files removed", func() error {
		for _, n := range c.Nodes() {
			if _, err := os.Stat(filepath.Join(n.Config.DataDir, "recordings", rec.ID)); err == nil {
				return fmt.Errorf("%s still has them", n.Name())
			}
		}
		return nil
	})
	r, err = other.Get("/vod/" + rec.ID + "/master.m3u8")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, r.Status)
	t.Logf("done in %s", time.Since(start).Round(time.Second))
}

func ownerOf(t *testing.T, c *testcluster.Cluster, inputID string) *testcluster.Node {
	t.Helper()
	m, ok := c.Node(0).ClusterHandle().Owner(inputID)
	require.True(t, ok)
	for _, n := range c.Nodes() {
		if n.Name() == m.Name {
			return n
		}
	}
	t.Fatalf("owner %s is not a node of the cluster", m.Name)
	return nil
}

// listRecordings is GET /v1/inputs/{id}/recordings, newest first, with the
// body for messages.
func listRecordings(n *testcluster.Node, inputID string) ([]recordingView, []byte, error) {
	r, err := n.Get("/v1/inputs/" + inputID + "/recordings")
	if err != nil {
		return nil, nil, err
	}
	var list struct {
		Recordings []recordingView `json:"recordings"`
	}
	if err := viewerJSON(r.Body, &list); err != nil {
		return nil, r.Body, err
	}
	return list.Recordings, r.Body, nil
}

// waitRecording waits until the input has one recording in the status.
func waitRecording(t *testing.T, n *testcluster.Node, inputID, status string) recordingView {
	t.Helper()
	var rec recordingView
	testcluster.Eventually(t, 60*time.Second, "a recording "+status, func() error {
		list, body, err := listRecordings(n, inputID)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return fmt.Errorf("%d recordings: %s", len(list), body)
		}
		rec = list[0]
		if rec.Status != status || len(rec.Nodes) == 0 {
			return fmt.Errorf("recording %s on %v", rec.Status, rec.Nodes)
		}
		return nil
	})
	return rec
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
