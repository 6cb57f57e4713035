package player_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster/player"
)

// ladder writes a 12 s VOD, two video renditions (320x180, 160x90) with
// AAC, as fMP4 HLS (hls/master.m3u8) and as DASH (dash/manifest.mpd).
func ladder(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is required in CI but missing")
		}
		t.Skip("ffmpeg not found (run `make deps`); skipping")
	}
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "dash"), 0o755))
	in := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "12",
		"-filter_complex", "[0:v]split=2[hi][v];[v]scale=160:90[lo]"}
	enc := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-b:v:0", "400k", "-b:v:1", "150k",
		"-c:a", "aac", "-b:a", "64k"}
	for _, out := range []struct {
		name         string
		maps, format []string
	}{
		{name: "hls", maps: []string{"-map", "[hi]", "-map", "[lo]", "-map", "1:a", "-map", "1:a"},
			format: []string{"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
				"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-master_pl_name", "master.m3u8",
				"-var_stream_map", "v:0,a:0 v:1,a:1", "-hls_segment_filename", "hls/v%v/seg%d.m4s", "hls/v%v/index.m3u8"}},
		{name: "dash", maps: []string{"-map", "[hi]", "-map", "[lo]", "-map", "1:a"},
			format: []string{"-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
				"-adaptation_sets", "id=0,streams=v id=1,streams=a", "dash/manifest.mpd"}},
	} {
		args := append(append(append(append([]string{}, in...), out.maps...), enc...), out.format...)
		cmd := exec.Command("ffmpeg", args...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "ffmpeg %s: %s", out.name, b)
	}
	return dir
}

// serveCORS serves dir on another origin than the player's page, the way
// a node answers: any origin may read it. Requests for a path hold matches
// wait until release is closed (or the client gives up).
func serveCORS(t *testing.T, dir string, hold func(path string) bool, release <-chan struct{}) *httptest.Server {
	t.Helper()
	files := http.FileServer(http.Dir(dir))
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if hold != nil && hold(r.URL.Path) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	// srv.Close waits for the handlers; closing done, which runs first,
	// lets a held one go.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	return srv
}

// TestPlayerPlays: hls.js and dash.js, both at once (two Chromiums), play
// the ladder, whose third segment (4-6 s) the server holds back: each
// player plays, stalls at 4 s, and plays on once the segment comes, with
// no fatal error, and the stall is measured.
func TestPlayerPlays(t *testing.T) {
	if testing.Short() {
		t.Skip("real browser player; skipped with -short")
	}
	start := time.Now()
	dir := ladder(t)
	t.Logf("ladder encoded in %s", time.Since(start).Round(time.Millisecond))
	third := regexp.MustCompile(`/seg2\.m4s$|-00003\.m4s$`) // every rendition's, audio's too

	players := []struct {
		opts    player.Options
		path    string
		release chan struct{}
	}{
		// hls.js runs in low-latency mode by default: the harness turns it off.
		{opts: player.Options{Name: "hls.js"}, path: "/hls/master.m3u8"},
		{opts: player.Options{Name: "dash.js", Engine: player.DASH, LowLatency: true}, path: "/dash/manifest.mpd"},
	}
	ps := make([]*player.Player, len(players))
	starts := make([]player.Mark, len(players))
	for i := range players {
		pl := &players[i]
		pl.release = make(chan struct{})
		pl.opts.URL = serveCORS(t, dir, third.MatchString, pl.release).URL + pl.path
		ps[i] = player.Start(t, pl.opts)
		starts[i] = ps[i].Mark()
	}
	const held = 1500 * time.Millisecond
	for i, p := range ps {
		o := players[i].opts
		s := p.WaitPlaying(30 * time.Second)
		require.Empty(t, s.Fatal)
		require.Equal(t, o.LowLatency, s.LowLatency, "%s", s)
		require.True(t, s.Started)
		require.Positive(t, s.Startup)
		require.Contains(t, []int{90, 180}, s.VideoHeight, "%s", s)
		// Levels count from the lowest bitrate.
		require.Contains(t, []int{0, 1}, s.Level, "%s", s)
		require.Equal(t, map[int]int{0: 90, 1: 180}[s.Level], s.Height, "%s", s)
		require.Zero(t, s.Latency, "a VOD has no live latency: %s", s)

		s = p.Wait("a stall at the held segment", 20*time.Second, func(s player.Stats) bool { return s.CurrentStall >= held })
		require.InDelta(t, 4.0, s.CurrentTime, 0.5, "%s", s)
		require.False(t, s.Playing, "%s", s)
		// The event: the segment comes. Media time moves on after it.
		m := p.Mark()
		close(players[i].release)
		s = p.WaitAdvancingSince(m, 2*time.Second, 20*time.Second)
		require.Empty(t, s.Fatal)
		require.GreaterOrEqual(t, s.Played, 5.0, "%s", s)
		require.Zero(t, s.CurrentStall, "%s", s)
		require.GreaterOrEqual(t, s.Stalls, 1, "%s", s)
		// Measured to about a sample (100 ms).
		stall := p.LongestStallSince(starts[i])
		require.GreaterOrEqual(t, stall, held-200*time.Millisecond, "%s", s)
		require.Equal(t, s.LongestStall, stall, "%s", s)
		require.Less(t, p.LongestStallSince(m), stall, "%s", s)
		t.Logf("%s: %s; stall at the held segment %s, after it came %s", o.Name, s,
			stall.Round(time.Millisecond), p.LongestStallSince(m).Round(time.Millisecond))
	}
	for _, p := range ps {
		p.Close()
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// TestPlayerReportsFatal: a stream that is not there is a fatal error in
// Stats, for both engines: a harness that cannot play cannot pass.
func TestPlayerReportsFatal(t *testing.T) {
	if testing.Short() {
		t.Skip("real browser player; skipped with -short")
	}
	srv := serveCORS(t, t.TempDir(), nil, nil) // empty: every request 404s
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"hls.js", srv.URL + "/live/nope/master.m3u8"},
		{"dash.js", srv.URL + "/live/nope/manifest.mpd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := player.Start(t, player.Options{Name: tc.name, URL: tc.url})
			s := p.WaitFatal(30 * time.Second)
			require.False(t, s.Started)
			require.Zero(t, s.Played)
			require.Contains(t, p.Console(), "http 404 "+tc.url)
			t.Logf("%s: fatal %q", tc.name, s.Fatal)
		})
	}
}
