package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func recordingState(t *testing.T, retentionDays int) *State {
	t.Helper()
	s := New(nil)
	applyAll(t, s, []Command{initCmd(),
		{Op: OpCreateInput, At: t0, Input: &Input{ID: "in", Name: "in", StreamKey: "k", Enabled: true, Record: true,
			DVRWindowSeconds: 600, RecordingRetentionDays: retentionDays, PlaybackPolicy: PlaybackSigned}},
		{Op: OpCreateWebhook, At: t0, Webhook: &Webhook{ID: "w", URL: "http://r", Secret: "x", Events: []string{EventRecordingReady}}},
	})
	return s
}

func report(node string, at time.Time, r Recording) Command {
	return Command{Op: OpPutRecording, At: at, Node: node, Recording: &r}
}

// Every node that writes a show reports it under the same id; the reports
// merge into one asset that only grows, and becomes ready once.
func TestPutRecordingMergesReports(t *testing.T) {
	id := RecordingID("in", "s1")
	require.Equal(t, id, RecordingID("in", "s1"))
	require.NotEqual(t, id, RecordingID("in", "s2"))
	require.NotEqual(t, id, RecordingID("in2", "s1"))
	base := Recording{ID: id, InputID: "in", StreamID: "s1"}
	with := func(f func(*Recording)) Recording {
		r := base
		f(&r)
		return r
	}
	steps := []struct {
		name string
		cmd  Command
		want func(t *testing.T, r *Recording)
	}{
		{"the owner's first report creates it", report("a", t0.Add(time.Second), with(func(r *Recording) {
			r.Status, r.StartedAt, r.DurationSeconds, r.Bytes, r.Renditions = RecordingActive, t0, 4, 400, []string{"360p"}
		})), func(t *testing.T, r *Recording) {
			require.Equal(t, RecordingActive, r.Status)
			require.Equal(t, []string{"a"}, r.Nodes)
			require.Equal(t, PlaybackSigned, r.PlaybackPolicy, "the input's policy")
			require.Equal(t, t0, r.StartedAt)
		}},
		{"the standby's copy started later and has less", report("b", t0.Add(2*time.Second), with(func(r *Recording) {
			r.Status, r.StartedAt, r.DurationSeconds, r.Bytes, r.Renditions = RecordingActive, t0.Add(3*time.Second), 2, 200, []string{"360p", "180p"}
		})), func(t *testing.T, r *Recording) {
			require.Equal(t, []string{"a", "b"}, r.Nodes)
			require.Equal(t, t0, r.StartedAt, "the earliest start")
			require.Equal(t, 4.0, r.DurationSeconds, "the longest copy")
			require.Equal(t, int64(400), r.Bytes)
			require.Equal(t, []string{"360p", "180p"}, r.Renditions)
		}},
		{"a disk error is kept", report("b", t0.Add(3*time.Second), with(func(r *Recording) {
			r.Status, r.Error = RecordingActive, "disk full"
		})), func(t *testing.T, r *Recording) {
			require.Equal(t, "disk full", r.Error)
			require.Equal(t, RecordingActive, r.Status)
		}},
		{"the end", report("a", t0.Add(70*time.Second), with(func(r *Recording) {
			r.Status, r.DurationSeconds, r.Bytes, r.EndedAt = RecordingReady, 60, 6000, t0.Add(60*time.Second)
		})), func(t *testing.T, r *Recording) {
			require.Equal(t, RecordingReady, r.Status)
			require.Equal(t, t0.Add(60*time.Second), r.EndedAt)
			require.Equal(t, t0.Add(60*time.Second+7*24*time.Hour), r.ExpiresAt, "ended + the input's retention")
		}},
		{"a late report of an active copy does not reopen it", report("b", t0.Add(80*time.Second), with(func(r *Recording) {
			r.Status, r.DurationSeconds = RecordingActive, 59
		})), func(t *testing.T, r *Recording) {
			require.Equal(t, RecordingReady, r.Status)
			require.Equal(t, 60.0, r.DurationSeconds)
			require.Equal(t, t0.Add(60*time.Second+7*24*time.Hour), r.ExpiresAt)
		}},
	}
	s := recordingState(t, 7)
	for _, st := range steps {
		res := s.ApplyCommand(st.cmd)
		require.NoError(t, res.Err, st.name)
		require.True(t, res.Changed, st.name)
		st.want(t, s.Recording(id))
		require.Equal(t, s.Recording(id), res.Recording, st.name)
	}
	// recording.ready went to the outbox once.
	pending := s.PendingDeliveries()
	require.Len(t, pending, 1)
	require.Equal(t, EventRecordingReady, pending[0].Event.Type)
	require.Equal(t, id, pending[0].Event.Data["recording_id"])
	require.Equal(t, EventID(EventRecordingReady, id), pending[0].Event.ID)
}

func TestPutRecordingRefusals(t *testing.T) {
	s := recordingState(t, 0)
	ok := Recording{ID: "rec-1", InputID: "in", StreamID: "s1", Status: RecordingActive}
	applyAll(t, s, []Command{report("a", t0, ok)})
	for _, tc := range []struct {
		name string
		rec  Recording
		code Code
	}{
		{"no id", Recording{InputID: "in", StreamID: "s", Status: RecordingActive}, CodeInvalid},
		{"no stream", Recording{ID: "r", InputID: "in", Status: RecordingActive}, CodeInvalid},
		{"unknown status", Recording{ID: "r", InputID: "in", StreamID: "s", Status: "done"}, CodeInvalid},
		{"unknown input", Recording{ID: "r", InputID: "nope", StreamID: "s", Status: RecordingActive}, CodeNotFound},
		{"another stream under the id", Recording{ID: "rec-1", InputID: "in", StreamID: "s2", Status: RecordingActive}, CodeConflict},
	} {
		res := s.ApplyCommand(report("a", t0, tc.rec))
		require.Equal(t, tc.code, ErrorCode(res.Err), tc.name)
	}
	// Without retention a ready recording never expires.
	applyAll(t, s, []Command{report("a", t0.Add(time.Minute), Recording{ID: "rec-1", InputID: "in", StreamID: "s1", Status: RecordingReady})})
	r := s.Recording("rec-1")
	require.True(t, r.ExpiresAt.IsZero())
	require.Equal(t, t0.Add(time.Minute), r.EndedAt, "a report without an end ends it when it is applied")
}

