package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

const (
	reconcileInterval = 2 * time.Second
	membershipTimeout = 5 * time.Second
)

// voterOp is one change of the raft configuration.
type voterOp string

const (
	opAddVoter    voterOp = "add_voter"
	opAddNonvoter voterOp = "add_nonvoter"
	opRemove      voterOp = "remove"
)

type voterAction struct {
	Op      voterOp
	ID      string
	Address string
	Reason  string
}

// planVoters decides how the raft configuration should follow the gossip
// view. It is pure: the same configuration, members and time give the same
// actions, in order.
//
//   - Servers whose member left or died reap or longer ago are removed. self
//     is never removed.
//   - Alive non-voters are promoted (by name) while there are fewer than
//     maxVoters voters; dead voters still count until they are reaped.
//   - Alive members not in the configuration are added, as voters while there
//     is room, else as non-voters.
//   - A server whose member now advertises another raft address is re-added
//     with the same suffrage and the new address.
func planVoters(self string, servers []raft.Server, members []memberInfo, now time.Time, maxVoters int, reap time.Duration) []voterAction {
	byName := make(map[string]memberInfo, len(members))
	for _, m := range members {
		byName[m.Name] = m
	}
	inConfig := make(map[string]raft.Server, len(servers))
	for _, s := range servers {
		inConfig[string(s.ID)] = s
	}
	ids := make([]string, 0, len(servers))
	for _, s := range servers {
		ids = append(ids, string(s.ID))
	}
	slices.Sort(ids)

	var actions []voterAction
	voters := 0
	for _, id := range ids {
		s := inConfig[id]
		m, known := byName[id]
		remove := ""
		if id != self && known {
			// A member that left is reaped like a dead one, not at once: when
			// a whole cluster is stopped for maintenance, removing each
			// leaver would shrink the last node's configuration to itself,
			// and on restart it and the others could elect two leaders.
			if (m.State == StateLeft || m.State == StateDead) && now.Sub(m.Since) >= reap {
				remove = fmt.Sprintf("%s for %s", m.State, now.Sub(m.Since).Round(time.Second))
			}
		}
		if remove != "" {
			actions = append(actions, voterAction{Op: opRemove, ID: id, Reason: remove})
			delete(inConfig, id)
			continue
		}
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	// Keep at least one voter. The leader (self) is one, so this only guards
	// against being called with a configuration that does not contain self.
	if voters == 0 {
		for i, a := range actions {
			if a.Op == opRemove && inConfigVoter(servers, a.ID) {
				actions = slices.Delete(actions, i, i+1)
				voters++
				break
			}
		}
	}

	alive := make([]memberInfo, 0, len(members))
	for _, m := range members {
		if m.State == StateAlive && m.Meta.RaftAddr != "" {
			alive = append(alive, m)
		}
	}
	slices.SortFunc(alive, func(a, b memberInfo) int { return strings.Compare(a.Name, b.Name) })

	// Address changes and promotions of members already in the configuration.
	for _, m := range alive {
		s, ok := inConfig[m.Name]
		if !ok || m.Name == self {
			continue
		}
		addr := m.Meta.RaftAddr
		switch {
		case s.Suffrage != raft.Voter && voters < maxVoters:
			actions = append(actions, voterAction{Op: opAddVoter, ID: m.Name, Address: addr, Reason: "promote non-voter"})
			voters++
		case string(s.Address) != addr && s.Suffrage == raft.Voter:
			actions = append(actions, voterAction{Op: opAddVoter, ID: m.Name, Address: addr, Reason: "raft address changed"})
		case string(s.Address) != addr:
			actions = append(actions, voterAction{Op: opAddNonvoter, ID: m.Name, Address: addr, Reason: "raft address changed"})
		}
	}
	// New members.
	for _, m := range alive {
		if _, ok := inConfig[m.Name]; ok || m.Name == self {
			continue
		}
		if voters < maxVoters {
			actions = append(actions, voterAction{Op: opAddVoter, ID: m.Name, Address: m.Meta.RaftAddr, Reason: "new member"})
			voters++
		} else {
			actions = append(actions, voterAction{Op: opAddNonvoter, ID: m.Name, Address: m.Meta.RaftAddr, Reason: "new member, voters full"})
		}
	}
	return actions
}

func inConfigVoter(servers []raft.Server, id string) bool {
	for _, s := range servers {
		if string(s.ID) == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// reconcileLoop runs planVoters on the leader after membership and
// leadership events and every reconcileInterval (events can be missed across
// leader changes; the tick catches up).
func (c *Cluster) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	// missing records since when a server of the raft configuration has been
	// unknown to gossip (e.g. it died before this node joined): it is reaped
	// like a dead member.
	missing := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.reconcile:
		}
		if !c.IsLeader() {
			clear(missing)
			continue
		}
		if c.reconcileOnce(ctx, missing) {
			signal(c.reconcile) // the configuration changed: look again
			signal(c.changes)
		}
	}
}

// reconcileOnce applies one plan; it reports whether anything changed.
func (c *Cluster) reconcileOnce(ctx context.Context, missing map[string]time.Time) bool {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		c.log.Warn("read raft configuration", "err", err)
		return false
	}
	servers := f.Configuration().Servers
	members := c.memberViews()
	now := time.Now()

	known := make(map[string]bool, len(members))
	for _, m := range members {
		known[m.Name] = true
	}
	inConfig := make(map[string]bool, len(servers))
	for _, s := range servers {
		id := string(s.ID)
		inConfig[id] = true
		if known[id] || id == c.cfg.Name {
			delete(missing, id)
			continue
		}
		since, ok := missing[id]
		if !ok {
			since = now
			missing[id] = now
		}
		members = append(members, memberInfo{Name: id, State: StateDead, Since: since})
	}
	for id := range missing {
		if !inConfig[id] {
			delete(missing, id)
		}
	}

	changed := false
	for _, a := range planVoters(c.cfg.Name, servers, members, now, c.cfg.MaxVoters, c.cfg.ReapTimeout) {
		if ctx.Err() != nil || !c.IsLeader() {
			return changed
		}
		var fut raft.IndexFuture
		switch a.Op {
		case opAddVoter:
			fut = c.raft.AddVoter(raft.ServerID(a.ID), raft.ServerAddress(a.Address), 0, membershipTimeout)
		case opAddNonvoter:
			fut = c.raft.AddNonvoter(raft.ServerID(a.ID), raft.ServerAddress(a.Address), 0, membershipTimeout)
		case opRemove:
			fut = c.raft.RemoveServer(raft.ServerID(a.ID), 0, membershipTimeout)
		}
		if err := fut.Error(); err != nil {
			c.log.Warn("raft configuration change failed", "op", a.Op, "server", a.ID, "reason", a.Reason, "err", err)
			return changed
		}
		c.log.Info("raft configuration changed", "op", a.Op, "server", a.ID, "address", a.Address, "reason", a.Reason)
		changed = true
	}
	return changed
}
