package cluster

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIntegrationFailureDetectionAndRejoin(t *testing.T) {
	n1 := startNode(t, "d1")
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "d2", withJoin(n1))
	n3 := startNode(t, "d3", withJoin(n1))
	waitAlive(t, 10*time.Second, []*testNode{n1, n2, n3}, "d1", "d2", "d3")
	waitVoters(t, 10*time.Second, n1, "d1", "d2", "d3")

	// Keys d3 owns now must move to a survivor.
	var keys []string
	for i := 0; len(keys) < 5 && i < 1000; i++ {
		k := fmt.Sprintf("input-%d", i)
		if m, _ := n1.c.Owner(k); m.Name == "d3" {
			keys = append(keys, k)
		}
	}
	require.NotEmpty(t, keys)

	killed := time.Now()
	n3.kill()
	detected := map[string]time.Duration{}
	waitFor(t, 15*time.Second, "d3 detected dead and off the ring", func() (bool, string) {
		for _, n := range []*testNode{n1, n2} {
			if _, ok := detected[n.name]; ok {
				continue
			}
			gone := true
			for _, m := range n.c.Members() {
				if m.Name == "d3" && m.State == StateAlive {
					gone = false
				}
			}
			for _, k := range keys {
				if m, _ := n.c.Owner(k); m.Name == "d3" {
					gone = false
				}
			}
			if gone {
				detected[n.name] = time.Since(killed)
			}
		}
		return len(detected) == 2, fmtAny(detected)
	})
	for name, d := range detected {
		t.Logf("MEASURED failure detection on %s: %s", name, d.Round(time.Millisecond))
	}

	// The same node restarts on its data dir and addresses: alive again, on
	// the ring again, and a raft voter again.
	n3b := n3.restart(withJoin(n1))
	waitAlive(t, 10*time.Second, []*testNode{n1, n2, n3b}, "d1", "d2", "d3")
	waitVoters(t, 10*time.Second, n1, "d1", "d2", "d3")
	waitFor(t, 5*time.Second, "d3 owns its keys again", func() (bool, string) {
		m, _ := n1.c.Owner(keys[0])
		return m.Name == "d3", m.Name
	})
}

func TestIntegrationWrongClusterKeyCannotJoin(t *testing.T) {
	good := bytes.Repeat([]byte{1}, 32)
	bad := bytes.Repeat([]byte{2}, 32)
	n1 := startNode(t, "e1", withKey(good))
	n2 := startNode(t, "e2", withKey(good), withJoin(n1))
	waitAlive(t, 10*time.Second, []*testNode{n1, n2}, "e1", "e2")

	intruder := startNode(t, "e3", withKey(bad), withJoin(n1))
	plain := startNode(t, "e4", withJoin(n1))
	// Absence can only be checked over a window: three join attempts' worth.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []*testNode{n1, n2} {
			require.Equal(t, []string{"e1", "e2"}, aliveNames(n.c), "%s admitted a node without the key", n.name)
		}
		require.Equal(t, []string{"e3"}, aliveNames(intruder.c))
		require.Equal(t, []string{"e4"}, aliveNames(plain.c))
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReconnectTargetsAreTheDeadNotTheLeft(t *testing.T) {
	c := &Cluster{cfg: Config{Name: "a"}, members: map[string]*memberInfo{
		"a": {Name: "a", State: StateDead, Gossip: "10.0.0.1:7946"}, // never itself
		"b": {Name: "b", State: StateAlive, Gossip: "10.0.0.2:7946"},
		"c": {Name: "c", State: StateDead, Gossip: "10.0.0.3:7946"},
		"d": {Name: "d", State: StateLeft, Gossip: "10.0.0.4:7946"}, // left on purpose
		"e": {Name: "e", State: StateDead, Gossip: "10.0.0.5:7946"},
		"f": {Name: "f", State: StateDead}, // no address known
	}}
	require.Equal(t, []string{"10.0.0.3:7946", "10.0.0.5:7946"}, c.reconnectTargets())
}
