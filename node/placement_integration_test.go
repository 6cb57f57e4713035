package node_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationCapacityRefuseOrPassthrough (issue 11): three real nodes
// that offer 3 cost units each, and a one-rung ladder that costs 2. Three
// streams fit, one per node, though every encoder publishes to the same
// node: placement spreads them by load. A fourth publish fits nowhere: the
// encoder is refused at once, and status and the metric say why. An input
// whose overload policy is passthrough is carried untranscoded instead
// (cost 1, which still fits), and plays.
func TestIntegrationCapacityRefuseOrPassthrough(t *testing.T) {
	testcluster.Media(t)
	c := startThree(t, testcluster.Options{Configure: func(_ int, cfg *node.Config) { cfg.TranscodeCapacity = 3 }})
	n0 := c.Node(0)
	profile := n0.CreateProfile(t, map[string]any{
		"name": "tiny", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{{"name": "180p", "width": 320, "height": 180, "fps": 15, "video_bitrate_kbps": 200, "audio_bitrate_kbps": 48}},
	})
	pubOpts := testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15, Duration: 3 * time.Minute}
	live := func(id string) {
		t.Helper()
		testcluster.Eventually(t, 30*time.Second, "a placed live session of "+id, func() error {
			s := n0.State().Session(id)
			if s == nil || !s.Live() || s.Owner == "" {
				return fmt.Errorf("session %+v", s)
			}
			return nil
		})
	}

	owners := map[string]int{}
	for i := range 3 {
		in := n0.CreateInput(t, map[string]any{"name": fmt.Sprintf("fits %d", i), "profile_id": profile})
		testcluster.Publish(t, in.Ingest.RTMP, pubOpts)
		live(in.ID)
		s := n0.State().Session(in.ID)
		require.Equal(t, 2, s.Cost)
		owners[s.Owner]++
	}
	require.Len(t, owners, 3, "one stream per node: %v", owners)

	type nodeInfo struct {
		Name     string `json:"name"`
		Capacity int    `json:"capacity"`
		Cost     int    `json:"cost"`
	}
	testcluster.Eventually(t, 10*time.Second, "cost against capacity in /v1/nodes", func() error {
		var body struct {
			Nodes []nodeInfo `json:"nodes"`
		}
		r, err := c.Node(1).Get("/v1/nodes")
		if err != nil {
			return err
		}
		r.JSON(t, &body)
		for _, nd := range body.Nodes {
			if nd.Capacity != 3 || nd.Cost != 2 {
				return fmt.Errorf("%+v, want cost 2 of capacity 3 on every node", body.Nodes)
			}
		}
		return nil
	})

	// Full: the fourth encoder is refused at the auth hook.
	extra := n0.CreateInput(t, map[string]any{"name": "one too many", "profile_id": profile})
	refused := testcluster.Publish(t, extra.Ingest.RTMP, pubOpts)
	err, exited := refused.WaitExit(20 * time.Second)
	require.True(t, exited, "the refused encoder stops")
	require.Error(t, err, "the refused encoder fails: %s", refused.Stderr())
	require.Nil(t, n0.State().Session(extra.ID))
	var st struct {
		State   string `json:"state"`
		Refused *struct {
			Reason string `json:"reason"`
		} `json:"refused"`
	}
	n0.MustDo(t, http.MethodGet, "/v1/inputs/"+extra.ID+"/status", nil).JSON(t, &st)
	require.Equal(t, "idle", st.State)
	require.NotNil(t, st.Refused, "status says the publish was refused")
	require.Contains(t, st.Refused.Reason, "no node has room")
	metrics := n0.MustDo(t, http.MethodGet, "/metrics", nil)
	require.Contains(t, string(metrics.Body), `dionysia_publish_refused_total{reason="capacity"} 1`)
	require.Contains(t, string(metrics.Body), "dionysia_transcode_capacity_units 3")

	// The same, with overload passthrough: carried as the source.
	pt := n0.CreateInput(t, map[string]any{"name": "passthrough when full", "profile_id": profile, "overload": "passthrough"})
	require.Equal(t, "passthrough", pt.Overload)
	testcluster.Publish(t, pt.Ingest.RTMP, pubOpts)
	live(pt.ID)
	s := n0.State().Session(pt.ID)
	require.True(t, s.Passthrough)
	require.Equal(t, 1, s.Cost)
	pb := testcluster.WaitPlayable(t, c.Node(1), pt.ID, 1, 2, 60*time.Second)
	require.Len(t, pb.Variants, 1, "one rendition: the source")
	var pst struct {
		Passthrough bool `json:"overload_passthrough"`
		Cost        int  `json:"cost"`
	}
	c.Node(2).MustDo(t, http.MethodGet, "/v1/inputs/"+pt.ID+"/status", nil).JSON(t, &pst)
	require.True(t, pst.Passthrough)
	require.Equal(t, 1, pst.Cost)
}
