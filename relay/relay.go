// Package relay is an in-node RTSP relay with a GOP cache.
//
// mediamtx keeps no GOP cache: a reader that joins a live path gets the
// next packet, and a decoder can start only at the next keyframe, up to a
// whole GOP later. The relay reads a source once (one upstream RTSP
// session however many clients read it), keeps every packet since the
// newest keyframe, and serves it on a loopback RTSP server: a client that
// connects gets that GOP at once (as fast as its connection takes it, with
// the original RTP timestamps) and then the live packets, so a transcoder
// can decode its first frame right away instead of waiting for the next
// keyframe.
//
// Clients read over TCP (RTP over RTSP interleaved); ffmpeg falls back to it
// by itself, or is told with -rtsp_transport tcp.
//
// What a reader should know:
//   - The cache can hold only what the relay saw: a reader pulled after the
//     publisher's first keyframe still waits for the second one. The gain
//     is for every start while the relay already reads the source.
//   - A client starts up to one GOP in the past. A transcoder decodes that
//     burst at once but encodes it at its own speed, so its output starts
//     behind live by the age of the GOP and catches up only as fast as it
//     encodes faster than real time.
//   - ffmpeg's avformat_find_stream_info reads about 20 frames to measure
//     the frame rate; at the start of a GOP it still waits for them. With
//     the input option -fpsprobesize 0 (the rate then comes from the SPS
//     timing information) it starts on the keyframe.
//   - No RTCP sender reports are sent: ffmpeg then times each track from
//     its first packet, and the cache starts every track at the keyframe;
//     (mediamtx's first report comes after 10 s and makes ffmpeg re-time
//     the tracks mid-stream).
//   - ffmpeg cannot copy (-c copy into MP4) an H.264 or H.265 stream with
//     B-frames that starts with its keyframe: it leaves the first frame it
//     reads over RTSP untimed. A client that copies reads a PullCopy URL,
//     which starts a few frames before the keyframe (lead.go).
package relay

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Config configures a Relay.
type Config struct {
	// Addr is the relay's RTSP listen address; it must be a loopback one.
	// "" or "127.0.0.1:0" picks a free port.
	Addr   string
	Logger *slog.Logger
	// TLS is the client configuration for rtsps:// sources (another
	// node's mediamtx in TLS mode); without it only rtsp:// is read.
	TLS *tls.Config
	// Ready, when set, is asked before each attempt to read a source:
	// known and not ready, the attempt waits for the next retry without
	// connecting. mediamtx creates a path to answer a read (an RTSP
	// DESCRIBE) of a path nobody publishes yet, and deletes it at once;
	// a publisher between its ANNOUNCE and its RECORD in that moment is
	// refused (400). A relay polling a publish it expects hit that about
	// once in fifteen RTSP publishes. host and path are the source URL's
	// (path without its leading slash).
	Ready func(ctx context.Context, host, path string) (ready, known bool)

	// For tests: zero values mean the defaults.
	lim   limits
	grace time.Duration
}

const (
	// writeQueueSize is the per-client queue of outgoing packets. The whole
	// cached GOP is queued at once when a client starts (the library has no
	// back pressure: a full queue drops the packet), so it holds twice the
	// cache's packet limit.
	writeQueueSize = 16384

	// defaultGrace is how long clients stay connected while the source is
	// away. A source back within it with the same tracks is continued
	// (sequence numbers and timestamps kept going, from its next keyframe);
	// otherwise the clients are torn down, so that ffmpeg exits and its
	// supervisor starts it again on the new stream.
	defaultGrace = 4 * time.Second

	// describeWait is how long a DESCRIBE waits for a source that is not
	// connected yet (the first connection after Pull, or a reconnection).
	// It is below ffmpeg's RTSP socket timeout (media: 10 s).
	describeWait = 5 * time.Second

	// A new source that has not played yet retries this often for this
	// long: a pull made as a publish is accepted (before mediamtx has the
	// path ready) attaches within eagerRetry of it being ready.
	eagerRetry = 25 * time.Millisecond
	eagerFor   = 3 * time.Second

	// Upstream reconnection backoff. It starts short: a Pull made as soon
	// as a publish is announced finds the path ready a moment later.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
	// stableSession: an upstream session that lasted this long resets
	// the backoff (one that fails at once does not).
	stableSession = 5 * time.Second
	// upstreamReadTimeout: a source that sends nothing for this long is
	// reconnected.
	upstreamReadTimeout = 5 * time.Second
)

// Relay is an RTSP relay with a GOP cache per source. It is safe for
// concurrent use.
type Relay struct {
	cfg  Config
	log  *slog.Logger
	srv  *gortsplib.Server
	addr atomic.Pointer[string]

	mu      sync.Mutex
	started bool
	closed  bool
	sources map[string]*source // by source URL
	tokens  map[string]*source // by path token
	copies  map[string]bool    // tokens of PullCopy
	ctx     context.Context    // parent of every source; ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // source goroutines

	// upstreams counts upstream sessions ever opened (tests).
	upstreams atomic.Int64
}

