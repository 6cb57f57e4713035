package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
)

// The integration tests run a real mediamtx (bin/mediamtx, built by `make
// deps`) with a real ffmpeg publisher, and read it with ffmpeg, directly
// and through the relay. Like the rest of the repository's media tests they
// are skipped with -short, and skipped (failed in CI) when a binary is
// missing. The relay package does not import testcluster: testcluster
// imports node, which is to import relay.

const (
	gopSeconds = 2 // the publisher's GOP: -g 50 at 25 fps
	fps        = 25
)

func mediaTest(t *testing.T) (mediamtx, ffmpeg string) {
	t.Helper()
	if testing.Short() {
		t.Skip("media integration test; skipped with -short")
	}
	need := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI but missing", what)
		}
		t.Skipf("%s not found; skipping", what)
	}
	mediamtx = os.Getenv("DIONYSIA_MEDIAMTX")
	if mediamtx == "" {
		dir, err := os.Getwd()
		require.NoError(t, err)
		for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "bin", "mediamtx")); err == nil {
				mediamtx = filepath.Join(dir, "bin", "mediamtx")
				break
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
		}
	}
	if mediamtx == "" {
		need("mediamtx (run `make deps`)")
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		need("ffmpeg (run `make deps`)")
	}
	return mediamtx, ffmpeg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// testLogger writes to the test log.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("RELAY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// proc is a child process the test stops at cleanup.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{}), out: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 3 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// mediaServer is a mediamtx with RTSP and RTMP listeners and its API on
// free loopback ports and no authentication (its defaults allow anyone to
// publish and read, and loopback to use the API).
type mediaServer struct {
	rtsp, rtmp, api string
	p               *proc
}

