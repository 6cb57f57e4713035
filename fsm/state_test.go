package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testProfile(id string) *Profile {
	return &Profile{
		ID: id, Name: id, SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: SegmentFMP4,
		Latency: LatencyLow, PartMs: 500,
		Renditions: []Rendition{{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 700, AudioBitrateKbps: 96}},
	}
}

func initCmd() Command {
	return Command{Op: OpInit, At: t0, Init: &Init{
		Secret:         "s3cret",
		DefaultProfile: testProfile("default"),
		DemoInput:      &Input{ID: "demo", Name: "Demo", StreamKey: "demokey", Enabled: true, ReconnectWindowSeconds: 30},
	}}
}

// seedLog is a log that touches every command type, used by the replay and
// snapshot tests. It ends with in2 live on node a and demo reconnecting.
func seedLog() []Command {
	name := "renamed"
	off := false
	return []Command{
		initCmd(),
		{Op: OpCreateProfile, At: t0.Add(1 * time.Second), Profile: testProfile("low")},
		{Op: OpCreateInput, At: t0.Add(2 * time.Second), Input: &Input{ID: "in1", Name: "one", StreamKey: "k1", Enabled: true}},
		{Op: OpCreateInput, At: t0.Add(3 * time.Second), Input: &Input{ID: "in2", Name: "two", StreamKey: "k2", ProfileID: "low", Enabled: true,
			ReconnectWindowSeconds: 10, HotStandby: true}},
		{Op: OpUpdateInput, At: t0.Add(4 * time.Second), ID: "in1", Patch: &InputPatch{Name: &name, Enabled: &off}},
		{Op: OpRotateKey, At: t0.Add(5 * time.Second), ID: "in2", StreamKey: "k2b"},
		{Op: OpStartSession, At: t0.Add(6 * time.Second), Session: &Session{InputID: "in2", ID: "s1", IngestNode: "a", Path: "live/k2b"}},
		{Op: OpEndSession, At: t0.Add(7 * time.Second), ID: "in2", Node: "a", Session: &Session{ID: "s1"}},
		{Op: OpExpireSession, At: t0.Add(8 * time.Second), ID: "in2", Session: &Session{ID: "s1"}},
		{Op: OpStartSession, At: t0.Add(9 * time.Second), Session: &Session{InputID: "in2", ID: "s3", IngestNode: "a", Path: "live/k2b"}},
		{Op: OpStartSession, At: t0.Add(10 * time.Second), Session: &Session{InputID: "demo", ID: "s2", IngestNode: "b", Path: "live/demokey"}},
		{Op: OpClearNodeSessions, At: t0.Add(11 * time.Second), Node: "b"},
		{Op: OpDeleteInput, At: t0.Add(12 * time.Second), ID: "in1"},
	}
}

func applyAll(t *testing.T, s *State, cmds []Command) {
	t.Helper()
	for _, c := range cmds {
		r := s.ApplyCommand(c)
		require.NoError(t, r.Err, "apply %s", c.Op)
	}
}

func snapshotBytes(t *testing.T, s *State) []byte {
	t.Helper()
	b, err := s.MarshalSnapshot()
	require.NoError(t, err)
	return b
}

func TestInit(t *testing.T) {
	s := New(nil)
	require.False(t, s.Initialized())
	r := s.ApplyCommand(initCmd())
	require.NoError(t, r.Err)
	require.True(t, r.Changed)
	require.True(t, s.Initialized())
	require.Equal(t, "s3cret", s.Secret())
	require.Equal(t, "default", s.DefaultProfileID())
	demo := s.Input("demo")
	require.NotNil(t, demo)
	require.Equal(t, "default", demo.ProfileID)
	require.Equal(t, "demo", s.InputByKey("demokey").ID)

	// A second Init (every node may propose one after an election) changes nothing.
	again := initCmd()
	again.Init.Secret = "other"
	r = s.ApplyCommand(again)
	require.NoError(t, r.Err)
	require.False(t, r.Changed)
	require.Equal(t, "s3cret", s.Secret())

	require.Error(t, New(nil).ApplyCommand(Command{Op: OpInit}).Err)
}

