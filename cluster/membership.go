package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// Member states as Members reports them.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

const (
	joinBackoffMin  = 250 * time.Millisecond
	joinBackoffMax  = 10 * time.Second
	metaPushTimeout = 2 * time.Second
	pruneInterval   = time.Second
	// deadNodeReclaim lets a node that restarts on another address take its
	// name back this long after it was declared dead.
	deadNodeReclaim = 5 * time.Second
	// reconnectInterval is how often a node tries to reach the members it
	// holds dead. memberlist never probes or syncs with a dead member, so
	// after a partition heals each side would hold the other dead for good
	// (and the leader would reap the other side from raft): like Serf's
	// reconnect, a join to the dead members' addresses makes both sides
	// exchange state, refute the deaths and see each other alive again.
	// It must be well under the reap timeout.
	reconnectInterval = 2 * time.Second
)

// Member is a node as this node sees it.
type Member struct {
	Name     string
	Meta     Meta
	State    string // "alive", "suspect", "dead", "left"
	RaftRole string // "leader", "voter", "nonvoter", "" (not in the raft configuration)
	Local    bool
}

// memberInfo is what the event delegate records about a member.
type memberInfo struct {
	Name    string
	Meta    Meta
	State   string
	Since   time.Time // when State was entered, by this node's clock
	Leaving bool      // the member announced it is leaving gracefully
	Gossip  string    // host:port of its memberlist, for reconnects
}

