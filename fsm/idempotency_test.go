package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func begin(at time.Time, key, fp, attempt string) Command {
	return Command{Op: OpBeginRequest, At: at, Idempotency: &Idempotency{Key: key, Fingerprint: fp, Attempt: attempt}}
}

func finish(at time.Time, key, attempt string, resp *StoredResponse) Command {
	return Command{Op: OpFinishRequest, At: at, Idempotency: &Idempotency{Key: key, Attempt: attempt}, Response: resp}
}

func createInputUnder(at time.Time, key, id, streamKey string) Command {
	return Command{Op: OpCreateInput, At: at, Idempotency: &Idempotency{Key: key},
		Input: &Input{ID: id, Name: id, StreamKey: streamKey, Enabled: true}}
}

var created = &StoredResponse{Status: 201, ContentType: "application/json", Location: "/v1/inputs/i1", Body: []byte(`{"id":"i1"}`)}

// outcome is what a step of an idempotency scenario must answer.
type outcome struct {
	code     Code            // refused with this code; "" = accepted
	response *StoredResponse // a begin answered from the store
	input    string          // the id of the input a write returns
}

func TestIdempotencyApply(t *testing.T) {
	type step struct {
		cmd  Command
		want outcome
	}
	for _, tc := range []struct {
		name   string
		steps  []step
		inputs int // inputs in the state at the end, the demo input included
		keys   int // idempotency keys left at the end
	}{
		{
			name: "a retry of a finished request gets its answer; the write applied once",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{createInputUnder(t0, "k", "i1", "sk1"), outcome{input: "i1"}},
				{finish(t0, "k", "a1", created), outcome{}},
				{begin(t0.Add(time.Minute), "k", "fp", "a2"), outcome{response: created}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "the same key with another request is refused",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{finish(t0, "k", "a1", created), outcome{}},
				{begin(t0.Add(time.Second), "k", "other", "a2"), outcome{code: CodeKeyReused}},
			},
			inputs: 1, keys: 1,
		},
		{
			name: "a request in flight is a conflict until its lease runs out, then it is taken over",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{begin(t0.Add(IdempotencyLease-time.Second), "k", "fp", "a2"), outcome{code: CodeConflict}},
				{begin(t0.Add(time.Second), "k", "fp", "a1"), outcome{}}, // its own begin sent again
				{begin(t0.Add(IdempotencyLease), "k", "fp", "a3"), outcome{}},
				// The first attempt cannot release what the third holds.
				{finish(t0.Add(IdempotencyLease), "k", "a1", nil), outcome{}},
				{begin(t0.Add(IdempotencyLease+time.Second), "k", "fp", "a4"), outcome{code: CodeConflict}},
			},
			inputs: 1, keys: 1,
		},
		{
			name: "a taken-over request's write applies once: the second copy gets the first input",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{createInputUnder(t0, "k", "i1", "sk1"), outcome{input: "i1"}},
				{begin(t0.Add(IdempotencyLease), "k", "fp", "a2"), outcome{}},
				{createInputUnder(t0.Add(IdempotencyLease), "k", "i2", "sk2"), outcome{input: "i1"}},
				{finish(t0.Add(IdempotencyLease), "k", "a2", created), outcome{}},
				// The late answer of the first attempt does not replace it.
				{finish(t0.Add(IdempotencyLease), "k", "a1", &StoredResponse{Status: 500}), outcome{}},
				{begin(t0.Add(time.Hour), "k", "fp", "a3"), outcome{response: created}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "a released request without a write is forgotten",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{finish(t0, "k", "a1", nil), outcome{}},
				{begin(t0.Add(time.Second), "k", "other", "a2"), outcome{}},
			},
			inputs: 1, keys: 1,
		},
		{
			name: "a released request with a write is taken over at once",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{createInputUnder(t0, "k", "i1", "sk1"), outcome{input: "i1"}},
				{finish(t0, "k", "a1", nil), outcome{}},
				{begin(t0.Add(time.Second), "k", "other", "a2"), outcome{code: CodeKeyReused}},
				{begin(t0.Add(time.Second), "k", "fp", "a3"), outcome{}},
				{createInputUnder(t0.Add(time.Second), "k", "i2", "sk2"), outcome{input: "i1"}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "a forwarded write tagged without a request applies once",
			steps: []step{
				{createInputUnder(t0, "fwd", "i1", "sk1"), outcome{input: "i1"}},
				{createInputUnder(t0.Add(time.Second), "fwd", "i1", "sk1"), outcome{input: "i1"}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "a refused write is refused again, not retried",
			steps: []step{
				{createInputUnder(t0, "fwd", "demo", "sk1"), outcome{code: CodeConflict}},
				{createInputUnder(t0, "other", "i1", "sk1"), outcome{input: "i1"}},
				{createInputUnder(t0.Add(time.Second), "fwd", "demo", "sk1"), outcome{code: CodeConflict}},
			},
			inputs: 2, keys: 2,
		},
		{
			name: "a key used for one kind of write refuses another",
			steps: []step{
				{createInputUnder(t0, "k", "i1", "sk1"), outcome{input: "i1"}},
				{Command{Op: OpRotateKey, At: t0, ID: "i1", StreamKey: "sk9", Idempotency: &Idempotency{Key: "k"}}, outcome{code: CodeInvalid}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "answers expire 24 h after their request began, by the times of later commands",
			steps: []step{
				{begin(t0, "k", "fp", "a1"), outcome{}},
				{finish(t0.Add(time.Second), "k", "a1", created), outcome{}},
				{begin(t0.Add(IdempotencyTTL-time.Second), "k", "fp", "a2"), outcome{response: created}},
				{begin(t0.Add(IdempotencyTTL), "k", "other", "a3"), outcome{}},
			},
			inputs: 1, keys: 1,
		},
		{
			name: "any later command expires old keys",
			steps: []step{
				{begin(t0, "k1", "fp", "a1"), outcome{}},
				{createInputUnder(t0.Add(time.Hour), "fwd", "i1", "sk1"), outcome{input: "i1"}},
				{begin(t0.Add(2*time.Hour), "k2", "fp", "a2"), outcome{}},
				// 24 h after k1 began, 10 min of a forwarded write long gone.
				{Command{Op: OpUpdateInput, At: t0.Add(IdempotencyTTL), ID: "i1"}, outcome{input: "i1"}},
			},
			inputs: 2, keys: 1,
		},
		{
			name: "malformed requests are refused",
			steps: []step{
				{begin(t0, "", "fp", "a1"), outcome{code: CodeInvalid}},
				{begin(t0, "k", "", "a1"), outcome{code: CodeInvalid}},
				{begin(time.Time{}, "k", "fp", "a1"), outcome{code: CodeInvalid}},
				{finish(t0, "k", "", created), outcome{code: CodeInvalid}},
				{createInputUnder(t0, "", "i1", "sk1"), outcome{code: CodeInvalid}},
			},
			inputs: 1, keys: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil)
			applyAll(t, s, []Command{initCmd()})
			for i, st := range tc.steps {
				r := s.ApplyCommand(st.cmd)
				require.Equal(t, st.want.code, ErrorCode(r.Err), "step %d (%s): %v", i, st.cmd.Op, r.Err)
				if st.want.code != "" {
					continue
				}
				require.Equal(t, st.want.response, r.Response, "step %d", i)
				if st.want.input != "" {
					require.NotNil(t, r.Input, "step %d", i)
					require.Equal(t, st.want.input, r.Input.ID, "step %d", i)
				}
			}
			require.Len(t, s.Inputs(), tc.inputs)
			require.Equal(t, tc.keys, s.IdempotencyKeys())
		})
	}
}

func fieldOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Field
	}
	return ""
}

