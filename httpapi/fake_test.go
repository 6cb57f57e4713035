package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// remoteOrigin is where the fake routes the inputs this node does not own.
const remoteOrigin = "http://other:8080"

// fakeBackend is a Backend over a real fsm.State: Apply goes straight to
// State.ApplyCommand, so every refusal the API maps is the real one.
type fakeBackend struct {
	state *fsm.State

	mu        sync.Mutex
	local     map[string]string // input id -> output dir, for inputs this node owns
	remote    map[string]string // input id -> folder of what its owner serves, for inputs another node owns
	liveErr   error             // returned by Live instead of a file, when set
	liveCalls []string          // "id file query" of every Live call
	routeErr  error
	readyErr  error
	applyErr  error            // returned by Apply instead of applying, when set
	failOps   map[fsm.Op]error // returned by Apply for commands of these ops
	applied   []fsm.Command
	status    map[string]*InputStatus
	statusErr error
	// whep answers PreviewWHEP; nil = no publisher anywhere.
	whep func(id string, offer []byte) ([]byte, error)
	vod  map[string]map[string][]byte
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend(t testing.TB) *fakeBackend {
	t.Helper()
	st := fsm.New(nil)
	res := st.ApplyCommand(fsm.Command{Op: fsm.OpInit, At: time.Now().UTC(), Init: &fsm.Init{
		Secret: "test-secret",
		DefaultProfile: &fsm.Profile{
			ID: "default", Name: "Default", SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: fsm.SegmentTS,
			Renditions: []fsm.Rendition{{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 3000, AudioBitrateKbps: 128}},
		},
	}})
	require.NoError(t, res.Err)
	return &fakeBackend{state: st, local: map[string]string{}, remote: map[string]string{}, status: map[string]*InputStatus{}}
}

func (f *fakeBackend) State() *fsm.State { return f.state }

func (f *fakeBackend) BaseURL() string { return "http://node.test:8080" }

// VOD serves recordings from f.vod (recording id -> file -> body).
func (f *fakeBackend) VOD(_ context.Context, id, file string) (packager.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.vod[id][file]
	if !ok {
		return packager.File{}, packager.ErrNotFound
	}
	ct, kind := packager.MediaType(file)
	switch path.Ext(file) {
	case ".m3u8":
		ct, kind = "application/vnd.apple.mpegurl", "playlist"
	case ".mpd":
		ct, kind = "application/dash+xml", "playlist"
	}
	return packager.File{Body: b, ContentType: ct, Kind: kind, Immutable: kind != "playlist"}, nil
}

func (f *fakeBackend) PlaybackKey() []byte { return []byte("test-playback-key") }

func (f *fakeBackend) PreviewWHEP(_ context.Context, id string, offer []byte) ([]byte, error) {
	if f.whep == nil {
		return nil, ErrNotFound
	}
	return f.whep(id, offer)
}

func (f *fakeBackend) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	f.mu.Lock()
	err := f.applyErr
	if e := f.failOps[cmd.Op]; e != nil {
		err = e
	}
	f.applied = append(f.applied, cmd)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Round-trip through the log encoding, as raft would.
	b, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	dec, err := fsm.DecodeCommand(b)
	if err != nil {
		return nil, err
	}
	return f.state.ApplyCommand(dec), nil
}

func (f *fakeBackend) Route(inputID string) (Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routeErr != nil {
		return Route{}, f.routeErr
	}
	if _, ok := f.local[inputID]; ok {
		return Route{InputID: inputID, Owner: "self", Origin: "http://self:8080", Local: true}, nil
	}
	return Route{InputID: inputID, Owner: "other", Origin: remoteOrigin}, nil
}

func (f *fakeBackend) Nodes() []NodeInfo {
	return []NodeInfo{{Name: "self", State: "alive", RaftRole: "leader", Local: true}, {Name: "other", State: "alive", RaftRole: "follower"}}
}

func (f *fakeBackend) Cluster() ClusterInfo {
	return ClusterInfo{Node: "self", Leader: "self", Members: f.Nodes(), Servers: []RaftServer{{ID: "self", Address: "127.0.0.1:7947", Suffrage: "Voter"}}}
}

func (f *fakeBackend) InputStatus(ctx context.Context, inputID string) (*InputStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	if st, ok := f.status[inputID]; ok {
		return st, nil
	}
	return &InputStatus{InputID: inputID, State: StateIdle}, nil
}

func (f *fakeBackend) Links(in *fsm.Input) Links {
	return Links{
		Ingest: IngestLinks{
			RTMP: "rtmp://node.test:1935/live/" + in.StreamKey,
			SRT:  "srt://node.test:8890?streamid=publish:live/" + in.StreamKey,
			RTSP: "rtsp://node.test:8554/live/" + in.StreamKey,
		},
		Playback: PlaybackLinks{HLS: "http://node.test:8080/live/" + in.ID + "/master.m3u8"},
	}
}

