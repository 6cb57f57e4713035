package node

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
)

func TestFailureLog(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	type event struct {
		at      time.Duration // since t0; -1 = a success
		log     bool
		count   int // failures the line stands for
		success int // for a success: the run it ends
	}
	for _, tc := range []struct {
		name   string
		events []event
	}{
		{"the first failure is logged at once", []event{{at: 0, log: true, count: 1}}},
		{"then at most one line per 30 s, with a count", []event{
			{at: 0, log: true, count: 1},
			{at: 100 * time.Millisecond},
			{at: 10 * time.Second},
			{at: 29 * time.Second},
			{at: 30 * time.Second, log: true, count: 4},
			{at: 31 * time.Second},
			{at: 61 * time.Second, log: true, count: 2},
		}},
		{"a success ends the run: the next failure is logged at once", []event{
			{at: 0, log: true, count: 1},
			{at: time.Second},
			{at: -1, success: 2},
			{at: 2 * time.Second, log: true, count: 1},
			{at: -1, success: 1},
			{at: -1, success: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := failureLog{every: pollErrorLogEvery}
			for i, e := range tc.events {
				if e.at < 0 {
					require.Equal(t, e.success, f.succeeded(), "event %d", i)
					continue
				}
				log, count := f.failed(t0.Add(e.at))
				require.Equal(t, e.log, log, "event %d", i)
				require.Equal(t, e.count, count, "event %d", i)
			}
		})
	}
}

func TestPlanSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	const me = "n1"
	// The state every case starts from: inputs a (key ka), b (kb,
	// disabled), c (kc), r (rotated from kr-old to kr).
	base := func() *fsm.State {
		st := fsm.New(nil)
		off := false
		for _, c := range []fsm.Command{
			{Op: fsm.OpInit, At: t0, Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p", Name: "p"}}},
			{Op: fsm.OpCreateInput, At: t0, Input: &fsm.Input{ID: "a", Name: "a", StreamKey: "ka", Enabled: true, ReconnectWindowSeconds: 30}},
			{Op: fsm.OpCreateInput, At: t0, Input: &fsm.Input{ID: "b", Name: "b", StreamKey: "kb", Enabled: true}},
			{Op: fsm.OpUpdateInput, At: t0, ID: "b", Patch: &fsm.InputPatch{Enabled: &off}},
			{Op: fsm.OpCreateInput, At: t0, Input: &fsm.Input{ID: "c", Name: "c", StreamKey: "kc", Enabled: true}},
			{Op: fsm.OpCreateInput, At: t0, Input: &fsm.Input{ID: "r", Name: "r", StreamKey: "kr-old", Enabled: true}},
		} {
			require.NoError(t, st.ApplyCommand(c).Err)
		}
		return st
	}
	session := func(input, id, node, path string) fsm.Command {
		return fsm.Command{Op: fsm.OpStartSession, At: t0, Session: &fsm.Session{InputID: input, ID: id, IngestNode: node, Path: path, StartedAt: t0}}
	}
	path := func(name, id string) media.Path {
		return media.Path{Name: name, Ready: true, ReadyTime: t0.Add(time.Second), SourceType: "rtmpConn", SourceID: id, Tracks: []string{"H264"}}
	}
	// act is what a test expects of an action: its kind, the path (or for
	// an end, the session's path), the input and the session id.
	type act struct {
		kind    sessionActionKind
		path    string
		input   string
		session string
	}
	for _, tc := range []struct {
		name    string
		state   []fsm.Command
		paths   []media.Path
		pending []string
		want    []act
	}{
		{name: "nothing published"},
		{name: "a new publish is recorded", paths: []media.Path{path("live/ka", "s1")},
			want: []act{{sessionStart, "live/ka", "a", "s1"}}},
		{name: "paths not ready or outside live/ are ignored",
			paths: []media.Path{{Name: "live/ka", SourceID: "s1"}, path("other/ka", "s2")}},
		{name: "an unknown key (input deleted) is kicked", paths: []media.Path{path("live/gone", "s1")},
			want: []act{{sessionKick, "live/gone", "", ""}}},
		{name: "a disabled input is kicked", paths: []media.Path{path("live/kb", "s1")},
			want: []act{{sessionKick, "live/kb", "b", ""}}},
		{name: "a kick is not repeated while pending", paths: []media.Path{path("live/kb", "s1")}, pending: []string{"kick s1"}},
		{name: "a start is not repeated while pending", paths: []media.Path{path("live/ka", "s1")}, pending: []string{"start s1"}},
		{name: "a recorded publish needs nothing",
			state: []fsm.Command{session("a", "s1", me, "live/ka")}, paths: []media.Path{path("live/ka", "s1")}},
		{name: "a publisher replaced here: the new one starts, the old one ends",
			state: []fsm.Command{session("a", "s1", me, "live/ka")}, paths: []media.Path{path("live/ka", "s2")},
			want: []act{{sessionStart, "live/ka", "a", "s2"}, {sessionEnd, "live/ka", "a", "s1"}}},
		{name: "live on another node: wait",
			state: []fsm.Command{session("a", "s9", "n2", "live/ka")}, paths: []media.Path{path("live/ka", "s1")},
			want: []act{{sessionWait, "live/ka", "a", "s9"}}},
		{name: "reconnecting on another node: take over",
			state: []fsm.Command{session("a", "s9", "n2", "live/ka"), {Op: fsm.OpClearNodeSessions, At: t0, Node: "n2"}},
			paths: []media.Path{path("live/ka", "s1")},
			want:  []act{{sessionStart, "live/ka", "a", "s1"}}},
		{name: "a publish gone: its session ends",
			state: []fsm.Command{session("a", "s1", me, "live/ka")},
			want:  []act{{sessionEnd, "live/ka", "a", "s1"}}},
		{name: "an end is not repeated while pending",
			state: []fsm.Command{session("a", "s1", me, "live/ka")}, pending: []string{"end s1"}},
		{name: "a reconnecting session of this node is not ended again",
			state: []fsm.Command{session("a", "s1", me, "live/ka"), {Op: fsm.OpEndSession, At: t0, ID: "a", Node: me, Session: &fsm.Session{ID: "s1"}}}},
		{name: "another node's session is not this node's to end",
			state: []fsm.Command{session("a", "s9", "n2", "live/ka")}},
		{name: "a rotated key keeps its live publish",
			state: []fsm.Command{session("r", "s1", me, "live/kr-old"), {Op: fsm.OpRotateKey, At: t0, ID: "r", StreamKey: "kr"}},
			paths: []media.Path{path("live/kr-old", "s1")}},
		{name: "a new publish on a rotated key is not recorded",
			state: []fsm.Command{session("r", "s1", me, "live/kr-old"), {Op: fsm.OpRotateKey, At: t0, ID: "r", StreamKey: "kr"}},
			paths: []media.Path{path("live/kr-old", "s2")},
			want:  []act{{sessionEnd, "live/kr-old", "r", "s1"}}},
		{name: "several paths: in name order, ends last",
			state: []fsm.Command{session("r", "s0", me, "live/kr-old")},
			paths: []media.Path{path("live/kc", "s2"), path("live/kb", "s3"), path("live/ka", "s1")},
			want: []act{{sessionStart, "live/ka", "a", "s1"}, {sessionKick, "live/kb", "b", ""},
				{sessionStart, "live/kc", "c", "s2"}, {sessionEnd, "live/kr-old", "r", "s0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base()
			for _, c := range tc.state {
				require.NoError(t, st.ApplyCommand(c).Err, "state %s", c.Op)
			}
			pending := map[string]time.Time{}
			for _, k := range tc.pending {
				pending[k] = now
			}
			var got []act
			for _, a := range planSessions(me, tc.paths, st, pending, now) {
				g := act{kind: a.kind, path: a.path.Name}
				if a.input != nil {
					g.input = a.input.ID
				}
				if a.session != nil {
					g.session = a.session.ID
				}
				if a.kind == sessionEnd {
					g.path, g.input = a.session.Path, a.session.InputID
				}
				got = append(got, g)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPlanSessionsStartRecordsThePublish(t *testing.T) {
	st := fsm.New(nil)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpInit, At: at, Init: &fsm.Init{Secret: "s", DefaultProfile: &fsm.Profile{ID: "p"}}}).Err)
	require.NoError(t, st.ApplyCommand(fsm.Command{Op: fsm.OpCreateInput, At: at, Input: &fsm.Input{ID: "a", StreamKey: "ka", Enabled: true}}).Err)
	now := at.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		ready time.Time
		want  time.Time
	}{
		{"started when mediamtx says", at.Add(time.Minute), at.Add(time.Minute)},
		{"or now when it does not", time.Time{}, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := media.Path{Name: "live/ka", Ready: true, ReadyTime: tc.ready, SourceType: "srtConn", SourceID: "s1", Tracks: []string{"H264", "MPEG-4 Audio"}}
			acts := planSessions("n1", []media.Path{p}, st, nil, now)
			require.Len(t, acts, 1)
			require.Equal(t, &fsm.Session{InputID: "a", ID: "s1", IngestNode: "n1", Path: "live/ka", Protocol: "srt",
				Tracks: []string{"H264", "MPEG-4 Audio"}, StartedAt: tc.want}, acts[0].session)
		})
	}
}
