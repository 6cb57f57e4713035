package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/peer"
	"github.com/dionysia/dionysia/testcluster"
)

// startTwo starts a two-node cluster and waits until it can take writes.
func startTwo(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	opts.Nodes = 2
	c := testcluster.Start(t, opts)
	c.WaitMembers(2, 30*time.Second)
	c.WaitRaftServers(2, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	return c
}

// raftRefused reports how a cluster port treats a raft connection from p:
// nil when it keeps the connection open (a peer), an error when the dial
// fails or the node closes it.
func raftRefused(p *peer.Peer, addr string) error {
	conn, err := p.DialRaft(addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A request-vote type byte: raft, having taken the connection, waits
	// for the rest; a refused connection is closed, at the latest when the
	// node gives up on its TLS handshake (5 s).
	_, _ = conn.Write([]byte{1})
	_ = conn.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		err = errors.New("answered")
	}
	return err
}

// internalStatus asks the cluster port at addr for an internal status with
// p's credentials.
func internalStatus(p *peer.Peer, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := p.NewRequest(ctx, http.MethodGet, addr, "/internal/status/none", nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newPeer(t *testing.T, cfg peer.Config) *peer.Peer {
	t.Helper()
	p, err := peer.New(cfg)
	require.NoError(t, err)
	return p
}

// TestIntegrationTLSRefusesStrangers: a cluster with a cluster key talks to
// its own nodes only. A node with another key, a certificate from another
// CA, or no TLS at all is refused on raft and internal HTTP, and a node
// with another key cannot join the gossip; the public port serves no
// internal endpoint.
func TestIntegrationTLSRefusesStrangers(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	key := bytes.Repeat([]byte{0x42}, 32)
	other := bytes.Repeat([]byte{0x43}, 32)
	c := startTwo(t, testcluster.Options{ClusterKey: key, Configure: func(i int, cfg *node.Config) {
		if i == 2 {
			cfg.ClusterKey = other // the intruder added below
		}
	}})
	addr := c.Node(0).Config.RaftAddr
	files := testcluster.WriteTLSFiles(t, t.TempDir(), "stranger")["stranger"]

	cases := []struct {
		name     string
		cfg      peer.Config
		accepted bool
		status   int // internal HTTP answer when the connection is accepted
	}{
		{"a node of the cluster", peer.Config{ClusterKey: key}, true, http.StatusOK},
		{"another cluster key", peer.Config{ClusterKey: other}, false, 0},
		{"a certificate from another CA", peer.Config{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}, false, 0},
		{"no TLS, a guessed token", peer.Config{Secret: func() string { return "guess" }}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, tc.cfg)
			rerr := raftRefused(p, addr)
			status, herr := internalStatus(p, addr)
			if tc.accepted {
				require.NoError(t, rerr, "raft connection of a peer closed")
				require.NoError(t, herr)
				require.Equal(t, tc.status, status)
				return
			}
			require.Error(t, rerr, "raft connection accepted")
			require.Error(t, herr, "internal HTTP answered %d", status)
		})
	}

	// The public port has no internal endpoint.
	r := c.Node(0).MustDo(t, http.MethodGet, "/internal/status/none", nil)
	require.Equal(t, http.StatusNotFound, r.Status)

	// Gossip: a node with another key never becomes a member. Absence is
	// checked over a window: a few join attempts' worth.
	intruder := c.AddNode()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes()[:2] {
			for _, m := range n.ClusterHandle().Members() {
				require.NotEqual(t, intruder.Name(), m.Name, "%s admitted a node with another key", n.Name())
			}
		}
		require.Len(t, intruder.ClusterHandle().Members(), 1, "the intruder sees the cluster")
		time.Sleep(100 * time.Millisecond)
	}
	_, ok := intruder.ClusterHandle().Leader()
	require.False(t, ok, "the intruder found a raft leader")
}

// TestIntegrationTLSOperatorFiles: nodes with the operator's certificates
// and no cluster key form a cluster and forward writes over mutual TLS.
func TestIntegrationTLSOperatorFiles(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	files := testcluster.WriteTLSFiles(t, t.TempDir(), "n0", "n1")
	c := startTwo(t, testcluster.Options{Plain: true, Configure: func(i int, cfg *node.Config) {
		f := files[cfg.Name]
		cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = f.Cert, f.Key, f.CA
	}})
	f := follower(c)
	require.NotNil(t, f)
	in := f.CreateInput(t, map[string]any{"name": "through the follower"})
	require.NotEmpty(t, in.ID)
	// A peer with the cluster's CA but its own certificate is admitted;
	// one from a cluster-key CA is not.
	p := newPeer(t, peer.Config{CertFile: files["n1"].Cert, KeyFile: files["n1"].Key, CAFile: files["n1"].CA})
	status, err := internalStatus(p, c.Node(0).Config.RaftAddr)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	_, err = internalStatus(newPeer(t, peer.Config{ClusterKey: bytes.Repeat([]byte{1}, 32)}), c.Node(0).Config.RaftAddr)
	require.Error(t, err)
}

// portsOf lists every node-to-node port of the cluster: the cluster port
// (raft and internal HTTP), gossip, and mediamtx's RTSP and RTSPS.
func portsOf(t *testing.T, c *testcluster.Cluster) []int {
	t.Helper()
	var out []int
	for _, n := range c.Nodes() {
		for _, a := range []string{n.Config.RaftAddr, n.Config.GossipAddr, n.Config.RTSPAddr, n.Config.RTSPSAddr} {
			_, p, err := net.SplitHostPort(a)
			require.NoError(t, err)
			port, err := strconv.Atoi(p)
			require.NoError(t, err)
			out = append(out, port)
		}
	}
	return out
}