func TestRecordingPatchDeleteAndReads(t *testing.T) {
	s := recordingState(t, 0)
	applyAll(t, s, []Command{
		report("a", t0, Recording{ID: "r1", InputID: "in", StreamID: "s1", Status: RecordingReady, StartedAt: t0}),
		report("a", t0, Recording{ID: "r2", InputID: "in", StreamID: "s2", Status: RecordingActive, StartedAt: t0.Add(time.Hour)}),
		{Op: OpCreateInput, At: t0, Input: &Input{ID: "other", Name: "o", StreamKey: "k2", Enabled: true}},
		report("b", t0, Recording{ID: "r3", InputID: "other", StreamID: "s1", Status: RecordingActive, StartedAt: t0.Add(30 * time.Minute)}),
	})
	ids := func(rs []*Recording) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	require.Equal(t, []string{"r2", "r3", "r1"}, ids(s.Recordings("")), "newest first")
	require.Equal(t, []string{"r2", "r1"}, ids(s.Recordings("in")))

	exp := t0.Add(48 * time.Hour)
	res := s.ApplyCommand(Command{Op: OpPatchRecording, At: t0.Add(time.Minute), ID: "r1", RecordingPatch: &RecordingPatch{ExpiresAt: exp}})
	require.NoError(t, res.Err)
	require.Equal(t, exp, s.Recording("r1").ExpiresAt)
	require.Equal(t, CodeNotFound, ErrorCode(s.ApplyCommand(Command{Op: OpPatchRecording, ID: "nope", RecordingPatch: &RecordingPatch{}}).Err))

	// Reads are copies.
	r := s.Recording("r1")
	r.Nodes[0] = "x"
	require.Equal(t, []string{"a"}, s.Recording("r1").Nodes)

	// Deleting the input keeps its recordings: they are assets.
	applyAll(t, s, []Command{{Op: OpDeleteInput, At: t0, ID: "in"}})
	require.NotNil(t, s.Recording("r1"))
	require.NoError(t, s.ApplyCommand(Command{Op: OpDeleteRecording, At: t0, ID: "r1"}).Err)
	require.Nil(t, s.Recording("r1"))
	require.Equal(t, CodeNotFound, ErrorCode(s.ApplyCommand(Command{Op: OpDeleteRecording, At: t0, ID: "r1"}).Err))
}

func TestRecordingSnapshotRoundTrip(t *testing.T) {
	s := recordingState(t, 3)
	applyAll(t, s, []Command{
		report("a", t0, Recording{ID: "r1", InputID: "in", StreamID: "s1", Status: RecordingActive, StartedAt: t0, Renditions: []string{"360p"}}),
		report("b", t0.Add(time.Second), Recording{ID: "r1", InputID: "in", StreamID: "s1", Status: RecordingReady, DurationSeconds: 12}),
	})
	b := snapshotBytes(t, s)
	r := New(nil)
	require.NoError(t, r.Restore(bytes.NewReader(b)))
	require.Equal(t, s.Recording("r1"), r.Recording("r1"))
	require.Equal(t, s.Input("in"), r.Input("in"))
	require.Equal(t, b, snapshotBytes(t, r))

	// A snapshot from before recordings restores, and recordings work on it.
	old := New(nil)
	applyAll(t, old, seedLog())
	ob := snapshotBytes(t, old)
	require.NotContains(t, string(ob), `"recordings"`)
	r2 := New(nil)
	require.NoError(t, r2.Restore(bytes.NewReader(ob)))
	require.Empty(t, r2.Recordings(""))
	applyAll(t, r2, []Command{report("a", t0, Recording{ID: "r", InputID: "in2", StreamID: "s", Status: RecordingActive})})
	require.Len(t, r2.Recordings("in2"), 1)
}

// The commands go through the raft log format.
func TestRecordingCommandsEncode(t *testing.T) {
	for _, c := range []Command{
		report("a", t0, Recording{ID: "r", InputID: "in", StreamID: "s", Status: RecordingActive}),
		{Op: OpPatchRecording, At: t0, ID: "r", RecordingPatch: &RecordingPatch{ExpiresAt: t0}},
		{Op: OpDeleteRecording, At: t0, ID: "r"},
		{Op: OpUpdateInput, At: t0, ID: "in", Patch: &InputPatch{Record: new(true), DVRWindowSeconds: new(60), RecordingRetentionDays: new(2)}},
	} {
		b, err := c.Encode()
		require.NoError(t, err)
		d, err := DecodeCommand(b)
		require.NoError(t, err)
		require.Equal(t, c, d)
	}
	s := recordingState(t, 0)
	applyAll(t, s, []Command{{Op: OpUpdateInput, At: t0, ID: "in", Patch: &InputPatch{Record: new(false), DVRWindowSeconds: new(0), RecordingRetentionDays: new(9)}}})
	in := s.Input("in")
	require.False(t, in.Record)
	require.Zero(t, in.DVRWindowSeconds)
	require.Equal(t, 9, in.RecordingRetentionDays)
}