func TestProfileCommands(t *testing.T) {
	tests := []struct {
		name    string
		cmd     Command
		code    Code
		field   string
		changed bool
	}{
		{"create", Command{Op: OpCreateProfile, Profile: testProfile("p1")}, "", "", true},
		{"create duplicate", Command{Op: OpCreateProfile, Profile: testProfile("default")}, CodeConflict, "id", false},
		{"create without id", Command{Op: OpCreateProfile, Profile: &Profile{}}, CodeInvalid, "id", false},
		{"update", Command{Op: OpUpdateProfile, Profile: testProfile("used")}, "", "", true},
		{"update missing", Command{Op: OpUpdateProfile, Profile: testProfile("nope")}, CodeNotFound, "id", false},
		{"delete unused", Command{Op: OpDeleteProfile, ID: "unused"}, "", "", true},
		{"delete missing", Command{Op: OpDeleteProfile, ID: "nope"}, CodeNotFound, "id", false},
		{"delete default", Command{Op: OpDeleteProfile, ID: "default"}, CodeConflict, "id", false},
		{"delete in use", Command{Op: OpDeleteProfile, ID: "used"}, CodeConflict, "id", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil)
			applyAll(t, s, []Command{
				initCmd(),
				{Op: OpCreateProfile, At: t0, Profile: testProfile("used")},
				{Op: OpCreateProfile, At: t0, Profile: testProfile("unused")},
				{Op: OpCreateInput, At: t0, Input: &Input{ID: "i", StreamKey: "k", ProfileID: "used"}},
			})
			before := snapshotBytes(t, s)
			tc.cmd.At = t0.Add(time.Minute)
			r := s.ApplyCommand(tc.cmd)
			require.Equal(t, tc.changed, r.Changed)
			if tc.code == "" {
				require.NoError(t, r.Err)
				return
			}
			require.Equal(t, tc.code, ErrorCode(r.Err))
			var fe *Error
			require.ErrorAs(t, r.Err, &fe)
			require.Equal(t, tc.field, fe.Field)
			require.Equal(t, before, snapshotBytes(t, s), "a refused command must not change the state")
		})
	}
}

func TestProfileUpdateKeepsCreatedAt(t *testing.T) {
	s := New(nil)
	applyAll(t, s, []Command{initCmd()})
	p := testProfile("default")
	p.Name = "changed"
	r := s.ApplyCommand(Command{Op: OpUpdateProfile, At: t0.Add(time.Hour), Profile: p})
	require.NoError(t, r.Err)
	require.Equal(t, t0, r.Profile.CreatedAt)
	require.Equal(t, t0.Add(time.Hour), r.Profile.UpdatedAt)
	require.Equal(t, "changed", s.Profile("default").Name)
}

