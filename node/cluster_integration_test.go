package node_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// integrationSlots lets two integration tests run at once. They mostly
// wait on the clock (an encoder makes a segment a second whatever the
// machine), so two share a 2-core machine without starving each other,
// and the package takes minutes less. Tests whose players judge stalls
// or latency, a handover measurement, a 720p publisher, or a look at
// every process or packet on the machine do not call alongside: they run
// alone, before the parallel ones.
var integrationSlots = make(chan struct{}, 2)

// alongside marks an integration test that may run next to one other.
func alongside(t *testing.T) {
	t.Parallel()
	integrationSlots <- struct{}{}
	t.Cleanup(func() { <-integrationSlots })
}

// startThree starts a 3-node cluster and waits until it has converged:
// every node sees 3 alive members, raft has 3 voters, and all are ready.
func startThree(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	opts.Nodes = 3
	c := testcluster.Start(t, opts)
	c.WaitMembers(3, 30*time.Second)
	c.WaitRaftServers(3, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	return c
}

func follower(c *testcluster.Cluster) *testcluster.Node {
	for _, n := range c.Running() {
		if !n.ClusterHandle().IsLeader() {
			return n
		}
	}
	return nil
}

// TestIntegrationClusterJoinReplicate: nodes join with --join, a write on a
// follower is forwarded to the leader, and every node can read it.
func TestIntegrationClusterJoinReplicate(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{})

	f := follower(c)
	require.NotNil(t, f)
	profile := f.CreateProfile(t, testcluster.SmallProfile("from a follower", 2))
	in := f.CreateInput(t, map[string]any{"name": "created on a follower", "profile_id": profile})

	for _, n := range c.Running() {
		testcluster.Eventually(t, 10*time.Second, "the input on "+n.Name(), func() error {
			r, err := n.Do(http.MethodGet, "/v1/inputs/"+in.ID, nil)
			if err != nil {
				return err
			}
			if r.Status != http.StatusOK {
				return fmt.Errorf("%s answered %d", n.Name(), r.Status)
			}
			return nil
		})
	}

	// Every node agrees on the owner, and /v1/route says so everywhere.
	var owners []string
	for _, n := range c.Running() {
		r := n.MustDo(t, http.MethodGet, "/v1/route/"+in.ID, nil)
		require.Equal(t, http.StatusOK, r.Status)
		var rt struct{ Owner, Origin string }
		r.JSON(t, &rt)
		owners = append(owners, rt.Owner)
		require.True(t, strings.HasPrefix(rt.Origin, "http://127.0.0.1:"), rt.Origin)
	}
	require.Equal(t, owners[0], owners[1])
	require.Equal(t, owners[0], owners[2])

	// A refused write on a follower comes back with the leader's answer.
	r := f.MustDo(t, http.MethodDelete, "/v1/profiles/"+profile, nil)
	require.Equal(t, http.StatusConflict, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), in.ID)

	// /v1/nodes lists every member with its raft role.
	r = f.MustDo(t, http.MethodGet, "/v1/nodes", nil)
	var nodes struct {
		Nodes []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			RaftRole string `json:"raft_role"`
		} `json:"nodes"`
	}
	r.JSON(t, &nodes)
	require.Len(t, nodes.Nodes, 3)
	roles := map[string]int{}
	for _, nd := range nodes.Nodes {
		require.Equal(t, "alive", nd.State, nd.Name)
		roles[nd.RaftRole]++
	}
	require.Equal(t, map[string]int{"leader": 1, "voter": 2}, roles)

	// Every node counts failed polls of its mediamtx's API.
	for _, n := range c.Running() {
		r := n.MustDo(t, http.MethodGet, "/metrics", nil)
		_, ok := metricValue(string(r.Body), "dionysia_ingest_poll_errors_total")
		require.True(t, ok, "%s: no dionysia_ingest_poll_errors_total in /metrics", n.Name())
	}
}

