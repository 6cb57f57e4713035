package node

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

func TestRepairIndex(t *testing.T) {
	const whole = `{"track":"v","msn":1,"file":"a.m4s"}` + "\n"
	for name, tc := range map[string]struct {
		index *string // nil: no index yet
		want  string
	}{
		"no index":            {nil, ""},
		"empty":               {ptr(""), ""},
		"whole lines":         {ptr(whole + whole), whole + whole},
		"a cut last line":     {ptr(whole + `{"track":"v","ms`), whole},
		"only a cut line":     {ptr(`{"track"`), ""},
		"no line ends at all": {ptr(`garbage`), ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.index != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, indexFile), []byte(*tc.index), 0o600))
			}
			root, err := os.OpenRoot(dir)
			require.NoError(t, err)
			defer root.Close()
			size, err := repairIndex(root)
			require.NoError(t, err)
			require.Equal(t, int64(len(tc.want)), size)
			if tc.index != nil {
				b, err := os.ReadFile(filepath.Join(dir, indexFile))
				require.NoError(t, err)
				require.Equal(t, tc.want, string(b))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// recorderTestNode is a node with what the recorder reads: a state with a
// DVR-only input "dvr" (nothing to report to raft), a logger into buf and
// a data dir.
func recorderTestNode(t *testing.T, buf *bytes.Buffer) (*Node, *recorder) {
	t.Helper()
	n := authTestNode(t, nil)
	n.cfg.DataDir = t.TempDir()
	n.log = slog.New(slog.NewTextHandler(buf, nil))
	require.NoError(t, n.state.ApplyCommand(fsm.Command{Op: fsm.OpCreateInput, At: time.Now().UTC(),
		Input: &fsm.Input{ID: "dvr", StreamKey: "skdvr", Enabled: true, DVRWindowSeconds: 60}}).Err)
	n.streams = newLiveStreams(n)
	r, err := newRecorder(n)
	require.NoError(t, err)
	n.rec = r
	return n, r
}

// TestRecorderContinuesAfterCutIndex: a copy whose index ends in a line a
// full disk (or a crash) cut short is continued with whole lines: the
// next segment's line is not glued to the cut one and lost with it.
func TestRecorderContinuesAfterCutIndex(t *testing.T) {
	first := `{"track":"v","msn":1,"duration":1,"file":"1.m4s","size":3}` + "\n"
	for name, cut := range map[string]string{
		"cut in its JSON": `{"track":"v","msn":2,"dur`,
		// Whole JSON, no newline: read before the repair, it counted as
		// written and segment 2 was never written again.
		"cut before its newline": `{"track":"v","msn":2,"duration":1,"file":"2.m4s","size":3}`,
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			_, r := recorderTestNode(t, &buf)
			const rid = "rec-1"
			dir := filepath.Join(r.dir, rid)
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "v"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, tracksFile), []byte(`[{"spec":{"name":"v"}}]`), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "v", "1.m4s"), []byte("one"), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, indexFile), []byte(first+cut), 0o600))

			w, err := r.open(rid, &fsm.Input{ID: "dvr", Record: true})
			require.NoError(t, err)
			require.Equal(t, uint64(1), w.marks["v"], "continues after the last whole line")
			require.Equal(t, int64(3), w.bytes)
			require.NoError(t, w.writeSegment(packager.Finished{Record: packager.SegmentRecord{Track: "v", MSN: 2, Duration: 1,
				File: "2.m4s", Size: 3}, Data: []byte("two")}))
			w.done = true // nothing to report
			w.close(context.Background())

			root, err := r.root.OpenRoot(rid)
			require.NoError(t, err)
			defer root.Close()
			c, err := readCopy(root, "n")
			require.NoError(t, err)
			require.Len(t, c.Segments, 2)
			require.Equal(t, []uint64{1, 2}, []uint64{c.Segments[0].MSN, c.Segments[1].MSN})
		})
	}
}

// TestRecorderOpenFailsOnce: a show whose folder cannot be made (a full
// disk) stops recording on this node like a write error does: one error
// line and one failure counted, not one every tick; a later show of the
// input tries again.
func TestRecorderOpenFailsOnce(t *testing.T) {
	var buf bytes.Buffer
	n, r := recorderTestNode(t, &buf)
	stream := packager.New(packager.Config{ID: "s1"})
	n.streams.byID["dvr"] = &liveStream{id: "dvr", stream: stream}
	// A file where the show's folder goes: MkdirAll fails, as it does on a
	// full disk.
	rid := fsm.RecordingID("dvr", "s1")
	require.NoError(t, os.WriteFile(filepath.Join(r.dir, rid), nil, 0o600))

	for range 5 {
		r.tick(t.Context())
	}
	require.Equal(t, 1.0, counterValue(t, r.failures))
	require.Equal(t, 1, strings.Count(buf.String(), "recording stopped"), buf.String())
	require.Empty(t, r.writers)

	// The stream goes, and a new show comes: it is tried (and fails) anew.
	delete(n.streams.byID, "dvr")
	r.tick(t.Context())
	require.Empty(t, r.unopened)
	n.streams.byID["dvr"] = &liveStream{id: "dvr", stream: packager.New(packager.Config{ID: "s2"})}
	require.NoError(t, os.WriteFile(filepath.Join(r.dir, fsm.RecordingID("dvr", "s2")), nil, 0o600))
	r.tick(t.Context())
	require.Equal(t, 2.0, counterValue(t, r.failures))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

func TestDiskReserve(t *testing.T) {
	const gb = int64(1) << 30
	for name, tc := range map[string]struct {
		size      int64
		reserveMB int
		want      int64
	}{
		"auto, small disk: 5 %":         {size: 10 * gb, want: 10 * gb / 20},
		"auto, large disk: 1 GiB":       {size: 500 * gb, want: gb},
		"auto, tiny file system":        {size: 1 << 20, want: (1 << 20) / 20},
		"set: that many MB":             {size: 500 * gb, reserveMB: 200, want: 200 << 20},
		"set above the disk: all of it": {size: 1 << 20, reserveMB: 10, want: 10 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, diskReserve(tc.size, tc.reserveMB))
		})
	}
}

// A write that would eat into the reserve is refused as a full disk,
// with the figures; one that leaves it is let through.
func TestRoomForKeepsTheReserve(t *testing.T) {
	r := &recorder{dir: t.TempDir(), reserveMB: 1 << 30} // 1 PB: more than any test disk
	err := r.roomFor(1000)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Contains(t, err.Error(), "kept free for the node")
	r.reserveMB = 1
	require.NoError(t, r.roomFor(1000))
}
