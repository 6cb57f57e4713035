package node_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationIngestEveryProtocol publishes a 720p test pattern over RTMP,
// SRT and RTSP into one node and checks the ladder each time: every
// rendition in the master playlist, segments that ffprobe decodes (after
// their init segment) at the rendition's size, the shared audio rendition,
// and segment boundaries aligned across renditions. The inputs have no
// reconnect window, so the playlists end as soon as the publisher stops.
func TestIntegrationIngestEveryProtocol(t *testing.T) {
	// Not alongside: its publisher encodes 720p25 in real time, the
	// heaviest load of any integration test, and next to another test an
	// RTSP publish once never got its path ready.
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	profile := n.CreateProfile(t, testcluster.SmallProfile("test ladder", 1))
	sizes := map[string][2]int{"360p": {640, 360}, "180p": {320, 180}}

	for _, proto := range []string{"rtmp", "srt", "rtsp"} {
		t.Run(proto, func(t *testing.T) {
			in := n.CreateInput(t, map[string]any{"name": "ingest over " + proto, "profile_id": profile, "reconnect_window_seconds": 0})
			target := map[string]string{"rtmp": in.Ingest.RTMP, "srt": in.Ingest.SRT, "rtsp": in.Ingest.RTSP}[proto]
			pub := testcluster.Publish(t, target, testcluster.PublishOptions{Width: 1280, Height: 720, FPS: 25})

			pb := testcluster.WaitPlayable(t, n, in.ID, 2, 3, 45*time.Second)
			t.Logf("%s: publish to 3 segments listed: %s", proto, time.Since(pub.Started()).Round(100*time.Millisecond))

			r := n.MustDo(t, http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
			require.Equal(t, http.StatusOK, r.Status)
			var st struct {
				Live       bool   `json:"live"`
				State      string `json:"state"`
				IngestNode string `json:"ingest_node"`
				OwnerNode  string `json:"owner_node"`
				Protocol   string `json:"protocol"`
			}
			r.JSON(t, &st)
			require.True(t, st.Live)
			require.Equal(t, "live", st.State)
			require.Equal(t, proto, st.Protocol)
			require.Equal(t, n.Name(), st.IngestNode)
			require.Equal(t, n.Name(), st.OwnerNode)

			for _, v := range pb.Variants {
				require.NotZero(t, v.Bandwidth, "BANDWIDTH of %s", v.URI)
				require.Contains(t, v.Codecs, "avc1.", "CODECS of %s", v.URI)
				require.Contains(t, v.Codecs, "mp4a.40.2", "CODECS of %s", v.URI)
				name := strings.Split(v.URI, "/")[0]
				want, ok := sizes[name]
				require.True(t, ok, "unexpected variant %q", v.URI)
				require.Equal(t, fmt.Sprintf("%dx%d", want[0], want[1]), v.Resolution)

				mp := pb.Media[v.URI]
				require.GreaterOrEqual(t, mp.MediaSequence, uint64(time.Now().Add(-time.Hour).Unix()), "epoch-based media sequence")
				require.NotEmpty(t, pb.InitURL(v.URI), "fMP4 media playlists name their init segment (EXT-X-MAP)")
				// The newest listed segment: on a loaded box the first may
				// have left the window by the time it is fetched.
				probe, err := testcluster.ProbeSegment(context.Background(), pb, v.URI, len(mp.Segments)-1)
				require.NoError(t, err)
				codec, w, h, ok := probe.Video()
				require.True(t, ok, "no video in a %s segment", name)
				require.Equal(t, "h264", codec)
				require.Equal(t, want, [2]int{w, h})
				require.False(t, probe.HasAudio(), "audio is a rendition of its own, not in the %s segments", name)
				require.Positive(t, probe.Frames)
			}
			// The audio: one rendition every variant shares.
			require.Equal(t, []string{"audio/index.m3u8"}, pb.Audio)
			probe, err := testcluster.ProbeSegment(context.Background(), pb, pb.Audio[0], len(pb.Media[pb.Audio[0]].Segments)-1)
			require.NoError(t, err)
			require.True(t, probe.HasAudio(), "no audio in an audio segment")
			_, _, _, hasVideo := probe.Video()
			require.False(t, hasVideo, "video in an audio segment")
			require.Equal(t, "aac", probe.Streams[0].CodecName)
			requireAligned(t, pb)

			// /metrics shows the live stream's per-rendition figures.
			testcluster.Eventually(t, 10*time.Second, "per-rendition metrics", func() error {
				r, err := n.Do(http.MethodGet, "/metrics", nil)
				if err != nil {
					return err
				}
				for _, want := range []string{
					`dionysia_rendition_fps{input="` + in.ID + `",rendition="360p"}`,
					`dionysia_rendition_fps{input="` + in.ID + `",rendition="180p"}`,
					`dionysia_rendition_bitrate_kbps{input="` + in.ID + `",rendition="360p"}`,
					`dionysia_transcoder_speed{input="` + in.ID + `"}`,
					`dionysia_ingest_bytes_total{input="` + in.ID + `"}`,
				} {
					v, ok := metricValue(string(r.Body), want)
					if !ok || v <= 0 {
						return fmt.Errorf("%s = %v (present %v)", want, v, ok)
					}
				}
				return nil
			})

			pub.Stop()
			testcluster.Eventually(t, 15*time.Second, "the session to end", func() error {
				if n.State().Session(in.ID) != nil {
					return fmt.Errorf("still live")
				}
				return nil
			})
			// No window: the playlists end at once, so players stop polling.
			testcluster.Eventually(t, 15*time.Second, "ended playlists", func() error {
				pb, err := testcluster.FetchPlayback(n, in.ID, "")
				if err != nil {
					return err
				}
				for uri, mp := range pb.Media {
					if !mp.Ended {
						return fmt.Errorf("%s has no EXT-X-ENDLIST", uri)
					}
				}
				return nil
			})
		})
	}
}

// metricValue finds one sample in Prometheus text.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// requireAligned checks that the video renditions cut their segments at the
// same points: for every media sequence number listed by all of them, the
// durations match.
func requireAligned(t *testing.T, pb testcluster.Playback) {
	t.Helper()
	durations := map[uint64][]float64{}
	for _, v := range pb.Variants {
		mp := pb.Media[v.URI]
		for i, s := range mp.Segments {
			seq := mp.MediaSequence + uint64(i)
			durations[seq] = append(durations[seq], s.Duration)
		}
	}
	common := 0
	for seq, ds := range durations {
		if len(ds) != len(pb.Variants) {
			continue
		}
		common++
		for _, d := range ds[1:] {
			require.InDelta(t, ds[0], d, 0.05, "segment %d has different durations across renditions: %v", seq, ds)
		}
	}
	require.GreaterOrEqual(t, common, 2, "renditions share too few segments: %v", durations)
}

// TestIntegrationReconnectWindow: with a reconnect window (the API's
// default, 30 s) a publisher that goes away does not end the stream: the
// status says reconnecting until a deadline, the playlists stay live (the
// owner shows a slate), and a publisher coming back within the window
// continues the same playlists after a discontinuity.
func TestIntegrationReconnectWindow(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	profile := n.CreateProfile(t, testcluster.SmallProfile("reconnect", 1))
	in := n.CreateInput(t, map[string]any{"name": "reconnects", "profile_id": profile})
	require.Equal(t, 30, n.State().Input(in.ID).ReconnectWindowSeconds, "the API's default window")
	pub := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
	before := testcluster.WaitPlayable(t, n, in.ID, 2, 2, 45*time.Second)
	streamID := segmentStream(t, before)

	type status struct {
		Live              bool       `json:"live"`
		State             string     `json:"state"`
		ReconnectDeadline *time.Time `json:"reconnect_deadline"`
		Transcoder        *struct {
			Running bool `json:"running"`
		} `json:"transcoder"`
	}
	getStatus := func() status {
		r := n.MustDo(t, http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
		require.Equal(t, http.StatusOK, r.Status)
		var st status
		r.JSON(t, &st)
		return st
	}

	stoppedAt := time.Now()
	pub.Stop()
	testcluster.Eventually(t, 15*time.Second, "the input to be reconnecting", func() error {
		if st := getStatus(); st.State != "reconnecting" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	st := getStatus()
	require.False(t, st.Live, "no publisher")
	require.NotNil(t, st.ReconnectDeadline)
	require.WithinRange(t, *st.ReconnectDeadline, stoppedAt.Add(29*time.Second), time.Now().Add(31*time.Second))

	// The playlists stay live and keep moving (the slate) in the window.
	edge := lastMSN(before)
	testcluster.Eventually(t, 30*time.Second, "the slate's segments", func() error {
		pb, err := testcluster.FetchPlayback(n, in.ID, "")
		if err != nil {
			return err
		}
		for uri, mp := range pb.Media {
			if mp.Ended {
				return fmt.Errorf("%s ended within the reconnect window", uri)
			}
		}
		if l := lastMSN(pb); l < edge+3 {
			return fmt.Errorf("last segment %d, want past %d", l, edge+3)
		}
		return nil
	})
	st = getStatus()
	require.Equal(t, "reconnecting", st.State)
	require.Nil(t, st.Transcoder, "no transcoder while the slate plays")

	// The publisher comes back: the same playlists go on.
	testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
	testcluster.Eventually(t, 30*time.Second, "live again, the new transcoder's segments in the playlists", func() error {
		// The new transcoder is the status's once its segments are in.
		if st := getStatus(); st.State != "live" || !st.Live || st.Transcoder == nil || !st.Transcoder.Running {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	after := testcluster.WaitPlayable(t, n, in.ID, 2, 2, 5*time.Second)
	require.Equal(t, streamID, segmentStream(t, after), "a reconnect within the window continues the same stream")
	for uri, mp := range after.Media {
		require.False(t, mp.Ended, uri)
	}
	r, err := n.Get("/live/" + in.ID + "/" + after.Variants[0].URI)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, string(r.Body), "#EXT-X-DISCONTINUITY\n", "the seams (slate, new transcoder) are marked")
	probe, err := testcluster.ProbeSegment(context.Background(), after, after.Variants[0].URI, len(after.Media[after.Variants[0].URI].Segments)-1)
	require.NoError(t, err)
	require.Positive(t, probe.Frames, "the newest segment decodes")
}

// lastMSN is the newest segment any media playlist lists.
func lastMSN(pb testcluster.Playback) uint64 {
	var last uint64
	for _, mp := range pb.Media {
		if n := len(mp.Segments); n > 0 {
			last = max(last, mp.MediaSequence+uint64(n)-1)
		}
	}
	return last
}

// segmentStream is the stream id every segment URI of a playback starts
// with ("<stream id>-<msn>.m4s"): the same while the same stream goes on.
func segmentStream(t *testing.T, pb testcluster.Playback) string {
	t.Helper()
	id := ""
	for uri, mp := range pb.Media {
		for _, sg := range mp.Segments {
			s, _, ok := strings.Cut(sg.URI, "-")
			require.True(t, ok, "%s: segment URI %q", uri, sg.URI)
			if id == "" {
				id = s
			}
			require.Equal(t, id, s, "%s: segments of two streams in one playback", uri)
		}
	}
	require.NotEmpty(t, id)
	return id
}

// TestIntegrationPublishRefused: a wrong key, and the key of a disabled
// input, are refused at publish time on every protocol.
func TestIntegrationPublishRefused(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	in := n.CreateInput(t, map[string]any{"name": "refusals"})
	disabled := n.CreateInput(t, map[string]any{"name": "off", "enabled": false})
	require.False(t, disabled.Enabled)

	cases := map[string]string{
		"rtmp wrong key":     strings.Replace(in.Ingest.RTMP, in.StreamKey, "wrong"+in.StreamKey[5:], 1),
		"srt wrong key":      strings.Replace(in.Ingest.SRT, in.StreamKey, "wrong"+in.StreamKey[5:], 1),
		"rtsp wrong key":     strings.Replace(in.Ingest.RTSP, in.StreamKey, "wrong"+in.StreamKey[5:], 1),
		"rtmp disabled":      disabled.Ingest.RTMP,
		"rtmp other path":    strings.Replace(in.Ingest.RTMP, "/live/", "/other/", 1),
		"rtmp key as subdir": in.Ingest.RTMP + "/extra",
	}
	for name, target := range cases {
		t.Run(name, func(t *testing.T) {
			pub := testcluster.Publish(t, target, testcluster.PublishOptions{Width: 640, Height: 360, Duration: 30 * time.Second})
			err, exited := pub.WaitExit(15 * time.Second)
			require.True(t, exited, "a refused publisher must be cut off quickly")
			require.Error(t, err, "ffmpeg should fail when refused; stderr: %s", pub.Stderr())
			require.Empty(t, n.State().Sessions())
		})
	}

	// Enabling the input lets the same key through.
	r := n.MustDo(t, http.MethodPatch, "/v1/inputs/"+disabled.ID, map[string]any{"enabled": true})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	testcluster.Publish(t, disabled.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
	testcluster.Eventually(t, 20*time.Second, "the enabled input to go live", func() error {
		if n.State().Session(disabled.ID) == nil {
			return fmt.Errorf("not live")
		}
		return nil
	})
}

// TestIntegrationRotatedKeyRefused: after rotate-key the old key stops
// working at the next publish and the new one works.
func TestIntegrationRotatedKeyRefused(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)
	in := n.CreateInput(t, map[string]any{"name": "rotate"})

	r := n.MustDo(t, http.MethodPost, "/v1/inputs/"+in.ID+"/rotate-key", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var rotated testcluster.Input
	r.JSON(t, &rotated)
	require.NotEqual(t, in.StreamKey, rotated.StreamKey)

	old := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360, Duration: 30 * time.Second})
	err, exited := old.WaitExit(15 * time.Second)
	require.True(t, exited)
	require.Error(t, err)

	testcluster.Publish(t, rotated.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
	testcluster.Eventually(t, 20*time.Second, "live with the new key", func() error {
		if n.State().Session(in.ID) == nil {
			return fmt.Errorf("not live")
		}
		return nil
	})
}

// TestIntegrationRestartKeepsState: a node restarted on its data dir has
// its inputs and profiles (raft log + snapshot on disk).
func TestIntegrationRestartKeepsState(t *testing.T) {
	alongside(t)
	if testing.Short() {
		t.Skip("starts a real node")
	}
	testcluster.MediaMTX(t)
	c := testcluster.Start(t, testcluster.Options{Demo: true})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	profile := n.CreateProfile(t, testcluster.SmallProfile("kept", 2))
	var ids []string
	for i := range 5 {
		ids = append(ids, n.CreateInput(t, map[string]any{"name": fmt.Sprintf("kept %d", i), "profile_id": profile}).ID)
	}
	demoKey := n.State().Input("demo").StreamKey

	c.Stop(0)
	n = c.Restart(0)
	c.WaitReady(30 * time.Second)

	for _, id := range ids {
		r := n.MustDo(t, http.MethodGet, "/v1/inputs/"+id, nil)
		require.Equal(t, http.StatusOK, r.Status, "input %s lost across restart", id)
	}
	r := n.MustDo(t, http.MethodGet, "/v1/profiles/"+profile, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, demoKey, n.State().Input("demo").StreamKey, "the demo input is created once, not on every start")
	require.Len(t, n.State().Inputs(), 6)
}

// TestIntegrationDisableCutsLivePublish: disabling (or deleting) an input
// disconnects its publisher at once, not only at the next publish.
func TestIntegrationDisableCutsLivePublish(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	for _, how := range []string{"disable", "delete"} {
		t.Run(how, func(t *testing.T) {
			in := n.CreateInput(t, map[string]any{"name": "cut by " + how})
			pub := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
			testcluster.Eventually(t, 20*time.Second, "live", func() error {
				if n.State().Session(in.ID) == nil {
					return fmt.Errorf("not live")
				}
				return nil
			})
			var r testcluster.Response
			if how == "disable" {
				r = n.MustDo(t, http.MethodPatch, "/v1/inputs/"+in.ID, map[string]any{"enabled": false})
				require.Equal(t, http.StatusOK, r.Status, string(r.Body))
			} else {
				r = n.MustDo(t, http.MethodDelete, "/v1/inputs/"+in.ID, nil)
				require.Equal(t, http.StatusNoContent, r.Status, string(r.Body))
			}
			_, exited := pub.WaitExit(15 * time.Second)
			require.True(t, exited, "the publisher must be disconnected")
			testcluster.Eventually(t, 10*time.Second, "the session to end", func() error {
				if n.State().Session(in.ID) != nil {
					return fmt.Errorf("still live")
				}
				return nil
			})
		})
	}
}

// TestIntegrationRTSPPublishesAreNotRefused publishes over RTSP again and
// again, each time to a new input, while the node's relay starts reading
// each publish as soon as it is authorised. mediamtx 1.15 refused an RTSP
// publisher's RECORD (400) when a read of the not yet published path came
// in between (it creates the path to answer the read and deletes it): about
// one publish in fifteen failed, and the publisher exited. The relay now
// asks mediamtx's control API before it reads (ADR 0007). 20 publishes
// caught the old behaviour with a probability of about three in four.
func TestIntegrationRTSPPublishesAreNotRefused(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)
	profile := n.CreateProfile(t, testcluster.SmallProfile("rtsp publishes", 1))
	const publishes = 20
	for i := range publishes {
		in := n.CreateInput(t, map[string]any{"name": fmt.Sprintf("rtsp %d", i), "profile_id": profile, "reconnect_window_seconds": 0})
		pub := testcluster.Publish(t, in.Ingest.RTSP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 25, Duration: time.Second})
		err, exited := pub.WaitExit(20 * time.Second)
		require.True(t, exited, "publish %d still running after 20 s", i)
		require.NoError(t, err, "publish %d of %d was refused: %s", i+1, publishes, pub.Stderr())
	}
}
