package node_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
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
	alongside(t)
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

// TestIntegrationRebalanceMoveKeepsNumbering (issue 11): a node that
// joins takes a stream from a node above the load bound, through the
// make-before-break handover: the new owner continues the stream's
// playlists (numbering goes on, no reset) and the old owner's transcoder
// stops. Four cheap streams on three nodes put two on one node; the
// fourth input is picked so that the new node is among its candidates.
func TestIntegrationRebalanceMoveKeepsNumbering(t *testing.T) {
	testcluster.Media(t)
	c := startThree(t, testcluster.Options{Configure: func(_ int, cfg *node.Config) { cfg.TranscodeCapacity = 10 }})
	n0 := c.Node(0)
	profile := n0.CreateProfile(t, map[string]any{
		"name": "tiny", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{{"name": "180p", "width": 320, "height": 180, "fps": 15, "video_bitrate_kbps": 200, "audio_bitrate_kbps": 48}},
	})
	pubOpts := testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15, Duration: 4 * time.Minute}
	session := func(id string) *fsm.Session {
		t.Helper()
		var s *fsm.Session
		testcluster.Eventually(t, 30*time.Second, "a placed live session of "+id, func() error {
			if s = n0.State().Session(id); s == nil || !s.Live() || s.Owner == "" {
				return fmt.Errorf("session %+v", s)
			}
			return nil
		})
		return s
	}
	// The ring the cluster will have once n3 joins: only its candidate
	// order matters here.
	var four []cluster.Member
	for i := range 4 {
		four = append(four, cluster.Member{Name: fmt.Sprintf("n%d", i), Meta: cluster.Meta{Capacity: 10}})
	}
	ring4 := cluster.NewRing(four)
	var ids []string
	for i := range 4 {
		in := n0.CreateInput(t, map[string]any{"name": fmt.Sprintf("s%d", i), "profile_id": profile})
		for i == 3 && !slices.ContainsFunc(ring4.Candidates(in.ID, fsm.PlacementChoices), func(m cluster.Member) bool { return m.Name == "n3" }) {
			in = n0.CreateInput(t, map[string]any{"name": "s3 again", "profile_id": profile})
		}
		testcluster.Publish(t, in.Ingest.RTMP, pubOpts)
		session(in.ID)
		ids = append(ids, in.ID)
	}
	per := map[string]int{}
	for _, id := range ids {
		per[n0.State().Session(id).Owner]++
	}
	require.Len(t, per, 3, "four streams on three nodes: %v", per)

	viewer := c.Node(1)
	before := map[string]uint64{}
	show := map[string]string{} // the stream id in segment names
	for _, id := range ids {
		pb := testcluster.WaitPlayable(t, viewer, id, 1, 2, 60*time.Second)
		mp := pb.Media[pb.Variants[0].URI]
		before[id] = mp.MediaSequence + uint64(len(mp.Segments)) - 1
		show[id] = showOf(mp.Segments[len(mp.Segments)-1].URI)
	}

	joined := c.AddNode()
	c.WaitMembers(4, 30*time.Second)
	var moved, from string
	testcluster.Eventually(t, 90*time.Second, "a stream moved to "+joined.Name(), func() error {
		for _, id := range ids {
			if s := n0.State().Session(id); s != nil && s.Owner == joined.Name() {
				moved, from = id, s.MovedFrom
				return nil
			}
		}
		return fmt.Errorf("owners %v", func() map[string]string {
			m := map[string]string{}
			for _, id := range ids {
				m[id] = n0.State().Session(id).Owner
			}
			return m
		}())
	})
	t.Logf("stream %s moved %s -> %s", moved, from, joined.Name())
	require.NotEmpty(t, from)

	// The new owner produces it, continuing the same show: the newest
	// segment listed through the viewer goes past what it was before the
	// move and carries the same stream id (segment names are
	// <stream id>-<msn>), where a fresh start would name a new one.
	testcluster.Eventually(t, 40*time.Second, "the moved stream produced by "+joined.Name(), func() error {
		st, err := viewerGetStatus(viewer, moved)
		if err != nil {
			return err
		}
		if st.OwnerNode != joined.Name() {
			return fmt.Errorf("status names %s", st.OwnerNode)
		}
		pb, err := testcluster.FetchPlayback(viewer, moved, "")
		if err != nil {
			return err
		}
		mp := pb.Media[pb.Variants[0].URI]
		if mp == nil || len(mp.Segments) == 0 {
			return fmt.Errorf("no segments")
		}
		if first := mp.MediaSequence; first+uint64(len(mp.Segments))-1 <= before[moved] {
			return fmt.Errorf("newest segment %d, before the move %d", first+uint64(len(mp.Segments))-1, before[moved])
		}
		if got := showOf(mp.Segments[len(mp.Segments)-1].URI); got != show[moved] {
			return fmt.Errorf("segments of stream %q, before the move %q: the new owner started a new show", got, show[moved])
		}
		return nil
	})
	var old *testcluster.Node
	for _, n := range c.Running() {
		if n.Name() == from {
			old = n
		}
	}
	require.NotNil(t, old)
	testcluster.Eventually(t, 40*time.Second, "the old owner's transcoder for it to stop", func() error {
		n, err := viewerTranscoders(old)
		if err != nil {
			return err
		}
		if n != per[from]-1 {
			return fmt.Errorf("%s runs %d transcoders, want %d", from, n, per[from]-1)
		}
		return nil
	})
}

// showOf is the stream id a segment URI names: <dir>/<stream id>-<msn>.m4s.
func showOf(uri string) string {
	base := uri[strings.LastIndex(uri, "/")+1:]
	id, _, _ := strings.Cut(base, "-")
	return id
}
