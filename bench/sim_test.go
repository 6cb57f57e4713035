package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestScaleSimulation runs the placement simulation at the size
// (100 nodes, 10 000 streams, no media) and holds it to what the README
// states. It needs no media and runs in `go test`, unlike the rows.
func TestScaleSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("10 000 simulated streams; skipped with -short")
	}
	t.Run("mixed profiles with churn", func(t *testing.T) {
		res, err := runSim(simConfig{Nodes: 100, Streams: 10000, Capacity: 1000, Seed: 1, Churn: 10 * time.Minute, MeanLife: time.Hour})
		require.NoError(t, err)
		t.Logf("%+v", res)
		require.Zero(t, res.Refused, "everything fits")
		require.LessOrEqual(t, res.MaxOverMean, 1.25, "no node above the placement bound")
		require.Zero(t, res.JoinMoved, "nobody is above the bound when a 101st node joins: nothing moves")
		require.Positive(t, res.DeathFailover)
		require.LessOrEqual(t, res.DeathMaxUtilAfter, 1.0, "after the rebalance nobody is over capacity")
		require.Less(t, res.WritesPerSec, 20.0)
	})
	t.Run("equal streams", func(t *testing.T) {
		res, err := runSim(simConfig{Nodes: 100, Streams: 10000, Capacity: 1000, Seed: 1, Passthrough: true})
		require.NoError(t, err)
		t.Logf("%+v", res)
		require.LessOrEqual(t, res.SpreadStreams, 1.25)
	})
}

// The bench's own scale row in miniature: 24 equal streams on 3 nodes
// split evenly, and a 4th node takes at most a quarter.
func TestScaleSimulationSmall(t *testing.T) {
	res, err := runSim(simConfig{Nodes: 3, Streams: 24, Capacity: 200, Seed: 2, Passthrough: true})
	require.NoError(t, err)
	t.Logf("%+v", res)
	require.Equal(t, 1.0, res.SpreadStreams, "8 streams per node")
	require.Positive(t, res.JoinMoved, "the new node takes some")
	require.LessOrEqual(t, res.JoinMoved, 24/4)
}