func TestInputCommands(t *testing.T) {
	name, policy, missing, empty := "new name", PlaybackSigned, "missing", ""
	on, window := true, 120
	tests := []struct {
		name  string
		cmd   Command
		code  Code
		check func(t *testing.T, s *State)
	}{
		{"create uses default profile", Command{Op: OpCreateInput, Input: &Input{ID: "n", StreamKey: "nk"}}, "", func(t *testing.T, s *State) {
			in := s.Input("n")
			require.Equal(t, "default", in.ProfileID)
			require.Equal(t, PlaybackPublic, in.PlaybackPolicy)
			require.Equal(t, "n", s.InputByKey("nk").ID)
		}},
		{"create duplicate id", Command{Op: OpCreateInput, Input: &Input{ID: "i", StreamKey: "other"}}, CodeConflict, nil},
		{"create duplicate key", Command{Op: OpCreateInput, Input: &Input{ID: "n", StreamKey: "k"}}, CodeConflict, nil},
		{"create unknown profile", Command{Op: OpCreateInput, Input: &Input{ID: "n", StreamKey: "nk", ProfileID: "nope"}}, CodeNotFound, nil},
		{"create without key", Command{Op: OpCreateInput, Input: &Input{ID: "n"}}, CodeInvalid, nil},
		{"patch", Command{Op: OpUpdateInput, ID: "i", Patch: &InputPatch{Name: &name, Enabled: &on, PlaybackPolicy: &policy}}, "", func(t *testing.T, s *State) {
			in := s.Input("i")
			require.Equal(t, "new name", in.Name)
			require.True(t, in.Enabled)
			require.Equal(t, PlaybackSigned, in.PlaybackPolicy)
			require.Equal(t, "k", in.StreamKey)
		}},
		{"create keeps the reconnect window and hot standby", Command{Op: OpCreateInput, Input: &Input{ID: "n", StreamKey: "nk", ReconnectWindowSeconds: 30, HotStandby: true}}, "", func(t *testing.T, s *State) {
			in := s.Input("n")
			require.Equal(t, 30, in.ReconnectWindowSeconds)
			require.True(t, in.HotStandby)
		}},
		{"patch reconnect window and hot standby", Command{Op: OpUpdateInput, ID: "i", Patch: &InputPatch{ReconnectWindowSeconds: &window, HotStandby: &on}}, "", func(t *testing.T, s *State) {
			in := s.Input("i")
			require.Equal(t, 120, in.ReconnectWindowSeconds)
			require.True(t, in.HotStandby)
			require.Equal(t, "s", s.Session("i").ID, "the live session is untouched")
		}},
		{"patch empty profile means default", Command{Op: OpUpdateInput, ID: "i", Patch: &InputPatch{ProfileID: &empty}}, "", func(t *testing.T, s *State) {
			require.Equal(t, "default", s.Input("i").ProfileID)
		}},
		{"patch unknown profile", Command{Op: OpUpdateInput, ID: "i", Patch: &InputPatch{ProfileID: &missing}}, CodeNotFound, nil},
		{"patch missing input", Command{Op: OpUpdateInput, ID: "nope", Patch: &InputPatch{Name: &name}}, CodeNotFound, nil},
		{"rotate", Command{Op: OpRotateKey, ID: "i", StreamKey: "k2"}, "", func(t *testing.T, s *State) {
			require.Nil(t, s.InputByKey("k"), "the old key must stop working")
			require.Equal(t, "i", s.InputByKey("k2").ID)
		}},
		{"rotate to a used key", Command{Op: OpRotateKey, ID: "i", StreamKey: "demokey"}, CodeConflict, nil},
		{"rotate without key", Command{Op: OpRotateKey, ID: "i"}, CodeInvalid, nil},
		{"rotate missing input", Command{Op: OpRotateKey, ID: "nope", StreamKey: "x"}, CodeNotFound, nil},
		{"delete ends its session and frees its key", Command{Op: OpDeleteInput, ID: "i"}, "", func(t *testing.T, s *State) {
			require.Nil(t, s.Input("i"))
			require.Nil(t, s.InputByKey("k"))
			require.Nil(t, s.Session("i"))
		}},
		{"delete missing", Command{Op: OpDeleteInput, ID: "nope"}, CodeNotFound, nil},
		{"unknown op", Command{Op: "explode"}, CodeInvalid, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil)
			applyAll(t, s, []Command{
				initCmd(),
				{Op: OpCreateInput, At: t0, Input: &Input{ID: "i", StreamKey: "k", ProfileID: "default"}},
				{Op: OpStartSession, At: t0, Session: &Session{InputID: "i", ID: "s", IngestNode: "a"}},
			})
			before := snapshotBytes(t, s)
			tc.cmd.At = t0.Add(time.Minute)
			r := s.ApplyCommand(tc.cmd)
			if tc.code != "" {
				require.Equal(t, tc.code, ErrorCode(r.Err), "err: %v", r.Err)
				require.Equal(t, before, snapshotBytes(t, s), "a refused command must not change the state")
				return
			}
			require.NoError(t, r.Err)
			require.True(t, r.Changed)
			tc.check(t, s)
		})
	}
}