// roles picks, for an input, its owner, a node to publish to that is not
// the owner, and a third node to watch through.
func roles(t *testing.T, c *testcluster.Cluster, inputID string) (owner, ingest, viewer *testcluster.Node) {
	t.Helper()
	m, ok := c.Node(0).ClusterHandle().Owner(inputID)
	require.True(t, ok)
	var others []*testcluster.Node
	for _, n := range c.Running() {
		if n.Name() == m.Name {
			owner = n
		} else {
			others = append(others, n)
		}
	}
	require.NotNil(t, owner)
	require.Len(t, others, 2)
	return owner, others[0], others[1]
}

// TestIntegrationClusterPlaybackAndFailover publishes to one node, plays
// through another (which answers itself, fetching from the owner, which
// pulls from the ingest node), then kills the owner mid-stream: a survivor
// takes over and playback through the same node resumes with media sequence
// numbers that never go backwards.
func TestIntegrationClusterPlaybackAndFailover(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := startThree(t, testcluster.Options{})
	profile := c.Node(0).CreateProfile(t, testcluster.SmallProfile("failover", 1))
	in := c.Node(0).CreateInput(t, map[string]any{"name": "failover", "profile_id": profile})
	owner, ingest, viewer := roles(t, c, in.ID)
	t.Logf("owner %s, ingest %s, viewer %s", owner.Name(), ingest.Name(), viewer.Name())

	testcluster.Publish(t, ingest.WaitInput(t, in.ID).Ingest.RTMP, testcluster.PublishOptions{})

	pb := testcluster.WaitPlayable(t, viewer, in.ID, 2, 2, 60*time.Second)
	require.True(t, strings.HasPrefix(pb.MasterURL, viewer.HTTPURL()+"/"), "the viewer's node answers itself, no redirect: %s", pb.MasterURL)
	require.Len(t, pb.Audio, 1, "the audio rendition")

	// The viewer's node answers from the owner's packager: what it serves is
	// what the owner serves (a segment, byte for byte).
	r := viewer.MustDo(t, http.MethodGet, "/live/"+in.ID+"/master.m3u8?session=abc", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Empty(t, r.Header.Get("Location"))
	require.True(t, strings.HasPrefix(string(r.Body), "#EXTM3U"), string(r.Body))
	segPath := strings.TrimPrefix(pb.SegmentURL(pb.Variants[0].URI, 0), viewer.HTTPURL())
	fromViewer := viewer.MustDo(t, http.MethodGet, segPath, nil)
	fromOwner := owner.MustDo(t, http.MethodGet, segPath, nil)
	require.Equal(t, http.StatusOK, fromViewer.Status)
	require.Equal(t, http.StatusOK, fromOwner.Status)
	require.Equal(t, fromOwner.Body, fromViewer.Body)
	require.Equal(t, "public, max-age=31536000, immutable", fromViewer.Header.Get("Cache-Control"))

	// Status from any node names the ingest node and the owner.
	r = viewer.MustDo(t, http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
	var st struct {
		Live       bool   `json:"live"`
		IngestNode string `json:"ingest_node"`
		OwnerNode  string `json:"owner_node"`
		Renditions []struct {
			Segments int `json:"segments"`
		} `json:"renditions"`
	}
	r.JSON(t, &st)
	require.True(t, st.Live)
	require.Equal(t, ingest.Name(), st.IngestNode)
	require.Equal(t, owner.Name(), st.OwnerNode)
	require.Len(t, st.Renditions, 2, "per-rendition stats come from the owner")

	// What was played before the failover: the last segment number and
	// the name of every segment number.
	before := testcluster.WaitPlayable(t, viewer, in.ID, 2, 2, 10*time.Second)
	var lastSeq uint64
	names := map[string]map[uint64]string{}
	for uri, mp := range before.Media {
		lastSeq = max(lastSeq, mp.MediaSequence+uint64(len(mp.Segments))-1)
		names[uri] = map[uint64]string{}
		for i, sg := range mp.Segments {
			names[uri][mp.MediaSequence+uint64(i)] = sg.URI
		}
	}

	killedAt := time.Now()
	c.Kill(owner.Index)
	var after testcluster.Playback
	testcluster.Eventually(t, 40*time.Second, "playback through a survivor", func() error {
		m, ok := viewer.ClusterHandle().Owner(in.ID)
		if !ok || m.Name == owner.Name() {
			return fmt.Errorf("ring still names the dead owner")
		}
		p, err := testcluster.FetchPlayback(viewer, in.ID, "")
		if err != nil {
			return err
		}
		for uri, mp := range p.Media {
			if len(mp.Segments) == 0 || mp.Ended {
				return fmt.Errorf("%s not playing yet", uri)
			}
			if mp.MediaSequence+uint64(len(mp.Segments))-1 <= lastSeq {
				return fmt.Errorf("%s: nothing new since the failover", uri)
			}
		}
		after = p
		return nil
	})
	failover := time.Since(killedAt)
	t.Logf("MEASURED failover: owner %s killed -> playable through %s in %s", owner.Name(), viewer.Name(), failover.Round(100*time.Millisecond))
	// The numbers go on: a new stream is numbered from the clock, past
	// anything the dead owner numbered; a number already played may only
	// appear again for the very same segment (a copy continued).
	for uri, mp := range after.Media {
		for i, sg := range mp.Segments {
			msn := mp.MediaSequence + uint64(i)
			if msn <= lastSeq {
				require.Equal(t, names[uri][msn], sg.URI, "%s: segment %d was %q before the failover, now %q: numbers went backwards",
					uri, msn, names[uri][msn], sg.URI)
			}
		}
		if mp.MediaSequence <= lastSeq {
			t.Logf("%s continues the playlist from before the failover", uri)
		}
	}
	// The newest segments, from the new owner, decode.
	for _, uri := range append([]string{after.Variants[0].URI, after.Variants[1].URI}, after.Audio...) {
		probe, err := testcluster.ProbeSegment(t.Context(), after, uri, len(after.Media[uri].Segments)-1)
		require.NoError(t, err, uri)
		require.NotEmpty(t, probe.Streams, uri)
	}
}

// TestIntegrationClusterIngestNodeDies: when the node a publisher is
// connected to dies, its sessions become reconnecting (the input's window,
// 30 s by default), the stream stays live on its owner meanwhile, and the
// publisher can go live again through any other node, continuing it.
func TestIntegrationClusterIngestNodeDies(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := startThree(t, testcluster.Options{})
	profile := c.Node(0).CreateProfile(t, testcluster.SmallProfile("ingest dies", 1))
	in := c.Node(0).CreateInput(t, map[string]any{"name": "ingest dies", "profile_id": profile})
	owner, ingest, other := roles(t, c, in.ID)

	link := func(n *testcluster.Node) string { return n.WaitInput(t, in.ID).Ingest.RTMP }
	testcluster.Publish(t, link(ingest), testcluster.PublishOptions{Width: 640, Height: 360})
	streamID := segmentStream(t, testcluster.WaitPlayable(t, other, in.ID, 2, 1, 60*time.Second))

	c.Kill(ingest.Index)
	testcluster.Eventually(t, 25*time.Second, "the dead ingest node's session to be reconnecting", func() error {
		s := owner.State().Session(in.ID)
		if s == nil {
			return fmt.Errorf("session gone: the window should keep it")
		}
		if s.Live() {
			return fmt.Errorf("session still live on %s", s.IngestNode)
		}
		return nil
	})
	r := other.MustDo(t, http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
	var st struct {
		State string `json:"state"`
	}
	r.JSON(t, &st)
	require.Equal(t, "reconnecting", st.State)
	for uri, mp := range testcluster.WaitPlayable(t, other, in.ID, 2, 1, 10*time.Second).Media {
		require.False(t, mp.Ended, "%s ended within the reconnect window", uri)
	}
	testcluster.Publish(t, link(other), testcluster.PublishOptions{Width: 640, Height: 360})
	testcluster.Eventually(t, 30*time.Second, "live again through "+other.Name(), func() error {
		s := owner.State().Session(in.ID)
		if s == nil || s.IngestNode != other.Name() {
			return fmt.Errorf("session: %+v", s)
		}
		return nil
	})
	after := testcluster.WaitPlayable(t, other, in.ID, 2, 1, 60*time.Second)
	require.Equal(t, streamID, segmentStream(t, after), "a publisher back within the window continues the stream")
}

// TestIntegrationClusterRedirectOrigin: a node started with RedirectOrigin
// (--origin-mode redirect) sends players of a stream another node owns to
// that node with a 307, query kept, and serves its own streams itself.
func TestIntegrationClusterRedirectOrigin(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{RedirectOrigin: true})
	in := c.Node(0).CreateInput(t, map[string]any{"name": "redirected"})
	owner, other, _ := roles(t, c, in.ID)
	other.WaitInput(t, in.ID)

	r := other.MustDo(t, http.MethodGet, "/live/"+in.ID+"/master.m3u8?session=abc", nil)
	require.Equal(t, http.StatusTemporaryRedirect, r.Status, string(r.Body))
	require.Equal(t, owner.HTTPURL()+"/live/"+in.ID+"/master.m3u8?session=abc", r.Header.Get("Location"))
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))

	// The owner answers itself (the stream is not live: 404, no redirect).
	owner.WaitInput(t, in.ID)
	r = owner.MustDo(t, http.MethodGet, "/live/"+in.ID+"/master.m3u8?session=abc", nil)
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Empty(t, r.Header.Get("Location"))
}

