package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/dionysia/dionysia/peer"
)

const (
	logCacheSize     = 512
	transportPool    = 3
	transportTimeout = 10 * time.Second
	// boltOpenTimeout bounds the wait for bolt's file lock, so that a second
	// process on the same data dir fails instead of hanging.
	boltOpenTimeout = 2 * time.Second
)

// openRaft opens the stores and the transport and starts raft, bootstrapping
// a single-voter cluster of this node when Join is empty and there is no
// state yet.
func (c *Cluster) openRaft(ctx context.Context) (err error) {
	dir := filepath.Join(c.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create raft dir: %w", err)
	}
	// Whatever a previous version or an operator left readable is fixed
	// before raft opens it: the log and snapshots hold every stream key.
	if fixed, err := FixPrivate(dir); err != nil {
		return fmt.Errorf("raft dir: %w", err)
	} else if len(fixed) > 0 {
		c.log.Warn("raft files were readable by other users; made private (0700 dirs, 0600 files)", "fixed", fixed)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout},
	})
	if err != nil {
		return fmt.Errorf("open raft.db: %w", err)
	}
	defer func() {
		if err != nil {
			_ = bolt.Close()
		}
	}()
	logs, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		return fmt.Errorf("log cache: %w", err)
	}
	hlog := newHCLog(c.log, "raft")
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retainSnapshots, hlog)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	snapDir := filepath.Join(dir, "snapshots")
	if _, err := FixPrivate(snapDir); err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	snaps := &privateSnapshots{SnapshotStore: fileSnaps, dir: snapDir}

	ln, err := net.Listen("tcp", c.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("listen raft: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	advertise := net.JoinHostPort(c.cfg.AdvertiseHost, strconv.Itoa(port))
	// One port for raft and the internal HTTP endpoints: one address to
	// gossip, to open in a firewall and to protect with TLS.
	mux := c.cfg.Peer.Listen(ln, c.log)
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{mux: mux, advertise: advertiseAddr(advertise), peer: c.cfg.Peer},
		MaxPool: transportPool,
		Timeout: transportTimeout,
		Logger:  hlog,
	})
	defer func() {
		if err != nil {
			_ = trans.Close()
		}
	}()
	c.internalSrv = c.serveInternal(mux.HTTP())
	defer func() {
		if err != nil {
			_ = c.internalSrv.Close()
		}
	}()

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(c.cfg.Name)
	conf.HeartbeatTimeout = c.cfg.Raft.HeartbeatTimeout
	conf.ElectionTimeout = c.cfg.Raft.ElectionTimeout
	conf.LeaderLeaseTimeout = c.cfg.Raft.LeaderLeaseTimeout
	conf.CommitTimeout = c.cfg.Raft.CommitTimeout
	conf.SnapshotInterval = c.cfg.SnapshotInterval
	conf.SnapshotThreshold = c.cfg.SnapshotThreshold
	conf.Logger = hlog
	if err := raft.ValidateConfig(conf); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	hasState, err := raft.HasExistingState(logs, bolt, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := raft.NewRaft(conf, c.cfg.FSM, logs, bolt, snaps, trans)
	if err != nil {
		return fmt.Errorf("new raft: %w", err)
	}
	if !hasState && len(c.cfg.Join) == 0 {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: conf.LocalID, Address: raft.ServerAddress(advertise),
		}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil {
			_ = r.Shutdown().Error()
			return fmt.Errorf("bootstrap: %w", err)
		}
		c.log.Info("bootstrapped new raft cluster")
	}

	c.raft, c.bolt, c.raftAdvertise = r, bolt, advertise
	c.localMeta.RaftAddr = advertise
	c.observations = make(chan raft.Observation, 16)
	c.observer = raft.NewObserver(c.observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(c.observer)
	return nil
}

// shutdownRaft stops raft and closes the stores. Safe to call twice.
func (c *Cluster) shutdownRaft() error {
	if c.raft == nil {
		return nil
	}
	var errs []error
	c.raft.DeregisterObserver(c.observer)
	if err := c.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("shutdown raft: %w", err))
	}
	if c.internalSrv != nil {
		_ = c.internalSrv.Close()
	}
	if c.bolt != nil {
		if err := c.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft.db: %w", err))
		}
		c.bolt = nil
	}
	return errors.Join(errs...)
}

// observeLeader turns raft leader changes into Changes signals and, on the
// new leader, an immediate voter reconciliation.
func (c *Cluster) observeLeader(ctx context.Context) {
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-c.observations:
			lo, ok := o.Data.(raft.LeaderObservation)
			if !ok {
				continue
			}
			leader := string(lo.LeaderID)
			if leader != last {
				last = leader
				if leader == "" {
					c.log.Info("raft leader lost")
				} else {
					c.log.Info("raft leader elected", "leader", leader, "self", leader == c.cfg.Name)
				}
			}
			signal(c.changes)
			signal(c.reconcile)
		}
	}
}