// Session commands. The base state has input "w" (30 s reconnect window),
// "z" (no window) and "off" (window, but disabled); setup commands apply at
// t1, the command under test at t2.
func TestSessionCommands(t *testing.T) {
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	start := func(input, id, node string) Command {
		return Command{Op: OpStartSession, Session: &Session{InputID: input, ID: id, IngestNode: node, Path: "live/" + input}}
	}
	end := func(input, id, node string) Command {
		return Command{Op: OpEndSession, ID: input, Node: node, Session: &Session{ID: id}}
	}
	expire := func(input, id string) Command {
		return Command{Op: OpExpireSession, ID: input, Session: &Session{ID: id}}
	}
	clear := func(node string) Command { return Command{Op: OpClearNodeSessions, Node: node} }
	off, window := false, 60

	tests := []struct {
		name    string
		setup   []Command
		cmd     Command
		code    Code // "" = accepted
		changed bool
		input   string   // whose session is checked; "w" when empty
		want    *Session // ID, IngestNode and EndedAt of the session after; nil = none
	}{
		{"start records a live session", nil, start("w", "s1", "a"), "", true, "", &Session{ID: "s1", IngestNode: "a"}},
		{"start of the same live publish is a no-op", []Command{start("w", "s1", "a")}, start("w", "s1", "a"), "", false, "", &Session{ID: "s1", IngestNode: "a"}},
		{"first come wins: a live session on another node refuses the start",
			[]Command{start("w", "s1", "a")}, start("w", "s2", "b"), CodeConflict, false, "", &Session{ID: "s1", IngestNode: "a"}},
		{"a new publish on the same node replaces the live one (mediamtx replaced the publisher)",
			[]Command{start("w", "s1", "a")}, start("w", "s2", "a"), "", true, "", &Session{ID: "s2", IngestNode: "a"}},
		{"a reconnect on another node replaces a reconnecting session",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, start("w", "s2", "b"), "", true, "", &Session{ID: "s2", IngestNode: "b"}},
		{"the same publish seen again revives its reconnecting session",
			[]Command{start("w", "s1", "a"), clear("a")}, start("w", "s1", "a"), "", true, "", &Session{ID: "s1", IngestNode: "a"}},
		{"start of an unknown input", nil, start("nope", "s1", "a"), CodeNotFound, false, "nope", nil},
		{"start without an ingest node", nil, start("w", "s1", ""), CodeInvalid, false, "", nil},

		{"end with a window keeps the session, reconnecting",
			[]Command{start("w", "s1", "a")}, end("w", "s1", "a"), "", true, "", &Session{ID: "s1", IngestNode: "a", EndedAt: t2}},
		{"end without a window deletes", []Command{start("z", "s1", "a")}, end("z", "s1", "a"), "", true, "z", nil},
		{"end of a disabled input deletes", []Command{start("off", "s1", "a")}, end("off", "s1", "a"), "", true, "off", nil},
		{"end of a replaced session is a no-op",
			[]Command{start("w", "s1", "a"), start("w", "s2", "a")}, end("w", "s1", "a"), "", false, "", &Session{ID: "s2", IngestNode: "a"}},
		{"end from another node is a no-op", []Command{start("w", "s1", "a")}, end("w", "s1", "b"), "", false, "", &Session{ID: "s1", IngestNode: "a"}},
		{"end of a reconnecting session keeps its first end",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, end("w", "s1", "a"), "", false, "", &Session{ID: "s1", IngestNode: "a", EndedAt: t1}},
		{"end of nothing is a no-op", nil, end("w", "s1", "a"), "", false, "", nil},

		{"expire deletes a reconnecting session", []Command{start("w", "s1", "a"), end("w", "s1", "a")}, expire("w", "s1"), "", true, "", nil},
		{"expire of a session a reconnect replaced is a no-op",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a"), start("w", "s2", "b")}, expire("w", "s1"), "", false, "", &Session{ID: "s2", IngestNode: "b"}},
		{"expire of a live session is a no-op", []Command{start("w", "s1", "a")}, expire("w", "s1"), "", false, "", &Session{ID: "s1", IngestNode: "a"}},
		{"expire without a session id", nil, Command{Op: OpExpireSession, ID: "w"}, CodeInvalid, false, "", nil},

		{"clear node sessions with a window marks them reconnecting",
			[]Command{start("w", "s1", "a")}, clear("a"), "", true, "", &Session{ID: "s1", IngestNode: "a", EndedAt: t2}},
		{"clear node sessions without a window deletes them", []Command{start("z", "s1", "a")}, clear("a"), "", true, "z", nil},
		{"clear node sessions does not extend a window",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, clear("a"), "", false, "", &Session{ID: "s1", IngestNode: "a", EndedAt: t1}},
		{"clear node sessions of another node", []Command{start("w", "s1", "a")}, clear("b"), "", false, "", &Session{ID: "s1", IngestNode: "a"}},
		{"clear node sessions without a node", nil, Command{Op: OpClearNodeSessions}, CodeInvalid, false, "", nil},

		{"disabling an input deletes its live session",
			[]Command{start("w", "s1", "a")}, Command{Op: OpUpdateInput, ID: "w", Patch: &InputPatch{Enabled: &off}}, "", true, "", nil},
		{"disabling an input deletes its reconnecting session",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, Command{Op: OpUpdateInput, ID: "w", Patch: &InputPatch{Enabled: &off}}, "", true, "", nil},
		{"a new window keeps a reconnecting session",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, Command{Op: OpUpdateInput, ID: "w", Patch: &InputPatch{ReconnectWindowSeconds: &window}},
			"", true, "", &Session{ID: "s1", IngestNode: "a", EndedAt: t1}},
		{"deleting an input deletes its reconnecting session",
			[]Command{start("w", "s1", "a"), end("w", "s1", "a")}, Command{Op: OpDeleteInput, ID: "w"}, "", true, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil)
			applyAll(t, s, []Command{
				initCmd(),
				{Op: OpCreateInput, At: t0, Input: &Input{ID: "w", StreamKey: "kw", Enabled: true, ReconnectWindowSeconds: 30}},
				{Op: OpCreateInput, At: t0, Input: &Input{ID: "z", StreamKey: "kz", Enabled: true}},
				{Op: OpCreateInput, At: t0, Input: &Input{ID: "off", StreamKey: "koff", ReconnectWindowSeconds: 30}},
			})
			for _, c := range tc.setup {
				c.At = t1
				applyAll(t, s, []Command{c})
			}
			before := snapshotBytes(t, s)
			tc.cmd.At = t2
			r := s.ApplyCommand(tc.cmd)
			require.Equal(t, tc.changed, r.Changed)
			if tc.code != "" {
				require.Equal(t, tc.code, ErrorCode(r.Err), "err: %v", r.Err)
				require.Equal(t, before, snapshotBytes(t, s), "a refused command must not change the state")
			} else {
				require.NoError(t, r.Err)
			}
			if !tc.changed {
				require.Equal(t, before, snapshotBytes(t, s), "a no-op must not change the state")
			}
			input := tc.input
			if input == "" {
				input = "w"
			}
			got := s.Session(input)
			if tc.want == nil {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.Equal(t, *tc.want, Session{ID: got.ID, IngestNode: got.IngestNode, EndedAt: got.EndedAt})
			require.Equal(t, tc.want.EndedAt.IsZero(), got.Live())
			require.False(t, got.StartedAt.IsZero())
		})
	}
}

