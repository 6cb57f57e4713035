package testcluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster/repo"
)

// Options shape a test cluster. Zero values give a fast-failing loopback
// cluster with no demo input.
type Options struct {
	// Nodes to start; 0 = 1.
	Nodes     int
	APITokens []string
	// ClusterKey is shared by every node; nil = a random one per cluster,
	// so nodes talk mutual TLS as a production cluster should.
	ClusterKey []byte
	// Plain runs the cluster without a cluster key (plain node-to-node
	// traffic, the zero-config mode).
	Plain bool
	// Demo seeds the demo input like a real first start.
	Demo bool
	// HLSListSize for every node; 0 = node default.
	HLSListSize int
	// RedirectOrigin makes every node answer /live requests for streams
	// another node owns with a 307 to the owner (--origin-mode redirect)
	// instead of fetching them itself.
	RedirectOrigin bool
	// Configure, if set, may change each node's config before it starts.
	Configure func(i int, cfg *node.Config)
}

// Cluster is a set of in-process nodes on loopback.
type Cluster struct {
	t     testing.TB
	opts  Options
	base  string
	mu    sync.Mutex
	nodes []*Node
}

// Node is one test node. It keeps its config so it can be restarted on the
// same data dir and ports.
type Node struct {
	*node.Node
	Index   int
	Config  node.Config
	LogPath string
	logFile *os.File
	running bool
}

// Start starts opts.Nodes nodes: the first bootstraps, the others join it.
// It returns once every node has started (not converged: use the Wait
// helpers). Everything is stopped when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	// The base dir is made before the stop cleanup is registered, so it is
	// removed after the nodes stop and their logs can still be shown.
	if opts.ClusterKey == nil && !opts.Plain {
		opts.ClusterKey = make([]byte, 32)
		_, _ = rand.Read(opts.ClusterKey)
	}
	c := &Cluster{t: t, opts: opts, base: t.TempDir()}
	t.Cleanup(c.stopAll)
	for range opts.Nodes {
		c.AddNode()
	}
	return c
}

// AddNode starts one more node that joins the first one.
func (c *Cluster) AddNode() *Node {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	var join []string
	if i > 0 {
		join = []string{c.nodes[0].Config.GossipAddr}
	}
	c.mu.Unlock()
	cfg := c.newConfig(i, join)
	n := &Node{Index: i, Config: cfg, LogPath: filepath.Join(filepath.Dir(cfg.DataDir), cfg.Name+".log")}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	// A port picked free can be taken before the node binds it (another
	// process's listener); a first start then tries fresh ports instead of
	// failing the test. The holder is logged so a pattern can be found.
	for attempt := 1; ; attempt++ {
		err := c.tryStart(n)
		if err == nil {
			return n
		}
		port, inUse := portInUse(err)
		if !inUse || attempt == 3 {
			c.t.Fatalf("start node %s: %v\n%s", n.Config.Name, err, tail(n.LogPath, 30))
		}
		c.t.Logf("start node %s: port %d taken (%s); trying fresh ports", n.Config.Name, port, portHolder(port))
		// A data dir the test chose (Configure) is the test's: only one
		// under the cluster's base is emptied for the fresh start.
		if rel, err := filepath.Rel(c.base, n.Config.DataDir); err == nil && filepath.IsLocal(rel) {
			if err := os.RemoveAll(n.Config.DataDir); err != nil {
				c.t.Fatal(err)
			}
		}
		n.Config = c.newConfig(i, join)
	}
}

