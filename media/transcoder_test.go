package media

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/stretchr/testify/require"
)

// runTranscoder runs tr in the background; the returned func cancels it and
// checks that Run returns nil within its stop timeout plus a second.
func runTranscoder(t *testing.T, tr *Transcoder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
			t.Logf("transcoder stopped in %s", time.Since(start).Round(time.Millisecond))
		case <-time.After(tr.stopTimeout + time.Second):
			t.Fatalf("Run did not return within StopTimeout+1s")
		}
	}
	t.Cleanup(stop)
	return stop
}

func readMediaPlaylist(t *testing.T, path string) *MediaPlaylist {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	pl, err := ParseMediaPlaylist(f)
	require.NoError(t, err, path)
	return pl
}

func TestTranscoderStopEndsPlaylists(t *testing.T) {
	requireFFmpeg(t)
	src := makeSource(t, 30)
	out := filepath.Join(t.TempDir(), "hls", "in1")
	// A stale file from an earlier run must be cleared at start.
	require.NoError(t, os.MkdirAll(filepath.Join(out, "old"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "old", "seg_1.ts"), []byte("x"), 0o644))

	names := []string{"240p", "120p"}
	tr, err := NewTranscoder(TranscoderConfig{Spec: TranscodeSpec{
		SourceURL: src, Realtime: true,
		Profile: fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", Renditions: []fsm.Rendition{
			{Name: "240p", Width: 320, Height: 240, VideoBitrateKbps: 300, AudioBitrateKbps: 64},
			{Name: "120p", Width: 160, Height: 120, VideoBitrateKbps: 100, AudioBitrateKbps: 32, FPS: 15},
		}},
		OutputDir: out, HasVideo: true, HasAudio: true,
	}, StopTimeout: 3 * time.Second})
	require.NoError(t, err)
	stop := runTranscoder(t, tr)

	waitFor(t, 15*time.Second, "two segments per rendition and progress", func() (bool, string) {
		st := ReadRenditionStats(out, names)
		s := tr.Stats()
		return st[0].Segments >= 2 && st[1].Segments >= 2 && s.Running && s.Frame > 0 && s.OutTime > 0,
			fmt.Sprintf("renditions=%+v stats=%+v", st, s)
	})
	_, err = os.Stat(filepath.Join(out, "old"))
	require.ErrorIs(t, err, os.ErrNotExist, "stale files must be cleared")
	st := ReadRenditionStats(out, names)
	for _, r := range st {
		require.Greater(t, r.BitrateKbps, 0.0, r.Name)
		require.InDelta(t, float64(time.Now().Unix()), float64(r.MediaSequence), 60, "epoch media sequence")
	}

	stop()
	require.False(t, tr.Stats().Running)
	require.Zero(t, tr.Restarts())
	for _, n := range names {
		pl := readMediaPlaylist(t, MediaPlaylistPath(out, n))
		require.True(t, pl.Ended, "%s must end with #EXT-X-ENDLIST", n)
	}
}

// fakeFFmpeg writes an executable shell script standing in for ffmpeg.
func fakeFFmpeg(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755))
	return p
}

func fakeSpec(bin, out string) TranscodeSpec {
	return TranscodeSpec{
		FFmpeg: bin, SourceURL: "rtsp://127.0.0.1:1/live/x", OutputDir: out, HasVideo: true,
		Profile: fsm.Profile{Renditions: []fsm.Rendition{{Name: "hi", Width: 320, Height: 240, VideoBitrateKbps: 300}}},
	}
}

func TestTranscoderKillsStuckFFmpegAndEndsPlaylists(t *testing.T) {
	out := t.TempDir()
	// Writes an unterminated playlist, then ignores SIGINT like a wedged
	// ffmpeg: it must be killed and its playlist ended for it.
	bin := fakeFFmpeg(t, fmt.Sprintf(`mkdir -p %[1]s/hi
printf '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_1.ts\n' > %[1]s/hi/index.m3u8
trap '' INT
exec sleep 30
`, out))
	tr, err := NewTranscoder(TranscoderConfig{Spec: fakeSpec(bin, out), StopTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	stop := runTranscoder(t, tr)
	waitFor(t, 5*time.Second, "fake playlist", func() (bool, string) {
		_, err := os.Stat(MediaPlaylistPath(out, "hi"))
		return err == nil && tr.Stats().Running, fmt.Sprint(err)
	})
	stop()
	pl := readMediaPlaylist(t, MediaPlaylistPath(out, "hi"))
	require.True(t, pl.Ended)
	require.Len(t, pl.Segments, 1)
}

func TestTranscoderRestartsCrashingFFmpeg(t *testing.T) {
	tr, err := NewTranscoder(TranscoderConfig{Spec: fakeSpec(fakeFFmpeg(t, "echo boom >&2\nexit 1\n"), t.TempDir())})
	require.NoError(t, err)
	stop := runTranscoder(t, tr)
	// Backoff 250ms then 500ms: two restarts well within 3s.
	waitFor(t, 3*time.Second, "two restarts", func() (bool, string) {
		return tr.Restarts() >= 2, fmt.Sprint(tr.Restarts())
	})
	stop()
}

func TestNewTranscoderRejectsBadSpec(t *testing.T) {
	_, err := NewTranscoder(TranscoderConfig{Spec: TranscodeSpec{SourceURL: "x", OutputDir: "y", HasVideo: true}})
	require.ErrorContains(t, err, "no renditions")
}