func TestSessionStartedAtAndDeadline(t *testing.T) {
	s := New(nil)
	applyAll(t, s, []Command{initCmd()})
	started := t0.Add(-time.Second)
	applyAll(t, s, []Command{
		{Op: OpStartSession, At: t0, Session: &Session{InputID: "demo", ID: "s1", IngestNode: "a"}},
		{Op: OpStartSession, At: t0.Add(time.Second), Session: &Session{InputID: "demo", ID: "s2", IngestNode: "a", StartedAt: started}},
	})
	ss := s.Session("demo")
	require.Equal(t, started, ss.StartedAt, "the proposer's start time is kept")
	require.True(t, ss.ReconnectDeadline(s.Input("demo")).IsZero(), "a live session has no deadline")

	// A start carrying an end time still records a live session.
	applyAll(t, s, []Command{{Op: OpStartSession, At: t0.Add(2 * time.Second), Session: &Session{InputID: "demo", ID: "s3", IngestNode: "a", EndedAt: t0}}})
	require.True(t, s.Session("demo").Live())

	applyAll(t, s, []Command{{Op: OpEndSession, At: t0.Add(time.Minute), ID: "demo", Node: "a", Session: &Session{ID: "s3"}}})
	ss = s.Session("demo")
	require.Equal(t, t0.Add(time.Minute+30*time.Second), ss.ReconnectDeadline(s.Input("demo")), "EndedAt plus the input's window")
	require.Equal(t, t0.Add(time.Minute), ss.ReconnectDeadline(nil), "no input: the window is over")

	// An end without a time cannot start a window.
	applyAll(t, s, []Command{{Op: OpStartSession, At: t0.Add(2 * time.Minute), Session: &Session{InputID: "demo", ID: "s4", IngestNode: "a"}}})
	require.True(t, s.ApplyCommand(Command{Op: OpEndSession, ID: "demo", Session: &Session{ID: "s4"}}).Changed)
	require.Nil(t, s.Session("demo"))
}