// New checks cfg. Nothing listens before Start.
func New(cfg Config) (*Relay, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		return nil, fmt.Errorf("relay: listen address: %w", err)
	}
	if cfg.lim == (limits{}) {
		cfg.lim = defaultLimits
	}
	if cfg.grace == 0 {
		cfg.grace = defaultGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{
		cfg:     cfg,
		log:     log.With("component", "relay"),
		sources: map[string]*source{},
		tokens:  map[string]*source{},
		copies:  map[string]bool{},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Start opens the listener. The relay runs until Close, or until ctx ends.
func (r *Relay) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return errors.New("relay: already started")
	}
	srv := &gortsplib.Server{
		Handler:        &handler{r: r},
		RTSPAddress:    r.cfg.Addr,
		WriteQueueSize: writeQueueSize,
		// Only TCP (interleaved) transport: no UDP listeners, so nothing
		// but the one loopback port is opened.
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				a := ln.Addr().String()
				r.addr.Store(&a)
			}
			return ln, err
		},
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("relay: listen: %w", err)
	}
	r.srv, r.started = srv, true
	r.log.Info("relay listening", "addr", r.Addr())
	context.AfterFunc(ctx, func() { r.Close() })
	return nil
}

// Addr is the address the relay listens on, once started.
func (r *Relay) Addr() string {
	if a := r.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Close ends every stream (clients are torn down), stops every upstream
// reader and the listener. It is idempotent.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	srv := r.srv
	r.mu.Unlock()
	r.wg.Wait()
	if srv != nil {
		srv.Close()
	}
	return nil
}

// Pull starts a reader of source (an rtsp:// URL, credentials included),
// or shares the one already running, and returns the URL a client reads it
// from: rtsp://<relay addr>/<token>, where the token is 128 random bits
// valid for this pull only (the listener is on loopback, but other local
// users could connect to it). Pull does not wait for the source: a client
// that connects before it is ready waits in DESCRIBE (up to 5 s).
//
// The pull ends when release is called or ctx ends, whichever comes first;
// then its URL stops working and its clients are torn down. The reader
// stops with the last pull of its source.
func (r *Relay) Pull(ctx context.Context, source string) (url string, release func(), err error) {
	return r.pull(ctx, source, false)
}

// PullCopy is Pull for a client that copies the video instead of decoding
// it (ffmpeg -c copy, a passthrough rendition): before the cached GOP, or
// before the first keyframe when there is none, it gets the few frames
// that came just before that keyframe, which ffmpeg needs to time the
// keyframe and then drops (lead.go says why). A keyframe with too little
// before it (the first of an upstream session, or in a very short GOP) is
// not a start: the client waits for the next. A decoder that reads a
// copying pull (a ladder that also encodes) may log errors about the
// frames before the keyframe, which it cannot decode and does not show.
func (r *Relay) PullCopy(ctx context.Context, source string) (url string, release func(), err error) {
	return r.pull(ctx, source, true)
}

func (r *Relay) pull(ctx context.Context, source string, copying bool) (url string, release func(), err error) {
	u, err := base.ParseURL(source)
	if err != nil {
		// Not wrapped: the parser's error quotes the URL, password and all.
		return "", nil, errors.New("relay: source is not a URL")
	}
	switch {
	case u.Scheme == "rtsp":
	case u.Scheme == "rtsps" && r.cfg.TLS != nil:
	case u.Scheme == "rtsps":
		return "", nil, errors.New("relay: source: rtsps without a TLS configuration")
	default:
		return "", nil, fmt.Errorf("relay: source: scheme %q is not rtsp or rtsps", u.Scheme)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	token := randomToken()
	r.mu.Lock()
	if !r.started || r.closed {
		r.mu.Unlock()
		return "", nil, errors.New("relay: not running")
	}
	s := r.sources[source]
	if s == nil {
		s = newSource(r, source, u)
		r.sources[source] = s
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s.run()
		}()
	}
	s.refs++
	r.tokens[token] = s
	if copying {
		r.copies[token] = true
	}
	r.mu.Unlock()

	var once sync.Once
	drop := func() { once.Do(func() { r.release(token, s) }) }
	stop := context.AfterFunc(ctx, drop)
	release = func() {
		stop()
		drop()
	}
	return "rtsp://" + r.Addr() + "/" + token, release, nil
}

// Video is a source's video track as its SPS describes it.
type Video struct {
	Codec         string // "H264" or "H265"
	Width, Height int
	FPS           float64 // 0 when the SPS carries no timing information
}

// ErrNoVideo: the source has no H.264 or H.265 track with an SPS.
var ErrNoVideo = errors.New("relay: no video track with an SPS")

