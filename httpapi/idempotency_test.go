package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func (e *testEnv) inputsNamed(name string) int {
	n := 0
	for _, in := range e.b.state.Inputs() {
		if in.Name == name {
			n++
		}
	}
	return n
}

func TestIdempotentCreateInputRetried(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"name": "retried"}
	first := e.do(http.MethodPost, "/v1/inputs", body, IdempotencyHeader, "key-1")
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	in := decodeBody[inputJSON](t, first)

	for _, key := range []string{"key-1", `"key-1"`} { // bare token or structured-field string
		again := e.do(http.MethodPost, "/v1/inputs", body, IdempotencyHeader, key)
		require.Equal(t, http.StatusCreated, again.Code)
		require.Equal(t, first.Body.String(), again.Body.String(), "the same body, byte for byte")
		require.Equal(t, "/v1/inputs/"+in.ID, again.Header().Get("Location"))
		require.Equal(t, "application/json", again.Header().Get("Content-Type"))
		require.Equal(t, "true", again.Header().Get(replayedHeader))
	}
	require.Empty(t, first.Header().Get(replayedHeader))
	require.Equal(t, 1, e.inputsNamed("retried"), "one input, however often the POST is sent")

	// The write itself went out tagged with the key, so that a resend of it
	// inside the cluster applies once too.
	var tagged int
	for _, c := range e.b.commands() {
		if c.Op == fsm.OpCreateInput {
			require.NotNil(t, c.Idempotency)
			require.Equal(t, "api/key-1", c.Idempotency.Key)
			tagged++
		}
	}
	require.Equal(t, 1, tagged)

	// Another key is another request; no key is no protection.
	rec := e.do(http.MethodPost, "/v1/inputs", body, IdempotencyHeader, "key-2")
	require.Equal(t, http.StatusCreated, rec.Code)
	require.NotEqual(t, in.ID, decodeBody[inputJSON](t, rec).ID)
	e.createInput(body)
	e.createInput(body)
	require.Equal(t, 4, e.inputsNamed("retried"))
}

func TestIdempotencyRefusals(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, IdempotencyHeader, "k")
	require.Equal(t, http.StatusCreated, rec.Code)
	// A request in flight under "busy": begun by another attempt.
	res := e.b.state.ApplyCommand(fsm.Command{Op: fsm.OpBeginRequest, At: time.Now().UTC(), Idempotency: &fsm.Idempotency{
		Key: "api/busy", Fingerprint: fingerprint(http.MethodPost, "/v1/inputs", []byte(`{"name":"a"}`)), Attempt: "other",
	}})
	require.NoError(t, res.Err)

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		key    string
		status int
	}{
		{"another body", http.MethodPost, "/v1/inputs", map[string]any{"name": "b"}, "k", http.StatusUnprocessableEntity},
		{"another path", http.MethodPost, "/v1/profiles", map[string]any{"name": "a"}, "k", http.StatusUnprocessableEntity},
		{"in flight", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, "busy", http.StatusConflict},
		{"empty", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, "", http.StatusBadRequest},
		{"empty quoted", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, `""`, http.StatusBadRequest},
		{"too long", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, strings.Repeat("k", 256), http.StatusBadRequest},
		{"not ASCII", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, "clé", http.StatusBadRequest},
		{"bad escape", http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, `"a\nb"`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.b.state.Inputs())
			rec := e.do(tc.method, tc.path, tc.body, IdempotencyHeader, tc.key)
			requireAPIError(t, rec, tc.status, IdempotencyHeader)
			require.Len(t, e.b.state.Inputs(), before, "nothing created")
		})
	}
}

func TestIdempotencyTwoHeadersRefused(t *testing.T) {
	e := newEnv(t)
	req := httptest.NewRequest(http.MethodPost, "/v1/inputs", strings.NewReader(`{"name":"a"}`))
	req.Header.Add(IdempotencyHeader, "a")
	req.Header.Add(IdempotencyHeader, "b")
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	requireAPIError(t, rec, http.StatusBadRequest, IdempotencyHeader)
	require.Zero(t, e.inputsNamed("a"))
}

// A 5xx answer is not kept: the retry runs again instead of getting the
// failure back, and a validation error is kept like any other answer.
func TestIdempotencyKeepsNoServerErrors(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"name": "flaky"}
	e.b.failOp(fsm.OpCreateInput, fmt.Errorf("%w: no leader", ErrUnavailable))
	rec := e.do(http.MethodPost, "/v1/inputs", body, IdempotencyHeader, "k")
	requireAPIError(t, rec, http.StatusServiceUnavailable, "")
	e.b.failOp(fsm.OpCreateInput, nil)
	rec = e.do(http.MethodPost, "/v1/inputs", body, IdempotencyHeader, "k")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Empty(t, rec.Header().Get(replayedHeader))
	require.Equal(t, 1, e.inputsNamed("flaky"))

	bad := map[string]any{"name": "x", "profile_id": "missing"}
	first := e.do(http.MethodPost, "/v1/inputs", bad, IdempotencyHeader, "bad")
	requireAPIError(t, first, http.StatusBadRequest, "profile_id")
	e.createProfile("missing")
	again := e.do(http.MethodPost, "/v1/inputs", bad, IdempotencyHeader, "bad")
	require.Equal(t, first.Code, again.Code, "the first answer stands for the key's lifetime")
	require.Equal(t, first.Body.String(), again.Body.String())
}

// Every POST of the API takes the header, not only creations.
func TestIdempotentRotateKey(t *testing.T) {
	e := newEnv(t)
	in := e.b.addInput(t, "in1")
	first := e.do(http.MethodPost, "/v1/inputs/in1/rotate-key", nil, IdempotencyHeader, "rot")
	require.Equal(t, http.StatusOK, first.Code, first.Body.String())
	again := e.do(http.MethodPost, "/v1/inputs/in1/rotate-key", nil, IdempotencyHeader, "rot")
	require.Equal(t, first.Body.String(), again.Body.String())
	key := decodeBody[inputJSON](t, first).StreamKey
	require.NotEqual(t, in.StreamKey, key)
	require.Equal(t, key, e.b.state.Input("in1").StreamKey, "rotated once: the key the retry shows is the current one")
}

func TestIdempotencyUnavailableBegin(t *testing.T) {
	e := newEnv(t)
	e.b.failOp(fsm.OpBeginRequest, fmt.Errorf("%w: no leader", ErrUnavailable))
	rec := e.do(http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, IdempotencyHeader, "k")
	requireAPIError(t, rec, http.StatusServiceUnavailable, "")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	e.b.failOp(fsm.OpBeginRequest, fmt.Errorf("%w: lost", ErrOutcomeUnknown))
	rec = e.do(http.MethodPost, "/v1/inputs", map[string]any{"name": "a"}, IdempotencyHeader, "k")
	requireAPIError(t, rec, http.StatusGatewayTimeout, "")
	require.Zero(t, e.inputsNamed("a"))
}
