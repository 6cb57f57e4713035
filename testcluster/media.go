package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
	// BFrames > 0 encodes like OBS's default x264 settings instead of
	// ultrafast/zerolatency: the veryfast preset with this many B-frames
	// (B-pyramid included), so frames arrive out of presentation order.
	BFrames int
	// Wrap runs ffmpeg under this command, e.g. {"ip", "netns", "exec",
	// "ns"} to publish from inside a network namespace.
	Wrap []string
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
	// info, not error: a failed test logs what its publisher said, and an
	// RTSP publish that never became ready said nothing at "error" (the
	// stream mapping and output header show how far it got).
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS)}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", fmt.Sprintf("%.0f", o.Duration.Seconds()), "-c:v", "libx264")
	if o.BFrames > 0 {
		args = append(args, "-preset", "veryfast", "-bf", fmt.Sprint(o.BFrames))
	} else {
		args = append(args, "-preset", "ultrafast", "-tune", "zerolatency")
	}
	args = append(args, "-pix_fmt", "yuv420p", "-g", fmt.Sprint(o.FPS), "-b:v", "1500k")
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
	argv := append(append(append([]string(nil), o.Wrap...), "ffmpeg"), args...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
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
	// Runs after Stop: a failed test shows what its publisher said and
	// how it ended (an RTSP publish whose path never became ready left
	// nothing else to go on).
	t.Cleanup(func() {
		if t.Failed() {
			exited, err := p.Exited()
			t.Logf("publisher to %s: exited %v (%v), stderr:\n%s", target, exited, err, p.Stderr())
		}
	})
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
	// Audio lists the audio renditions' playlist URIs (EXT-X-MEDIA
	// TYPE=AUDIO), as the master playlist names them.
	Audio []string
	// Media and MediaURL hold every media playlist, the variants' and the
	// audio renditions', by the URI the master playlist gives.
	Media    map[string]*media.MediaPlaylist
	MediaURL map[string]string // URI -> absolute URL
	// inits is, per media playlist, the EXT-X-MAP URI in force for each
	// segment (a new generation after a discontinuity may have another).
	inits map[string][]string
}

// SegmentURL is the absolute URL of segment i of variant (or audio
// rendition) v.
func (p Playback) SegmentURL(v string, i int) string {
	return p.resolve(v, p.Media[v].Segments[i].URI)
}

// InitURL is the absolute URL of the init segment (EXT-X-MAP) of variant (or
// audio rendition) v: the one of its newest segments; "" when the playlist
// has none.
func (p Playback) InitURL(v string) string {
	mp := p.Media[v]
	if mp == nil || mp.Map == "" {
		return ""
	}
	return p.resolve(v, mp.Map)
}

// segmentInitURL is the absolute URL of the init segment segment i of v
// needs.
func (p Playback) segmentInitURL(v string, i int) string {
	if in := p.inits[v]; i < len(in) && in[i] != "" {
		return p.resolve(v, in[i])
	}
	return p.InitURL(v)
}

func (p Playback) resolve(v, uri string) string {
	base, _ := url.Parse(p.MediaURL[v])
	ref, _ := url.Parse(uri)
	return base.ResolveReference(ref).String()
}

// segmentInits lists the EXT-X-MAP URI in force at each segment of a media
// playlist.
func segmentInits(body []byte) []string {
	var (
		out []string
		cur string
	)
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			_, rest, _ := strings.Cut(line, `URI="`)
			cur, _, _ = strings.Cut(rest, `"`)
		case !strings.HasPrefix(line, "#"):
			out = append(out, cur)
		}
	}
	return out
}

// FetchPlayback reads the master playlist of an input through node n
// (following redirects like a player) and every media playlist it names:
// the variants' and the audio renditions'.
func FetchPlayback(n *Node, inputID string, query string) (Playback, error) {
	return FetchPlaybackURL(n.HTTPURL() + "/live/" + inputID + "/master.m3u8" + query)
}

// FetchPlaybackURL reads a multivariant playlist (a live one, a DVR one,
// a recording's) and every media playlist it names.
func FetchPlaybackURL(u string) (Playback, error) {
	resp, err := follow.Get(u)
	if err != nil {
		return Playback{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Playback{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Playback{}, fmt.Errorf("master playlist: %s", resp.Status)
	}
	vs, err := media.ParseMasterPlaylist(bytes.NewReader(body))
	if err != nil {
		return Playback{}, fmt.Errorf("parse master: %w", err)
	}
	audio, err := media.ParseMasterAudio(bytes.NewReader(body))
	if err != nil {
		return Playback{}, fmt.Errorf("parse master: %w", err)
	}
	pb := Playback{MasterURL: resp.Request.URL.String(), Variants: vs, Audio: audio,
		Media: map[string]*media.MediaPlaylist{}, MediaURL: map[string]string{}, inits: map[string][]string{}}
	base := resp.Request.URL
	uris := make([]string, 0, len(vs)+len(audio))
	for _, v := range vs {
		uris = append(uris, v.URI)
	}
	uris = append(uris, audio...)
	for _, uri := range uris {
		ref, err := url.Parse(uri)
		if err != nil {
			return pb, err
		}
		mu := base.ResolveReference(ref).String()
		r, err := follow.Get(mu)
		if err != nil {
			return pb, err
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return pb, err
		}
		if r.StatusCode != http.StatusOK {
			return pb, fmt.Errorf("media playlist %s: %s", uri, r.Status)
		}
		mp, err := media.ParseMediaPlaylist(bytes.NewReader(b))
		if err != nil {
			return pb, fmt.Errorf("parse %s: %w", uri, err)
		}
		pb.Media[uri], pb.MediaURL[uri], pb.inits[uri] = mp, mu, segmentInits(b)
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
	Channels     int    `json:"channels"` // audio
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

// ProbeSegment probes segment i of variant (or audio rendition) v: an fMP4
// (CMAF) segment is only decodable after its init segment, so both are
// downloaded, joined in a temporary file and given to FFprobe.
func ProbeSegment(ctx context.Context, pb Playback, v string, i int) (Probe, error) {
	mp := pb.Media[v]
	if mp == nil {
		return Probe{}, fmt.Errorf("probe: no media playlist %q", v)
	}
	if i < 0 || i >= len(mp.Segments) {
		return Probe{}, fmt.Errorf("probe: %s lists %d segments, no segment %d", v, len(mp.Segments), i)
	}
	initURL := pb.segmentInitURL(v, i)
	if initURL == "" {
		return Probe{}, fmt.Errorf("probe: %s has no EXT-X-MAP", v)
	}
	f, err := os.CreateTemp("", "dionysia-probe-*.mp4")
	if err != nil {
		return Probe{}, err
	}
	defer os.Remove(f.Name())
	for _, u := range []string{initURL, pb.SegmentURL(v, i)} {
		if err := download(ctx, f, u); err != nil {
			f.Close()
			return Probe{}, err
		}
	}
	if err := f.Close(); err != nil {
		return Probe{}, err
	}
	return FFprobe(ctx, f.Name())
}

// download appends what GET u answers to w.
func download(ctx context.Context, w io.Writer, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := follow.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
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
