package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// source is one upstream URL: its reader, the stream it serves and the
// clients reading it.
//
// Packets are written to each client session directly, not through the
// library's ServerStream (which serves DESCRIBE and SETUP only): a stream
// writes to all its readers at once, while a client that starts must get
// the cached GOP first, in order, with no live packet lost or repeated in
// between. Holding mu while a client is added and its GOP queued, and
// while each live packet is cached and queued, gives exactly that.
type source struct {
	r      *Relay
	url    string
	u      *base.URL
	refs   int // pulls; guarded by r.mu
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	mu      sync.Mutex
	out     *output       // what clients read; nil when there is nothing to read
	wake    chan struct{} // closed (and replaced) when out changes
	conn    *upstream     // the upstream session packets come from; nil while away
	downGen int           // numbers the absences, for the grace timer
	cache   *gopCache
	clients map[*gortsplib.ServerSession]*client
}

// output is the stream clients read. It outlives an upstream session when
// the next one has the same tracks.
type output struct {
	desc   *description.Session
	stream *gortsplib.ServerStream
	sig    string               // the upstream tracks it was made for
	tracks []map[uint8]*track   // by media index and payload type
	key    int                  // media index the cache is cut on, -1 = none
	medias []*description.Media // desc.Medias
}

// upstream is one upstream session: its medias' indexes in the output.
type upstream struct {
	idx map[*description.Media]int
}

// track renumbers one format's packets so that a client sees one
// continuous RTP stream across upstream sessions. Within the first
// upstream session the offsets are zero: packets keep their original
// sequence numbers and timestamps.
type track struct {
	clock   int
	aligned bool // offsets are set for the current upstream session
	seqOff  uint16
	tsOff   uint32
	sent    bool // last* are set
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
}

func (t *track) rewrite(pkt *rtp.Packet, now time.Time) *rtp.Packet {
	if !t.aligned {
		if t.sent {
			// Continue where the last session stopped, plus the time the
			// source was away.
			gap := max(now.Sub(t.lastAt), 0)
			t.seqOff = t.lastSeq + 1 - pkt.SequenceNumber
			t.tsOff = t.lastTS + uint32(gap.Seconds()*float64(t.clock)) - pkt.Timestamp
		}
		t.aligned = true
	}
	cp := *pkt
	cp.SequenceNumber += t.seqOff
	cp.Timestamp += t.tsOff
	t.lastSeq, t.lastTS, t.lastAt, t.sent = cp.SequenceNumber, cp.Timestamp, now, true
	return &cp
}

// client is one playing session.
type client struct {
	ss     *gortsplib.ServerSession
	token  string
	medias []*description.Media // by media index; nil = not set up by the client
	// copy: the client copies the video (PullCopy); it starts with a
	// lead-in before its first keyframe.
	copy bool
	// waitKey: the client gets nothing until the next keyframe (it started
	// with no valid cache, or the source came back). A copying client that
	// has had nothing yet waits for a keyframe with a lead-in.
	waitKey bool
	started bool // the client has been sent packets
	failed  bool
}

func newSource(r *Relay, rawURL string, u *base.URL) *source {
	ctx, cancel := context.WithCancel(r.ctx)
	return &source{
		r:       r,
		url:     rawURL,
		u:       u,
		ctx:     ctx,
		cancel:  cancel,
		log:     r.log.With("source", redact(u)),
		wake:    make(chan struct{}),
		clients: map[*gortsplib.ServerSession]*client{},
	}
}

func redact(u *base.URL) string { return (*url.URL)(u).Redacted() }

