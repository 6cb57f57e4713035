package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

// inputJSON is an input as a client reads it.
type inputJSON struct {
	ID                string        `json:"id"`
	Name              string        `json:"name"`
	ProfileID         string        `json:"profile_id"`
	StreamKey         string        `json:"stream_key"`
	Enabled           bool          `json:"enabled"`
	PlaybackPolicy    string        `json:"playback_policy"`
	ReconnectWindow   int           `json:"reconnect_window_seconds"`
	HotStandby        bool          `json:"hot_standby"`
	CreatedAt         time.Time     `json:"created_at"`
	UpdatedAt         time.Time     `json:"updated_at"`
	Ingest            IngestLinks   `json:"ingest"`
	Playback          PlaybackLinks `json:"playback"`
	Live              bool          `json:"live"`
	State             string        `json:"state"`
	ReconnectDeadline *time.Time    `json:"reconnect_deadline"`
}

func (e *testEnv) createInput(body any) inputJSON {
	e.t.Helper()
	rec := e.do(http.MethodPost, "/v1/inputs", body)
	require.Equal(e.t, http.StatusCreated, rec.Code, rec.Body.String())
	return decodeBody[inputJSON](e.t, rec)
}

func (e *testEnv) createProfile(id string) {
	e.t.Helper()
	body := validProfile()
	body.ID = id
	rec := e.do(http.MethodPost, "/v1/profiles", body)
	require.Equal(e.t, http.StatusCreated, rec.Code, rec.Body.String())
}

func TestCreateInput(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/inputs", map[string]any{"name": "  Main stage "})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	in := decodeBody[inputJSON](t, rec)

	require.True(t, isID(in.ID), in.ID)
	require.Equal(t, "/v1/inputs/"+in.ID, rec.Header().Get("Location"))
	require.Equal(t, "Main stage", in.Name)
	require.Equal(t, "default", in.ProfileID, "no profile_id means the default profile")
	require.True(t, in.Enabled, "inputs are enabled unless told otherwise")
	require.Equal(t, fsm.PlaybackPublic, in.PlaybackPolicy)
	require.Equal(t, 30, in.ReconnectWindow, "publishers get 30 s to come back by default")
	require.False(t, in.HotStandby)
	require.False(t, in.Live)
	require.Equal(t, StateIdle, in.State)
	require.Nil(t, in.ReconnectDeadline)
	require.False(t, in.CreatedAt.IsZero())
	require.Equal(t, in.CreatedAt, in.UpdatedAt)

	require.GreaterOrEqual(t, len(in.StreamKey), 32)
	require.NotContains(t, in.StreamKey, in.ID)
	require.Equal(t, "rtmp://node.test:1935/live/"+in.StreamKey, in.Ingest.RTMP)
	require.Equal(t, "srt://node.test:8890?streamid=publish:live/"+in.StreamKey, in.Ingest.SRT)
	require.Equal(t, "rtsp://node.test:8554/live/"+in.StreamKey, in.Ingest.RTSP)
	require.Equal(t, "http://node.test:8080/live/"+in.ID+"/master.m3u8", in.Playback.HLS)

	// The state holds it, findable by its key, as the auth hook will look it up.
	stored := e.b.State().InputByKey(in.StreamKey)
	require.NotNil(t, stored)
	require.Equal(t, in.ID, stored.ID)

	// Exactly one command, stamped with the proposer's clock.
	cmds := e.b.commands()
	require.Len(t, cmds, 1)
	require.Equal(t, fsm.OpCreateInput, cmds[0].Op)
	require.WithinDuration(t, time.Now(), cmds[0].At, time.Minute)
	require.Equal(t, time.UTC, cmds[0].At.Location())
}

func TestCreateInputOptions(t *testing.T) {
	e := newEnv(t)
	e.createProfile("low")
	in := e.createInput(map[string]any{"name": "x", "profile_id": "low", "enabled": false, "playback_policy": "signed",
		"reconnect_window_seconds": 0, "hot_standby": true})
	require.Equal(t, "low", in.ProfileID)
	require.False(t, in.Enabled)
	require.Equal(t, fsm.PlaybackSigned, in.PlaybackPolicy)
	require.Zero(t, in.ReconnectWindow, "0 turns the window off")
	require.True(t, in.HotStandby)

	// Every input gets its own id and key.
	other := e.createInput(map[string]any{"name": "x"})
	require.NotEqual(t, in.ID, other.ID)
	require.NotEqual(t, in.StreamKey, other.StreamKey)
}

func TestCreateInputRefusals(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"unknown profile", `{"name":"x","profile_id":"nope"}`, 400, "profile_id"},
		{"missing name", `{"profile_id":"default"}`, 400, "name"},
		{"bad policy", `{"name":"x","playback_policy":"PUBLIC"}`, 400, "playback_policy"},
		{"reconnect window too long", `{"name":"x","reconnect_window_seconds":3601}`, 400, "reconnect_window_seconds"},
		{"negative reconnect window", `{"name":"x","reconnect_window_seconds":-1}`, 400, "reconnect_window_seconds"},
		{"reconnect window not a number", `{"name":"x","reconnect_window_seconds":"30"}`, 400, "reconnect_window_seconds"},
		{"hot standby not a bool", `{"name":"x","hot_standby":"yes"}`, 400, "hot_standby"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			requireAPIError(t, e.do(http.MethodPost, "/v1/inputs", tc.body), tc.status, tc.field)
			require.Empty(t, e.b.State().Inputs())
		})
	}
}