// Leader returns the name of the raft leader as this node knows it.
func (c *Cluster) Leader() (name string, ok bool) {
	if c.raft == nil {
		return "", false
	}
	_, id := c.raft.LeaderWithID()
	return string(id), id != ""
}

// IsLeader reports whether this node is the raft leader.
func (c *Cluster) IsLeader() bool {
	return c.raft != nil && c.raft.State() == raft.Leader
}

// WaitLeader waits until a leader is known or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		if _, ok := c.Leader(); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w: %w", ErrNoLeader, ctx.Err())
		case <-t.C:
		}
	}
}

// Barrier waits until every entry committed before it is applied on this
// node. Leader only: after an election, before proposing seed commands.
func (c *Cluster) Barrier(ctx context.Context) error {
	if !c.IsLeader() {
		return fmt.Errorf("barrier: %w", raft.ErrNotLeader)
	}
	if err := c.raft.Barrier(timeoutFrom(ctx, defaultApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// hasOtherVoters reports whether another voter could take over leadership.
func (c *Cluster) hasOtherVoters() bool {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != c.cfg.Name {
			return true
		}
	}
	return false
}

// RaftInfo is a snapshot of this node's raft state.
type RaftInfo struct {
	State string // "leader", "follower", "candidate", "shutdown"
	Term  uint64
	// LastLogIndex is the newest entry in this node's log (stored, not
	// necessarily committed): a follower whose LastLogIndex stands still
	// while the leader's grows receives nothing.
	LastLogIndex      uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastContactMillis uint64 // since the leader was last heard from; 0 on the leader
	Leader            string
	Servers           []RaftServer
}

// RaftServer is one server of the raft configuration.
type RaftServer struct {
	ID       string
	Address  string
	Suffrage string // "voter", "nonvoter", "staging"
}

// RaftState describes this node's raft state.
func (c *Cluster) RaftState() RaftInfo {
	if c.raft == nil {
		return RaftInfo{State: "shutdown"}
	}
	info := RaftInfo{
		State:        strings.ToLower(c.raft.State().String()),
		Term:         c.raft.CurrentTerm(),
		LastLogIndex: c.raft.LastIndex(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.raft.AppliedIndex(),
	}
	info.Leader, _ = c.Leader()
	if last := c.raft.LastContact(); !last.IsZero() && c.raft.State() != raft.Leader {
		info.LastContactMillis = uint64(time.Since(last).Milliseconds())
	}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			info.Servers = append(info.Servers, RaftServer{
				ID: string(s.ID), Address: string(s.Address), Suffrage: suffrageName(s.Suffrage),
			})
		}
	}
	return info
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	default:
		return "staging"
	}
}

// raftConfiguration returns the latest raft configuration, or nil.
func (c *Cluster) raftConfiguration() []raft.Server {
	if c.raft == nil {
		return nil
	}
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// streamLayer is raft's stream layer on the cluster port: raft's share of
// the connections peer.Listener accepts, and peer's raft dialer (mutual TLS,
// or a preface byte in plain mode). It advertises AdvertiseHost with the
// bound port (possibly picked by the kernel).
type streamLayer struct {
	mux       *peer.Listener
	advertise net.Addr
	peer      *peer.Peer
}

func (s *streamLayer) Accept() (net.Conn, error) { return s.mux.Raft().Accept() }

// Close closes the whole cluster port: raft's transport closes its stream
// layer at shutdown, and the internal HTTP server goes with it.
func (s *streamLayer) Close() error { return s.mux.Close() }

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.peer.DialRaft(string(address), timeout)
}

// serveInternal serves the internal HTTP endpoints on the cluster port,
// every request authenticated by peer first.
func (c *Cluster) serveInternal(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	var apply http.Handler = http.HandlerFunc(c.serveApply)
	if c.cfg.wrapApply != nil {
		apply = c.cfg.wrapApply(apply)
	}
	mux.Handle(ApplyPath, apply)
	if c.cfg.Internal != nil {
		mux.Handle("/", c.cfg.Internal)
	}
	srv := &http.Server{
		Handler:           c.cfg.Peer.Authenticate(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          newStdLogger(c.log, "internal-http"),
		// HTTP/1.1 only: it is what the ALPN of the cluster port offers.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			c.log.Error("internal http server stopped", "err", err)
		}
	}()
	return srv
}

// advertiseAddr is a host:port that may carry a host name.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
