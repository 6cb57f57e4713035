package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIntegrationSingleNodeRestartKeepsState(t *testing.T) {
	snaps := withSnapshots(100*time.Millisecond, 3)
	n := startNode(t, "solo", snaps)
	waitLeader(t, 10*time.Second, n)

	res, err := n.c.Apply(applyCtx(t), profileCmd("p1"))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.True(t, res.Changed)
	require.NotNil(t, n.state.Profile("p1"))
	require.Equal(t, "leader", n.c.Members()[0].RaftRole)
	require.Equal(t, "leader", n.c.RaftState().State)

	// Enough entries for periodic snapshots; at most two are kept.
	for i := range 8 {
		_, err := n.c.Apply(applyCtx(t), profileCmd(fmt.Sprintf("s%d", i)))
		require.NoError(t, err)
	}
	snapDir := filepath.Join(n.dir, "raft", "snapshots")
	waitFor(t, 10*time.Second, "a raft snapshot", func() (bool, string) {
		entries, _ := os.ReadDir(snapDir)
		return len(entries) > 0, fmt.Sprint(len(entries))
	})

	n.close()
	entries, err := os.ReadDir(snapDir)
	require.NoError(t, err)
	require.LessOrEqual(t, len(entries), 2)

	n2 := n.restart(snaps)
	require.NotNil(t, n2.state.Profile("p1"), "the snapshot is restored on start")
	waitLeader(t, 10*time.Second, n2)
	waitFor(t, 5*time.Second, "raft replays the log after the snapshot", func() (bool, string) {
		return len(n2.state.Profiles()) == 9, fmt.Sprint(len(n2.state.Profiles()))
	})
	res, err = n2.c.Apply(applyCtx(t), profileCmd("p2"))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Len(t, n2.state.Profiles(), 10)
}
