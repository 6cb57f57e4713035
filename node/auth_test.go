package node

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/peer"
)

// authTestNode is a node with just what authorize and sourceURL read: its
// config, a seeded state and a logger.
func authTestNode(t *testing.T, clusterKey []byte) *Node {
	t.Helper()
	n := &Node{
		cfg:     Config{Name: "a", ClusterKey: clusterKey},
		state:   fsm.New(nil),
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		refused: newRefusals(),
	}
	p, err := peer.New(peer.Config{ClusterKey: clusterKey, Secret: n.state.Secret})
	require.NoError(t, err)
	n.peer = p
	// Not started: its ring is empty, so admission is left to the state
	// machine (placement_test covers it).
	clu, err := cluster.New(cluster.Config{Name: "a", DataDir: t.TempDir(), GossipAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		AdvertiseHost: "127.0.0.1", FSM: fsm.FSM{State: n.state}, Logger: n.log})
	require.NoError(t, err)
	n.clu = clu
	n.hooks = newHookRunner(n)
	now := time.Now().UTC()
	init := n.initCommand()
	init.Init.DemoInput = nil
	for _, c := range []fsm.Command{
		init,
		{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: "on", StreamKey: "skon", Enabled: true}},
		{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: "off", StreamKey: "skoff", Enabled: false}},
	} {
		require.NoError(t, n.state.ApplyCommand(c).Err)
	}
	return n
}

func TestAuthorize(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		var key []byte
		if keyed {
			key = []byte("0123456789abcdef0123456789abcdef")
		}
		n := authTestNode(t, key)
		// The password ffmpeg really sends: whatever sourceURL puts in the URL.
		u, err := url.Parse(n.sourceURL("127.0.0.1:8554", "live/skon"))
		require.NoError(t, err)
		readPass, _ := u.User.Password()

		cases := []struct {
			name string
			req  media.AuthRequest
			ok   bool
		}{
			{"publish enabled key", media.AuthRequest{Action: "publish", Path: "live/skon"}, true},
			{"publish disabled key", media.AuthRequest{Action: "publish", Path: "live/skoff"}, false},
			{"publish unknown key", media.AuthRequest{Action: "publish", Path: "live/nope"}, false},
			{"publish key below a sub path", media.AuthRequest{Action: "publish", Path: "live/skon/x"}, false},
			{"publish outside live/", media.AuthRequest{Action: "publish", Path: "skon"}, false},
			{"publish empty key", media.AuthRequest{Action: "publish", Path: "live/"}, false},
			// WHIP: the key as the bearer token of a publish to the input's id,
			// or in the path with any token.
			{"whip: key as token, id in path", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/on", Token: "skon"}, true},
			{"whip: key in path and token", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/skon", Token: "skon"}, true},
			{"whip: key in path, another token", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/skon", Token: "whatever"}, true},
			{"whip: wrong token", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/on", Token: "skoff"}, false},
			{"whip: id in path, no token", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/on"}, false},
			{"whip: token of a disabled input", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/off", Token: "skoff"}, false},
			{"whip: token for an unknown input", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/nope", Token: "skon"}, false},
			{"whip: token below a sub path", media.AuthRequest{Action: "publish", Protocol: "webrtc", Path: "live/on/x", Token: "skon"}, false},
			// WebRTC reads (WHEP) are the node's own, like every read.
			{"whep read with the stream key as token", media.AuthRequest{Action: "read", Protocol: "webrtc", Path: "live/skon", Token: "skon"}, false},
			{"whep read without credentials", media.AuthRequest{Action: "read", Protocol: "webrtc", Path: "live/skon"}, false},
			{"whep read with the internal credentials", media.AuthRequest{Action: "read", Protocol: "webrtc", Path: "live/skon", User: internalUser, Password: readPass}, true},
			{"read with the stream key only", media.AuthRequest{Action: "read", Path: "live/skon"}, false},
			{"read with the internal credentials", media.AuthRequest{Action: "read", Path: "live/skon", User: internalUser, Password: readPass}, true},
			{"read with another user", media.AuthRequest{Action: "read", Path: "live/skon", User: "admin", Password: readPass}, false},
			{"read with a wrong password", media.AuthRequest{Action: "read", Path: "live/skon", User: internalUser, Password: "x"}, false},
			// Every purpose has its own key: another purpose's key, or
			// the root secret, does not read.
			{"read with the root secret", media.AuthRequest{Action: "read", Path: "live/skon", User: internalUser, Password: rootSecret(n)}, false},
			{"read with the playback key", media.AuthRequest{Action: "read", Path: "live/skon", User: internalUser, Password: n.peer.KeyHex(peer.Playback)}, false},
			{"read with the internal token", media.AuthRequest{Action: "read", Path: "live/skon", User: internalUser, Password: n.peer.KeyHex(peer.InternalToken)}, false},
			{"playback", media.AuthRequest{Action: "playback", Path: "live/skon", User: internalUser, Password: readPass}, false},
			{"api", media.AuthRequest{Action: "api", User: internalUser, Password: readPass}, false},
		}
		for _, tc := range cases {
			name := tc.name
			if keyed {
				name += " (cluster key)"
			}
			t.Run(name, func(t *testing.T) {
				err := n.authorize(context.Background(), tc.req)
				if tc.ok {
					require.NoError(t, err)
				} else {
					require.Error(t, err)
				}
			})
		}
		require.NotContains(t, n.sourceURL("127.0.0.1:8554", "live/skon"), rootSecret(n),
			"a media read URL must not carry the root secret")
		require.False(t, strings.Contains(readPass, rootSecret(n)))
	}
}

// rootSecret is what every key of n derives from, as text.
func rootSecret(n *Node) string {
	if len(n.cfg.ClusterKey) > 0 {
		return string(n.cfg.ClusterKey)
	}
	return n.state.Secret()
}
