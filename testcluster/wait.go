package testcluster

import (
	"fmt"
	"testing"
	"time"
)

// Eventually polls cond every interval until it returns nil or the deadline
// passes, then fails the test with the last error cond returned.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 50 * time.Millisecond
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: last saw: %v", timeout, what, last)
		}
		time.Sleep(interval)
		if interval < 250*time.Millisecond {
			interval += 25 * time.Millisecond
		}
	}
}

// WaitLeader waits until every running node agrees on one leader and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	Eventually(c.t, timeout, "a raft leader", func() error {
		leader = nil
		name := ""
		for _, n := range c.Running() {
			l, ok := n.ClusterHandle().Leader()
			if !ok {
				return fmt.Errorf("%s knows no leader", n.Name())
			}
			if name != "" && l != name {
				return fmt.Errorf("nodes disagree on the leader: %s vs %s", name, l)
			}
			name = l
		}
		for _, n := range c.Running() {
			if n.Name() == name {
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %q is not a running node", name)
		}
		return nil
	})
	return leader
}

// WaitReady waits until every running node answers /readyz with 200.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, "every node ready", func() error {
		for _, n := range c.Running() {
			if err := n.Ready(); err != nil {
				return fmt.Errorf("%s: %w", n.Name(), err)
			}
		}
		return nil
	})
}

// WaitMembers waits until every running node sees exactly n alive members.
func (c *Cluster) WaitMembers(n int, timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, fmt.Sprintf("%d alive members", n), func() error {
		for _, nd := range c.Running() {
			alive := 0
			for _, m := range nd.ClusterHandle().Members() {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d alive members", nd.Name(), alive)
			}
		}
		return nil
	})
}

// WaitRaftServers waits until the leader's raft configuration has n servers.
func (c *Cluster) WaitRaftServers(n int, timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, fmt.Sprintf("%d raft servers", n), func() error {
		for _, nd := range c.Running() {
			if !nd.ClusterHandle().IsLeader() {
				continue
			}
			got := len(nd.ClusterHandle().RaftState().Servers)
			if got != n {
				return fmt.Errorf("leader %s has %d raft servers", nd.Name(), got)
			}
			return nil
		}
		return fmt.Errorf("no leader")
	})
}