// secretsOf lists what must never be readable between nodes: the stream
// key, the cluster key (raw and as configured), and every key derived from
// it, also as an RTSP Basic credential.
func secretsOf(t *testing.T, key []byte, streamKey string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"stream key":         []byte(streamKey),
		"cluster key":        key,
		"cluster key base64": []byte(base64.StdEncoding.EncodeToString(key)),
	}
	for _, p := range []peer.Purpose{peer.MediaRead, peer.Playback, peer.InternalToken} {
		s, err := peer.DeriveHex(key, p)
		require.NoError(t, err)
		out[string(p)] = []byte(s)
		raw, err := peer.Derive(key, p, 32)
		require.NoError(t, err)
		out[string(p)+" raw"] = raw
	}
	out["media read as RTSP basic auth"] = []byte(base64.StdEncoding.EncodeToString([]byte("dionysia:" + string(out[string(peer.MediaRead)]))))
	return out
}

// requireNoSecretOnCommandLines fails when any process's command line
// carries the cluster key or a key derived from it (what a local user
// could read with ps), and when no ffmpeg runs at all. The stream key is
// left out: the test's own publisher pushes to rtmp://…/live/<key>.
func requireNoSecretOnCommandLines(t *testing.T, key []byte, streamKey string) {
	t.Helper()
	secrets := secretsOf(t, key, streamKey)
	delete(secrets, "stream key")
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	sawFFmpeg := false
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the process is gone
		}
		sawFFmpeg = sawFFmpeg || bytes.Contains(b, []byte("ffmpeg"))
		for name, sec := range secrets {
			require.False(t, bytes.Contains(b, sec), "the %s is on a command line: %s", name, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	require.True(t, sawFFmpeg, "no ffmpeg process seen")
}

// requireAbsent fails when any secret is in any captured flow.
func requireAbsent(t *testing.T, flows map[string][]byte, secrets map[string][]byte) {
	t.Helper()
	for flow, b := range flows {
		for name, s := range secrets {
			require.False(t, bytes.Contains(b, s), "the %s is readable on the wire (flow %s)", name, flow)
		}
	}
}

// TestIntegrationTLSNothingToSniff captures loopback traffic between the
// nodes of a keyed cluster while a write is forwarded, a stream is
// published to one node and transcoded by the other (which reads it over
// RTSPS), played through a node and its status fetched: no secret and no
// stream key is in the captured bytes. The same capture of a cluster in
// plain mode does see the stream key, so the sniffer can tell.
func TestIntegrationTLSNothingToSniff(t *testing.T) {
	testcluster.Media(t)

	t.Run("plain mode shows the stream key", func(t *testing.T) {
		c := startTwo(t, testcluster.Options{Plain: true})
		s := testcluster.StartSniffer(t, portsOf(t, c)...)
		in := follower(c).CreateInput(t, map[string]any{"name": "sniffed"})
		s.Stop()
		flows, _ := s.Captured()
		seen := false
		for _, b := range flows {
			seen = seen || bytes.Contains(b, []byte(in.StreamKey))
		}
		require.True(t, seen, "the forwarded write's answer carries the stream key in clear in plain mode, and the sniffer missed it")
	})

	t.Run("TLS shows nothing", func(t *testing.T) {
		key := bytes.Repeat([]byte{0x5e}, 32)
		c := startTwo(t, testcluster.Options{ClusterKey: key})
		s := testcluster.StartSniffer(t, portsOf(t, c)...)
		f := follower(c)
		profile := f.CreateProfile(t, testcluster.SmallProfile("sniffed", 1))
		in := f.CreateInput(t, map[string]any{"name": "sniffed", "profile_id": profile})
		m, ok := c.Node(0).ClusterHandle().Owner(in.ID)
		require.True(t, ok)
		var owner, ingest *testcluster.Node
		for _, n := range c.Nodes() {
			if n.Name() == m.Name {
				owner = n
			} else {
				ingest = n
			}
		}
		// Published to the node that does not own the stream: the owner
		// reads it across, and the ingest node plays it from the owner.
		testcluster.Publish(t, ingest.WaitInput(t, in.ID).Ingest.RTMP, testcluster.PublishOptions{})
		testcluster.WaitPlayable(t, ingest, in.ID, 2, 2, 60*time.Second)
		r := ingest.MustDo(t, http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
		require.Equal(t, http.StatusOK, r.Status)
		var st struct {
			OwnerNode  string            `json:"owner_node"`
			Renditions []json.RawMessage `json:"renditions"`
		}
		r.JSON(t, &st)
		require.Equal(t, owner.Name(), st.OwnerNode)
		require.NotEmpty(t, st.Renditions, "the status came from the owner")
		// While ffmpeg transcodes on the owner: no process's command line
		// carries a key (the read password was on ffmpeg's before).
		requireNoSecretOnCommandLines(t, key, in.StreamKey)
		s.Stop()
		flows, pkts := s.Captured()
		total := 0
		for _, b := range flows {
			total += len(b)
		}
		t.Logf("captured %d packets, %d bytes between the nodes, in %d flows", pkts, total, len(flows))
		// The owner read the stream across: media went through the
		// capture (so it saw the RTSPS read, password and all).
		require.Greater(t, total, 100_000, "too little captured to have seen the media read")
		requireAbsent(t, flows, secretsOf(t, key, in.StreamKey))
	})
}