// Live answers like a node: an owned input from its folder in local (what
// the packager would have), any other from remote (what its owner would
// answer over the internal channel). Files are read through os.Root, so a
// path that leaves the folder is never served, and any regular file is, so
// the origin's own checks are what the traversal tests exercise.
func (f *fakeBackend) Live(ctx context.Context, inputID, file string, q url.Values) (packager.File, error) {
	f.mu.Lock()
	f.liveCalls = append(f.liveCalls, inputID+" "+file+" "+q.Encode())
	dir, owned := f.local[inputID]
	if !owned {
		dir = f.remote[inputID]
	}
	err := f.liveErr
	if err == nil {
		// As a node: no route, no answer (the error wraps ErrUnavailable).
		err = f.routeErr
	}
	f.mu.Unlock()
	if err != nil {
		return packager.File{}, err
	}
	if dir == "" {
		return packager.File{}, packager.ErrNotFound
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return packager.File{}, packager.ErrNotFound
	}
	defer root.Close()
	if st, err := root.Stat(file); err != nil || !st.Mode().IsRegular() {
		return packager.File{}, packager.ErrNotFound
	}
	b, err := root.ReadFile(file)
	if err != nil {
		return packager.File{}, packager.ErrNotFound
	}
	out := packager.File{Body: b, ContentType: "application/octet-stream", Kind: "other"}
	switch path.Ext(file) {
	case ".m3u8":
		out.ContentType, out.Kind = "application/vnd.apple.mpegurl", "playlist"
	case ".mpd":
		out.ContentType, out.Kind = "application/dash+xml", "playlist"
	case ".m4s":
		out.ContentType, out.Kind, out.Immutable = "video/iso.segment", "segment", true
	case ".mp4":
		out.ContentType, out.Kind, out.Immutable = "video/mp4", "init", true
	}
	return out, nil
}

func (f *fakeBackend) liveCallList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.liveCalls...)
}

func (f *fakeBackend) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeBackend) setApplyErr(err error) { f.mu.Lock(); f.applyErr = err; f.mu.Unlock() }
func (f *fakeBackend) failOp(op fsm.Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOps == nil {
		f.failOps = map[fsm.Op]error{}
	}
	f.failOps[op] = err
}
func (f *fakeBackend) setReadyErr(err error)  { f.mu.Lock(); f.readyErr = err; f.mu.Unlock() }
func (f *fakeBackend) setRouteErr(err error)  { f.mu.Lock(); f.routeErr = err; f.mu.Unlock() }
func (f *fakeBackend) own(id, dir string)     { f.mu.Lock(); f.local[id] = dir; f.mu.Unlock() }
func (f *fakeBackend) ownedBy(id, dir string) { f.mu.Lock(); f.remote[id] = dir; f.mu.Unlock() }
func (f *fakeBackend) setLiveErr(err error)   { f.mu.Lock(); f.liveErr = err; f.mu.Unlock() }

func (f *fakeBackend) commands() []fsm.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fsm.Command(nil), f.applied...)
}

// addInput creates an input straight in the state (not through the API).
func (f *fakeBackend) addInput(t testing.TB, id string) *fsm.Input {
	t.Helper()
	res := f.state.ApplyCommand(fsm.Command{Op: fsm.OpCreateInput, At: time.Now().UTC(),
		Input: &fsm.Input{ID: id, Name: "input " + id, StreamKey: NewStreamKey(), Enabled: true}})
	require.NoError(t, res.Err)
	return res.Input
}

// testEnv is an API over a fake backend.
type testEnv struct {
	t   *testing.T
	b   *fakeBackend
	api *API
	reg *prometheus.Registry
}

type envOption func(*Config)

func withTokens(tokens ...string) envOption { return func(c *Config) { c.Tokens = tokens } }

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	b := newFakeBackend(t)
	reg := prometheus.NewRegistry()
	cfg := Config{Backend: b, Registerer: reg, Logger: quietLogger()}
	for _, o := range opts {
		o(&cfg)
	}
	api, err := New(cfg)
	require.NoError(t, err)
	return &testEnv{t: t, b: b, api: api, reg: reg}
}

// do sends one request straight to the handler.
func (e *testEnv) do(method, target string, body any, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	case []byte:
		r = bytes.NewReader(v)
	default:
		b, err := json.Marshal(v)
		require.NoError(e.t, err)
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, target, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

// errBody is the JSON of every API error.
type errBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// requireAPIError checks the status, the JSON content type and the field.
func requireAPIError(t *testing.T, rec *httptest.ResponseRecorder, status int, field string) errBody {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var eb errBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&eb), "error body must be {\"error\",\"field\"}: %s", rec.Body.String())
	require.NotEmpty(t, eb.Error)
	require.Equal(t, field, eb.Field, "error: %s", eb.Error)
	return eb
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), "body: %s", rec.Body.String())
	return v
}

// counterValue reads a counter (or one series of a counter vector) from the registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var errBoom = errors.New("boom")

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Drain knows one node, "n1".
func (f *fakeBackend) Drain(_ context.Context, name string, on bool) error {
	if name != "n1" {
		return fmt.Errorf("%w: node %q is not an alive member", ErrNotFound, name)
	}
	return nil
}