// A snapshot written before latency, part_ms, reconnect windows and ended
// sessions existed restores, and its zero values mean what they meant then.
func TestRestoreSnapshotWithoutNewFields(t *testing.T) {
	old := `{"secret":"s","default_profile_id":"default",
		"profiles":{"default":{"id":"default","name":"D","segment_seconds":2,"video_preset":"veryfast","segment_format":"",
			"renditions":[{"name":"360p","width":640,"height":360,"video_bitrate_kbps":700,"audio_bitrate_kbps":96,"fps":0,"passthrough":false}],
			"created_at":"2026-11-27T12:00:00Z","updated_at":"2026-11-27T12:00:00Z"}},
		"inputs":{"demo":{"id":"demo","name":"Demo","profile_id":"default","stream_key":"k","enabled":true,"playback_policy":"public",
			"created_at":"2026-11-27T12:00:00Z","updated_at":"2026-11-27T12:00:00Z"}},
		"sessions":{"demo":{"input_id":"demo","id":"s1","ingest_node":"a","path":"live/k","protocol":"rtmp","started_at":"2026-11-27T12:00:00Z"}}}`
	s := New(nil)
	require.NoError(t, s.Restore(bytes.NewReader([]byte(old))))
	p := s.Profile("default")
	require.Equal(t, SegmentTS, p.EffectiveSegmentFormat())
	require.Equal(t, LatencyStandard, p.EffectiveLatency())
	require.Equal(t, DefaultPartMs, p.EffectivePartMs())
	require.NoError(t, p.Validate(), "a stored profile still validates")
	require.Zero(t, s.Input("demo").ReconnectWindowSeconds, "no window: sessions end as before")
	require.True(t, s.Session("demo").Live())

	// Without a window, the end of the old session deletes it, as it did.
	require.True(t, s.ApplyCommand(Command{Op: OpEndSession, At: t0, ID: "demo", Session: &Session{ID: "s1"}}).Changed)
	require.Nil(t, s.Session("demo"))
}

func TestReadsReturnCopies(t *testing.T) {
	s := New(nil)
	applyAll(t, s, seedLog())
	p := s.Profile("default")
	p.Renditions[0].Name = "mutated"
	p.Name = "mutated"
	in := s.Input("demo")
	in.StreamKey = "mutated"
	ss := s.Sessions()
	require.Len(t, ss, 2)
	ss[0].Tracks = append(ss[0].Tracks, "x")
	ss[0].EndedAt = time.Time{}
	require.Equal(t, "360p", s.Profile("default").Renditions[0].Name)
	require.Equal(t, "demokey", s.Input("demo").StreamKey)
	require.Empty(t, s.Sessions()[0].Tracks)
	require.False(t, s.Session("demo").Live())
}

