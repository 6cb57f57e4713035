package cluster

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestStdLogBridgeLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	std := newStdLogger(l, "memberlist")
	std.Printf("[DEBUG] memberlist: chatter")
	std.Printf("[INFO] memberlist: Suspect x has failed")
	std.Printf("[WARN] memberlist: something odd")
	std.Printf("[ERR] memberlist: bad thing")
	out := buf.String()
	require.NotContains(t, out, "chatter")
	require.NotContains(t, out, "Suspect", "library INFO is quiet")
	require.Contains(t, out, `level=WARN msg="something odd" lib=memberlist`)
	require.Contains(t, out, `level=WARN msg="bad thing"`)
}

func TestHCLogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newHCLog(l, "raft").Named("snapshot").With("peer", "n2")
	h.Info("entering follower state")
	h.Warn("heartbeat timeout", "term", 3)
	out := buf.String()
	require.NotContains(t, out, "follower")
	require.Contains(t, out, "heartbeat timeout")
	require.Contains(t, out, "peer=n2")
	require.Contains(t, out, "term=3")
	require.False(t, h.IsDebug())
	require.True(t, h.IsWarn())
	require.Equal(t, hclog.Warn, h.GetLevel())
	require.Equal(t, "raft.snapshot", h.Name())
}