func (c *Cluster) newConfig(i int, join []string) node.Config {
	t := c.t
	ports := make([]int, 10)
	for j := range ports {
		p, err := FreePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ports[j] = p
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	dir := filepath.Join(c.base, fmt.Sprintf("n%d", i))
	cfg := node.Config{
		Name:       fmt.Sprintf("n%d", i),
		DataDir:    filepath.Join(dir, "data"),
		HTTPAddr:   addr(ports[0]),
		GossipAddr: addr(ports[1]),
		RaftAddr:   addr(ports[2]),
		RTMPAddr:   addr(ports[3]),
		RTSPAddr:   addr(ports[4]),
		SRTAddr:    addr(ports[5]),
		// WHIP (HTTP) and the one UDP port of WebRTC media (ICE).
		WebRTCAddr:    addr(ports[7]),
		WebRTCUDPAddr: addr(ports[8]),
		// Picked here, not by mediamtx, so no two nodes of a test binary
		// can be handed the same port.
		MediaMTXAPIAddr: addr(ports[6]),
		RTSPSAddr:       addr(ports[9]),
		AdvertiseHost:   "127.0.0.1",
		Join:            join,
		APITokens:       c.opts.APITokens,
		ClusterKey:      c.opts.ClusterKey,
		MediaMTX:        MediaMTXPath(),
		HLSJS:           HLSJSPath(),
		FFmpeg:          "ffmpeg",
		NoDemo:          !c.opts.Demo,
		HLSListSize:     c.opts.HLSListSize,
		RedirectOrigin:  c.opts.RedirectOrigin,
		ReapTimeout:     10 * time.Second,
		IngestPoll:      100 * time.Millisecond,
		Gossip:          cluster.GossipTuning{},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	return cfg
}

// MediaMTXPath is the mediamtx binary the nodes run: $DIONYSIA_MEDIAMTX, or
// bin/mediamtx found upward, or plain "mediamtx" (looked up on PATH). Tests
// that need it call MediaMTX(t) first, which skips or fails when it is missing.
func MediaMTXPath() string {
	if p, ok := repo.File("DIONYSIA_MEDIAMTX", "bin/mediamtx"); ok {
		return p
	}
	return "mediamtx"
}

// HLSJSPath is the hls.min.js the nodes' dashboards serve: $DIONYSIA_HLSJS,
// or bin/hls.min.js found upward ("" when unknown; the dashboard then
// answers 404 for it).
func HLSJSPath() string {
	p, _ := repo.File("DIONYSIA_HLSJS", "bin/hls.min.js")
	return p
}

func (c *Cluster) startNode(n *Node) {
	c.t.Helper()
	if err := c.tryStart(n); err != nil {
		c.t.Fatalf("start node %s: %v\n%s", n.Config.Name, err, tail(n.LogPath, 30))
	}
}

func (c *Cluster) tryStart(n *Node) error {
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node log: %w", err)
	}
	cfg := n.Config
	cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nn, err := node.New(cfg)
	if err != nil {
		f.Close()
		return fmt.Errorf("new node: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nn.Start(ctx); err != nil {
		f.Close()
		return err
	}
	n.logFile = f
	n.Node = nn
	n.running = true
	return nil
}

// Nodes returns the nodes, running or not, in start order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns node i.
func (c *Cluster) Node(i int) *Node { return c.Nodes()[i] }

// Running returns the nodes that are up.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes() {
		if n.running {
			out = append(out, n)
		}
	}
	return out
}

// Kill stops node i abruptly: no leave, no leadership hand-over.
func (c *Cluster) Kill(i int) {
	n := c.Node(i)
	if !n.running {
		return
	}
	n.Kill()
	n.running = false
	n.logFile.Close()
}

// Stop stops node i gracefully.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	n := c.Node(i)
	if !n.running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		c.t.Logf("stop %s: %v", n.Name(), err)
	}
	n.running = false
	n.logFile.Close()
}

// Restart starts a stopped node again with the same name, data dir and
// ports. Its join list points at every other node, as an operator would
// restart it.
func (c *Cluster) Restart(i int) *Node {
	c.t.Helper()
	n := c.Node(i)
	if n.running {
		c.t.Fatalf("restart %s: still running", n.Name())
	}
	var join []string
	for _, o := range c.Nodes() {
		if o.Index != i {
			join = append(join, o.Config.GossipAddr)
		}
	}
	if len(n.Config.Join) > 0 || len(c.Nodes()) > 1 {
		n.Config.Join = join
	}
	c.startNode(n)
	return n
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		if !n.running {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = n.Close(ctx)
			n.running = false
			n.logFile.Close()
		}()
	}
	wg.Wait()
	if c.t.Failed() {
		for _, n := range c.Nodes() {
			c.t.Logf("---- last lines of %s's log (%s)\n%s", n.Config.Name, n.LogPath, tail(n.LogPath, 60))
		}
	}
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	end := len(b)
	for i := len(b) - 1; i >= 0 && lines >= 0; i-- {
		if b[i] == '\n' {
			lines--
			if lines < 0 {
				return string(b[i+1 : end])
			}
		}
	}
	return string(b)
}
