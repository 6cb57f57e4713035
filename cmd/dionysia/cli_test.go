package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
)

func TestParseRendition(t *testing.T) {
	tests := []struct {
		in      string
		want    fsm.Rendition
		wantErr string
	}{
		{in: "name=720p,width=1280,height=720,video_kbps=2800,audio_kbps=128",
			want: fsm.Rendition{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 2800, AudioBitrateKbps: 128}},
		{in: "name=360p, width=640, height=360, video_kbps=600, audio_kbps=64, fps=30",
			want: fsm.Rendition{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 600, AudioBitrateKbps: 64, FPS: 30}},
		{in: "name=src,video_kbps=4000,passthrough",
			want: fsm.Rendition{Name: "src", VideoBitrateKbps: 4000, Passthrough: true}},
		{in: "name=src,video_bitrate_kbps=4000,audio_bitrate_kbps=96,passthrough=false",
			want: fsm.Rendition{Name: "src", VideoBitrateKbps: 4000, AudioBitrateKbps: 96}},
		{in: "width=1280,height=720", wantErr: "name=... is required"},
		{in: "name=a,width=wide", wantErr: `width="wide": want a whole number`},
		{in: "name=a,width", wantErr: "want a whole number"},
		{in: "name=a,bitrate=5", wantErr: `unknown key "bitrate"`},
		{in: "name=a,width=2,width=4", wantErr: "width given twice"},
		{in: "name=a,passthrough=maybe", wantErr: "want true or false"},
		{in: "name=", wantErr: "name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRendition(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080"},
		{in: "127.0.0.1:8081", want: "http://127.0.0.1:8081"},
		{in: ":8082", want: "http://127.0.0.1:8082"},
		{in: "https://api.example.test", want: "https://api.example.test"},
		{in: "", wantErr: "--addr is empty"},
		{in: "ftp://127.0.0.1:21", wantErr: "scheme must be http or https"},
		{in: "http://", wantErr: "no host"},
	}
	for _, tt := range tests {
		got, err := normalizeAddr(tt.in)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, "addr %q", tt.in)
			continue
		}
		require.NoError(t, err, "addr %q", tt.in)
		require.Equal(t, tt.want, got)
	}
}

// Usage errors exit 2 and send nothing.
func TestUsageErrors(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{"name":"x","colour":"blue"}`), 0o644))
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown command", []string{"stream"}, `unknown command "stream"`},
		{"group without verb", []string{"inputs"}, "Manage inputs"},
		{"unknown verb", []string{"inputs", "explode"}, `unknown command "explode"`},
		{"missing id", []string{"inputs", "get"}, "missing <id>"},
		{"extra argument", []string{"inputs", "get", "a", "b"}, `unexpected argument "b"`},
		{"unknown flag", []string{"inputs", "list", "--colour"}, "flag provided but not defined: -colour"},
		{"create without name", []string{"inputs", "create"}, "--name is required"},
		{"update without change", []string{"inputs", "update", "abc"}, "nothing to change"},
		{"enable and disable", []string{"inputs", "update", "abc", "--enable", "--disable"}, "cannot be used together"},
		{"bad rendition", []string{"profiles", "create", "--name", "p", "--rendition", "width=5"}, "name=... is required"},
		{"profile without renditions", []string{"profiles", "create", "--name", "p"}, "at least one --rendition"},
		{"profile without name", []string{"profiles", "create", "--rendition", "name=a,width=2"}, "--name is required"},
		{"missing file", []string{"profiles", "create", "--file", filepath.Join(dir, "nope.json")}, "no such file"},
		{"unknown field in file", []string{"profiles", "create", "--file", badFile}, `unknown field "colour"`},
		{"profile update without change", []string{"profiles", "update", "default"}, "nothing to change"},
		{"bad addr", []string{"nodes", "--addr", "ftp://127.0.0.1:21"}, "scheme must be http or https"},
		{"status without input", []string{"status"}, "missing <input>"},
		{"nodes with argument", []string{"nodes", "n1"}, `unexpected argument "n1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.requests())
			args := tt.args
			if tt.name != "bad addr" {
				args = append(args, "--addr", srv.URL)
			}
			r := runCLI(args...)
			require.Equal(t, 2, r.code, "%s", r)
			require.Contains(t, r.stderr, tt.stderr)
			require.Empty(t, r.stdout)
			require.Len(t, srv.requests(), before, "a usage error must not reach the server")
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"inputs", "help"}, {"profiles", "--help"}, {"inputs", "create", "-h"}, {"nodes", "-h"}} {
		r := runCLI(args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r)
	}
	r := runCLI("inputs", "create", "-h")
	require.Contains(t, r.stderr, "-playback-policy")
	require.Contains(t, r.stderr, "Usage: dionysia inputs create")
	r = runCLI("help")
	for _, cmd := range []string{"inputs", "profiles", "nodes", "cluster", "status"} {
		require.Contains(t, r.stdout, "dionysia "+cmd)
	}
}

