package node_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/player"
)

// TestIntegrationPassthroughAnyIngest: a passthrough profile (the source
// copied, no encode) of a source with B-frames (what OBS's x264 sends by
// default) plays through any node whichever node the encoder reached. The
// owner's ffmpeg reads the source through its relay, across nodes over the
// cluster's TLS, and no key is on its command line; the copied segments
// decode, the source's AAC is copied too, and hls.js plays them.
func TestIntegrationPassthroughAnyIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("media integration test; skipped with -short")
	}
	testcluster.Media(t)
	key := bytes.Repeat([]byte{0x3c}, 32)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, ClusterKey: key})
	c.WaitLeader(20 * time.Second)
	c.WaitMembers(3, 20*time.Second)
	c.WaitReady(30 * time.Second)
	n := c.Node(0)
	pid := n.CreateProfile(t, map[string]any{"name": "copy", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "src", "passthrough": true, "video_bitrate_kbps": 800, "audio_bitrate_kbps": 64}}})
	const fps = 15
	var ids []string
	var streamKey string
	for _, ing := range c.Nodes() {
		in := n.CreateInput(t, map[string]any{"name": "copy via " + ing.Name(), "profile_id": pid})
		// The ingest node must know the key before the encoder connects.
		got := ing.WaitInput(t, in.ID)
		testcluster.Publish(t, got.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: fps, BFrames: 2})
		ids, streamKey = append(ids, in.ID), in.StreamKey
	}
	for _, id := range ids {
		for _, via := range c.Nodes() {
			testcluster.WaitPlayable(t, via, id, 1, 2, 60*time.Second)
		}
		// The newest segment: whole, from a keyframe, decoded to the end;
		// and its audio, the publisher's AAC-LC copied: mono, where the
		// ladder's own encode would be stereo. (Retried: on a loaded box a
		// download or ffprobe may time out.)
		testcluster.Eventually(t, 90*time.Second, "a copied segment of input "+id+" probed", func() error {
			pb, err := testcluster.FetchPlayback(n, id, "")
			if err != nil {
				return err
			}
			v := pb.Variants[0].URI
			p, err := testcluster.ProbeSegment(t.Context(), pb, v, len(pb.Media[v].Segments)-1)
			if err != nil {
				return err
			}
			if codec, w, h, ok := p.Video(); !ok || codec != "h264" || w != 320 || h != 180 {
				return fmt.Errorf("video: %s %dx%d", codec, w, h)
			}
			if p.Frames < fps {
				return fmt.Errorf("%d frames decoded, want at least a second's", p.Frames)
			}
			if len(pb.Audio) != 1 {
				return fmt.Errorf("%d audio renditions", len(pb.Audio))
			}
			a, err := testcluster.ProbeSegment(t.Context(), pb, pb.Audio[0], len(pb.Media[pb.Audio[0]].Segments)-1)
			if err != nil {
				return fmt.Errorf("audio: %w", err)
			}
			if len(a.Streams) != 1 || a.Streams[0].CodecName != "aac" || a.Streams[0].Channels != 1 {
				return fmt.Errorf("audio: not the source's mono AAC: %+v", a.Streams)
			}
			return nil
		})
	}
	requireNoSecretOnCommandLines(t, key, streamKey)

	// hls.js (low latency) plays the stream whose encoder reached the last
	// node, through the first.
	hls := player.Start(t, player.Options{URL: n.HTTPURL() + "/live/" + ids[len(ids)-1] + "/master.m3u8",
		Engine: player.HLS, LowLatency: true, Name: "hls.js on a B-frame passthrough"})
	hls.WaitPlaying(45 * time.Second)
	st := hls.WaitAdvancing(4*time.Second, 30*time.Second)
	require.Empty(t, st.Fatal)
	t.Logf("%s: longest stall %s, latency %.2fs, %dp", hls.URL(), st.LongestStall, st.Latency, st.Height)
	hls.Close()
}
