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
	live    map[string]bool    // tokens of PullLive
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
		live:    map[string]bool{},
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

// PullLive is Pull for a client that must not get the cached GOP: it gets
// nothing until the next keyframe, then the live packets (every track from
// that moment). ffmpeg 5.1's mp4 muxer refuses to copy the burst ("pts has
// no value"), so passthrough renditions read this way.
func (r *Relay) PullLive(ctx context.Context, source string) (url string, release func(), err error) {
	return r.pull(ctx, source, true)
}

func (r *Relay) pull(ctx context.Context, source string, live bool) (url string, release func(), err error) {
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
	if live {
		r.live[token] = true
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

// Audio is a source's MPEG-4 audio track as its AudioSpecificConfig
// describes it, in ffprobe's words: codec "aac", profile "LC" for AAC-LC
// ("" for the other object types).
type Audio struct {
	Codec, Profile string
	SampleRate     int
	Channels       int
}

// Description is what a source announced: its video (nil without an
// H.264 or H.265 track with an SPS) and its audio (nil without an MPEG-4
// audio track with a configuration).
type Description struct {
	Video *Video
	Audio *Audio
}

// ErrNoVideo: the source has no H.264 or H.265 track with an SPS.
var ErrNoVideo = errors.New("relay: no video track with an SPS")

// Describe waits until the source behind a URL Pull returned is connected
// and reads its video size and rate from the SPS, and its audio codec and
// rate from the configuration, that it announced: what a transcoder must
// know before it starts (to fit the ladder, to copy AAC-LC instead of
// encoding it again), known the moment the source is, without a probe of
// its own (ffprobe costs about half a second here). It fails when ctx ends
// first or the pull is released.
func (r *Relay) Describe(ctx context.Context, pullURL string) (Description, error) {
	u, err := base.ParseURL(pullURL)
	if err != nil {
		return Description{}, errors.New("relay: not a pull URL")
	}
	s, _ := r.lookup(u.Path)
	if s == nil {
		return Description{}, errors.New("relay: unknown pull")
	}
	o := s.waitOutputCtx(ctx)
	if o == nil {
		if err := ctx.Err(); err != nil {
			return Description{}, fmt.Errorf("relay: source not connected: %w", err)
		}
		return Description{}, errors.New("relay: source not connected")
	}
	v, err := videoOf(o.desc)
	if err != nil && !errors.Is(err, ErrNoVideo) {
		return Description{}, err
	}
	var d Description
	if err == nil {
		d.Video = &v
	}
	d.Audio = audioOf(o.desc)
	return d, nil
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

// audioOf reads the first MPEG-4 audio format's configuration.
func audioOf(desc *description.Session) *Audio {
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			if f, ok := f.(*format.MPEG4Audio); ok && f.Config != nil {
				a := &Audio{Codec: "aac", SampleRate: f.Config.SampleRate, Channels: f.Config.ChannelCount}
				if f.Config.Type == mpeg4audio.ObjectTypeAACLC {
					a.Profile = "LC"
				}
				return a
			}
		}
	}
	return nil
}

func (r *Relay) release(token string, s *source) {
	r.mu.Lock()
	delete(r.tokens, token)
	delete(r.live, token)
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

// isLive reports whether token is a PullLive's.
func (r *Relay) isLive(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[token]
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
