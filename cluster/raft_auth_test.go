package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/peer"
)

// rawRaftClient is a raft transport speaking through p, as a node of
// another cluster (or anyone on the network) could open one.
func rawRaftClient(t *testing.T, p *peer.Peer) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{mux: p.Listen(ln, log), advertise: ln.Addr(), peer: p},
		MaxPool: 1,
		Timeout: 2 * time.Second,
		Logger:  newHCLog(log, "raft"),
	})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// TestRaftTransportNeedsClusterKey: with a cluster key, a raft RPC from a
// peer without a certificate from the key's CA is refused in the TLS
// handshake, before raft reads it; a peer with the key (and any peer when no
// key is set) is answered.
func TestRaftTransportNeedsClusterKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	cases := []struct {
		name      string
		serverKey []byte
		clientKey []byte
		answered  bool
	}{
		{"keyed node, plain client", key, nil, false},
		{"keyed node, client with another key", key, bytes.Repeat([]byte{8}, 32), false},
		{"keyed node, client with the key", key, key, true},
		{"node without key, plain client", nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, "k1", withKey(tc.serverKey))
			waitFor(t, 10*time.Second, "k1 leads", func() (bool, string) { return n.c.IsLeader(), "" })
			cl := rawRaftClient(t, testPeer(t, tc.clientKey))
			var resp raft.RequestVoteResponse
			err := cl.RequestVote("k1", raft.ServerAddress(n.c.raftAdvertise), &raft.RequestVoteRequest{
				RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
				Term:      1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40,
			}, &resp)
			if tc.answered {
				require.NoError(t, err)
			} else {
				require.Error(t, err, "an unauthenticated raft RPC was answered")
				require.True(t, n.c.IsLeader(), "an unauthenticated vote request disturbed the leader")
			}
		})
	}
}

// TestIntegrationKeyedClusterRaft: nodes sharing a cluster key still form a
// raft cluster (their raft connections carry the token).
func TestIntegrationKeyedClusterRaft(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	n1 := startNode(t, "r1", withKey(key))
	n2 := startNode(t, "r2", withKey(key), withJoin(n1))
	waitVoters(t, 15*time.Second, n1, "r1", "r2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n1.c.Apply(ctx, fsm.Command{Op: fsm.OpInit, At: time.Now().UTC(),
		Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p"}}})
	require.NoError(t, err)
	require.NoError(t, res.Err)
	waitFor(t, 10*time.Second, "r2 applies r1's entry", func() (bool, string) { return n2.state.Initialized(), "" })
}