// run reads the source until the last pull is released, reconnecting with
// backoff (reset by a session that lasted).
func (s *source) run() {
	defer s.finish()
	backoff := minBackoff
	born, everPlayed := time.Now(), false
	for fails := 0; ; fails++ {
		start := time.Now()
		played, err := s.readOnce()
		if s.ctx.Err() != nil {
			return
		}
		everPlayed = everPlayed || played
		if !everPlayed && time.Since(born) < eagerFor {
			// A pull made when a publish is accepted: the path becomes
			// ready once mediamtx has read the publisher's tracks, and the
			// publisher's first keyframe reaches only the readers attached
			// by then.
			if !sleepCtx(s.ctx, eagerRetry) {
				return
			}
			continue
		}
		if played {
			s.log.Info("relay source lost; reconnecting", "err", err, "after", time.Since(start).Round(time.Millisecond))
			if time.Since(start) > stableSession {
				backoff, fails = minBackoff, 0
			}
		} else if fails == 0 || fails%20 == 0 {
			s.log.Debug("relay source not available", "err", err, "attempts", fails+1)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// errNotReady: Config.Ready said the source has no publisher yet.
var errNotReady = errors.New("source not ready")

// readOnce runs one upstream session; played says it got as far as PLAY.
func (s *source) readOnce() (played bool, err error) {
	if check := s.r.cfg.Ready; check != nil {
		ready, known := check(s.ctx, s.u.Host, strings.TrimPrefix(s.u.Path, "/"))
		if known && !ready {
			return false, errNotReady
		}
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{
		Scheme:      s.u.Scheme,
		Host:        s.u.Host,
		Protocol:    &tcp,
		ReadTimeout: upstreamReadTimeout,
		TLSConfig:   s.r.cfg.TLS,
		OnPacketsLost: func(lost uint64) {
			s.log.Warn("relay source lost packets", "lost", lost)
		},
		OnDecodeError: func(err error) {
			s.log.Debug("relay source decode error", "err", err)
		},
		OnTransportSwitch: func(err error) {
			s.log.Debug("relay source transport switch", "err", err)
		},
	}
	if err := c.Start(); err != nil {
		return false, err
	}
	defer c.Close()
	stop := context.AfterFunc(s.ctx, c.Close)
	defer stop()

	desc, _, err := c.Describe(s.u)
	if err != nil {
		return false, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return false, err
	}
	up, err := s.connected(desc.Medias)
	if err != nil {
		return false, err
	}
	defer func() { s.disconnected(up) }()
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		if i, ok := up.idx[m]; ok {
			s.onPacket(up, i, pkt)
		}
	})
	if _, err := c.Play(nil); err != nil {
		return false, err
	}
	s.r.upstreams.Add(1)
	return true, c.Wait()
}

// signature identifies an upstream session's tracks: a session with the
// same one can continue an output.
func signature(medias []*description.Media) string {
	var b strings.Builder
	for _, m := range medias {
		fmt.Fprintf(&b, "%s:", m.Type)
		for _, f := range m.Formats {
			// %v prints maps sorted by key.
			fmt.Fprintf(&b, "%d %s %s %v;", f.PayloadType(), f.Codec(), f.RTPMap(), f.FMTP())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// connected makes the output for a new upstream session, or continues the
// current one when the tracks are the same.
func (s *source) connected(medias []*description.Media) (*upstream, error) {
	var kept []*description.Media
	for _, m := range medias {
		if !m.IsBackChannel {
			kept = append(kept, m)
		}
	}
	sig := signature(kept)
	up := &upstream{idx: map[*description.Media]int{}}
	for i, m := range kept {
		up.idx[m] = i
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, s.ctx.Err()
	}
	s.downGen++
	if s.out != nil && s.out.sig == sig {
		// The source is back with the same tracks: continue. The packets
		// are renumbered to follow the last ones, and every client
		// resumes at the next keyframe.
		for _, byPT := range s.out.tracks {
			for _, t := range byPT {
				t.aligned = false
			}
		}
		for _, c := range s.clients {
			c.waitKey = s.out.key >= 0
		}
		s.log.Info("relay source back; clients continue")
	} else {
		if s.out != nil {
			s.log.Info("relay source changed tracks; ending its stream")
			s.endLocked()
		}
		o, err := s.newOutput(kept, sig)
		if err != nil {
			return nil, err
		}
		s.out = o
		key, pt, codec := keyFormat(formatsOf(kept))
		lead := 0
		if key >= 0 {
			for _, f := range kept[key].Formats {
				if f.PayloadType() == pt {
					lead = leadAUs(f)
				}
			}
		}
		s.cache = newGOPCache(s.r.cfg.lim, key, pt, codec, lead)
		s.log.Info("relay source connected", "medias", len(kept), "gop_cache", codec != keyNone, "copy_lead_in", lead)
	}
	s.cache.reset()
	s.conn = up
	s.notifyLocked()
	return up, nil
}

func formatsOf(medias []*description.Media) [][]format.Format {
	out := make([][]format.Format, len(medias))
	for i, m := range medias {
		out[i] = m.Formats
	}
	return out
}

func (s *source) newOutput(medias []*description.Media, sig string) (*output, error) {
	o := &output{sig: sig, desc: &description.Session{}}
	o.key, _, _ = keyFormat(formatsOf(medias))
	for _, m := range medias {
		// The formats are shared with the upstream client, which only
		// reads them.
		om := &description.Media{Type: m.Type, ID: m.ID, Formats: m.Formats}
		o.desc.Medias = append(o.desc.Medias, om)
		byPT := map[uint8]*track{}
		for _, f := range m.Formats {
			byPT[f.PayloadType()] = &track{clock: f.ClockRate()}
		}
		o.tracks = append(o.tracks, byPT)
	}
	o.medias = o.desc.Medias
	o.stream = &gortsplib.ServerStream{Server: s.r.srv, Desc: o.desc}
	if err := o.stream.Initialize(); err != nil {
		return nil, fmt.Errorf("relay stream: %w", err)
	}
	return o, nil
}

// disconnected notes that an upstream session ended. Clients stay for the
// grace period: if the source is not back with the same tracks by then,
// the stream ends.
func (s *source) disconnected(up *upstream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != up {
		return
	}
	s.conn = nil
	s.downGen++
	if s.cache != nil {
		s.cache.reset()
	}
	if s.out == nil || s.ctx.Err() != nil {
		return
	}
	gen := s.downGen
	time.AfterFunc(s.r.cfg.grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == nil && s.downGen == gen && s.out != nil {
			s.log.Info("relay source gone; ending its stream", "after", s.r.cfg.grace)
			s.endLocked()
		}
	})
}

// endLocked ends the output: every client session is closed (ffmpeg sees
// the connection close and exits).
func (s *source) endLocked() {
	o := s.out
	if o == nil {
		return
	}
	s.out = nil
	s.cache = nil
	s.clients = map[*gortsplib.ServerSession]*client{}
	s.notifyLocked()
	// Close only cancels the sessions (their own goroutines finish them,
	// and call OnSessionClose, which takes s.mu): safe under s.mu.
	o.stream.Close()
}

func (s *source) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// finish ends the stream once the reader has stopped for good.
func (s *source) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = nil
	s.endLocked()
}

// waitOutput returns the output, waiting up to d for one.
func (s *source) waitOutput(d time.Duration) *output {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.waitOutputCtx(ctx)
}

// waitOutputCtx waits for the source's output until ctx or the source ends.
func (s *source) waitOutputCtx(ctx context.Context) *output {
	for {
		s.mu.Lock()
		o, w := s.out, s.wake
		s.mu.Unlock()
		if o != nil {
			return o
		}
		select {
		case <-w:
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		}
	}
}

// onPacket caches one upstream packet and passes it on to the clients.
func (s *source) onPacket(up *upstream, media int, pkt *rtp.Packet) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.out
	if s.conn != up || o == nil {
		return
	}
	t := o.tracks[media][pkt.PayloadType]
	if t == nil {
		return
	}
	p := t.rewrite(pkt, now)
	e := &entry{media: media, pkt: p, size: p.MarshalSize(), at: now}
	overflows := s.cache.overflows
	keyStart := s.cache.add(e)
	if s.cache.overflows != overflows {
		level := slog.LevelDebug
		if s.cache.overflows == 1 {
			level = slog.LevelWarn // once a stream: long GOPs stay long
		}
		s.log.Log(context.Background(), level, "relay GOP longer than the cache allows; not cached until the next keyframe",
			"max_age", s.cache.lim.maxAge, "max_bytes", s.cache.lim.maxBytes, "max_packets", s.cache.lim.maxPackets)
	}
	for _, c := range s.clients {
		if c.waitKey {
			if !keyStart {
				continue
			}
			if c.copy && !c.started {
				if s.cache.leadIn == nil {
					continue // no lead-in before this keyframe: the next one
				}
				s.writeLocked(c, s.cache.leadIn...)
			}
			c.waitKey = false
			s.writeLocked(c, s.cache.list...)
			continue
		}
		s.writeLocked(c, e)
	}
}

// writeLocked queues packets for one client. A client that cannot take
// them (its queue is full: it reads slower than the source sends) is
// dropped rather than sent a stream with holes.
func (s *source) writeLocked(c *client, es ...*entry) {
	for _, e := range es {
		if c.failed {
			return
		}
		c.started = true
		m := c.medias[e.media]
		if m == nil {
			continue
		}
		cp := *e.pkt // the session stamps its SSRC into the packet
		if err := c.ss.WritePacketRTP(m, &cp); err != nil {
			s.log.Warn("relay client too slow; closing it", "err", err)
			c.failed = true
			delete(s.clients, c.ss)
			c.ss.Close()
		}
	}
}

// play starts a client: the cached GOP first (after a lead-in for a
// copying client), then live packets.
func (s *source) play(ss *gortsplib.ServerSession, token string, copying bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.out
	if o == nil || ss.Stream() != o.stream {
		return errors.New("stream ended")
	}
	c := &client{ss: ss, token: token, copy: copying, medias: make([]*description.Media, len(o.medias))}
	for _, m := range ss.Medias() {
		for i, om := range o.medias {
			if m == om {
				c.medias[i] = om
			}
		}
	}
	gop := s.cache.gop()
	if copying {
		gop = s.cache.copyGOP()
	}
	if gop != nil {
		s.writeLocked(c, gop...)
	} else {
		c.waitKey = o.key >= 0
	}
	s.log.Debug("relay client playing", "cached_packets", len(gop), "wait_keyframe", c.waitKey, "clients", len(s.clients)+1)
	if !c.failed {
		s.clients[ss] = c
	}
	return nil
}

func (s *source) removeClient(ss *gortsplib.ServerSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, ss)
}

// dropToken closes the clients of a released pull.
func (s *source) dropToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss, c := range s.clients {
		if c.token == token {
			delete(s.clients, ss)
			ss.Close()
		}
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