// Video waits until the source behind a URL Pull returned is connected and
// reads its video size and rate from the SPS it announced: what a
// transcoder must know before it starts, known the moment the source is,
// without a probe of its own (ffprobe costs about half a second here). It
// fails when ctx ends first or the pull is released.
func (r *Relay) Video(ctx context.Context, pullURL string) (Video, error) {
	desc, err := r.describe(ctx, pullURL)
	if err != nil {
		return Video{}, err
	}
	return videoOf(desc)
}

// Audio is a source's first audio track as its description states it.
type Audio struct {
	Codec string // the format's codec name, e.g. "MPEG-4 Audio" (AAC)
	// AACLC: AAC-LC (MPEG-4 Audio object type 2 without SBR or PS
	// signalled), which every HLS and DASH player decodes.
	AACLC                bool
	SampleRate, Channels int
}

// ErrNoAudio: the source has no audio track.
var ErrNoAudio = errors.New("relay: no audio track")

// Audio is Video for the source's first audio track: what a passthrough
// ladder must know to copy it.
func (r *Relay) Audio(ctx context.Context, pullURL string) (Audio, error) {
	desc, err := r.describe(ctx, pullURL)
	if err != nil {
		return Audio{}, err
	}
	return audioOf(desc)
}

// Tracks is Video and Audio from one description: the source is waited
// for once. audio is ErrNoAudio's zero Audio when the source has none; err
// is Video's.
func (r *Relay) Tracks(ctx context.Context, pullURL string) (Video, Audio, error) {
	desc, err := r.describe(ctx, pullURL)
	if err != nil {
		return Video{}, Audio{}, err
	}
	a, _ := audioOf(desc)
	v, err := videoOf(desc)
	return v, a, err
}

// describe waits until the source behind a pull URL is connected and
// returns its description.
func (r *Relay) describe(ctx context.Context, pullURL string) (*description.Session, error) {
	u, err := base.ParseURL(pullURL)
	if err != nil {
		return nil, errors.New("relay: not a pull URL")
	}
	s, _ := r.lookup(u.Path)
	if s == nil {
		return nil, errors.New("relay: unknown pull")
	}
	o := s.waitOutputCtx(ctx)
	if o == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("relay: source not connected: %w", err)
		}
		return nil, errors.New("relay: source not connected")
	}
	return o.desc, nil
}

// audioOf describes the first audio media's first format.
func audioOf(desc *description.Session) (Audio, error) {
	for _, m := range desc.Medias {
		if m.Type != description.MediaTypeAudio || len(m.Formats) == 0 {
			continue
		}
		a := Audio{Codec: m.Formats[0].Codec(), SampleRate: m.Formats[0].ClockRate()}
		if f, ok := m.Formats[0].(*format.MPEG4Audio); ok && f.Config != nil {
			c := f.Config
			a.SampleRate, a.Channels = c.SampleRate, c.ChannelCount
			a.AACLC = c.Type == mpeg4audio.ObjectTypeAACLC &&
				c.ExtensionType != mpeg4audio.ObjectTypeSBR && c.ExtensionType != mpeg4audio.ObjectTypePS
		}
		return a, nil
	}
	return Audio{}, ErrNoAudio
}

// videoOf parses the first video format's SPS.
func videoOf(desc *description.Session) (Video, error) {
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.H264:
				sps, _ := f.SafeParams()
				if len(sps) == 0 {
					continue
				}
				var p h264.SPS
				if err := p.Unmarshal(sps); err != nil {
					return Video{}, fmt.Errorf("relay: H.264 SPS: %w", err)
				}
				return Video{Codec: "H264", Width: p.Width(), Height: p.Height(), FPS: p.FPS()}, nil
			case *format.H265:
				_, sps, _ := f.SafeParams()
				if len(sps) == 0 {
					continue
				}
				var p h265.SPS
				if err := p.Unmarshal(sps); err != nil {
					return Video{}, fmt.Errorf("relay: H.265 SPS: %w", err)
				}
				return Video{Codec: "H265", Width: p.Width(), Height: p.Height(), FPS: p.FPS()}, nil
			}
		}
	}
	return Video{}, ErrNoVideo
}

func (r *Relay) release(token string, s *source) {
	r.mu.Lock()
	delete(r.tokens, token)
	delete(r.copies, token)
	s.refs--
	last := s.refs == 0
	if last && r.sources[s.url] == s {
		delete(r.sources, s.url)
	}
	r.mu.Unlock()
	if last {
		s.cancel()
		return
	}
	s.dropToken(token)
}

// lookup finds the source of a request path ("/<token>").
func (r *Relay) lookup(path string) (*source, string) {
	token := strings.TrimPrefix(path, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens[token], token
}

// isCopy reports whether token is a PullCopy's.
func (r *Relay) isCopy(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.copies[token]
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (Go 1.24+ crashes instead)
	return hex.EncodeToString(b)
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address", addr)
}
