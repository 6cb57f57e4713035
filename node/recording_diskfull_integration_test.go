//go:build linux

package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationRecordingDiskFull fills the disk under a recording (its
// recordings folder is a 1 MB tmpfs) and checks ADR 0012's promise: the
// write error stops the recording, never the live stream. The live
// playlists keep advancing without a stall, the error is logged once and
// counted, the asset names the cause, and once the publisher stops the
// partial recording is ready and plays as VOD up to where it stopped, with
// only whole segments listed.
func TestIntegrationRecordingDiskFull(t *testing.T) {
	testcluster.Media(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs under the recordings folder")
	}
	alongside(t)
	start := time.Now()

	// The data dir is ours, not the cluster's, so the tmpfs is mounted
	// before the node opens it and unmounted only after the node stopped
	// (cleanups run last-registered first).
	dataDir := filepath.Join(t.TempDir(), "data")
	recDir := filepath.Join(dataDir, "recordings")
	require.NoError(t, os.MkdirAll(recDir, 0o700))
	if err := syscall.Mount("tmpfs", recDir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs at %s: %v", recDir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(recDir, 0); err != nil {
			// Busy (a file still open after a failed test): detach it now,
			// the kernel frees it when the last user goes.
			if err := syscall.Unmount(recDir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", recDir, err)
			}
		}
	})

	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.DataDir = dataDir
	}})
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	n := c.Node(0)
	// Passthrough: the publisher's 1.5 Mb/s fills 1 MB in a few seconds,
	// and the node encodes nothing.
	pid := n.CreateProfile(t, map[string]any{"name": "copy", "segment_seconds": 1,
		"renditions": []map[string]any{{"name": "src", "passthrough": true, "video_bitrate_kbps": 1500, "audio_bitrate_kbps": 96}}})
	// With a DVR window too: its playlists read the archive on the full
	// disk, and must not break when that stops growing.
	in := n.CreateInput(t, map[string]any{"name": "full disk", "profile_id": pid, "record": true,
		"dvr_window_seconds": 60, "reconnect_window_seconds": 0})
	pub := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15})
	pb := testcluster.WaitPlayable(t, n, in.ID, 1, 2, 60*time.Second)

	// A viewer polls every live and DVR media playlist from before the
	// disk fills to after: a stall or a broken playlist would show there.
	dvr, err := testcluster.FetchPlaybackURL(n.HTTPURL() + "/live/" + in.ID + "/dvr.m3u8")
	require.NoError(t, err)
	var urls []string
	name := map[string]string{}
	for _, p := range []testcluster.Playback{pb, dvr} {
		for uri, u := range p.MediaURL {
			urls = append(urls, u)
			name[u] = uri
		}
	}
	poll := startViewerPoller(urls)
	defer poll.Stop()

	failures := func() (float64, error) {
		r, err := n.Get("/metrics")
		if err != nil {
			return 0, err
		}
		v, ok := metricValue(string(r.Body), "dionysia_recording_failures_total")
		if !ok {
			return 0, errors.New("no dionysia_recording_failures_total in /metrics")
		}
		return v, nil
	}
	testcluster.Eventually(t, 60*time.Second, "the recording to fail on the full disk", func() error {
		v, err := failures()
		if err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("no failure yet (%s)", usage(recDir))
		}
		return nil
	})
	failedAt := time.Now()
	at := map[string]uint64{}
	for _, u := range urls {
		at[u] = poll.summary(u).MaxMSN
	}
	t.Logf("recording failed %s after the start, disk %s", failedAt.Sub(start).Round(time.Second), usage(recDir))

	// The live stream goes on: every playlist makes six more segments,
	// and the DVR playlists go on past the end of the archive (once the
	// segments in memory no longer follow the last one on disk, they list
	// only those).
	const more = 6
	testcluster.Eventually(t, 30*time.Second, fmt.Sprintf("%d more live segments after the failure", more), func() error {
		for _, u := range urls {
			if s := poll.summary(u); s.MaxMSN < at[u]+more {
				return fmt.Errorf("%s at segment %d, was %d at the failure (%s)", u, s.MaxMSN, at[u], poll.report(u))
			}
		}
		return nil
	})
	testcluster.Eventually(t, 30*time.Second, "the DVR playlists past the archive", func() error {
		d, err := testcluster.FetchPlaybackURL(dvr.MasterURL)
		if err != nil {
			return err
		}
		for uri, mp := range d.Media {
			if u := d.MediaURL[uri]; mp.MediaSequence <= at[u] {
				return fmt.Errorf("%s starts at %d, was at %d at the failure", uri, mp.MediaSequence, at[u])
			}
		}
		return nil
	})
	for _, u := range urls {
		s := poll.summary(u)
		require.Empty(t, poll.checks[u].Violations(), u)
		require.Less(t, s.LongestStall, 4*time.Second, "%s stalled: %+v", u, s)
		t.Logf("live %s: %d segments after the failure, longest stall %s", name[u], s.MaxMSN-at[u], s.LongestStall)
	}
	// The newest live segment still serves.
	live, err := testcluster.FetchPlayback(n, in.ID, "")
	require.NoError(t, err)
	v := live.Variants[0].URI
	seg, err := http.Get(live.SegmentURL(v, len(live.Media[v].Segments)-1))
	require.NoError(t, err)
	seg.Body.Close()
	require.Equal(t, http.StatusOK, seg.StatusCode)

	// One failure, counted once, logged once: the node does not retry the
	// full disk every tick.
	fails, err := failures()
	require.NoError(t, err)
	require.Equal(t, 1.0, fails)
	stopped, problems := scanLog(t, n.LogPath, failedAt.Add(-time.Second))
	require.Equal(t, 1, stopped, "the node logs the stop once")
	require.LessOrEqual(t, len(problems), 2, "warnings and errors since the failure:\n%s", strings.Join(problems, "\n"))
	t.Logf("log since the failure: %d warnings and errors:\n%s", len(problems), strings.Join(problems, "\n"))

	// The asset shows the error, naming the cause, while the show goes on.
	rec := waitRecording(t, n, in.ID, "recording")
	require.Contains(t, rec.Error, "no space left on device")
	require.Contains(t, rec.Error, n.Name())
	require.Positive(t, rec.Bytes)
	t.Logf("recording %s while live: %q, %d bytes, %.1f s", rec.ID, rec.Error, rec.Bytes, rec.DurationSeconds)

	// The show ends: the partial recording is ready, keeps the error, and
	// plays up to where the disk filled.
	pub.Stop()
	rec = waitRecording(t, n, in.ID, "ready")
	require.Contains(t, rec.Error, "no space left on device")
	require.Positive(t, rec.DurationSeconds)
	require.Less(t, rec.DurationSeconds, time.Since(start).Seconds()-more, "the recording stops where the disk filled")
	vod, err := testcluster.FetchPlaybackURL(rec.Playback.HLS)
	require.NoError(t, err)
	require.Len(t, vod.Variants, 1)
	for uri, mp := range vod.Media {
		require.True(t, mp.Ended, "%s has ENDLIST", uri)
		require.NotEmpty(t, mp.Segments, uri)
		var d float64
		for i, sg := range mp.Segments {
			d += sg.Duration
			r, err := http.Get(vod.SegmentURL(uri, i))
			require.NoError(t, err)
			r.Body.Close()
			require.Equal(t, http.StatusOK, r.StatusCode, "%s segment %d (%s)", uri, i, sg.URI)
		}
		require.InDelta(t, rec.DurationSeconds, d, 1.5, "%s lists what was written", uri)
		t.Logf("VOD %s: %d segments, %.1f s", uri, len(mp.Segments), d)
	}
	last := len(vod.Media[vod.Variants[0].URI].Segments) - 1
	probe, err := testcluster.ProbeSegment(t.Context(), vod, vod.Variants[0].URI, last)
	require.NoError(t, err)
	require.Positive(t, probe.Frames, "the last recorded segment decodes")

	// On disk: no temporary file left, every index line whole and naming a
	// file that is there with the size it says.
	folder := filepath.Join(recDir, rec.ID)
	require.NoError(t, filepath.WalkDir(folder, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".tmp") {
			return fmt.Errorf("temporary file left: %s", p)
		}
		return nil
	}))
	idx, err := os.ReadFile(filepath.Join(folder, "index.jsonl"))
	require.NoError(t, err)
	require.True(t, len(idx) > 0 && idx[len(idx)-1] == '\n', "the index ends with a whole line")
	sc := bufio.NewScanner(bytes.NewReader(idx))
	lines := 0
	for sc.Scan() {
		var sg struct {
			Track string `json:"track"`
			File  string `json:"file"`
			Size  int64  `json:"size"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &sg), "index line %d: %s", lines+1, sc.Bytes())
		st, err := os.Stat(filepath.Join(folder, sg.Track, sg.File))
		require.NoError(t, err)
		require.Equal(t, sg.Size, st.Size(), sg.File)
		lines++
	}
	t.Logf("index: %d segments (%s)", lines, time.Since(start).Round(time.Second))

	// The next show starts on the full disk: it plays live, and its
	// recording fails at once, as one more error, with an asset that says
	// so and sorts first.
	pub = testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 180, FPS: 15})
	testcluster.WaitPlayable(t, n, in.ID, 1, 2, 60*time.Second)
	testcluster.Eventually(t, 30*time.Second, "the second show's recording to fail", func() error {
		v, err := failures()
		if err != nil {
			return err
		}
		if v != 2 {
			return fmt.Errorf("%v failures", v)
		}
		return nil
	})
	pub.Stop()
	var second recordingView
	testcluster.Eventually(t, 30*time.Second, "the second recording ready, with the error", func() error {
		list, body, err := listRecordings(n, in.ID)
		if err != nil {
			return err
		}
		if len(list) != 2 || list[1].ID != rec.ID {
			return fmt.Errorf("recordings: %s", body)
		}
		second = list[0]
		if second.Status != "ready" || !strings.Contains(second.Error, "no space left on device") {
			return fmt.Errorf("second recording: %+v", second)
		}
		return nil
	})
	r, err := n.Get("/vod/" + second.ID + "/master.m3u8")
	require.NoError(t, err)
	t.Logf("second recording %s: %.1f s, %d bytes, %q; its VOD playlist answers %d", second.ID, second.DurationSeconds, second.Bytes, second.Error, r.Status)
	stopped, problems = scanLog(t, n.LogPath, failedAt.Add(-time.Second))
	require.Equal(t, 2, stopped, "one line per show")
	require.LessOrEqual(t, len(problems), 4, "warnings and errors since the first failure:\n%s", strings.Join(problems, "\n"))
	t.Logf("done in %s", time.Since(start).Round(time.Second))
}

// usage says how full a file system is.
func usage(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d of %d kB free", st.Bavail*uint64(st.Bsize)/1024, st.Blocks*uint64(st.Bsize)/1024)
}

// scanLog counts the "recording stopped" lines of a node's log, and lists
// its warnings and errors from since on.
func scanLog(t *testing.T, path string, since time.Time) (stopped int, problems []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		require.NotContains(t, line, "panic", "the node panicked")
		if strings.Contains(line, "recording stopped") {
			stopped++
		}
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && !at.Before(since) {
			problems = append(problems, line)
		}
	}
	return stopped, problems
}