func TestInputsAgainstFake(t *testing.T) {
	srv := newFakeServer(t)

	r := against(srv.URL, "inputs", "create", "--name", "Main stage", "--disabled", "--playback-policy", "signed")
	require.Equal(t, 0, r.code, "%s", r)
	id := fieldValue(t, r.stdout, "ID")
	key := fieldValue(t, r.stdout, "Stream key")
	require.Equal(t, "Main stage", fieldValue(t, r.stdout, "Name"))
	require.Equal(t, "no", fieldValue(t, r.stdout, "Enabled"))
	require.Equal(t, "signed", fieldValue(t, r.stdout, "Playback policy"))
	require.Equal(t, "rtmp://node.test:1935/live/"+key, fieldValue(t, r.stdout, "Ingest RTMP"))
	require.Equal(t, "http://node.test:8080/live/"+id+"/master.m3u8", fieldValue(t, r.stdout, "Playback HLS"))
	req := srv.last(t)
	require.Equal(t, http.MethodPost, req.Method)
	require.JSONEq(t, `{"name":"Main stage","enabled":false,"playback_policy":"signed"}`, req.Body)

	// Flags after the positional argument work too.
	r = against(srv.URL, "inputs", "create", "--name", "Second")
	require.Equal(t, 0, r.code, "%s", r)
	second := fieldValue(t, r.stdout, "ID")

	r = against(srv.URL, "inputs", "list")
	require.Equal(t, 0, r.code, "%s", r)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	require.Regexp(t, `^ID\s+NAME\s+PROFILE\s+ENABLED\s+POLICY\s+RECONNECT\s+STANDBY\s+STATE$`, lines[0])
	// Aligned: every column starts at the header's offset.
	col := strings.Index(lines[0], "ENABLED")
	for _, l := range lines[1:] {
		require.Contains(t, []string{"yes", "no "}, l[col:col+3], "column ENABLED misaligned in:\n%s", r.stdout)
	}
	require.Contains(t, r.stdout, "Main stage")
	require.Regexp(t, `(?m)^\S+\s+Main stage\s+default\s+no\s+signed\s+30s\s+no\s+idle$`, r.stdout)

	// --json prints the server's JSON, whatever the order of arguments.
	r = runCLI("inputs", "get", id, "--json", "--addr", srv.URL)
	require.Equal(t, 0, r.code, "%s", r)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, id, got["id"])
	require.Contains(t, got, "ingest")

	r = against(srv.URL, "inputs", "update", id, "--enable", "--name", "Renamed")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "yes", fieldValue(t, r.stdout, "Enabled"))
	require.Equal(t, "Renamed", fieldValue(t, r.stdout, "Name"))
	req = srv.last(t)
	require.Equal(t, http.MethodPatch, req.Method)
	require.JSONEq(t, `{"name":"Renamed","enabled":true}`, req.Body, "PATCH sends only the flags given")

	r = against(srv.URL, "inputs", "update", id, "--disable")
	require.Equal(t, 0, r.code, "%s", r)
	require.JSONEq(t, `{"enabled":false}`, srv.last(t).Body)

	// The reconnect window and hot standby: only what is given is sent,
	// and 0 (off) and false are sent too.
	r = against(srv.URL, "inputs", "update", id, "--reconnect-window", "0", "--hot-standby")
	require.Equal(t, 0, r.code, "%s", r)
	require.JSONEq(t, `{"reconnect_window_seconds":0,"hot_standby":true}`, srv.last(t).Body)
	require.Equal(t, "off", fieldValue(t, r.stdout, "Reconnect window"))
	require.Equal(t, "yes", fieldValue(t, r.stdout, "Hot standby"))
	r = against(srv.URL, "inputs", "update", id, "--hot-standby=false", "--reconnect-window", "120")
	require.Equal(t, 0, r.code, "%s", r)
	require.JSONEq(t, `{"reconnect_window_seconds":120,"hot_standby":false}`, srv.last(t).Body)
	require.Equal(t, "120s", fieldValue(t, r.stdout, "Reconnect window"))
	require.Equal(t, "no", fieldValue(t, r.stdout, "Hot standby"))
	r = against(srv.URL, "inputs", "update", id, "--reconnect-window", "7200")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `field "reconnect_window_seconds", HTTP 400`)

	r = against(srv.URL, "inputs", "create", "--name", "Standby", "--reconnect-window", "5", "--hot-standby")
	require.Equal(t, 0, r.code, "%s", r)
	require.JSONEq(t, `{"name":"Standby","reconnect_window_seconds":5,"hot_standby":true}`, srv.last(t).Body)
	require.Equal(t, "5s", fieldValue(t, r.stdout, "Reconnect window"))
	require.Equal(t, "idle", fieldValue(t, r.stdout, "State"))

	// A reconnecting stream shows its state and deadline.
	standby := fieldValue(t, r.stdout, "ID")
	ended := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	require.NoError(t, srv.b.state.ApplyCommand(fsm.Command{Op: fsm.OpStartSession, At: ended.Add(-time.Minute),
		Session: &fsm.Session{InputID: standby, ID: "s1", IngestNode: "n1"}}).Err)
	require.NoError(t, srv.b.state.ApplyCommand(fsm.Command{Op: fsm.OpEndSession, At: ended, ID: standby, Session: &fsm.Session{ID: "s1"}}).Err)
	r = against(srv.URL, "inputs", "get", standby)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "reconnecting", fieldValue(t, r.stdout, "State"))
	require.Equal(t, "2026-11-28T10:00:05Z", fieldValue(t, r.stdout, "Reconnect until"))

	r = against(srv.URL, "inputs", "rotate-key", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.NotEqual(t, key, fieldValue(t, r.stdout, "Stream key"))

	// The server's validation error, with its field, exit 1.
	r = against(srv.URL, "inputs", "update", id, "--playback-policy", "secret")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `playback_policy must be "public" or "signed"`)
	require.Contains(t, r.stderr, `field "playback_policy", HTTP 400`)

	r = against(srv.URL, "inputs", "update", id, "--profile", "nope")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "nope")

	r = against(srv.URL, "inputs", "delete", second)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "deleted input "+second+"\n", r.stdout)

	r = against(srv.URL, "inputs", "get", second)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "dionysia inputs get: input \""+second+"\" not found")
	require.Contains(t, r.stderr, `field "id", HTTP 404`)
	require.Empty(t, r.stdout)
}

