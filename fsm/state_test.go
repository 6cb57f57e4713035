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
		ID: id, Name: id, SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: SegmentTS,
		Renditions: []Rendition{{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 700, AudioBitrateKbps: 96}},
	}
}

func initCmd() Command {
	return Command{Op: OpInit, At: t0, Init: &Init{
		Secret:         "s3cret",
		DefaultProfile: testProfile("default"),
		DemoInput:      &Input{ID: "demo", Name: "Demo", StreamKey: "demokey", Enabled: true},
	}}
}

// seedLog is a log that touches every command type, used by the replay and
// snapshot tests.
func seedLog() []Command {
	name := "renamed"
	off := false
	return []Command{
		initCmd(),
		{Op: OpCreateProfile, At: t0.Add(1 * time.Second), Profile: testProfile("low")},
		{Op: OpCreateInput, At: t0.Add(2 * time.Second), Input: &Input{ID: "in1", Name: "one", StreamKey: "k1", Enabled: true}},
		{Op: OpCreateInput, At: t0.Add(3 * time.Second), Input: &Input{ID: "in2", Name: "two", StreamKey: "k2", ProfileID: "low", Enabled: true}},
		{Op: OpUpdateInput, At: t0.Add(4 * time.Second), ID: "in1", Patch: &InputPatch{Name: &name, Enabled: &off}},
		{Op: OpRotateKey, At: t0.Add(5 * time.Second), ID: "in2", StreamKey: "k2b"},
		{Op: OpStartSession, At: t0.Add(6 * time.Second), Session: &Session{InputID: "in2", ID: "s1", IngestNode: "a", Path: "live/k2b"}},
		{Op: OpStartSession, At: t0.Add(7 * time.Second), Session: &Session{InputID: "demo", ID: "s2", IngestNode: "b", Path: "live/demokey"}},
		{Op: OpClearNodeSessions, At: t0.Add(8 * time.Second), Node: "b"},
		{Op: OpDeleteInput, At: t0.Add(9 * time.Second), ID: "in1"},
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
	on := true
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

func TestSessions(t *testing.T) {
	s := New(nil)
	applyAll(t, s, []Command{initCmd()})

	start := func(id, node string) *Result {
		return s.ApplyCommand(Command{Op: OpStartSession, At: t0, Session: &Session{InputID: "demo", ID: id, IngestNode: node, Path: "live/demokey"}})
	}
	r := start("s1", "a")
	require.NoError(t, r.Err)
	require.True(t, r.Changed)
	require.Equal(t, t0, s.Session("demo").StartedAt)

	// Recording the same publish twice is a no-op.
	require.False(t, start("s1", "a").Changed)

	// The publisher reconnected to node b: the new session replaces the old one,
	// and the late end of the old one must not end the new one.
	require.True(t, start("s2", "b").Changed)
	r = s.ApplyCommand(Command{Op: OpEndSession, ID: "demo", Node: "a", Session: &Session{ID: "s1"}})
	require.NoError(t, r.Err)
	require.False(t, r.Changed)
	require.Equal(t, "s2", s.Session("demo").ID)

	r = s.ApplyCommand(Command{Op: OpEndSession, ID: "demo", Node: "b", Session: &Session{ID: "s2"}})
	require.True(t, r.Changed)
	require.Nil(t, s.Session("demo"))

	require.Equal(t, CodeNotFound, ErrorCode(s.ApplyCommand(Command{Op: OpStartSession, Session: &Session{InputID: "nope", ID: "x", IngestNode: "a"}}).Err))
	require.Equal(t, CodeInvalid, ErrorCode(s.ApplyCommand(Command{Op: OpStartSession, Session: &Session{InputID: "demo"}}).Err))
	require.Equal(t, CodeInvalid, ErrorCode(s.ApplyCommand(Command{Op: OpClearNodeSessions}).Err))

	require.True(t, start("s3", "c").Changed)
	require.False(t, s.ApplyCommand(Command{Op: OpClearNodeSessions, Node: "other"}).Changed)
	require.True(t, s.ApplyCommand(Command{Op: OpClearNodeSessions, Node: "c"}).Changed)
	require.Empty(t, s.Sessions())
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
	require.Len(t, ss, 1)
	ss[0].Tracks = append(ss[0].Tracks, "x")
	require.Equal(t, "360p", s.Profile("default").Renditions[0].Name)
	require.Equal(t, "demokey", s.Input("demo").StreamKey)
	require.Empty(t, s.Sessions()[0].Tracks)
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
