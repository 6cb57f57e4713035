package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Integration tests in this file run real memberlist and raft on 127.0.0.1.

func TestIntegrationThreeNodesForwardApply(t *testing.T) {
	n1 := startNode(t, "n1")
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "n2", withJoin(n1))
	n3 := startNode(t, "n3", withJoin(n1))
	nodes := []*testNode{n1, n2, n3}

	waitAlive(t, 10*time.Second, nodes, "n1", "n2", "n3")
	waitVoters(t, 10*time.Second, n1, "n1", "n2", "n3")
	leader := waitLeader(t, 10*time.Second, nodes...)
	require.Equal(t, "n1", leader.name)

	// Every node sees the others' metadata and raft roles.
	for _, n := range nodes {
		ms := n.c.Members()
		require.Len(t, ms, 3)
		for _, m := range ms {
			require.NotEmpty(t, m.Meta.HTTPAddr, "%s sees %s", n.name, m.Name)
			require.NotEmpty(t, m.Meta.RaftAddr)
			require.Equal(t, m.Name == n.name, m.Local)
		}
		waitFor(t, 5*time.Second, n.name+" sees roles", func() (bool, string) {
			roles := map[string]string{}
			for _, m := range n.c.Members() {
				roles[m.Name] = m.RaftRole
			}
			return roles["n1"] == "leader" && roles["n2"] == "voter" && roles["n3"] == "voter", fmtAny(roles)
		})
	}

	// A follower's write is forwarded to the leader and replicated everywhere.
	res, err := n3.c.Apply(applyCtx(t), profileCmd("fwd"))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.True(t, res.Changed)
	require.Equal(t, "fwd", res.Profile.ID)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.name+" has the profile", func() (bool, string) {
			return n.state.Profile("fwd") != nil, ""
		})
	}

	// A refused command comes back as the FSM's *fsm.Error through the forward.
	res, err = n2.c.Apply(applyCtx(t), profileCmd("fwd"))
	require.NoError(t, err)
	requireFSMError(t, res.Err)

	// Every node places keys the same way, and SetLoad is gossiped.
	keys := []string{"a", "b", "c", "d", "e", "f", "g"}
	waitFor(t, 5*time.Second, "same placement", func() (bool, string) {
		want := n1.c.OwnedBy(keys)
		for _, n := range nodes[1:] {
			if fmtAny(n.c.OwnedBy(keys)) != fmtAny(want) {
				return false, fmtAny(n.c.OwnedBy(keys))
			}
		}
		return true, ""
	})
	n2.c.SetLoad(7)
	waitFor(t, 5*time.Second, "load gossiped", func() (bool, string) {
		for _, m := range n1.c.Members() {
			if m.Name == "n2" {
				return m.Meta.Load == 7, fmtAny(m.Meta)
			}
		}
		return false, "n2 missing"
	})
	select {
	case <-n1.c.Changes():
	default:
		t.Fatal("Changes not signalled")
	}
}

func TestIntegrationKillLeaderElectsAndReaps(t *testing.T) {
	reap := withReap(3 * time.Second)
	n1 := startNode(t, "k1", reap)
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "k2", reap, withJoin(n1))
	n3 := startNode(t, "k3", reap, withJoin(n1))
	waitVoters(t, 10*time.Second, n1, "k1", "k2", "k3")
	leader := waitLeader(t, 10*time.Second, n1, n2, n3)
	_, err := n2.c.Apply(applyCtx(t), profileCmd("before"))
	require.NoError(t, err)

	killed := time.Now()
	leader.kill()
	survivors := []*testNode{n2, n3}
	newLeader := waitLeader(t, 15*time.Second, survivors...)
	elected := time.Since(killed)
	t.Logf("MEASURED election after leader kill: %s (new leader %s)", elected.Round(time.Millisecond), newLeader.name)

	res, err := n3.c.Apply(applyCtx(t), profileCmd("after"))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	for _, n := range survivors {
		waitFor(t, 5*time.Second, n.name+" has both profiles", func() (bool, string) {
			return n.state.Profile("before") != nil && n.state.Profile("after") != nil, ""
		})
	}

	waitVoters(t, 20*time.Second, newLeader, "k2", "k3")
	t.Logf("dead leader reaped from raft %s after kill", time.Since(killed).Round(time.Millisecond))
	for _, m := range newLeader.c.Members() {
		if m.Name == "k1" {
			require.Equal(t, StateDead, m.State)
			require.Empty(t, m.RaftRole)
		}
	}
}

func TestIntegrationGracefulCloseHandsOverLeadership(t *testing.T) {
	reap := withReap(3 * time.Second)
	n1 := startNode(t, "g1", reap)
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "g2", withJoin(n1), reap)
	n3 := startNode(t, "g3", withJoin(n1), reap)
	waitVoters(t, 10*time.Second, n1, "g1", "g2", "g3")
	waitAlive(t, 10*time.Second, []*testNode{n1, n2, n3}, "g1", "g2", "g3")

	start := time.Now()
	n1.close()
	closed := time.Since(start)
	leader := waitLeader(t, 5*time.Second, n2, n3)
	t.Logf("MEASURED graceful close took %s, new leader %s after %s", closed.Round(time.Millisecond), leader.name, time.Since(start).Round(time.Millisecond))
	require.Less(t, time.Since(start), 5*time.Second)

	for _, n := range []*testNode{n2, n3} {
		waitFor(t, 5*time.Second, n.name+" sees g1 left", func() (bool, string) {
			for _, m := range n.c.Members() {
				if m.Name == "g1" {
					return m.State == StateLeft, m.State
				}
			}
			return false, "g1 missing"
		})
	}
	// A member that left is still a voter for a while (a whole-cluster stop
	// must not shrink the configuration), then reaped like a dead one.
	require.Len(t, leader.c.RaftState().Servers, 3)
	waitVoters(t, 10*time.Second, leader, "g2", "g3")
	res, err := n2.c.Apply(applyCtx(t), profileCmd("x"))
	require.NoError(t, err)
	require.NoError(t, res.Err)
}
