package node_test

import (
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationPassthroughAnyIngest: a passthrough profile (the source
// copied, no encode) plays through any node whichever node the encoder
// reached: an owner that is not the ingest node reads it over the
// cluster's TLS and copies it from a live relay pull.
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
		for _, via := range c.Nodes() {
			testcluster.WaitPlayable(t, via, id, 1, 2, 60*time.Second)
		}
	}
}