func startMediaMTX(t *testing.T, bin string) *mediaServer {
	t.Helper()
	m := &mediaServer{rtsp: freeAddr(t), rtmp: freeAddr(t), api: freeAddr(t)}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`logLevel: warn
api: yes
apiAddress: %q
metrics: no
pprof: no
playback: no
rtsp: yes
rtspTransports: [tcp]
rtspEncryption: "no"
rtspAddress: %q
rtmp: yes
rtmpAddress: %q
hls: no
webrtc: no
srt: no
paths:
  all_others: {}
`, m.api, m.rtsp, m.rtmp)
	path := filepath.Join(dir, "mediamtx.yml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	m.p = startProc(t, bin, path)
	waitFor(t, 10*time.Second, "mediamtx to listen", func() bool {
		c, err := net.DialTimeout("tcp", m.rtsp, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return m
}

type pathInfo struct {
	Ready   bool `json:"ready"`
	Readers []struct {
		Type string `json:"type"`
	} `json:"readers"`
}

func (m *mediaServer) path(name string) (pathInfo, error) {
	var pi pathInfo
	res, err := http.Get("http://" + m.api + "/v3/paths/get/" + name)
	if err != nil {
		return pi, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return pi, fmt.Errorf("status %d", res.StatusCode)
	}
	return pi, json.NewDecoder(res.Body).Decode(&pi)
}

func (m *mediaServer) url(path string) string { return "rtsp://" + m.rtsp + "/" + path }

// publish starts an ffmpeg publisher on path: testsrc2 320x180 at 25 fps,
// x264 with a 2 s GOP (-g 50, no scene cuts), and a sine in AAC.
func publish(t *testing.T, ffmpeg string, m *mediaServer, path string) *proc {
	t.Helper()
	return publishWith(t, ffmpeg, m, path, "-preset", "ultrafast", "-tune", "zerolatency")
}

// publishWith is publish with other x264 options (B-frames, say).
func publishWith(t *testing.T, ffmpeg string, m *mediaServer, path string, x264 ...string) *proc {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=" + strconv.Itoa(fps),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264"}
	args = append(args, x264...)
	args = append(args, "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gopSeconds*fps), "-keyint_min", strconv.Itoa(gopSeconds*fps), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "rtsp", "-rtsp_transport", "tcp", m.url(path))
	p := startProc(t, ffmpeg, args...)
	waitFor(t, 15*time.Second, "the publisher to be ready", func() bool {
		require.False(t, p.exited(), "publisher exited: %s", p.out.String())
		pi, err := m.path(path)
		return err == nil && pi.Ready
	})
	return p
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startRelay(t *testing.T, cfg Config) *Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	r, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { r.Close() })
	return r
}

// cacheState is the cache of the source a relay URL reads (tests).
type cacheState struct {
	valid     bool
	packets   int
	bytes     int
	age       time.Duration // since the cached GOP's first packet arrived
	start     time.Time
	overflows int
	clients   int
}

func (r *Relay) cacheState(relayURL string) cacheState {
	s, _ := r.lookup(relayURL[strings.LastIndex(relayURL, "/"):])
	if s == nil {
		return cacheState{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := cacheState{clients: len(s.clients)}
	if s.cache == nil {
		return cs
	}
	c := s.cache
	cs.valid, cs.packets, cs.bytes, cs.overflows = c.valid, len(c.list), c.bytes, c.overflows
	if c.valid && len(c.list) > 0 {
		cs.start = c.list[0].at
		cs.age = time.Since(cs.start)
	}
	return cs
}

// firstFrame runs ffmpeg reading url until it has decoded one video frame
// and returns the time from its TCP connection to the first byte of that
// frame on its stdout (ffmpeg's own start, slow and noisy on a loaded box,
// is left out): a loopback TCP forwarder in front of the server notes when
// ffmpeg connects, and calls onConnect then if it is not nil. in are input
// options.
func firstFrame(ffmpeg, rawURL string, onConnect func(), in ...string) (time.Duration, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	connected := make(chan time.Time, 1)
	target := u.Host
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case connected <- time.Now():
				if onConnect != nil {
					onConnect()
				}
			default: // not the first connection
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() {
					_, _ = io.Copy(up, c)
					up.Close()
				}()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	u.Host = ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp"}, in...)
	args = append(args, "-i", u.String(), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1")
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var first time.Time
	if _, err := stdout.Read(make([]byte, 1)); err == nil {
		first = time.Now()
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, errOut.String())
	}
	if first.IsZero() {
		return 0, fmt.Errorf("no frame: %s", errOut.String())
	}
	select {
	case at := <-connected:
		return first.Sub(at), nil
	default:
		return 0, errors.New("ffmpeg did not connect")
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// reader is an ffmpeg reading a stream to the end, reporting its decoded
// video frame count (-progress).
type reader struct {
	p      *proc
	mu     sync.Mutex
	frames int
	errs   *lockedBuffer
}

func startReader(t *testing.T, ffmpeg, url string, extra ...string) *reader {
	t.Helper()
	rd := &reader{errs: &lockedBuffer{}}
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
		"-rtsp_transport", "tcp", "-i", url}, extra...)
	args = append(args, "-f", "null", "-")
	cmd := exec.Command(ffmpeg, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = rd.errs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	rd.p = &proc{cmd: cmd, done: make(chan struct{}), out: rd.errs}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					rd.mu.Lock()
					rd.frames = n
					rd.mu.Unlock()
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		rd.p.err = cmd.Wait()
		close(rd.p.done)
	}()
	t.Cleanup(rd.p.stop)
	return rd
}

func (rd *reader) frameCount() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.frames
}

// fastProbe is the input option that lets ffmpeg start on a cached GOP
// at once: by default avformat_find_stream_info reads about 20 frames
// after the keyframe to measure the frame rate (from the SPS timing
// information without it), so at the very start of a GOP it still waits for
// live frames.
var fastProbe = []string{"-fpsprobesize", "0"}

// waitPhase sleeps until phase after a keyframe, as the relay saw it: a
// deliberate wait, to sample a chosen point of the GOP.
func waitPhase(t *testing.T, r *Relay, u string, phase time.Duration) {
	t.Helper()
	var cs cacheState
	waitFor(t, 10*time.Second, "a cached GOP", func() bool { cs = r.cacheState(u); return cs.valid })
	at := cs.start.Add(phase)
	for time.Until(at) < 20*time.Millisecond {
		at = at.Add(gopSeconds * time.Second)
	}
	time.Sleep(time.Until(at))
}

func TestRelay(t *testing.T) {
	mtx, ffmpeg := mediaTest(t)
	m := startMediaMTX(t, mtx)
	publish(t, ffmpeg, m, "live/a")
	src := m.url("live/a")

	// noReaders waits until no earlier subtest reads live/a any more.
	noReaders := func(t *testing.T) {
		waitFor(t, 10*time.Second, "live/a to have no readers", func() bool {
			pi, err := m.path("live/a")
			return err == nil && len(pi.Readers) == 0
		})
	}

	t.Run("video size and rate from the announced SPS, audio from its config", func(t *testing.T) {
		r := startRelay(t, Config{})
		u, release, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := r.Video(ctx, u)
		require.NoError(t, err)
		require.Equal(t, Video{Codec: "H264", Width: 320, Height: 180, FPS: fps}, v)
		a, err := r.Audio(ctx, u)
		require.NoError(t, err)
		require.Equal(t, Audio{Codec: "MPEG-4 Audio", AACLC: true, SampleRate: 48000, Channels: 1}, a)

		_, err = r.Video(ctx, "rtsp://"+r.Addr()+"/not-a-token")
		require.ErrorContains(t, err, "unknown pull")
		release()
		_, err = r.Video(ctx, u)
		require.Error(t, err, "a released pull describes nothing")
	})

	t.Run("first frame direct vs relay", func(t *testing.T) {
		r := startRelay(t, Config{})
		u, release, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release()
		// At each chosen point of the GOP, the two relay readers (default
		// probing, and -fpsprobesize 0) run together; then, at the same
		// point of the next GOP, the two direct readers. Direct readers
		// wait for the next keyframe; relay readers start on the cached
		// one. (Not all four at once: on a loaded 2-core box the start of
		// four ffmpeg processes at once shows in the numbers.)
		// run reads url twice at once, with default probing and with
		// -fpsprobesize 0, and notes the cached GOP's age when each
		// reader connects: the point of the GOP it joins at.
		run := func(url string) (def, fast, ageDef, ageFast time.Duration) {
			var wg sync.WaitGroup
			var errD, errF error
			wg.Add(2)
			go func() {
				defer wg.Done()
				def, errD = firstFrame(ffmpeg, url, func() { ageDef = r.cacheState(u).age })
			}()
			go func() {
				defer wg.Done()
				fast, errF = firstFrame(ffmpeg, url, func() { ageFast = r.cacheState(u).age }, fastProbe...)
			}()
			wg.Wait()
			require.NoError(t, errD)
			require.NoError(t, errF)
			return def, fast, ageDef, ageFast
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%4dms", d.Milliseconds()) }
		var directDef, relayDef, directFast, relayFast []time.Duration
		for _, phase := range []time.Duration{100, 700, 1300} {
			phase *= time.Millisecond
			waitPhase(t, r, u, phase)
			rd, rf, rdAt, rfAt := run(u)
			waitPhase(t, r, u, phase)
			dd, df, ddAt, dfAt := run(src)
			t.Logf("connect → first frame (GOP age at connect): direct %s (%s) relay %s (%s) | -fpsprobesize 0: direct %s (%s) relay %s (%s)",
				ms(dd), ms(ddAt), ms(rd), ms(rdAt), ms(df), ms(dfAt), ms(rf), ms(rfAt))
			directDef, relayDef = append(directDef, dd), append(relayDef, rd)
			directFast, relayFast = append(directFast, df), append(relayFast, rf)
		}
		md, mr, mdf, mrf := median(directDef), median(relayDef), median(directFast), median(relayFast)
		t.Logf("median connect → first decoded frame: direct %v, relay %v; with -fpsprobesize 0: direct %v, relay %v",
			md.Round(time.Millisecond), mr.Round(time.Millisecond), mdf.Round(time.Millisecond), mrf.Round(time.Millisecond))
		require.LessOrEqual(t, mrf, 700*time.Millisecond, "relay with -fpsprobesize 0: first frame at once")
		// No bound on the slowest relay read: on a loaded box one ffmpeg
		// start alone can take a second (the bench has the figures).
		t.Logf("slowest relay read with -fpsprobesize 0: %v", slices.Max(relayFast).Round(time.Millisecond))
		require.Greater(t, mdf-mrf, 400*time.Millisecond, "direct readers wait for the next keyframe")
		require.Greater(t, md-mr, 500*time.Millisecond, "the relay helps with default probing too")
		// One upstream session served all the relay reads.
		require.EqualValues(t, 1, r.upstreams.Load())
	})
	t.Run("decodes without errors", func(t *testing.T) {
		r := startRelay(t, Config{})
		u, release, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release()
		waitPhase(t, r, u, 1500*time.Millisecond)
		relayed := startReader(t, ffmpeg, u, "-t", "4")
		direct := startReader(t, ffmpeg, src, "-t", "4")
		for _, rd := range []*reader{relayed, direct} {
			select {
			case <-rd.p.done:
			case <-time.After(15 * time.Second):
				t.Fatal("reader did not finish 4 s of stream")
			}
		}
		t.Logf("direct reader (starts mid-GOP): %d frames, errors: %q", direct.frameCount(), direct.errs.String())
		require.NoError(t, relayed.p.err)
		require.Empty(t, relayed.errs.String(), "ffmpeg -v error output while decoding the relayed stream")
		require.GreaterOrEqual(t, relayed.frameCount(), 4*fps-2)
		t.Logf("relayed reader: %d frames, no errors", relayed.frameCount())
	})

	t.Run("clients share one upstream reader", func(t *testing.T) {
		noReaders(t)
		r := startRelay(t, Config{})
		u1, release1, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release1()
		u2, release2, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release2()
		require.NotEqual(t, u1, u2, "every pull has its own token")
		readers := []*reader{startReader(t, ffmpeg, u1), startReader(t, ffmpeg, u1), startReader(t, ffmpeg, u2)}
		waitFor(t, 15*time.Second, "three relayed readers to decode", func() bool {
			for _, rd := range readers {
				require.False(t, rd.p.exited(), "reader exited: %s", rd.errs.String())
				if rd.frameCount() < 2*fps {
					return false
				}
			}
			return true
		})
		pi, err := m.path("live/a")
		require.NoError(t, err)
		require.Len(t, pi.Readers, 1, "mediamtx serves one reader: the relay")
		require.EqualValues(t, 1, r.upstreams.Load())
		require.Equal(t, 3, r.cacheState(u1).clients)

		// Releasing one pull ends its clients only; the others go on.
		release2()
		select {
		case <-readers[2].p.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the released pull's client is still running")
		}
		n := readers[0].frameCount()
		waitFor(t, 5*time.Second, "the other clients to go on", func() bool { return readers[0].frameCount() > n+fps })
		require.False(t, readers[1].p.exited())
		_, err = firstFrame(ffmpeg, u2, nil)
		require.Error(t, err, "a released URL is refused")

		// The last release stops the upstream reader.
		release1()
		noReaders(t)
	})

	t.Run("cache bound", func(t *testing.T) {
		// A 2 s GOP here is about 200 KB and 200 packets: these limits cut
		// every GOP short, by size in one relay and by age in the other.
		bySize := startRelay(t, Config{lim: limits{maxAge: 10 * time.Second, maxBytes: 64 << 10, maxPackets: 4096}})
		byAge := startRelay(t, Config{lim: limits{maxAge: 700 * time.Millisecond, maxBytes: 8 << 20, maxPackets: 4096}})
		us, releaseS, err := bySize.Pull(context.Background(), src)
		require.NoError(t, err)
		defer releaseS()
		ua, releaseA, err := byAge.Pull(context.Background(), src)
		require.NoError(t, err)
		defer releaseA()
		deadline := time.Now().Add(3 * gopSeconds * time.Second)
		var sawS, sawA bool
		for time.Now().Before(deadline) {
			s, a := bySize.cacheState(us), byAge.cacheState(ua)
			if s.valid {
				sawS = true
				require.LessOrEqual(t, s.bytes, 64<<10)
			}
			if a.valid {
				sawA = true
				// The age is checked when a packet arrives (every 20-40 ms).
				require.LessOrEqual(t, a.age, 700*time.Millisecond+200*time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
		}
		require.True(t, sawS && sawA, "the caches were valid at the start of each GOP")
		require.Positive(t, bySize.cacheState(us).overflows)
		require.Positive(t, byAge.cacheState(ua).overflows)

		// With no valid cache, a client waits for the next keyframe and
		// still decodes cleanly.
		waitFor(t, 5*time.Second, "the size-bound cache to be dropped", func() bool { return !bySize.cacheState(us).valid })
		rd := startReader(t, ffmpeg, us, "-t", "3")
		select {
		case <-rd.p.done:
		case <-time.After(15 * time.Second):
			t.Fatal("reader did not finish")
		}
		require.NoError(t, rd.p.err)
		require.Empty(t, rd.errs.String())
		require.GreaterOrEqual(t, rd.frameCount(), 3*fps-2)
	})

	t.Run("copy pull starts just before the keyframe", func(t *testing.T) {
		// A PullCopy client gets the cached GOP at once too, after a
		// lead-in: this source has no B-frames, so one frame, which ffmpeg
		// reads without timestamps; the keyframe after it has both.
		r := startRelay(t, Config{})
		u, release, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release()
		cu, releaseCopy, err := r.PullCopy(context.Background(), src)
		require.NoError(t, err)
		defer releaseCopy()
		require.NotEqual(t, u, cu)
		waitPhase(t, r, u, 100*time.Millisecond)
		d, err := firstFrame(ffmpeg, cu, nil, fastProbe...)
		require.NoError(t, err)
		require.Less(t, d, gopSeconds*time.Second/2, "a copy pull waited for a live keyframe")
		waitPhase(t, r, u, 100*time.Millisecond)
		pkts := probePackets(t, cu, 3)
		require.Len(t, pkts, 3)
		require.Equal(t, videoPacket{PTS: "N/A", DTS: "N/A", Flags: "__"}, pkts[0], "the lead-in frame")
		require.Equal(t, "K_", pkts[1].Flags)
		require.NotEqual(t, "N/A", pkts[1].PTS)
		require.NotEqual(t, "N/A", pkts[1].DTS)
		require.EqualValues(t, 1, r.upstreams.Load(), "both pulls share one upstream reader")
	})

	t.Run("rtsps needs a TLS configuration", func(t *testing.T) {
		r := startRelay(t, Config{})
		_, _, err := r.Pull(context.Background(), "rtsps://127.0.0.1:1/live/a")
		require.ErrorContains(t, err, "rtsps without a TLS configuration")
		_, _, err = r.Pull(context.Background(), "http://127.0.0.1:1/live/a")
		require.ErrorContains(t, err, "relay: source")
	})

	t.Run("unknown path", func(t *testing.T) {
		r := startRelay(t, Config{})
		_, release, err := r.Pull(context.Background(), src)
		require.NoError(t, err)
		defer release()
		start := time.Now()
		_, err = firstFrame(ffmpeg, "rtsp://"+r.Addr()+"/"+randomToken(), nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), "404")
		require.Less(t, time.Since(start), 3*time.Second, "refused at once")
	})
}

// TestRelaySourceLoss: a source that drops and comes back with the same
// tracks within the grace period is continued; one that stays away ends the
// relayed stream, and ffmpeg exits.
func TestRelaySourceLoss(t *testing.T) {
	mtx, ffmpeg := mediaTest(t)
	m := startMediaMTX(t, mtx)
	pub := publish(t, ffmpeg, m, "live/b")
	// A grace long enough for a publisher to start again on a loaded box
	// (ffmpeg start, RTSP handshake, mediamtx ready), short enough to wait.
	r := startRelay(t, Config{grace: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u, _, err := r.Pull(ctx, m.url("live/b")) // released by cancel
	require.NoError(t, err)
	rd := startReader(t, ffmpeg, u)
	waitFor(t, 10*time.Second, "the reader to decode", func() bool { return rd.frameCount() > fps })

	// The publisher restarts: the relay reconnects and its client goes on.
	pub.kill()
	pub = publish(t, ffmpeg, m, "live/b")
	n := rd.frameCount()
	waitFor(t, 15*time.Second, "the reader to go on after the source came back", func() bool {
		require.False(t, rd.p.exited(), "reader exited: %s", rd.errs.String())
		return rd.frameCount() > n+2*fps
	})
	require.EqualValues(t, 2, r.upstreams.Load())
	t.Logf("reader went on across the reconnection; its ffmpeg said: %q", rd.errs.String())

	// The publisher goes away for good: the client is torn down.
	pub.kill()
	gone := time.Now()
	select {
	case <-rd.p.done:
		t.Logf("reader exited %v after the source went away (grace 5 s): %v %q",
			time.Since(gone).Round(time.Millisecond), rd.p.err, rd.errs.String())
	case <-time.After(12 * time.Second):
		t.Fatal("the reader still runs after the source went away")
	}

	// A publisher again: the relay (still pulled) serves it to new clients.
	publish(t, ffmpeg, m, "live/b")
	d, err := firstFrame(ffmpeg, u, nil, fastProbe...)
	require.NoError(t, err)
	t.Logf("new client after the source came back: first frame in %v", d.Round(time.Millisecond))

	// Releasing the pull (here through its context) closes the upstream.
	cancel()
	waitFor(t, 10*time.Second, "the relay to stop reading", func() bool {
		pi, err := m.path("live/b")
		return err == nil && len(pi.Readers) == 0
	})
}

// videoPacket is one video packet as ffprobe reads it.
type videoPacket struct {
	PTS, DTS, Flags string
}

// probePackets reads the first n video packets of an RTSP URL with ffprobe.
func probePackets(t *testing.T, rawURL string, n int) []videoPacket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-fpsprobesize", "0",
		"-select_streams", "v:0", "-read_intervals", "%+#"+strconv.Itoa(n),
		"-show_entries", "packet=pts,dts,flags", "-of", "csv=p=0", rawURL).Output()
	require.NoError(t, err)
	var pkts []videoPacket
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) == 3 {
			pkts = append(pkts, videoPacket{PTS: f[0], DTS: f[1], Flags: f[2]})
		}
	}
	return pkts
}

// TestPassthroughCopyOfAPull: a plain pull starts its reader on the newest
// keyframe, and the first frame ffmpeg's RTSP demuxer gives has no
// timestamp. Copied from a source with B-frames into fragmented MP4 with
// media's passthrough arguments, that frame got a negative decode time the
// muxer could not write, and every packet after it was refused ("pts has
// no value"): what made passthrough fail through the relay, and one start
// in twenty reading mediamtx directly.
func TestPassthroughCopyOfAPull(t *testing.T) {
	mtx, ffmpeg := mediaTest(t)
	m := startMediaMTX(t, mtx)
	publishWith(t, ffmpeg, m, "live/bframes", "-preset", "veryfast", "-bf", "2")
	r := startRelay(t, Config{})
	u, release, err := r.Pull(context.Background(), m.url("live/bframes"))
	require.NoError(t, err)
	defer release()
	args, outs, err := media.FFmpegArgs(media.TranscodeSpec{SourceURL: u, HasVideo: true,
		Profile: fsm.Profile{SegmentSeconds: 2, Renditions: []fsm.Rendition{{Name: "src", Passthrough: true, VideoBitrateKbps: 500}}}})
	require.NoError(t, err)
	require.Len(t, outs, 1)
	out, err := os.Create(filepath.Join(t.TempDir(), "src.mp4"))
	require.NoError(t, err)
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	cmd.ExtraFiles = []*os.File{out} // descriptor 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// Two GOPs: the copy starts on the second keyframe at the latest.
	waitFor(t, 20*time.Second, "a copied GOP", func() bool {
		st, err := out.Stat()
		return err == nil && st.Size() > 50_000
	})
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	require.NotContains(t, stderr.String(), "pts has no value")
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", out.Name()).Output()
	require.NoError(t, err)
	// A fragmented file prints its stream more than once.
	frames, err := strconv.Atoi(strings.Fields(string(probe) + " x")[0])
	require.NoError(t, err, "ffprobe: %q", probe)
	require.Greater(t, frames, fps, "more than a second of video copied")
}