// TestIntegrationClusterKillLeaderDuringWrites: writes keep coming through a
// follower while the leader is killed; every write that was answered 2xx is
// present on every survivor afterwards.
func TestIntegrationClusterKillLeaderDuringWrites(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{})
	leader := c.WaitLeader(10 * time.Second)
	var writer *testcluster.Node
	for _, n := range c.Running() {
		if n != leader {
			writer = n
			break
		}
	}

	var (
		mu      sync.Mutex
		acked   []string
		refused atomic.Int64
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := writer.Do(http.MethodPost, "/v1/inputs", map[string]any{"name": fmt.Sprintf("w%d", i)})
			if err != nil || r.Status != http.StatusCreated {
				refused.Add(1)
				continue
			}
			var in testcluster.Input
			if r.JSON(t, &in); in.ID != "" {
				mu.Lock()
				acked = append(acked, in.ID)
				mu.Unlock()
			}
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testcluster.Eventually(t, 20*time.Second, "some writes before the kill", func() error {
		if count() < 20 {
			return fmt.Errorf("%d acked", count())
		}
		return nil
	})
	killedAt := time.Now()
	c.Kill(leader.Index)
	newLeader := c.WaitLeader(20 * time.Second)
	t.Logf("MEASURED leader election: %s killed -> %s leads after %s", leader.Name(), newLeader.Name(), time.Since(killedAt).Round(10*time.Millisecond))
	before := count()
	testcluster.Eventually(t, 20*time.Second, "writes after the election", func() error {
		if count() < before+20 {
			return fmt.Errorf("%d acked since the election", count()-before)
		}
		return nil
	})
	close(stop)
	<-done
	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()
	t.Logf("%d writes acknowledged, %d refused or failed during the election", len(ids), refused.Load())

	for _, n := range c.Running() {
		testcluster.Eventually(t, 10*time.Second, "every acknowledged write on "+n.Name(), func() error {
			for _, id := range ids {
				if !n.State().HasInput(id) {
					return fmt.Errorf("%s lacks acknowledged input %s", n.Name(), id)
				}
			}
			return nil
		})
	}
}