func TestIdempotencyErrorsNameTheHeader(t *testing.T) {
	s := New(nil)
	applyAll(t, s, []Command{initCmd(), begin(t0, "k", "fp", "a1")})
	for _, c := range []Command{begin(t0, "k", "fp", "a2"), begin(t0, "k", "other", "a2")} {
		r := s.ApplyCommand(c)
		require.Error(t, r.Err)
		require.Equal(t, "Idempotency-Key", fieldOf(r.Err))
	}
}

func TestIdempotencyBookkeepingDoesNotNotify(t *testing.T) {
	changes := 0
	s := New(func() { changes++ })
	applyAll(t, s, []Command{initCmd()})
	changes = 0
	applyAll(t, s, []Command{begin(t0, "k", "fp", "a1"), finish(t0, "k", "a1", created)})
	require.Zero(t, changes)
	s.ApplyCommand(createInputUnder(t0, "w", "i1", "sk1"))
	require.Equal(t, 1, changes, "a write under a key is a change")
	s.ApplyCommand(createInputUnder(t0, "w", "i1", "sk1"))
	require.Equal(t, 1, changes, "its second copy is not")
}

// idemLog leaves keys of every kind in the store: answered, in flight,
// released with a write, and a forwarded write.
func idemLog() []Command {
	return []Command{
		initCmd(),
		begin(t0, "answered", "fp1", "a1"),
		createInputUnder(t0, "answered", "i1", "sk1"),
		finish(t0, "answered", "a1", created),
		begin(t0.Add(time.Second), "inflight", "fp2", "a2"),
		begin(t0.Add(2*time.Second), "released", "fp3", "a3"),
		createInputUnder(t0.Add(2*time.Second), "released", "i3", "sk3"),
		finish(t0.Add(2*time.Second), "released", "a3", nil),
		createInputUnder(t0.Add(3*time.Second), "fwd", "i4", "sk4"),
	}
}