func TestProfilesAgainstFake(t *testing.T) {
	srv := newFakeServer(t)

	r := against(srv.URL, "profiles", "create", "--id", "small", "--name", "Small", "--segment-seconds", "4", "--preset", "ultrafast",
		"--format", "fmp4", "--rendition", "name=360p,width=640,height=360,video_kbps=600,audio_kbps=64",
		"--rendition", "name=180p,width=320,height=180,video_kbps=200,audio_kbps=48,fps=15")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "small", fieldValue(t, r.stdout, "ID"))
	require.Equal(t, "4", fieldValue(t, r.stdout, "Segment seconds"))
	require.Regexp(t, `(?m)^180p\s+320\s+180\s+200\s+48\s+15\s+no$`, r.stdout)
	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(srv.last(t).Body), &sent))
	require.Equal(t, "fmp4", sent["segment_format"])
	require.NotContains(t, sent, "latency", "the server's default applies")
	require.Len(t, sent["renditions"], 2)
	require.Equal(t, "low", fieldValue(t, r.stdout, "Latency"))
	require.Equal(t, "334", fieldValue(t, r.stdout, "Part ms"))

	// ts cannot carry low latency: the server names the field to change.
	r = against(srv.URL, "profiles", "update", "small", "--segment-format", "ts")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `low latency needs segment_format fmp4 (field "latency", HTTP 400)`)
	r = against(srv.URL, "profiles", "update", "small", "--segment-format", "ts", "--latency", "standard")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "ts", fieldValue(t, r.stdout, "Segment format"))
	require.Equal(t, "standard", fieldValue(t, r.stdout, "Latency"))
	r = against(srv.URL, "profiles", "update", "small", "--segment-format", "fmp4", "--latency", "low", "--part-ms", "500")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "500", fieldValue(t, r.stdout, "Part ms"))
	require.NoError(t, json.Unmarshal([]byte(srv.last(t).Body), &sent))
	require.Equal(t, map[string]any{"segment_format": "fmp4", "latency": "low", "part_ms": float64(500)},
		map[string]any{"segment_format": sent["segment_format"], "latency": sent["latency"], "part_ms": sent["part_ms"]})
	r = against(srv.URL, "profiles", "update", "small", "--part-ms", "50")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `field "part_ms", HTTP 400`)

	// update changes only what is given: the renditions stay.
	r = against(srv.URL, "profiles", "update", "small", "--segment-seconds", "6")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "6", fieldValue(t, r.stdout, "Segment seconds"))
	require.Equal(t, "ultrafast", fieldValue(t, r.stdout, "Video preset"))
	require.Contains(t, r.stdout, "360p")
	require.Equal(t, http.MethodPut, srv.last(t).Method)

	// What `get --json` prints is a valid --file (timestamps are dropped).
	r = against(srv.URL, "profiles", "get", "small", "--json")
	require.Equal(t, 0, r.code, "%s", r)
	file := filepath.Join(t.TempDir(), "profile.json")
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(r.stdout, `"Small"`, `"From file"`, 1)), 0o644))
	r = against(srv.URL, "profiles", "update", "small", "--file", file, "--preset", "veryfast")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "From file", fieldValue(t, r.stdout, "Name"))
	require.Equal(t, "veryfast", fieldValue(t, r.stdout, "Video preset"), "flags override the file")
	require.NotContains(t, srv.last(t).Body, "created_at")

	r = against(srv.URL, "profiles", "update", "other", "--file", file)
	require.Equal(t, 2, r.code, "%s", r)
	require.Contains(t, r.stderr, `--file is profile "small", not "other"`)

	// create from a file with a new id.
	require.NoError(t, os.WriteFile(file, []byte(`{"id":"tiny","name":"Tiny","renditions":[{"name":"src","video_bitrate_kbps":900,"passthrough":true}]}`), 0o644))
	r = against(srv.URL, "profiles", "create", "--file", file)
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^src\s+-\s+-\s+900\s+128\s+-\s+yes$`, r.stdout)

	r = against(srv.URL, "profiles", "list")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^ID\s+NAME\s+SEGMENT\s+PRESET\s+FORMAT\s+LATENCY\s+RENDITIONS\s+DEFAULT$`, r.stdout)
	require.Regexp(t, `(?m)^default\s+Default\s+2s\s+veryfast\s+ts\s+standard\s+720p\s+\*$`, r.stdout)
	require.Regexp(t, `(?m)^small\s+From file\s+6s\s+veryfast\s+fmp4\s+low\s+360p,180p\s+-$`, r.stdout)

	// The server's refusal: a profile in use cannot be deleted.
	r = against(srv.URL, "inputs", "create", "--name", "uses small", "--profile", "small")
	require.Equal(t, 0, r.code, "%s", r)
	r = against(srv.URL, "profiles", "delete", "small")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "HTTP 409")

	r = against(srv.URL, "profiles", "delete", "tiny")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "deleted profile tiny\n", r.stdout)

	// Range checks are the server's: exit 1 with its field.
	r = against(srv.URL, "profiles", "create", "--name", "Huge", "--rendition", "name=8k,width=99999,height=720,video_kbps=2800")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `field "renditions[0].width"`)
}