// TestIntegrationClusterFullRestart: stop all three, start all three: every
// input and profile is back and the cluster elects a leader again.
func TestIntegrationClusterFullRestart(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{Demo: true})
	n := c.Node(1)
	profile := n.CreateProfile(t, testcluster.SmallProfile("survives", 2))
	var ids []string
	for i := range 10 {
		ids = append(ids, n.CreateInput(t, map[string]any{"name": fmt.Sprintf("survivor %d", i), "profile_id": profile}).ID)
	}
	for _, nd := range c.Running() {
		testcluster.Eventually(t, 10*time.Second, "replication to "+nd.Name(), func() error {
			if len(nd.State().Inputs()) != 11 {
				return fmt.Errorf("%d inputs", len(nd.State().Inputs()))
			}
			return nil
		})
	}
	for i := range 3 {
		c.Stop(i)
	}
	for i := range 3 {
		c.Restart(i)
	}
	c.WaitLeader(30 * time.Second)
	c.WaitMembers(3, 30*time.Second)
	c.WaitReady(30 * time.Second)
	for _, nd := range c.Running() {
		for _, id := range ids {
			testcluster.Eventually(t, 10*time.Second, "input "+id+" on "+nd.Name(), func() error {
				r, err := nd.Do(http.MethodGet, "/v1/inputs/"+id, nil)
				if err != nil {
					return err
				}
				if r.Status != http.StatusOK {
					return fmt.Errorf("%s lost input %s: %d", nd.Name(), id, r.Status)
				}
				return nil
			})
		}
		r := nd.MustDo(t, http.MethodGet, "/v1/profiles/"+profile, nil)
		require.Equal(t, http.StatusOK, r.Status)
		require.NotNil(t, nd.State().Input("demo"))
	}
	// And it takes writes again.
	c.Node(2).CreateInput(t, map[string]any{"name": "after the restart"})
}

