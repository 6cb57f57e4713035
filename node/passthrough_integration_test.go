package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationPassthroughAnyIngest: a passthrough profile (the source
// copied, no encode) plays through any node whichever node the encoder
// reached: an owner that is not the ingest node reads it over the
// cluster's TLS and copies it from a live relay pull. The source's AAC-LC
// audio is copied too, not encoded again (which would cost more than the
// copy of the video): the publisher's mono stays mono.
func TestIntegrationPassthroughAnyIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("media integration test; skipped with -short")
	}
	testcluster.Media(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitLeader(20 * time.Second)
	c.WaitMembers(3, 20*time.Second)
	c.WaitReady(30 * time.Second)
	n := c.Node(0)
	pid := n.CreateProfile(t, map[string]any{"name": "copy", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "src", "passthrough": true, "video_bitrate_kbps": 800, "audio_bitrate_kbps": 64}}})
	var ids []string
	for _, ing := range c.Nodes() {
		in := n.CreateInput(t, map[string]any{"name": "copy via " + ing.Name(), "profile_id": pid})
		// The ingest node must know the key before the encoder connects.
		got := ing.WaitInput(t, in.ID)
		testcluster.Publish(t, got.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15})
		ids = append(ids, in.ID)
	}
	for _, id := range ids {
		var pb testcluster.Playback
		for _, via := range c.Nodes() {
			pb = testcluster.WaitPlayable(t, via, id, 1, 2, 60*time.Second)
		}
		require.Len(t, pb.Audio, 1)
		probe, err := testcluster.ProbeSegment(context.Background(), pb, pb.Audio[0], 0)
		require.NoError(t, err)
		require.Len(t, probe.Streams, 1)
		require.Equal(t, "aac", probe.Streams[0].CodecName)
		require.Equal(t, 1, probe.Streams[0].Channels, "the source's audio copied (an encode makes stereo)")
	}
}