func TestIdempotencySnapshotRoundTrip(t *testing.T) {
	src := FSM{New(nil)}
	for i, c := range idemLog() {
		data, err := c.Encode()
		require.NoError(t, err)
		r := src.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(*Result)
		require.NoError(t, r.Err, "apply %s", c.Op)
	}
	require.Equal(t, 4, src.IdempotencyKeys())
	snap, err := src.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))

	dst := FSM{New(nil)}
	require.NoError(t, dst.Restore(nopCloser{bytes.NewReader(sink.Bytes())}))
	require.Equal(t, sink.Bytes(), snapshotBytes(t, dst.State))

	// Both answer every later command alike, expiries included.
	later := []Command{
		begin(t0.Add(time.Minute), "answered", "fp1", "b1"),
		begin(t0.Add(time.Minute), "inflight", "fp2", "b2"),
		begin(t0.Add(time.Minute), "released", "fp3", "b3"),
		createInputUnder(t0.Add(time.Minute), "released", "i5", "sk5"),
		createInputUnder(t0.Add(time.Minute), "fwd", "i6", "sk6"),
		{Op: OpUpdateInput, At: t0.Add(IdempotencyTTL + time.Second), ID: "i1"},
		begin(t0.Add(IdempotencyTTL+time.Second), "answered", "new", "b4"),
	}
	for i, c := range later {
		a, b := src.ApplyCommand(c), dst.ApplyCommand(c)
		require.Equal(t, a, b, "later command %d (%s)", i, c.Op)
		require.Equal(t, snapshotBytes(t, src.State), snapshotBytes(t, dst.State), "after later command %d", i)
	}
	require.Equal(t, 2, dst.IdempotencyKeys(), "the keys begun in the first second expired; the one begun at 2 s and the new one are left")
}

func TestRestoreSnapshotWithoutIdempotency(t *testing.T) {
	s := New(nil)
	require.NoError(t, s.Restore(bytes.NewReader([]byte(`{"secret":"s","profiles":{},"inputs":{},"sessions":{}}`))))
	r := s.ApplyCommand(begin(t0, "k", "fp", "a"))
	require.NoError(t, r.Err)
	require.Equal(t, 1, s.IdempotencyKeys())
}

func TestResultRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *Result
	}{
		{"refused", &Result{Err: &Error{Code: CodeNotFound, Field: "profile_id", Message: "no such profile"}, Profile: &Profile{ID: "p", Name: "n"}, Changed: true}},
		{"stored answer", &Result{Response: created}},
		{"input", &Result{Input: &Input{ID: "i", StreamKey: "k", CreatedAt: t0}, Changed: true}},
		{"session", &Result{Session: &Session{InputID: "i", ID: "s", StartedAt: t0}}},
		{"recording", &Result{Recording: &Recording{ID: "r", InputID: "i", StreamID: "s", Status: RecordingReady, Nodes: []string{"a"}, ExpiresAt: t0}, Changed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeResult(tc.in)
			require.NoError(t, err)
			out, err := DecodeResult(b)
			require.NoError(t, err)
			require.Equal(t, tc.in, out)
		})
	}
	b, err := EncodeResult(&Result{Err: errorString("plain")})
	require.NoError(t, err)
	out, err := DecodeResult(b)
	require.NoError(t, err)
	require.EqualError(t, out.Err, "plain")
	require.Empty(t, ErrorCode(out.Err))
	_, err = DecodeResult([]byte("{"))
	require.Error(t, err)
}

type errorString string

func (e errorString) Error() string { return string(e) }
