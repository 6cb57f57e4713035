package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/dashboard"
	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/peer"
	"github.com/dionysia/dionysia/relay"
)

// mediamtxDir is the data dir's subdirectory of mediamtx's config.
const mediamtxDir = "mediamtx"

// Node is one running Dionysia process.
type Node struct {
	cfg   Config
	log   *slog.Logger
	state *fsm.State
	clu   *cluster.Cluster
	peer  *peer.Peer
	mtx   *media.MediaMTX
	api   *httpapi.API
	reg   *prometheus.Registry

	httpLn  net.Listener
	httpSrv *http.Server

	// wake is signalled (non-blocking) by every state change; the reconcile
	// loop also wakes on cluster changes and a tick.
	wake chan struct{}

	streams *liveStreams
	shield  *shield
	// relay holds the newest GOP of every source this node reads, so a
	// transcoder (a restart, a make-before-break switch, a takeover)
	// starts on a keyframe at once instead of waiting for the next one.
	relay *relay.Relay
	ing   *ingestWatcher
	// refused counts publishes the auth hook refused, and remembers why
	// per input (status).
	refused *refusals
	// lastOwner is the owner each input's session last recorded
	// (recordedOwner).
	lastOwnerMu sync.RWMutex
	lastOwner   map[string]string
	// hooks proposes webhook events and, on the leader, delivers them.
	hooks *hookRunner
	// rec writes recordings and DVR windows to disk; vod serves
	// recordings (recorder.go, vod.go).
	rec *recorder
	vod *vodCache

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	started   time.Time
}

// New builds a node; Start runs it.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, wake: make(chan struct{}, 1)}
	n.log = cfg.Logger.With("node", cfg.Name)
	n.state = fsm.New(n.poke)
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := secureDataDir(cfg.DataDir, n.log); err != nil {
		return nil, err
	}
	pr, err := peer.New(peer.Config{
		ClusterKey: cfg.ClusterKey,
		CertFile:   cfg.TLSCert, KeyFile: cfg.TLSKey, CAFile: cfg.TLSCA,
		Name:  cfg.Name,
		Hosts: []string{cfg.AdvertiseHost},
		// Without a cluster key, the secret chosen at bootstrap (replicated
		// by raft) is the root of the derived keys.
		Secret: n.state.Secret,
	})
	if err != nil {
		return nil, err
	}
	n.peer = pr
	// Internal endpoints live on the cluster port (raft's), behind peer's
	// authentication; the public port serves players, CDNs and the API only.
	internal := http.NewServeMux()
	internal.HandleFunc("/internal/status/", n.serveInternalStatus)
	internal.HandleFunc("/internal/live/", n.serveInternalLive)
	internal.HandleFunc("/internal/replica/", n.serveInternalReplica)
	internal.HandleFunc("/internal/drain", n.serveInternalDrain)
	internal.HandleFunc("/internal/whep/", n.serveInternalWHEP)
	internal.HandleFunc("/internal/vod/", n.serveInternalVOD)
	internal.HandleFunc("/internal/path-ready/", n.serveInternalPathReady)
	meta := cluster.Meta{
		HTTPAddr: cfg.advertise(cfg.HTTPAddr),
		RaftAddr: cfg.advertise(cfg.RaftAddr),
		RTSPAddr: cfg.advertise(cfg.RTSPAddr),
		RTMPAddr: cfg.advertise(cfg.RTMPAddr),
		SRTAddr:  cfg.advertise(cfg.SRTAddr),
		Capacity: cfg.TranscodeCapacity,
	}
	mtxCfg := media.MediaMTXConfig{
		Binary:   cfg.MediaMTX,
		Dir:      filepath.Join(cfg.DataDir, mediamtxDir),
		RTMPAddr: cfg.RTMPAddr,
		RTSPAddr: cfg.RTSPAddr,
		SRTAddr:  cfg.SRTAddr,
		// WHIP publishes come through mediamtx like any other; reads over
		// WebRTC are refused by authorize unless they are the node's own.
		WebRTCAddr:    cfg.WebRTCAddr,
		WebRTCUDPAddr: cfg.WebRTCUDPAddr,
		WebRTCHosts:   cfg.webrtcHosts(),
		APIAddr:       cfg.MediaMTXAPIAddr,
		Authorize:     n.authorize,
		Logger:        n.log,
	}
	if pr.TLS() {
		// Other nodes read this node's ingest over RTSPS, authenticated
		// by the node certificate (and the read password inside TLS).
		chain, key, err := pr.CertPEM()
		if err != nil {
			return nil, err
		}
		mtxCfg.RTSPSAddr, mtxCfg.TLSCert, mtxCfg.TLSKey = cfg.RTSPSAddr, chain, key
		meta.RTSPSAddr = cfg.advertise(cfg.RTSPSAddr)
	}
	clu, err := cluster.New(cluster.Config{
		Name:          cfg.Name,
		DataDir:       cfg.DataDir,
		GossipAddr:    cfg.GossipAddr,
		RaftAddr:      cfg.RaftAddr,
		AdvertiseHost: cfg.AdvertiseHost,
		Join:          cfg.Join,
		Meta:          meta,
		FSM:           fsm.FSM{State: n.state},
		ClusterKey:    cfg.ClusterKey,
		Peer:          pr,
		Internal:      internal,
		ReapTimeout:   cfg.ReapTimeout,
		Gossip:        cfg.Gossip,
		Raft:          cfg.Raft,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.clu = clu

	mtx, err := media.NewMediaMTX(mtxCfg)
	if err != nil {
		return nil, fmt.Errorf("mediamtx: %w", err)
	}
	n.mtx = mtx
	rl, err := relay.New(relay.Config{Logger: n.log.With("component", "relay"), TLS: pr.ClientTLS(), Ready: n.pathReady})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	n.relay = rl
	n.streams = newLiveStreams(n)
	n.shield = newShield(n)
	n.ing = newIngestWatcher(n)
	n.refused = newRefusals()
	n.lastOwner = map[string]string{}
	n.hooks = newHookRunner(n)
	if n.rec, err = newRecorder(n); err != nil {
		return nil, err
	}
	n.vod = newVODCache()
	if err := n.hooks.registerMetrics(n.reg); err != nil {
		return nil, err
	}

	api, err := httpapi.New(httpapi.Config{
		Backend:        n,
		Tokens:         cfg.APITokens,
		Metrics:        promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}),
		Registerer:     n.reg,
		Dashboard:      dashboard.Handler(dashboard.Config{HLSJSPath: cfg.HLSJS}),
		RedirectOrigin: cfg.RedirectOrigin,
		Logger:         n.log,
	})
	if err != nil {
		return nil, err
	}
	n.api = api
	if err := n.registerMetrics(); err != nil {
		return nil, err
	}
	return n, nil
}