// The same log applied twice, on two state machines, gives byte-identical
// state: nothing in Apply depends on anything but the log.
func TestReplayIsDeterministic(t *testing.T) {
	a, b := New(nil), New(nil)
	applyAll(t, a, seedLog())
	applyAll(t, b, seedLog())
	require.Equal(t, snapshotBytes(t, a), snapshotBytes(t, b))

	// Through the raft adapter and the wire format too.
	c := FSM{New(nil)}
	for i, cmd := range seedLog() {
		data, err := cmd.Encode()
		require.NoError(t, err)
		r := c.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(*Result)
		require.NoError(t, r.Err)
	}
	require.Equal(t, snapshotBytes(t, a), snapshotBytes(t, c.State))
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := FSM{New(nil)}
	applyAll(t, src.State, seedLog())

	snap, err := src.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	require.True(t, sink.closed)

	// Changes after the snapshot was taken must not leak into it.
	src.ApplyCommand(Command{Op: OpDeleteInput, ID: "demo"})

	changes := 0
	dst := FSM{New(func() { changes++ })}
	require.NoError(t, dst.Restore(nopCloser{bytes.NewReader(sink.Bytes())}))
	require.Equal(t, 1, changes)
	require.Equal(t, sink.Bytes(), snapshotBytes(t, dst.State))
	require.NotNil(t, dst.Input("demo"))
	require.Equal(t, "in2", dst.InputByKey("k2b").ID, "the key index is rebuilt on restore")
	require.Nil(t, dst.InputByKey("k2"))
	require.Equal(t, "live/k2b", dst.Session("in2").Path)
	require.True(t, dst.Session("in2").Live())
	require.Equal(t, t0.Add(11*time.Second), dst.Session("demo").EndedAt, "a reconnecting session stays reconnecting")
	in2 := dst.Input("in2")
	require.Equal(t, 10, in2.ReconnectWindowSeconds)
	require.True(t, in2.HotStandby)
	low := dst.Profile("low")
	require.Equal(t, LatencyLow, low.Latency)
	require.Equal(t, 500, low.PartMs)
	require.Equal(t, "s3cret", dst.Secret())

	require.Error(t, dst.Restore(nopCloser{bytes.NewReader([]byte("{not json"))}))
	require.NotNil(t, dst.Input("demo"), "a failed restore keeps the old state")
}

func TestApplyRejectsGarbage(t *testing.T) {
	f := FSM{New(nil)}
	for _, data := range [][]byte{nil, []byte("{"), []byte(`{"op":"init","bogus":1}`), []byte(`{"op":"init"} trailing`), []byte(`{}`)} {
		r := f.Apply(&raft.Log{Type: raft.LogCommand, Data: data}).(*Result)
		require.Error(t, r.Err, "%q", data)
		require.False(t, r.Changed)
	}
	// Non-command entries (configuration changes, barriers) are not ours.
	r := f.Apply(&raft.Log{Type: raft.LogBarrier}).(*Result)
	require.NoError(t, r.Err)
}

func TestOnChange(t *testing.T) {
	n := 0
	s := New(func() { n++ })
	s.ApplyCommand(initCmd())
	s.ApplyCommand(initCmd()) // no-op
	s.ApplyCommand(Command{Op: OpDeleteInput, ID: "nope"})
	require.Equal(t, 1, n)
}

func TestKeyHint(t *testing.T) {
	require.Equal(t, "abcd…", KeyHint("abcdefghijkl"))
	require.Equal(t, "***", KeyHint("abc"))
}

type memSink struct {
	bytes.Buffer
	closed bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { m.closed = true; return nil }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