// TestIntegrationClusterPlacement: 30 inputs over 3 nodes, every node owns
// some; a 4th node takes over only part of them.
func TestIntegrationClusterPlacement(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{})
	var ids []string
	for i := range 30 {
		ids = append(ids, c.Node(0).CreateInput(t, map[string]any{"name": fmt.Sprintf("p%d", i)}).ID)
	}
	owners := func(n *testcluster.Node) map[string]string {
		out := map[string]string{}
		for _, id := range ids {
			m, ok := n.ClusterHandle().Owner(id)
			require.True(t, ok)
			out[id] = m.Name
		}
		return out
	}
	before := owners(c.Node(0))
	per := map[string]int{}
	for _, o := range before {
		per[o]++
	}
	require.Len(t, per, 3, "every node owns some inputs: %v", per)
	t.Logf("placement over 3 nodes: %v", per)

	// /v1/nodes on another node shows the same ownership, once it has
	// every input.
	testcluster.Eventually(t, 10*time.Second, "/v1/nodes ownership on n1", func() error {
		var nodes struct {
			Nodes []struct {
				Name  string   `json:"name"`
				Owned []string `json:"owned_streams"`
			} `json:"nodes"`
		}
		r, err := c.Node(1).Do(http.MethodGet, "/v1/nodes", nil)
		if err != nil {
			return err
		}
		r.JSON(t, &nodes)
		for _, nd := range nodes.Nodes {
			if len(nd.Owned) != per[nd.Name] {
				return fmt.Errorf("%s owns %d, want %d", nd.Name, len(nd.Owned), per[nd.Name])
			}
		}
		return nil
	})

	c.AddNode()
	c.WaitMembers(4, 30*time.Second)
	after := owners(c.Node(0))
	moved, toNew := 0, 0
	for id, o := range after {
		if before[id] != o {
			moved++
			if o == "n3" {
				toNew++
			}
		}
	}
	t.Logf("adding a 4th node moved %d of 30 inputs (%d to the new node)", moved, toNew)
	require.Positive(t, toNew, "the new node takes over some inputs")
	require.Less(t, moved, 20, "only part of the inputs move")
	// Every node agrees with node 0.
	for _, n := range c.Running() {
		require.Equal(t, after, owners(n), "ring of %s", n.Name())
	}
}