func TestListInputs(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/v1/inputs", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	// An empty list is [], not null: clients iterate it.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	require.JSONEq(t, `[]`, string(raw["inputs"]))

	a := e.createInput(map[string]any{"name": "a"})
	b := e.createInput(map[string]any{"name": "b"})
	rec = e.do(http.MethodGet, "/v1/inputs", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	list := decodeBody[struct {
		Inputs []inputJSON `json:"inputs"`
	}](t, rec)
	require.Len(t, list.Inputs, 2)
	byID := map[string]inputJSON{}
	for _, in := range list.Inputs {
		byID[in.ID] = in
		require.NotEmpty(t, in.Ingest.RTMP, "list entries carry their links")
		require.NotEmpty(t, in.Playback.HLS)
	}
	require.Equal(t, a, byID[a.ID])
	require.Equal(t, b, byID[b.ID])
	require.Less(t, list.Inputs[0].ID, list.Inputs[1].ID, "ordered by id")
}

func TestGetInput(t *testing.T) {
	e := newEnv(t)
	in := e.createInput(map[string]any{"name": "a"})

	rec := e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, in, decodeBody[inputJSON](t, rec))

	// A live session shows.
	res := e.b.State().ApplyCommand(fsm.Command{Op: fsm.OpStartSession, At: time.Now().UTC(),
		Session: &fsm.Session{InputID: in.ID, ID: "s1", IngestNode: "self", Path: "live/" + in.StreamKey}})
	require.NoError(t, res.Err)
	got := decodeBody[inputJSON](t, e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil))
	require.True(t, got.Live)
	require.Equal(t, StateLive, got.State)
	require.Nil(t, got.ReconnectDeadline)

	// The publisher went away: reconnecting until the end plus the window.
	ended := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res = e.b.State().ApplyCommand(fsm.Command{Op: fsm.OpEndSession, At: ended, ID: in.ID, Session: &fsm.Session{ID: "s1"}})
	require.NoError(t, res.Err)
	got = decodeBody[inputJSON](t, e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil))
	require.False(t, got.Live, "live means a publisher is there")
	require.Equal(t, StateReconnecting, got.State)
	require.Equal(t, ended.Add(30*time.Second), *got.ReconnectDeadline)

	eb := requireAPIError(t, e.do(http.MethodGet, "/v1/inputs/nosuchinput", nil), http.StatusNotFound, "id")
	require.Contains(t, eb.Error, `"nosuchinput"`)

	// Very long ids are cut in the message.
	long := strings.Repeat("x", 200)
	eb = requireAPIError(t, e.do(http.MethodGet, "/v1/inputs/"+long, nil), http.StatusNotFound, "id")
	require.Less(t, len(eb.Error), 150)
}

func TestPatchInputChangesOnlySentFields(t *testing.T) {
	e := newEnv(t)
	e.createProfile("low")
	orig := e.createInput(map[string]any{"name": "orig", "playback_policy": "public"})

	steps := []struct {
		body  string
		apply func(*inputJSON)
	}{
		{`{"name":" renamed "}`, func(in *inputJSON) { in.Name = "renamed" }},
		{`{"enabled":false}`, func(in *inputJSON) { in.Enabled = false }},
		{`{"profile_id":"low"}`, func(in *inputJSON) { in.ProfileID = "low" }},
		{`{"playback_policy":"signed"}`, func(in *inputJSON) { in.PlaybackPolicy = fsm.PlaybackSigned }},
		{`{"profile_id":""}`, func(in *inputJSON) { in.ProfileID = "default" }},
		{`{"enabled":true,"name":"both"}`, func(in *inputJSON) { in.Enabled, in.Name = true, "both" }},
		{`{"reconnect_window_seconds":0}`, func(in *inputJSON) { in.ReconnectWindow = 0 }},
		{`{"reconnect_window_seconds":3600,"hot_standby":true}`, func(in *inputJSON) { in.ReconnectWindow, in.HotStandby = 3600, true }},
		{`{"hot_standby":false}`, func(in *inputJSON) { in.HotStandby = false }},
	}
	want := orig
	for _, s := range steps {
		rec := e.do(http.MethodPatch, "/v1/inputs/"+orig.ID, s.body)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", s.body, rec.Body.String())
		got := decodeBody[inputJSON](t, rec)
		s.apply(&want)
		require.False(t, got.UpdatedAt.Before(want.UpdatedAt))
		want.UpdatedAt = got.UpdatedAt
		require.Equal(t, want, got, s.body)
		// The stored copy agrees with the answer.
		require.Equal(t, want, decodeBody[inputJSON](t, e.do(http.MethodGet, "/v1/inputs/"+orig.ID, nil)))
	}
	require.Equal(t, orig.StreamKey, want.StreamKey, "PATCH never touches the key")
	require.Equal(t, orig.CreatedAt, want.CreatedAt)
}

