package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
)

// freeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// newClusterOnlyNode builds a node and starts only its cluster (a single
// bootstrapped member, so it owns every input on the ring): enough to drive
// the reconcile logic without mediamtx or the HTTP server.
func newClusterOnlyNode(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{
		Name: "solo", DataDir: t.TempDir(), AdvertiseHost: "127.0.0.1",
		HTTPAddr: freeAddr(t), GossipAddr: freeAddr(t), RaftAddr: freeAddr(t),
		RTMPAddr: freeAddr(t), RTSPAddr: freeAddr(t), SRTAddr: freeAddr(t),
		FFmpeg: "/nonexistent/ffmpeg", MediaMTX: "/nonexistent/mediamtx",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, n.clu.Start(context.Background()))
	t.Cleanup(func() {
		n.trans.stopAll()
		n.clu.Kill()
	})
	return n
}

// TestReconcileStartsNothingOnceStopping: Close cancels the loops' context
// and then stops every transcoder; a reconcile that was already under way
// (or woken by a pending poke) must not start a new transcoder after that,
// since its Run would clear the output the stopped one is ending and it
// would outlive Close.
func TestReconcileStartsNothingOnceStopping(t *testing.T) {
	n := newClusterOnlyNode(t)
	now := time.Now().UTC()
	init := n.initCommand()
	init.Init.DemoInput = nil
	for _, c := range []fsm.Command{
		init,
		{Op: fsm.OpCreateInput, At: now, Input: &fsm.Input{ID: "in1", StreamKey: "sk1", Enabled: true}},
		{Op: fsm.OpStartSession, At: now, Session: &fsm.Session{
			InputID: "in1", ID: "s1", IngestNode: "solo", Path: "live/sk1", Tracks: []string{"H264"},
		}},
	} {
		require.NoError(t, n.state.ApplyCommand(c).Err)
	}
	require.Len(t, n.desiredTranscodes(), 1, "the node owns the live input")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.trans.stopAll()
	n.trans.reconcile(ctx)

	n.trans.mu.Lock()
	starts, running := n.trans.starts, len(n.trans.running)
	n.trans.mu.Unlock()
	require.Zero(t, starts, "transcoders started after the node began stopping")
	require.Zero(t, running)
}

// TestStartEndsStalePlaylists: a node that crashed while transcoding left
// media playlists without #EXT-X-ENDLIST; once it is back (and owns the
// input again, with no live session), players must see the stream ended,
// not a live playlist that never moves.
func TestStartEndsStalePlaylists(t *testing.T) {
	dataDir := t.TempDir()
	stale := filepath.Join(media.OutputDir(dataDir, "in1"), "360p", media.MediaPlaylistName)
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o755))
	require.NoError(t, os.WriteFile(stale, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1700000000\n#EXTINF:2.0,\nseg_1700000000.ts\n"), 0o644))

	n, err := New(Config{
		Name: "solo", DataDir: dataDir, AdvertiseHost: "127.0.0.1",
		HTTPAddr: freeAddr(t), GossipAddr: freeAddr(t), RaftAddr: freeAddr(t),
		RTMPAddr: freeAddr(t), RTSPAddr: freeAddr(t), SRTAddr: freeAddr(t),
		FFmpeg: "/nonexistent/ffmpeg", MediaMTX: "/nonexistent/mediamtx", NoDemo: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	b, err := os.ReadFile(stale)
	require.NoError(t, err)
	require.Contains(t, string(b), "#EXT-X-ENDLIST")
}
