package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Cluster is one node's membership in the cluster: gossip, raft, the ring and
// write forwarding. Create it with New, run it with Start, stop it with Close.
type Cluster struct {
	cfg Config
	log *slog.Logger

	// lifecycle
	lifeMu  sync.Mutex
	started bool
	stopped bool
	ctx     context.Context // cancelled by Close and Kill; bounds every goroutine
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// raft (raft.go)
	raft          *raft.Raft
	bolt          *raftboltdb.BoltStore
	raftAdvertise string
	internalSrv   *http.Server // internal HTTP on the cluster port
	observer      *raft.Observer
	observations  chan raft.Observation

	// membership (membership.go)
	ml         *memberlist.Memberlist
	gossipAddr string     // advertised gossip host:port
	memMu      sync.Mutex // guards members, localMeta; held while the ring is rebuilt
	members    map[string]*memberInfo
	localMeta  Meta
	leaving    bool // set by Close: gossiped so that peers see a graceful leave
	ring       atomic.Pointer[Ring]

	// signals (cap 1, non-blocking sends)
	changes    chan struct{}
	reconcile  chan struct{}
	metaUpdate chan struct{}
}

// New validates cfg. Nothing listens until Start.
func New(cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Logger.With("node", cfg.Name, "component", "cluster"),
		members:    map[string]*memberInfo{},
		localMeta:  cfg.Meta,
		changes:    make(chan struct{}, 1),
		reconcile:  make(chan struct{}, 1),
		metaUpdate: make(chan struct{}, 1),
	}
	c.ring.Store(NewRing(nil))
	return c, nil
}

// Name is the node's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Changes is signalled (without blocking, coalesced) on every membership,
// ring, metadata or leadership change. There is one channel: give it to one
// consumer.
func (c *Cluster) Changes() <-chan struct{} { return c.changes }

// Start opens raft (bootstrapping a single voter of this node when Join is
// empty and there is no raft state), starts memberlist, keeps trying to join
// in the background until it succeeds, and starts the voter reconciliation.
// ctx bounds Start only; Close stops what Start started.
func (c *Cluster) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.started {
		return errors.New("cluster: already started")
	}
	c.started = true
	c.ctx, c.cancel = context.WithCancel(context.Background())

	if err := c.openRaft(ctx); err != nil {
		c.cancel()
		c.stopped = true
		return fmt.Errorf("start raft: %w", err)
	}
	if err := c.startMemberlist(); err != nil {
		c.cancel()
		c.stopped = true
		_ = c.shutdownRaft()
		return fmt.Errorf("start memberlist: %w", err)
	}
	c.goLoop(c.observeLeader)
	c.goLoop(c.reconcileLoop)
	c.goLoop(c.membershipLoop)
	c.goLoop(c.reconnectLoop)
	if len(c.cfg.Join) > 0 {
		c.goLoop(c.joinLoop)
	}
	c.log.Info("cluster started", "gossip", c.gossipAddr, "raft", c.raftAdvertise, "join", c.cfg.Join)
	return nil
}

func (c *Cluster) goLoop(f func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.ctx)
	}()
}

// Close leaves the cluster gracefully: a leader hands leadership to another
// voter first, then the node leaves the gossip cluster (the leader removes it
// from raft once it has been gone for ReapTimeout, ADR 0002) and raft shuts
// down. It is idempotent.
func (c *Cluster) Close(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if !c.started || c.stopped {
		return nil
	}
	c.stopped = true

	var errs []error
	if c.IsLeader() && c.hasOtherVoters() {
		start := time.Now()
		if err := waitFuture(ctx, c.raft.LeadershipTransfer()); err != nil {
			c.log.Warn("leadership transfer failed", "err", err)
		} else {
			c.log.Info("leadership transferred", "took", time.Since(start).Round(time.Millisecond))
		}
	}
	c.cancel()
	c.waitLoops(ctx)

	leaveTimeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d) < leaveTimeout {
		leaveTimeout = max(time.Until(d), 100*time.Millisecond)
	}
	c.announceLeave(leaveTimeout / 2)
	if err := c.ml.Leave(leaveTimeout); err != nil {
		errs = append(errs, fmt.Errorf("leave gossip: %w", err))
	}
	if err := c.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("shutdown gossip: %w", err))
	}
	if err := c.shutdownRaft(); err != nil {
		errs = append(errs, err)
	}
	c.cfg.Peer.Close()
	c.log.Info("cluster closed")
	return errors.Join(errs...)
}

// waitLoops waits for the background goroutines to return, or for ctx. They
// all watch c.ctx; the only slow one is a join attempt in flight, which ends
// at memberlist's TCP timeout at worst.
func (c *Cluster) waitLoops(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.log.Warn("close: background goroutines still running", "err", ctx.Err())
	}
}

// Kill stops the node abruptly, as if the process died: no leave message, no
// leadership transfer. For tests.
func (c *Cluster) Kill() {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if !c.started || c.stopped {
		return
	}
	c.stopped = true
	// Stop talking first, so that peers see the death at once.
	_ = c.ml.Shutdown()
	if c.internalSrv != nil {
		_ = c.internalSrv.Close()
	}
	if c.raft != nil {
		_ = c.raft.Shutdown().Error()
	}
	c.cancel()
	c.wg.Wait()
	_ = c.shutdownRaft()
	c.cfg.Peer.Close()
	c.log.Info("cluster killed")
}

// waitFuture waits for a raft future, giving up (but leaving raft to finish
// it) when ctx ends.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