func TestPatchInputRefusals(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		body   string
		status int
		field  string
	}{
		{"nothing to change", "", `{}`, 400, ""},
		{"only nulls", "", `{"name":null,"enabled":null}`, 400, ""},
		{"unknown profile", "", `{"profile_id":"nope"}`, 400, "profile_id"},
		{"blank name", "", `{"name":" "}`, 400, "name"},
		{"bad policy", "", `{"playback_policy":"x"}`, 400, "playback_policy"},
		{"reconnect window too long", "", `{"reconnect_window_seconds":7200}`, 400, "reconnect_window_seconds"},
		{"unknown input", "nosuchinput", `{"name":"x"}`, 404, "id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			in := e.createInput(map[string]any{"name": "orig"})
			id := tc.id
			if id == "" {
				id = in.ID
			}
			requireAPIError(t, e.do(http.MethodPatch, "/v1/inputs/"+id, tc.body), tc.status, tc.field)
			require.Equal(t, in, decodeBody[inputJSON](t, e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil)), "a refused PATCH changes nothing")
		})
	}
}

func TestRotateKey(t *testing.T) {
	e := newEnv(t)
	in := e.createInput(map[string]any{"name": "a"})
	oldKey := in.StreamKey

	rec := e.do(http.MethodPost, "/v1/inputs/"+in.ID+"/rotate-key", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decodeBody[inputJSON](t, rec)
	require.Equal(t, in.ID, got.ID)
	require.NotEqual(t, oldKey, got.StreamKey)
	require.GreaterOrEqual(t, len(got.StreamKey), 32)
	require.Equal(t, "rtmp://node.test:1935/live/"+got.StreamKey, got.Ingest.RTMP, "links follow the new key")
	require.Equal(t, in.Playback, got.Playback, "playback does not depend on the key")

	require.Nil(t, e.b.State().InputByKey(oldKey), "the old key must stop working")
	require.Equal(t, in.ID, e.b.State().InputByKey(got.StreamKey).ID)

	// Rotating again gives yet another key.
	again := decodeBody[inputJSON](t, e.do(http.MethodPost, "/v1/inputs/"+in.ID+"/rotate-key", nil))
	require.NotEqual(t, got.StreamKey, again.StreamKey)
	require.Nil(t, e.b.State().InputByKey(got.StreamKey))

	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs/nosuchinput/rotate-key", nil), http.StatusNotFound, "id")
}

func TestDeleteInput(t *testing.T) {
	e := newEnv(t)
	in := e.createInput(map[string]any{"name": "a"})
	keep := e.createInput(map[string]any{"name": "b"})

	rec := e.do(http.MethodDelete, "/v1/inputs/"+in.ID, nil)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Empty(t, rec.Body.Bytes())

	requireAPIError(t, e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil), http.StatusNotFound, "id")
	requireAPIError(t, e.do(http.MethodDelete, "/v1/inputs/"+in.ID, nil), http.StatusNotFound, "id")
	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs/"+in.ID+"/rotate-key", nil), http.StatusNotFound, "id")
	require.Nil(t, e.b.State().InputByKey(in.StreamKey), "a deleted input's key stops working")
	require.NotNil(t, e.b.State().Input(keep.ID), "others stay")
}

func TestInputStatus(t *testing.T) {
	e := newEnv(t)
	in := e.createInput(map[string]any{"name": "a"})
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e.b.status[in.ID] = &InputStatus{InputID: in.ID, Live: true, State: StateLive, IngestNode: "other", OwnerNode: "self", StartedAt: &started,
		Renditions: []RenditionStatus{{Name: "720p", Width: 1280, Height: 720, FPS: 30, BitrateKbps: 2900}}}

	rec := e.do(http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, fmt.Sprintf(`{"input_id":%q,"live":true,"state":"live","ingest_node":"other","owner_node":"self","started_at":"2026-01-02T03:04:05Z",
		"renditions":[{"name":"720p","width":1280,"height":720,"fps":30,"bitrate_kbps":2900,"segments":0,"media_sequence":0}]}`, in.ID), rec.Body.String())

	deadline := started.Add(time.Minute)
	e.b.status[in.ID] = &InputStatus{InputID: in.ID, State: StateReconnecting, ReconnectDeadline: &deadline, IngestNode: "other", OwnerNode: "self", StartedAt: &started}
	rec = e.do(http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
	require.JSONEq(t, fmt.Sprintf(`{"input_id":%q,"live":false,"state":"reconnecting","reconnect_deadline":"2026-01-02T03:05:05Z",
		"ingest_node":"other","owner_node":"self","started_at":"2026-01-02T03:04:05Z"}`, in.ID), rec.Body.String())

	requireAPIError(t, e.do(http.MethodGet, "/v1/inputs/nosuchinput/status", nil), http.StatusNotFound, "id")

	e.b.statusErr = fmt.Errorf("ask owner: %w", ErrUnavailable)
	rec = e.do(http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
	requireAPIError(t, rec, http.StatusServiceUnavailable, "")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
}