func TestClusterCommandsAgainstFake(t *testing.T) {
	srv := newFakeServer(t)

	r := against(srv.URL, "nodes")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^NAME\s+STATE\s+RAFT\s+HTTP\s+RTMP\s+SRT\s+RTSP\s+LOAD\s+COST/CAPACITY\s+OWNED\s+LIVE\s+INGESTING$`, r.stdout)
	require.Regexp(t, `(?m)^n0 \(this\)\s+alive\s+leader\s+127\.0\.0\.1:8080\s+127\.0\.0\.1:1935\s+-\s+-\s+2\s+50/200 \(25%\)\s+2\s+1\s+0$`, r.stdout)
	require.Regexp(t, `(?m)^n1\s+suspect\s+follower\s+127\.0\.0\.1:8081\s+127\.0\.0\.1:1936\s+-\s+-\s+0\s+0/\?\s+0\s+0\s+1$`, r.stdout)

	r = against(srv.URL, "cluster")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "n0", fieldValue(t, r.stdout, "Leader"))
	require.Equal(t, "state=Leader term=3", fieldValue(t, r.stdout, "Raft"))
	require.Regexp(t, `(?m)^n1\s+127\.0\.0\.1:7948\s+Voter$`, r.stdout)

	r = against(srv.URL, "cluster", "--json")
	require.Equal(t, 0, r.code, "%s", r)
	var ci httpapi.ClusterInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ci))
	require.Len(t, ci.Servers, 2)

	r = against(srv.URL, "inputs", "create", "--name", "live one")
	require.Equal(t, 0, r.code, "%s", r)
	id := fieldValue(t, r.stdout, "ID")
	started := time.Now().Add(-90 * time.Second)
	srv.b.setStatus(&httpapi.InputStatus{InputID: id, Live: true, IngestNode: "n1", OwnerNode: "n0", Protocol: "rtmp", StartedAt: &started,
		Transcoder: &httpapi.TranscoderStatus{Running: true, FPS: 30, Speed: 1.02, BitrateKbps: 3100, Frames: 2700, Restarts: 1},
		Renditions: []httpapi.RenditionStatus{{Name: "720p", Width: 1280, Height: 720, FPS: 30, BitrateKbps: 2800, Segments: 5, MediaSequence: 42}}})
	r = against(srv.URL, "status", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "yes", fieldValue(t, r.stdout, "Live"))
	require.Equal(t, "n1", fieldValue(t, r.stdout, "Ingest node"))
	require.Contains(t, fieldValue(t, r.stdout, "Started"), "(1m30s ago)")
	require.Equal(t, "running, 30.0 fps, 1.0x, 3100.0 kbps, 2700 frames, 0 dropped, 1 restarts", fieldValue(t, r.stdout, "Transcoder"))
	require.Regexp(t, `(?m)^720p\s+1280x720\s+30\.0\s+2800\.0\s+5\s+42$`, r.stdout)

	r = against(srv.URL, "status", "unknown")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `input "unknown" not found`)
}

func TestTokenAndEnvironment(t *testing.T) {
	srv := newFakeServer(t, "s3cret")
	t.Setenv("DIONYSIA_API_TOKEN", "")
	t.Setenv("DIONYSIA_ADDR", srv.URL)

	r := runCLI("inputs", "list")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "missing or invalid API token")
	require.Contains(t, r.stderr, "HTTP 401")

	r = runCLI("inputs", "list", "--token", "s3cret")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "Bearer s3cret", srv.last(t).Auth)

	// The node's env twin holds a comma-separated list: the first one is used.
	t.Setenv("DIONYSIA_API_TOKEN", "s3cret,older")
	r = runCLI("inputs", "list")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "Bearer s3cret", srv.last(t).Auth)

	// -h never shows the token.
	r = runCLI("inputs", "list", "-h")
	require.NotContains(t, r.stderr, "s3cret")
}

func TestNetworkErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + l.Addr().String()
	require.NoError(t, l.Close())

	r := against(addr, "inputs", "list")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "cannot connect to "+addr+": connection refused")

	// Something that is not a Dionysia API answers.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway from the proxy", http.StatusBadGateway)
	}))
	defer proxy.Close()
	r = against(proxy.URL, "nodes")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "unexpected answer: bad gateway from the proxy (HTTP 502)")
}

func TestTable(t *testing.T) {
	var b strings.Builder
	tb := newTable(&b, "ID", "NAME", "LIVE")
	tb.row("a1", "short", "yes")
	tb.row("b2-longer-id", "", "no")
	tb.row("c3", "tab\there", "no")
	require.NoError(t, tb.flush())
	require.Equal(t, ""+
		"ID            NAME      LIVE\n"+
		"a1            short     yes\n"+
		"b2-longer-id  -         no\n"+
		"c3            tab here  no\n", b.String())
}

// TestCreateRetriedWhenTheAnswerIsLost: the server applies the first POST
// but its answer is lost; the CLI sends it again under the same
// Idempotency-Key and gets the first input back, not a second one.
func TestCreateRetriedWhenTheAnswerIsLost(t *testing.T) {
	fs := newFakeServer(t)
	fs.mu.Lock()
	fs.dropPosts = 2
	fs.mu.Unlock()
	r := against(fs.URL, "inputs", "create", "--name", "once", "--json")
	require.Equal(t, 0, r.code, r.String())
	var posts []recorded
	for _, q := range fs.requests() {
		if q.Method == http.MethodPost {
			posts = append(posts, q)
		}
	}
	require.Len(t, posts, 3, "two lost answers, then the stored one")
	require.NotEmpty(t, posts[0].IdempotencyKey)
	for _, p := range posts {
		require.Equal(t, posts[0].IdempotencyKey, p.IdempotencyKey, "every try under the same key")
	}
	var named []string
	for _, in := range fs.b.state.Inputs() {
		if in.Name == "once" {
			named = append(named, in.ID)
		}
	}
	require.Len(t, named, 1)
	require.Contains(t, r.stdout, named[0])
}

func TestOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused: nothing sent", &netError{Err: syscall.ECONNREFUSED}, false},
		{"connection reset", &netError{Err: syscall.ECONNRESET}, true},
		{"timeout", &netError{Err: context.DeadlineExceeded}, true},
		{"504", &apiError{Status: http.StatusGatewayTimeout}, true},
		{"in flight", &apiError{Status: http.StatusConflict, Field: "Idempotency-Key"}, true},
		{"another conflict", &apiError{Status: http.StatusConflict, Field: "id"}, false},
		{"503: not applied", &apiError{Status: http.StatusServiceUnavailable}, false},
		{"400", &apiError{Status: http.StatusBadRequest, Field: "name"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, outcomeUnknown(tc.err))
		})
	}
}

func TestWebhooksAgainstFake(t *testing.T) {
	srv := newFakeServer(t)

	r := against(srv.URL, "webhooks", "add", "--url", "https://hooks.example/in", "--events", "input.live, input.idle")
	require.Equal(t, 0, r.code, "%s", r)
	id := fieldValue(t, r.stdout, "ID")
	require.Equal(t, "input.live,input.idle", fieldValue(t, r.stdout, "Events"))
	require.Regexp(t, `^whsec_\S+\s+\(shown once`, fieldValue(t, r.stdout, "Secret"))
	require.JSONEq(t, `{"url":"https://hooks.example/in","events":["input.live","input.idle"]}`, srv.last(t).Body)

	r = against(srv.URL, "webhooks", "list")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^ID\s+URL\s+EVENTS\s+CREATED$`, r.stdout)
	require.Regexp(t, `(?m)^`+id+`\s+https://hooks.example/in\s+input.live,input.idle\s+`, r.stdout)
	require.NotContains(t, r.stdout, "whsec_")

	r = against(srv.URL, "webhooks", "deliveries", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `^AT\s+EVENT`, r.stdout)

	// The server's validation, field and all, reaches the user.
	r = against(srv.URL, "webhooks", "add", "--url", "ftp://x")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "url")
	r = against(srv.URL, "webhooks", "add", "--url", "https://x.example", "--events", "nope")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "events[0]")
	r = against(srv.URL, "webhooks", "add")
	require.Equal(t, 2, r.code, "%s", r)

	r = against(srv.URL, "webhooks", "rm", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "deleted webhook "+id+"\n", r.stdout)
	r = against(srv.URL, "webhooks", "rm", id)
	require.Equal(t, 1, r.code, "%s", r)
}
