package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/media"
)

// PublishOptions describe a test-pattern publisher.
type PublishOptions struct {
	Width, Height, FPS int           // 0 = 640x360 at 25
	Duration           time.Duration // 0 = 3 minutes: a leaked publisher still ends by itself
	NoAudio            bool
}

// Publisher is an ffmpeg process pushing a test pattern (testsrc2 + sine) at
// realtime speed.
type Publisher struct {
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	err    error
	stderr bytes.Buffer
	start  time.Time
}

// Publish starts pushing to an rtmp://, srt:// or rtsp:// URL. The process is
// killed when the test ends.
func Publish(t testing.TB, target string, o PublishOptions) *Publisher {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 640, 360
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.Duration == 0 {
		o.Duration = 3 * time.Minute
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS)}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", fmt.Sprintf("%.0f", o.Duration.Seconds()),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", fmt.Sprint(o.FPS), "-b:v", "1500k")
	if !o.NoAudio {
		args = append(args, "-c:a", "aac", "-b:a", "96k", "-ar", "48000")
	}
	switch {
	case strings.HasPrefix(target, "rtmp://"):
		args = append(args, "-f", "flv", target)
	case strings.HasPrefix(target, "srt://"):
		args = append(args, "-f", "mpegts", target)
	case strings.HasPrefix(target, "rtsp://"):
		args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", target)
	default:
		t.Fatalf("publish: unsupported URL %q", target)
	}
	p := &Publisher{done: make(chan struct{}), start: time.Now()}
	p.cmd = exec.Command("ffmpeg", args...)
	p.cmd.Stderr = lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start publisher: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Started is when the publisher was launched.
func (p *Publisher) Started() time.Time { return p.start }

// Stop ends the publisher (like an encoder's "stop streaming") and waits.
func (p *Publisher) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(interruptSignal)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the publisher has ended, and how.
func (p *Publisher) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// WaitExit waits up to timeout for the publisher to end on its own.
func (p *Publisher) WaitExit(timeout time.Duration) (error, bool) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// lockedWriter fills p.stderr under p.mu: exec copies ffmpeg's stderr from
// its own goroutine while Stderr may be read.
type lockedWriter struct{ p *Publisher }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// Stderr is what ffmpeg printed.
func (p *Publisher) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Playback is what a player found at an input's playback URL.
type Playback struct {
	MasterURL string // after redirects
	Variants  []media.Variant
	Media     map[string]*media.MediaPlaylist // by variant URI
	MediaURL  map[string]string               // variant URI -> absolute URL
}

// SegmentURL is the absolute URL of segment i of variant v.
func (p Playback) SegmentURL(v string, i int) string {
	base, _ := url.Parse(p.MediaURL[v])
	ref, _ := url.Parse(p.Media[v].Segments[i].URI)
	return base.ResolveReference(ref).String()
}

// FetchPlayback reads the master playlist of an input through node n
// (following redirects like a player) and every media playlist it names.
func FetchPlayback(n *Node, inputID string, query string) (Playback, error) {
	u := n.HTTPURL() + "/live/" + inputID + "/master.m3u8" + query
	resp, err := follow.Get(u)
	if err != nil {
		return Playback{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Playback{}, fmt.Errorf("master playlist: %s", resp.Status)
	}
	vs, err := media.ParseMasterPlaylist(resp.Body)
	if err != nil {
		return Playback{}, fmt.Errorf("parse master: %w", err)
	}
	pb := Playback{MasterURL: resp.Request.URL.String(), Variants: vs, Media: map[string]*media.MediaPlaylist{}, MediaURL: map[string]string{}}
	base := resp.Request.URL
	for _, v := range vs {
		ref, err := url.Parse(v.URI)
		if err != nil {
			return pb, err
		}
		mu := base.ResolveReference(ref).String()
		r, err := follow.Get(mu)
		if err != nil {
			return pb, err
		}
		mp, err := media.ParseMediaPlaylist(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return pb, fmt.Errorf("media playlist %s: %s", v.URI, r.Status)
		}
		if err != nil {
			return pb, fmt.Errorf("parse %s: %w", v.URI, err)
		}
		pb.Media[v.URI], pb.MediaURL[v.URI] = mp, mu
	}
	return pb, nil
}

// WaitPlayable waits until the input plays through node n: a master
// playlist with wantVariants variants whose media playlists each list at
// least minSegments segments.
func WaitPlayable(t testing.TB, n *Node, inputID string, wantVariants, minSegments int, timeout time.Duration) Playback {
	t.Helper()
	var pb Playback
	Eventually(t, timeout, "input "+inputID+" playable through "+n.Name(), func() error {
		var err error
		pb, err = FetchPlayback(n, inputID, "")
		if err != nil {
			return err
		}
		if len(pb.Variants) != wantVariants {
			return fmt.Errorf("master lists %d variants, want %d", len(pb.Variants), wantVariants)
		}
		for uri, mp := range pb.Media {
			if len(mp.Segments) < minSegments {
				return fmt.Errorf("%s lists %d segments", uri, len(mp.Segments))
			}
		}
		return nil
	})
	return pb
}

// ProbeStream is one stream ffprobe found.
type ProbeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	NbReadFrames string `json:"nb_read_frames"`
}

// Probe is what ffprobe says about a media URL.
type Probe struct {
	Streams []ProbeStream `json:"streams"`
	// Frames is the number of video frames decoded.
	Frames int
}

// Video returns the first video stream's codec and size.
func (p Probe) Video() (codec string, w, h int, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			return s.CodecName, s.Width, s.Height, true
		}
	}
	return "", 0, 0, false
}

// HasAudio reports whether an audio stream was found.
func (p Probe) HasAudio() bool {
	for _, s := range p.Streams {
		if s.CodecType == "audio" {
			return true
		}
	}
	return false
}

// FFprobe decodes the video of a segment fully (-count_frames) and lists
// every stream.
func FFprobe(ctx context.Context, target string) (Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	run := func(args ...string) (Probe, error) {
		args = append([]string{"-v", "error", "-of", "json", "-show_streams"}, append(args, target)...)
		out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
		if err != nil {
			return Probe{}, fmt.Errorf("ffprobe %s: %w", path.Base(target), err)
		}
		var p Probe
		return p, json.Unmarshal(out, &p)
	}
	v, err := run("-count_frames", "-select_streams", "v:0")
	if err != nil {
		return Probe{}, err
	}
	all, err := run()
	if err != nil {
		return Probe{}, err
	}
	for _, s := range v.Streams {
		var n int
		fmt.Sscan(s.NbReadFrames, &n)
		all.Frames += n
	}
	return all, nil
}
