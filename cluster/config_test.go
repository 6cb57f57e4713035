package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	return Config{
		Name: "n1", DataDir: "/tmp/x", GossipAddr: "127.0.0.1:7946", RaftAddr: "127.0.0.1:7947",
		FSM: fsm.FSM{State: fsm.New(nil)},
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := validConfig().withDefaults()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", cfg.AdvertiseHost, "taken from a specific gossip bind address")
	require.Equal(t, 5, cfg.MaxVoters)
	require.Equal(t, 30*time.Second, cfg.ReapTimeout)
	require.Equal(t, 30*time.Second, cfg.SnapshotInterval)
	require.EqualValues(t, 1024, cfg.SnapshotThreshold)
	require.Equal(t, GossipTuning{ProbeInterval: 500 * time.Millisecond, ProbeTimeout: 300 * time.Millisecond, GossipInterval: 100 * time.Millisecond, SuspicionMult: 3}, cfg.Gossip)
	require.Equal(t, RaftTuning{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond, CommitTimeout: 50 * time.Millisecond}, cfg.Raft)
	require.NotNil(t, cfg.Logger)
	require.NotNil(t, cfg.Peer)
	require.False(t, cfg.Peer.TLS(), "no key, no files: plain mode")
}

func TestConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"no fsm", func(c *Config) { c.FSM = nil }, "fsm is required"},
		{"bad gossip addr", func(c *Config) { c.GossipAddr = "nope" }, "gossip addr"},
		{"bad raft port", func(c *Config) { c.RaftAddr = "127.0.0.1:x" }, "raft addr"},
		{"wildcard without advertise host", func(c *Config) { c.GossipAddr = ":7946" }, "advertise host"},
		{"bad key size", func(c *Config) { c.ClusterKey = []byte("short") }, "cluster key"},
		{"meta too large", func(c *Config) { c.Meta.HTTPAddr = strings.Repeat("h", 500) }, "meta is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMetaRoundTrip(t *testing.T) {
	in := wireMeta{Meta: Meta{HTTPAddr: "10.0.0.1:8080", RaftAddr: "10.0.0.1:7947", RTSPAddr: "10.0.0.1:8554", RTMPAddr: "10.0.0.1:1935", SRTAddr: "10.0.0.1:8890", Load: 3}}
	b, err := in.encode()
	require.NoError(t, err)
	out, err := decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, in, out)
	t.Logf("typical meta: %d bytes", len(b))
}
