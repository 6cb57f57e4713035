package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/peer"
	"github.com/stretchr/testify/require"
)

const testSecret = "test-internal-secret"

// testNode is one in-process node on 127.0.0.1: a Cluster, its fsm.State and
// the HTTP server that serves its Handler.
type testNode struct {
	t     *testing.T
	name  string
	dir   string
	cfg   Config
	c     *Cluster
	state *fsm.State
	srv   *http.Server
	http  string

	// intercept, when set, serves ApplyPath in place of the Cluster's
	// Handler (which it is given), to make the network misbehave.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler)]

	mu   sync.Mutex
	done bool
}

// nodeOpt adjusts a node's Config before New.
type nodeOpt func(*Config)

func withJoin(nodes ...*testNode) nodeOpt {
	return func(cfg *Config) {
		for _, n := range nodes {
			cfg.Join = append(cfg.Join, n.c.gossipAddr)
		}
	}
}

func withReap(d time.Duration) nodeOpt { return func(cfg *Config) { cfg.ReapTimeout = d } }

func withSnapshots(interval time.Duration, threshold uint64) nodeOpt {
	return func(cfg *Config) { cfg.SnapshotInterval, cfg.SnapshotThreshold = interval, threshold }
}

func withKey(key []byte) nodeOpt { return func(cfg *Config) { cfg.ClusterKey = key } }

// testPeer authenticates with key (mutual TLS) or, without one, with the
// internal token derived from testSecret.
func testPeer(t *testing.T, key []byte) *peer.Peer {
	t.Helper()
	p, err := peer.New(peer.Config{ClusterKey: key, Secret: func() string { return testSecret }})
	require.NoError(t, err)
	return p
}

// startNode starts a node with a fresh data dir.
func startNode(t *testing.T, name string, opts ...nodeOpt) *testNode {
	t.Helper()
	return startNodeIn(t, name, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", opts...)
}

// restart starts a node again on the same data dir and addresses, as a
// restarted process would.
func (n *testNode) restart(opts ...nodeOpt) *testNode {
	n.t.Helper()
	return startNodeIn(n.t, n.name, n.dir, n.c.gossipAddr, n.c.raftAdvertise, opts...)
}

func startNodeIn(t *testing.T, name, dir, gossip, raftAddr string, opts ...nodeOpt) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &testNode{t: t, name: name, dir: dir, state: fsm.New(nil), http: ln.Addr().String()}
	n.cfg = Config{
		Name:          name,
		DataDir:       dir,
		GossipAddr:    gossip,
		RaftAddr:      raftAddr,
		AdvertiseHost: "127.0.0.1",
		Meta:          Meta{HTTPAddr: n.http},
		FSM:           fsm.FSM{State: n.state},
		Logger:        testLogger(t, name),
	}
	for _, o := range opts {
		o(&n.cfg)
	}
	if n.cfg.Peer == nil {
		n.cfg.Peer = testPeer(t, n.cfg.ClusterKey)
	}
	// Forwarded writes arrive on the cluster port: the intercept sits there.
	n.cfg.wrapApply = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f := n.intercept.Load(); f != nil {
				(*f)(w, r, next)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	n.c, err = New(n.cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc(ApplyPath, func(w http.ResponseWriter, r *http.Request) {
		if f := n.intercept.Load(); f != nil {
			(*f)(w, r, n.c.Handler())
			return
		}
		n.c.Handler().ServeHTTP(w, r)
	})
	n.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.c.Start(ctx); err != nil {
		_ = n.srv.Close()
		require.NoError(t, err, "start %s", name)
	}
	t.Cleanup(func() { n.close() })
	return n
}

// close stops the node gracefully (once).
func (n *testNode) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	n.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.c.Close(ctx); err != nil {
		n.t.Logf("close %s: %v", n.name, err)
	}
	_ = n.srv.Close()
}

// kill stops the node as if its process died, HTTP server included.
func (n *testNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	n.done = true
	_ = n.srv.Close()
	n.c.Kill()
}

// waitFor polls cond every 20ms until it holds or d passes; on timeout the
// test fails with what cond last said.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader waits until every node agrees on one leader among them and
// returns it.
func waitLeader(t *testing.T, d time.Duration, nodes ...*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, d, "one leader", func() (bool, string) {
		leader = nil
		var seen []string
		for _, n := range nodes {
			name, _ := n.c.Leader()
			seen = append(seen, n.name+"->"+name)
			if n.c.IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			return false, strings.Join(seen, " ")
		}
		for _, n := range nodes {
			if name, _ := n.c.Leader(); name != leader.name {
				return false, strings.Join(seen, " ")
			}
		}
		return true, ""
	})
	return leader
}

// waitAlive waits until every node sees exactly want as alive members.
func waitAlive(t *testing.T, d time.Duration, nodes []*testNode, want ...string) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("alive members %v", want), func() (bool, string) {
		for _, n := range nodes {
			got := aliveNames(n.c)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return false, fmt.Sprintf("%s sees %v", n.name, got)
			}
		}
		return true, ""
	})
}

func aliveNames(c *Cluster) []string {
	var out []string
	for _, m := range c.Members() {
		if m.State == StateAlive {
			out = append(out, m.Name)
		}
	}
	return out
}

// waitVoters waits until n's raft configuration has exactly these voters.
func waitVoters(t *testing.T, d time.Duration, n *testNode, want ...string) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("raft voters %v", want), func() (bool, string) {
		var got []string
		for _, s := range n.c.RaftState().Servers {
			if s.Suffrage == "voter" {
				got = append(got, s.ID)
			}
		}
		// The configuration lists servers in the order they were added,
		// which is the order their joins happened to land.
		slices.Sort(got)
		return strings.Join(got, ",") == strings.Join(slices.Sorted(slices.Values(want)), ","), fmt.Sprintf("%v", n.c.RaftState().Servers)
	})
}

func profileCmd(id string) fsm.Command {
	return fsm.Command{
		Op: fsm.OpCreateProfile,
		At: time.Unix(1700000000, 0).UTC(),
		Profile: &fsm.Profile{
			ID: id, Name: id, SegmentSeconds: 2,
			Renditions: []fsm.Rendition{{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 800, AudioBitrateKbps: 96, FPS: 30}},
		},
	}
}

func applyCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes through t.Log until the test ends; later records (from
// library goroutines that outlive Shutdown) are dropped.
func testLogger(t *testing.T, name string) *slog.Logger {
	h := &tHandler{sink: &tSink{t: t}}
	t.Cleanup(h.sink.stop) // registered before the node's cleanup, so it runs after it
	return slog.New(h).With("n", name)
}

type tSink struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (s *tSink) stop() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

type tHandler struct {
	sink  *tSink
	attrs []slog.Attr
	group string
}

func (h *tHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *tHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	if !h.sink.done {
		h.sink.t.Log(b.String())
	}
	return nil
}

func (h *tHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tHandler{sink: h.sink, attrs: append(append([]slog.Attr(nil), h.attrs...), as...), group: h.group}
}

func (h *tHandler) WithGroup(name string) slog.Handler {
	return &tHandler{sink: h.sink, attrs: h.attrs, group: name}
}