// startMemberlist creates the memberlist with the tuned LAN configuration.
// Joining happens in joinLoop.
func (c *Cluster) startMemberlist() error {
	host, port, err := splitHostPort(c.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("gossip addr: %w", err)
	}
	advIP, err := resolveIP(c.cfg.AdvertiseHost)
	if err != nil {
		return fmt.Errorf("advertise host: %w", err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.cfg.Name
	mc.BindAddr = host
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = port
	mc.AdvertiseAddr = advIP
	mc.AdvertisePort = port // memberlist replaces it with the bound port when port is 0
	mc.ProbeInterval = c.cfg.Gossip.ProbeInterval
	mc.ProbeTimeout = c.cfg.Gossip.ProbeTimeout
	mc.GossipInterval = c.cfg.Gossip.GossipInterval
	mc.SuspicionMult = c.cfg.Gossip.SuspicionMult
	// Cap the wait for a second peer's confirmation of a suspicion at twice
	// the nominal timeout: small clusters rarely have enough peers to confirm.
	mc.SuspicionMaxTimeoutMult = 2
	mc.DeadNodeReclaimTime = deadNodeReclaim
	mc.Logger = newStdLogger(c.log, "memberlist")
	d := &delegate{c: c}
	mc.Delegate = d
	mc.Events = d
	if len(c.cfg.ClusterKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, c.cfg.ClusterKey)
		if err != nil {
			return fmt.Errorf("keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return err
	}
	c.ml = ml
	local := ml.LocalNode()
	c.gossipAddr = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	return nil
}

func resolveIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.DefaultResolver.LookupIP(context.Background(), "ip", host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("no address for %q", host)
	}
	return ips[0].String(), nil
}

// joinLoop joins the configured members, retrying with backoff until one
// answers or the cluster closes. A restarted node rejoins the same way.
func (c *Cluster) joinLoop(ctx context.Context) {
	backoff := joinBackoffMin
	for attempt := 1; ; attempt++ {
		n, err := c.ml.Join(c.cfg.Join)
		if n > 0 {
			c.log.Info("joined cluster", "contacted", n, "attempts", attempt)
			return
		}
		if err == nil {
			err = fmt.Errorf("no member answered")
		}
		// memberlist's multierror spans lines; keep the log record on one.
		c.log.Warn("join failed, retrying", "join", c.cfg.Join, "in", backoff,
			"err", strings.Join(strings.Fields(err.Error()), " "))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// reconnectLoop tries every reconnectInterval to join the members this node
// holds dead (not those that left). A join in flight to a member still cut
// off lasts up to memberlist's TCP timeout; it runs apart from
// membershipLoop so that nothing else waits for it.
func (c *Cluster) reconnectLoop(ctx context.Context) {
	t := time.NewTicker(reconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addrs := c.reconnectTargets()
		if len(addrs) == 0 {
			continue
		}
		if n, err := c.ml.Join(addrs); n > 0 {
			c.log.Info("reconnected to members held dead", "contacted", n, "tried", addrs)
		} else if err != nil {
			c.log.Debug("reconnect to members held dead failed", "tried", addrs,
				"err", strings.Join(strings.Fields(err.Error()), " "))
		}
	}
}

// reconnectTargets is the gossip address of every member held dead, sorted.
func (c *Cluster) reconnectTargets() []string {
	c.memMu.Lock()
	defer c.memMu.Unlock()
	var out []string
	for _, m := range c.members {
		if m.State == StateDead && m.Name != c.cfg.Name && m.Gossip != "" {
			out = append(out, m.Gossip)
		}
	}
	slices.Sort(out)
	return out
}

// membershipLoop pushes local metadata changes to the cluster, forgets
// members that have been dead or gone for a while, and signals Changes when
// the raft configuration changed (raft reports no event for that on
// followers).
func (c *Cluster) membershipLoop(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	var configIndex uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.metaUpdate:
			if err := c.ml.UpdateNode(metaPushTimeout); err != nil {
				c.log.Warn("gossip metadata update", "err", err)
			}
		case <-t.C:
			c.prune(time.Now())
			if f := c.raft.GetConfiguration(); f.Error() == nil && f.Index() != configIndex {
				configIndex = f.Index()
				signal(c.changes)
			}
		}
	}
}

// prune drops members dead or left for twice ReapTimeout: long enough for the
// leader to have removed them from raft first.
func (c *Cluster) prune(now time.Time) {
	c.memMu.Lock()
	pruned := false
	for name, m := range c.members {
		if (m.State == StateDead || m.State == StateLeft) && now.Sub(m.Since) > 2*c.cfg.ReapTimeout {
			delete(c.members, name)
			pruned = true
		}
	}
	c.memMu.Unlock()
	if pruned {
		signal(c.changes)
	}
}

// SetLoad sets the local Meta.Load and gossips it.
func (c *Cluster) SetLoad(n int) {
	c.updateLocalMeta(func(m *Meta) bool {
		changed := m.Load != n
		m.Load = n
		return changed
	})
}

// SetCost sets the local Meta.Cost (what the streams this node owns cost)
// and gossips it when it changed.
func (c *Cluster) SetCost(cost int) {
	c.updateLocalMeta(func(m *Meta) bool {
		changed := m.Cost != cost
		m.Cost = cost
		return changed
	})
}

// updateLocalMeta changes this node's metadata; when change reports a
// change, the ring is rebuilt and the new metadata gossiped.
func (c *Cluster) updateLocalMeta(change func(*Meta) bool) {
	c.memMu.Lock()
	if !change(&c.localMeta) {
		c.memMu.Unlock()
		return
	}
	if m, ok := c.members[c.cfg.Name]; ok {
		m.Meta = c.localMeta
		c.rebuildRingLocked()
	}
	c.memMu.Unlock()
	signal(c.metaUpdate)
	signal(c.changes)
}

// Members lists every member this node knows, including members dead or
// gone for less than about twice ReapTimeout, sorted by name.
//
// memberlist does not report suspicion to its event delegate, so a suspected
// member shows as "alive" until it is declared dead.
func (c *Cluster) Members() []Member {
	servers := c.raftConfiguration()
	leader, _ := c.Leader()
	roles := make(map[string]string, len(servers))
	for _, s := range servers {
		switch {
		case string(s.ID) == leader:
			roles[string(s.ID)] = "leader"
		case s.Suffrage == raft.Voter:
			roles[string(s.ID)] = "voter"
		default:
			roles[string(s.ID)] = "nonvoter"
		}
	}
	c.memMu.Lock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, Member{
			Name: m.Name, Meta: m.Meta, State: m.State,
			RaftRole: roles[m.Name], Local: m.Name == c.cfg.Name,
		})
	}
	c.memMu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// memberViews copies the member table for the voter reconciliation.
func (c *Cluster) memberViews() []memberInfo {
	c.memMu.Lock()
	defer c.memMu.Unlock()
	out := make([]memberInfo, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, *m)
	}
	return out
}

