package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// rssSample is the resident memory of a node's process tree, in MB.
type rssSample struct{ node, mediamtx, ffmpeg float64 }

func (s rssSample) total() float64 { return s.node + s.mediamtx + s.ffmpeg }

func sampleRSS(pid int) rssSample {
	var s rssSample
	for _, p := range descendants(procTable(), pid) {
		mb := float64(p.RSSkB) / 1024
		switch {
		case p.PID == pid:
			s.node += mb
		case p.Comm == "mediamtx":
			s.mediamtx += mb
		case p.Comm == "ffmpeg":
			s.ffmpeg += mb
		default:
			s.node += mb
		}
	}
	return s
}

// rowMemory: RSS of an idle node and what each live stream adds.
func rowMemory(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	nodeProc, err := spawnNode(ctx, e, "memory")
	if err != nil {
		return err
	}
	defer nodeProc.stop()
	cmd, base, addr := nodeProc.cmd, nodeProc.base, nodeProc.addr
	r.Method = "One `bin/dionysia node` process (the real binary, not in-process) on loopback. RSS (VmRSS) is read from /proc for the " +
		"node and every process below it, grouped as node, mediamtx and ffmpeg; three samples 1 s apart, median. Idle: ready, no " +
		"input live, after 3 s. Then one stream with the default ladder (720p30 source over RTMP, `-re -c copy`), sampled once it has " +
		"3 segments; then a second stream with a passthrough profile. Per-stream figures are the growth of the whole tree " +
		"(node + mediamtx + the stream's ffmpeg). The publisher is not the node's child and is not counted."
	take := func() rssSample {
		var ns, ms, fs []float64
		for i := range 3 {
			if i > 0 {
				_ = sleepCtx(ctx, time.Second)
			}
			s := sampleRSS(cmd.Process.Pid)
			ns, ms, fs = append(ns, s.node), append(ms, s.mediamtx), append(fs, s.ffmpeg)
		}
		return rssSample{median(ns), median(ms), median(fs)}
	}
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	idle := take()
	r.addValue("idle node (dionysia + mediamtx)", "MB", idle.node+idle.mediamtx, 1).headline()
	r.addValue("idle: dionysia process", "MB", idle.node, 1)
	r.addValue("idle: mediamtx child", "MB", idle.mediamtx, 1)

	post := func(path string, body any) (map[string]any, error) {
		b, _ := json.Marshal(body)
		resp, err := client.Post(base+path, "application/json", bytesReader(b))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("POST %s: %s %v", path, resp.Status, out)
		}
		return out, nil
	}
	live := func(profile string) (*publisher, error) {
		in, err := post("/v1/inputs", map[string]any{"name": "memory " + profile, "profile_id": profile})
		if err != nil {
			return nil, err
		}
		id, _ := in["id"].(string)
		key, _ := in["stream_key"].(string)
		p, err := startPublisher(src, "rtmp://"+addr(3)+"/live/"+key, true)
		if err != nil {
			return nil, err
		}
		err = pollUntil(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
			v, err := firstVariant(ctx, base, id)
			if err != nil {
				return false
			}
			mp, _, err := mediaPlaylist(ctx, v)
			return err == nil && len(mp.Segments) >= 3
		})
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("stream with profile %s not playable: %w", profile, err)
		}
		return p, nil
	}
	p1, err := live(node.DefaultProfileID)
	if err != nil {
		return err
	}
	defer p1.stop()
	one := take()
	r.addValue("per live stream, default 720p ladder (node + mediamtx + ffmpeg)", "MB", one.total()-idle.total(), 1).headline()
	r.addValue("  of which the stream's ffmpeg", "MB", one.ffmpeg, 1)
	r.addValue("  of which node + mediamtx growth", "MB", one.node+one.mediamtx-idle.node-idle.mediamtx, 1)

	pt, err := post("/v1/profiles", map[string]any{"name": "passthrough", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "source", "passthrough": true, "video_bitrate_kbps": 3000, "audio_bitrate_kbps": 128}}})
	if err != nil {
		return err
	}
	ptID, _ := pt["id"].(string)
	p2, err := live(ptID)
	if err != nil {
		return err
	}
	defer p2.stop()
	two := take()
	r.addValue("per live stream, passthrough (node + mediamtx + ffmpeg)", "MB", two.total()-one.total(), 1).headline()
	r.addValue("  of which the stream's ffmpeg", "MB", two.ffmpeg-one.ffmpeg, 1)
	return nil
}

// nodeProcess is one `bin/dionysia node` process on loopback, for rows
// that measure the real binary (its RSS, its CPU).
type nodeProcess struct {
	cmd  *exec.Cmd
	base string             // http://host:port
	addr func(i int) string // 0 http, 1 gossip, 2 raft, 3 rtmp, 4 rtsp, 5 srt
	dir  string
	stop func()
}

// spawnNode builds the binary if needed, starts one node in
// e.Work/<name> and waits until it is ready.
func spawnNode(ctx context.Context, e *Env, name string) (*nodeProcess, error) {
	var err error
	bin := filepath.Join(e.Root, "bin", "dionysia")
	if _, err := os.Stat(bin); err != nil {
		bin = filepath.Join(e.Work, "dionysia")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/dionysia")
		build.Dir = e.Root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build dionysia: %w: %s", err, out)
		}
	}
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = testcluster.FreePort(); err != nil {
			return nil, err
		}
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	dir := filepath.Join(e.Work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "node", "--name", name+"0", "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", addr(0), "--gossip-addr", addr(1), "--raft-addr", addr(2), "--rtmp-addr", addr(3),
		"--rtsp-addr", addr(4), "--srt-addr", addr(5), "--advertise-host", "127.0.0.1",
		"--mediamtx", testcluster.MediaMTXPath(), "--no-demo")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	base := "http://" + addr(0)
	if err := pollUntil(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		stop()
		return nil, fmt.Errorf("node not ready: %w", err)
	}
	return &nodeProcess{cmd: cmd, base: base, addr: addr, dir: dir, stop: stop}, nil
}
