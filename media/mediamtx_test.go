package media

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
	"github.com/stretchr/testify/require"
)

type mtxAddrs struct{ rtmp, rtsp, srt string }

func startMediaMTX(t *testing.T, authorize func(context.Context, AuthRequest) error) (*MediaMTX, mtxAddrs, func() error) {
	t.Helper()
	bin := mediamtxBinary(t)
	a := mtxAddrs{rtmp: freeTCPAddr(t), rtsp: freeTCPAddr(t), srt: freeUDPAddr(t)}
	m, err := NewMediaMTX(MediaMTXConfig{
		Binary: bin, Dir: t.TempDir(),
		RTMPAddr: a.rtmp, RTSPAddr: a.rtsp, SRTAddr: a.srt,
		Authorize: authorize,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(mediamtxStopTimeout + 2*time.Second):
			return errors.New("mediamtx Run did not return")
		}
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, 10*time.Second, "mediamtx API", func() (bool, string) {
		err := m.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	return m, a, stop
}

// publishTestPattern publishes an endless lavfi test pattern over RTMP until
// ctx ends; the returned channel yields ffmpeg's exit error.
func publishTestPattern(ctx context.Context, url string, seconds int) (<-chan error, *strings.Builder) {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	if seconds > 0 {
		args = append(args, "-t", fmt.Sprint(seconds))
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", url)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var out strings.Builder
	cmd.Stderr = &out
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	return done, &out
}

func TestMediaMTXIntegration(t *testing.T) {
	requireFFmpeg(t)
	allowOnlyGood := func(ctx context.Context, req AuthRequest) error {
		if req.Path == "live/good" {
			return nil
		}
		return errors.New("unknown stream key")
	}
	m, addrs, stop := startMediaMTX(t, allowOnlyGood)
	// A second instance on other ports runs beside the first: several nodes
	// share one machine in cluster tests.
	m2, _, _ := startMediaMTX(t, allowOnlyGood)
	require.NotEqual(t, m.APIAddr(), m2.APIAddr())

	pubCtx, stopPub := context.WithCancel(context.Background())
	defer stopPub()
	pubDone, pubOut := publishTestPattern(pubCtx, "rtmp://"+addrs.rtmp+"/live/good", 0)

	var good Path
	waitFor(t, 10*time.Second, "live/good ready", func() (bool, string) {
		paths, err := m.Paths(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, p := range paths {
			if p.Name == "live/good" && p.Ready && len(p.Tracks) == 2 {
				good = p
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v (publisher: %s)", paths, pubOut.String())
	})
	ready, err := m.PathReady(context.Background(), "live/good")
	require.NoError(t, err)
	require.True(t, ready, "a path with a publisher is ready")
	ready, err = m.PathReady(context.Background(), "live/nobody")
	require.NoError(t, err)
	require.False(t, ready, "a path nobody publishes is not ready")
	paths, err := m.Paths(context.Background())
	require.NoError(t, err)
	for _, p := range paths {
		require.NotEqual(t, "live/nobody", p.Name, "asking does not create the path (a read would)")
	}
	require.Equal(t, "rtmpConn", good.SourceType)
	require.NotEmpty(t, good.SourceID)
	require.ElementsMatch(t, []string{"H264", "MPEG-4 Audio"}, good.Tracks)
	require.WithinDuration(t, time.Now(), good.ReadyTime, time.Minute)
	video, audio := TracksHave(good.Tracks)
	require.True(t, video)
	require.True(t, audio)

	t.Run("control API needs the node's password", func(t *testing.T) {
		// The API can rewrite mediamtx's config (auth hook, runOn*
		// commands): a local user without the password is refused.
		for _, tc := range []struct {
			name       string
			user, pass string
		}{{"no credentials", "", ""}, {"wrong password", apiUser, "x"}} {
			req, err := http.NewRequest(http.MethodGet, "http://"+m.APIAddr()+"/v3/config/global/get", nil)
			require.NoError(t, err)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, tc.name)
		}
	})

	t.Run("refused publish fails fast", func(t *testing.T) {
		// mediamtx waits 2s (auth.PauseAfterError, against key guessing)
		// before it closes a refused connection; ffmpeg notices at its next
		// write. The publish would last 15s if it were accepted.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		done, _ := publishTestPattern(ctx, "rtmp://"+addrs.rtmp+"/live/bad", 15)
		pubErr := <-done
		require.Error(t, pubErr, "publishing to a refused path must fail")
		require.NoError(t, ctx.Err(), "ffmpeg should fail by itself, not by timeout")
		paths, err := m.Paths(context.Background())
		require.NoError(t, err)
		for _, p := range paths {
			require.NotEqual(t, "live/bad", p.Name)
		}
		t.Logf("refused publish failed after %s: %v", time.Since(start).Round(time.Millisecond), pubErr)
	})

	t.Run("transcode from rtsp", func(t *testing.T) {
		// The production path: ffmpeg reads the path from mediamtx over
		// RTSP/TCP and the packager makes the ladder of it.
		profile := fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", Latency: fsm.LatencyLow, SegmentFormat: fsm.SegmentFMP4, Renditions: []fsm.Rendition{
			{Name: "240p", Width: 320, Height: 240, VideoBitrateKbps: 300, AudioBitrateKbps: 64},
			{Name: "src", Passthrough: true, VideoBitrateKbps: 800},
		}}
		stream := packager.New(packager.Config{TargetDuration: 1, Schedule: Schedule(profile), PartTarget: PartSeconds(profile)})
		tr, err := NewTranscoder(TranscoderConfig{Spec: TranscodeSpec{
			SourceURL: "rtsp://" + addrs.rtsp + "/live/good",
			Profile:   profile, HasVideo: video, HasAudio: audio,
		}, Stream: stream, StopTimeout: 3 * time.Second})
		require.NoError(t, err)
		stopped := runTranscoder(t, tr)
		waitFor(t, 15*time.Second, "segments from rtsp", func() (bool, string) {
			var state []string
			for _, name := range []string{"240p", "src", packager.AudioTrack} {
				pl, _ := mediaPlaylist(t, stream, name)
				if len(pl.segs) < 1 {
					state = append(state, name+": no segment")
				}
			}
			return len(state) == 0, fmt.Sprintf("%v stats=%+v", state, tr.Stats())
		})
		mv := string(serveFile(t, stream, packager.MultivariantName))
		stopped()
		variants, err := ParseMasterPlaylist(strings.NewReader(mv))
		require.NoError(t, err)
		require.Len(t, variants, 2)
		t.Logf("multivariant from rtsp:\n%s", mv)
		for _, v := range variants {
			// A copied stream from RTSP has its SPS, so its profile is
			// named too.
			require.Regexp(t, `^avc1\.[0-9a-fA-F]{6},mp4a\.40\.2$`, v.Codecs, v.URI)
			require.Equal(t, "320x240", v.Resolution)
		}
		require.Contains(t, mv, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`)
	})

	t.Run("restart after crash", func(t *testing.T) {
		pid := m.pid()
		require.NotZero(t, pid)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		waitFor(t, 10*time.Second, "mediamtx restarted and ready", func() (bool, string) {
			err := m.Ready(context.Background())
			np := m.pid()
			return m.Restarts() == 1 && np != 0 && np != pid && err == nil,
				fmt.Sprintf("restarts=%d pid=%d ready=%v", m.Restarts(), np, err)
		})
	})

	stopPub()
	<-pubDone
	start := time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(start), mediamtxStopTimeout+time.Second)
	require.Zero(t, m.pid())
	require.Error(t, m.Ready(context.Background()), "API must be gone after Run returns")
}

func TestNewMediaMTXValidates(t *testing.T) {
	allow := func(context.Context, AuthRequest) error { return nil }
	ok := MediaMTXConfig{Binary: "mediamtx", Dir: t.TempDir(), RTMPAddr: ":1935", RTSPAddr: ":8554", SRTAddr: ":8890", Authorize: allow}
	for name, mutate := range map[string]func(*MediaMTXConfig){
		"no binary":        func(c *MediaMTXConfig) { c.Binary = "" },
		"no dir":           func(c *MediaMTXConfig) { c.Dir = "" },
		"no rtmp":          func(c *MediaMTXConfig) { c.RTMPAddr = "" },
		"bad srt":          func(c *MediaMTXConfig) { c.SRTAddr = "8890" },
		"no authorize":     func(c *MediaMTXConfig) { c.Authorize = nil },
		"public api":       func(c *MediaMTXConfig) { c.APIAddr = ":9997" },
		"non-loopback api": func(c *MediaMTXConfig) { c.APIAddr = "10.0.0.1:9997" },
		"webrtc, no udp":   func(c *MediaMTXConfig) { c.WebRTCAddr, c.WebRTCUDPAddr = ":8889", "" },
		"bad webrtc":       func(c *MediaMTXConfig) { c.WebRTCAddr, c.WebRTCUDPAddr = "8889", ":8189" },
		"webrtc host name": func(c *MediaMTXConfig) {
			c.WebRTCAddr, c.WebRTCUDPAddr, c.WebRTCHosts = ":8889", ":8189", []string{"node.example"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mutate(&c)
			_, err := NewMediaMTX(c)
			require.Error(t, err)
		})
	}
	m, err := NewMediaMTX(ok)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(m.APIAddr(), "127.0.0.1:"), m.APIAddr())
	c := ok
	c.APIAddr = "127.0.0.1:9997"
	m, err = NewMediaMTX(c)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9997", m.APIAddr())
}
