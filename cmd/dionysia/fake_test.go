package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/packager"
)

// fakeBackend puts the real API handler over a real fsm.State, without raft
// or media: the CLI is tested against the server's own validation and
// errors, so a change of the API shows up here.
type fakeBackend struct {
	state  *fsm.State
	mu     sync.Mutex
	status map[string]*httpapi.InputStatus
}

var _ httpapi.Backend = (*fakeBackend)(nil)

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
	return &fakeBackend{state: st, status: map[string]*httpapi.InputStatus{}}
}

func (f *fakeBackend) State() *fsm.State { return f.state }

func (f *fakeBackend) Apply(_ context.Context, cmd fsm.Command) (*fsm.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.ApplyCommand(cmd), nil
}

func (f *fakeBackend) Route(id string) (httpapi.Route, error) {
	return httpapi.Route{InputID: id, Owner: "n0", Origin: "http://127.0.0.1:1", Local: true}, nil
}

func (f *fakeBackend) Nodes() []httpapi.NodeInfo {
	return []httpapi.NodeInfo{
		{Name: "n0", State: "alive", RaftRole: "leader", HTTPAddr: "127.0.0.1:8080", RTMPAddr: "127.0.0.1:1935", Load: 2, Capacity: 200, Cost: 50, Local: true, Owned: []string{"a", "b"}, LiveOwned: []string{"a"}},
		{Name: "n1", State: "suspect", RaftRole: "follower", HTTPAddr: "127.0.0.1:8081", RTMPAddr: "127.0.0.1:1936", IngestLive: []string{"a"}},
	}
}

func (f *fakeBackend) Cluster() httpapi.ClusterInfo {
	return httpapi.ClusterInfo{Node: "n0", Leader: "n0", Members: f.Nodes(),
		Raft:    map[string]any{"state": "Leader", "term": 3},
		Servers: []httpapi.RaftServer{{ID: "n0", Address: "127.0.0.1:7947", Suffrage: "Voter"}, {ID: "n1", Address: "127.0.0.1:7948", Suffrage: "Voter"}}}
}

func (f *fakeBackend) InputStatus(_ context.Context, id string) (*httpapi.InputStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.status[id]; ok {
		return st, nil
	}
	return &httpapi.InputStatus{InputID: id, State: httpapi.StateIdle}, nil
}

func (f *fakeBackend) setStatus(st *httpapi.InputStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[st.InputID] = st
}

func (f *fakeBackend) Links(in *fsm.Input) httpapi.Links {
	return httpapi.Links{
		Ingest: httpapi.IngestLinks{
			RTMP: "rtmp://node.test:1935/live/" + in.StreamKey,
			SRT:  "srt://node.test:8890?streamid=publish:live/" + in.StreamKey,
			RTSP: "rtsp://node.test:8554/live/" + in.StreamKey,
			WHIP: "http://node.test:8889/live/" + in.StreamKey + "/whip",
		},
		Playback: httpapi.PlaybackLinks{HLS: "http://node.test:8080/live/" + in.ID + "/master.m3u8"},
	}
}

// Live: the CLI never fetches media.
func (f *fakeBackend) VOD(context.Context, string, string) (packager.File, error) {
	return packager.File{}, packager.ErrNotFound
}

func (f *fakeBackend) BaseURL() string { return "http://node.test:8080" }

func (f *fakeBackend) Live(context.Context, string, string, url.Values) (packager.File, error) {
	return packager.File{}, packager.ErrNotFound
}

func (f *fakeBackend) PlaybackKey() []byte { return []byte("test-playback-key") }

// PreviewWHEP: the CLI never previews.
func (f *fakeBackend) PreviewWHEP(context.Context, string, []byte) ([]byte, error) {
	return nil, httpapi.ErrNotFound
}

func (f *fakeBackend) Ready() error { return nil }

// recorded is one request the fake server saw.
type recorded struct {
	Method, Path, Auth string
	Body               string
	IdempotencyKey     string
}

// fakeServer is an httptest server running the real API over a fakeBackend,
// recording every request.
type fakeServer struct {
	*httptest.Server
	b    *fakeBackend
	mu   sync.Mutex
	reqs []recorded
	// dropPosts is how many POST answers the server loses: it applies the
	// request, then closes the connection instead of answering.
	dropPosts int
}

func newFakeServer(t *testing.T, tokens ...string) *fakeServer {
	t.Helper()
	b := newFakeBackend(t)
	api, err := httpapi.New(httpapi.Config{Backend: b, Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	fs := &fakeServer{b: b}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, recorded{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: string(body),
			IdempotencyKey: r.Header.Get("Idempotency-Key")})
		drop := r.Method == http.MethodPost && fs.dropPosts > 0
		if drop {
			fs.dropPosts--
		}
		fs.mu.Unlock()
		if drop {
			api.ServeHTTP(httptest.NewRecorder(), r)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.reqs...)
}

func (fs *fakeServer) last(t *testing.T) recorded {
	t.Helper()
	reqs := fs.requests()
	require.NotEmpty(t, reqs)
	return reqs[len(reqs)-1]
}

// result is what one CLI run printed.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the binary's entry point in process.
func runCLI(args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// against runs a command with --addr pointing at addr.
func against(addr string, args ...string) result {
	return runCLI(append(args, "--addr", addr)...)
}

func (r result) String() string {
	return "exit " + itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// fieldValue returns the value of "Key  value" in a fields view.
func fieldValue(t *testing.T, out, key string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, key+"  "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q line in:\n%s", key, out)
	return ""
}

func (f *fakeBackend) Drain(_ context.Context, name string, on bool) error {
	for _, n := range f.Nodes() {
		if n.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%w: node %q is not an alive member", httpapi.ErrNotFound, name)
}