// Start opens the listeners, joins or bootstraps the cluster and starts every
// loop. It returns once the node is serving; it does not wait for a leader.
func (n *Node) Start(ctx context.Context) error {
	n.started = time.Now()
	if err := n.checkMediaPorts(2 * time.Second); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", n.cfg.HTTPAddr, err)
	}
	n.httpLn = ln
	n.httpSrv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}

	if n.drainedAtStart() {
		// Before joining: a drained node must not own anything, not even
		// for the first gossip round.
		n.clu.SetDraining(true)
		n.log.Warn("this node is drained: it owns no streams until `dionysia nodes undrain " + n.cfg.Name + "`")
	}
	if err := n.clu.Start(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("start cluster: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.relay.Start(runCtx); err != nil {
		cancel()
		ln.Close()
		return fmt.Errorf("start relay: %w", err)
	}

	// The HTTP server is not in wg: it outlives the loops during Close and
	// is shut down last.
	go func() {
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	n.goRun("mediamtx", func() {
		if err := n.mtx.Run(runCtx); err != nil {
			n.log.Error("mediamtx supervisor stopped", "err", err)
		}
	})
	n.goRun("ingest", func() { n.ing.run(runCtx) })
	n.goRun("reconcile", func() { n.reconcileLoop(runCtx) })
	n.goRun("leader", func() { n.leaderLoop(runCtx) })
	n.goRun("replicate", func() { n.replicateLoop(runCtx) })
	n.goRun("banner", func() { n.printBanner(runCtx) })
	n.goRun("webhook events", func() { n.hooks.proposeLoop(runCtx) })
	n.goRun("webhooks", func() { n.hooks.loop(runCtx) })
	n.goRun("recorder", func() { n.rec.loop(runCtx) })

	n.log.Info("node started", "http", n.cfg.advertise(n.cfg.HTTPAddr), "gossip", n.cfg.GossipAddr,
		"raft", n.cfg.RaftAddr, "join", n.cfg.Join, "data_dir", n.cfg.DataDir)
	n.logSecurity(runCtx)
	if n.cfg.PublishAuthURL != "" && n.cfg.PublishAuthSecret == "" {
		n.log.Warn("--publish-auth-url without --publish-auth-secret: admission requests are sent unsigned")
	}
	if len(n.cfg.APITokens) == 0 {
		n.log.Warn("no --api-token set: the /v1 management API is open to anyone who can reach " + n.cfg.HTTPAddr)
	}
	return nil
}

// checkMediaPorts binds, then frees, every port mediamtx will listen on.
// mediamtx is a child process: a port another program holds would only
// show as mediamtx exiting and restarting in a loop while every publish
// fails; at start the operator gets the flag and the address instead.
// A port still taken after wait is an error.
func (n *Node) checkMediaPorts(wait time.Duration) error {
	type port struct{ flag, network, addr string }
	ports := []port{
		{"rtmp-addr", "tcp", n.cfg.RTMPAddr},
		{"rtsp-addr", "tcp", n.cfg.RTSPAddr},
		{"srt-addr", "udp", n.cfg.SRTAddr},
		{"webrtc-addr", "tcp", n.cfg.WebRTCAddr},
		{"webrtc-udp-addr", "udp", n.cfg.WebRTCUDPAddr},
	}
	if n.peer.TLS() {
		ports = append(ports, port{"rtsps-addr", "tcp", n.cfg.RTSPSAddr})
	}
	if n.cfg.MediaMTXAPIAddr != "" {
		ports = append(ports, port{"mediamtx api", "tcp", n.cfg.MediaMTXAPIAddr})
	}
	probe := func(network, addr string) error {
		if network == "udp" {
			c, err := net.ListenPacket("udp", addr)
			if err == nil {
				c.Close()
			}
			return err
		}
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
		}
		return err
	}
	// The mediamtx of a node that just died on these ports (a restart)
	// is killed with it, and lets go of them a moment later.
	deadline := time.Now().Add(wait)
	for _, p := range ports {
		for {
			err := probe(p.network, p.addr)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
				return fmt.Errorf("%s %s is not free for mediamtx: %w", p.flag, p.addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (n *Node) goRun(name string, f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops the node gracefully: transcoders end their playlists, mediamtx
// stops, the node hands over raft leadership and leaves the cluster, and the
// HTTP server drains.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		n.log.Info("node stopping")
		n.handOver(ctx)
		if n.cancel != nil {
			n.cancel()
		}
		n.streams.stopAll()
		n.wg.Wait()
		_ = n.relay.Close()
		err = n.clu.Close(ctx)
		if n.httpSrv != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = n.httpSrv.Shutdown(sctx)
			cancel()
		}
		n.log.Info("node stopped")
	})
	return err
}

// Kill stops the node as abruptly as an in-process node can die: no leave,
// no leadership hand-over, connections cut. Child processes are stopped so
// that publishers and readers see the node vanish.
func (n *Node) Kill() {
	n.closeOnce.Do(func() {
		n.clu.Kill()
		if n.httpSrv != nil {
			_ = n.httpSrv.Close()
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.streams.stopAll()
		n.wg.Wait()
		_ = n.relay.Close()
	})
}

// poke wakes the reconcile loop; it never blocks (raft's apply calls it).
func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Name is the node's unique name.
func (n *Node) Name() string { return n.cfg.Name }

// HTTPURL is the node's advertised base URL.
func (n *Node) HTTPURL() string { return "http://" + n.cfg.advertise(n.cfg.HTTPAddr) }

// ClusterHandle exposes the cluster, for tests and tools.
func (n *Node) ClusterHandle() *cluster.Cluster { return n.clu }

// pathReady answers the relay's "is anyone publishing there yet?"
// (relay.Config.Ready says why a read must not ask): for this node's own
// mediamtx from its control API, for another node's by asking that node
// over the cluster port. A host no member advertises, or a node or API
// that does not answer at once, is unknown: the relay reads as before.
func (n *Node) pathReady(ctx context.Context, host, path string) (ready, known bool) {
	if host == loopback(n.cfg.RTSPAddr) || (n.cfg.RTSPSAddr != "" && host == loopback(n.cfg.RTSPSAddr)) {
		ready, err := n.localPathReady(ctx, path)
		return ready, err == nil
	}
	if n.clu == nil {
		return false, false
	}
	for _, m := range n.clu.Members() {
		if m.Name == n.cfg.Name || (m.Meta.RTSPAddr != host && m.Meta.RTSPSAddr != host) {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		var body struct {
			Ready bool `json:"ready"`
		}
		if err := n.getInternal(ctx, m.Meta.RaftAddr, "/internal/path-ready/"+path, &body); err != nil {
			return false, false
		}
		return body.Ready, true
	}
	return false, false
}

// serveInternalPathReady tells another node's relay whether a path of this
// node's mediamtx has a ready publisher.
func (n *Node) serveInternalPathReady(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/internal/path-ready/")
	if path == "" {
		http.Error(w, `{"error":"no path"}`, http.StatusNotFound)
		return
	}
	ready, err := n.localPathReady(r.Context(), path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]bool{"ready": ready})
}

// localPathReady asks this node's mediamtx, bounded: a control API that
// does not answer within a second leaves the question open.
func (n *Node) localPathReady(ctx context.Context, path string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return n.mtx.PathReady(ctx, path)
}