// setMember records a member's state and rebuilds the ring. It is called by
// memberlist's event delegate, under memberlist's lock: it must not block.
// A member that goes away after announcing it is leaving has left; otherwise
// it is dead.
func (c *Cluster) setMember(n *memberlist.Node, gone bool) {
	wm, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("bad member metadata", "member", n.Name, "err", err)
	}
	now := time.Now()
	c.memMu.Lock()
	m, ok := c.members[n.Name]
	if !ok {
		m = &memberInfo{Name: n.Name}
		c.members[n.Name] = m
	}
	prev := m.State
	state := StateAlive
	if gone {
		state = StateDead
		if m.Leaving || wm.Leaving {
			state = StateLeft
		}
	}
	m.Meta, m.Leaving = wm.Meta, wm.Leaving
	m.Gossip = n.Address()
	if n.Name == c.cfg.Name {
		m.Meta = c.localMeta
	}
	if prev != state {
		m.State, m.Since = state, now
	}
	c.rebuildRingLocked()
	c.memMu.Unlock()

	if prev != state {
		c.log.Info("member "+state, "member", n.Name, "was", prev, "http", m.Meta.HTTPAddr)
	}
	signal(c.changes)
	signal(c.reconcile)
}

// announceLeave gossips the leaving flag and waits (bounded) for it to be
// sent, so that the following leave is seen as graceful.
func (c *Cluster) announceLeave(timeout time.Duration) {
	c.memMu.Lock()
	c.leaving = true
	c.memMu.Unlock()
	if c.ml.NumMembers() <= 1 {
		return
	}
	if err := c.ml.UpdateNode(timeout); err != nil {
		c.log.Warn("announce leave", "err", err)
	}
}

// rebuildRingLocked builds the ring from the alive members that are not
// draining (all alive members if every one of them is). memMu is held.
func (c *Cluster) rebuildRingLocked() {
	alive := make([]Member, 0, len(c.members))
	serving := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		if m.State == StateAlive || m.State == StateSuspect {
			mm := Member{Name: m.Name, Meta: m.Meta, State: m.State, Local: m.Name == c.cfg.Name}
			alive = append(alive, mm)
			if !m.Meta.Draining {
				serving = append(serving, mm)
			}
		}
	}
	if len(serving) == 0 {
		serving = alive
	}
	c.ring.Store(NewRing(serving))
}

// SetDraining marks this node as draining (or not) and gossips it: a
// draining node owns nothing on anyone's ring.
func (c *Cluster) SetDraining(on bool) {
	c.updateLocalMeta(func(m *Meta) bool {
		changed := m.Draining != on
		m.Draining = on
		return changed
	})
}

// Draining reports whether this node is draining.
func (c *Cluster) Draining() bool {
	c.memMu.Lock()
	defer c.memMu.Unlock()
	return c.localMeta.Draining
}

// delegate implements memberlist.Delegate and memberlist.EventDelegate.
type delegate struct {
	c *Cluster
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.c.memMu.Lock()
	meta := wireMeta{Meta: d.c.localMeta, Leaving: d.c.leaving}
	d.c.memMu.Unlock()
	b, err := meta.encode()
	if err != nil || len(b) > limit {
		d.c.log.Error("local metadata does not fit gossip", "bytes", len(b), "limit", limit, "err", err)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.c.setMember(n, false) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.setMember(n, false) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.c.setMember(n, true) }
