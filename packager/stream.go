package packager

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Schedule says where segments end, in seconds of a generation's media time:
// StartCount segments of StartSeconds (a fast start), then one every
// Seconds. The transcoder forces keyframes at the same instants.
type Schedule struct {
	StartCount   int
	StartSeconds float64
	Seconds      float64
}

// next is the first boundary after t.
func (s Schedule) next(t float64) float64 {
	if s.Seconds <= 0 {
		return math.Inf(1)
	}
	startEnd := float64(s.StartCount) * s.StartSeconds
	if s.StartCount > 0 && s.StartSeconds > 0 && t < startEnd {
		return (math.Floor(t/s.StartSeconds) + 1) * s.StartSeconds
	}
	if t < startEnd {
		return startEnd
	}
	return startEnd + (math.Floor((t-startEnd)/s.Seconds)+1)*s.Seconds
}

// Config describes one stream's packaging.
type Config struct {
	// TargetDuration is EXT-X-TARGETDURATION in seconds: constant for the
	// life of the stream (RFC 8216 §6.2.1), the profile's segment length.
	TargetDuration int
	Schedule       Schedule
	// PartTarget is the LL-HLS part target in seconds; 0 turns parts off.
	// The transcoder's fragments must not be longer.
	PartTarget float64
	// Window is how many complete segments a media playlist lists; Keep is
	// how many more stay fetchable after they leave it (players and CDNs
	// that read the playlist just before it moved on).
	Window, Keep int
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
	// FirstMSN is the media sequence number of a brand-new stream; 0 = the
	// unix time in seconds, so a stream that starts again later never
	// reuses the numbers of an earlier one.
	FirstMSN uint64
	// ID tells this stream's files apart from an earlier stream of the same
	// input (CDNs cache segments for good); "" = derived from the clock.
	ID string
}

const (
	defaultWindow = 6
	defaultKeep   = 4
)

// TrackSpec is one rendition (or the audio track) of a generation.
type TrackSpec struct {
	Name string
	Kind TrackKind
	// Bandwidth is the peak bit rate the multivariant playlist advertises.
	Bandwidth int
	FrameRate float64
}

// Stream is the model of one input's output: tracks of segments with one
// numbering, fed by generations (one transcoder run, or the slate) in turn.
type Stream struct {
	cfg Config
	now func() time.Time
	id  string

	mu      sync.Mutex
	tracks  map[string]*track
	order   []string // track names, in the order the active generation gave
	active  *Gen
	gens    int
	seams   uint64 // discontinuities so far
	ended   bool
	changed chan struct{}
	// version counts changes, so renderings can be cached.
	version uint64
	started bool // some segment was ever made
	// seamLocal: this node's producer stopped, or this node is about to
	// produce on a stream another producer made; seamCopied: the copy's
	// producer said so (Delta.AtSeam). Either way the next segment
	// follows a discontinuity, and a playlist ending on a complete
	// segment says so before its preload hint (renderMediaLocked).
	seamLocal, seamCopied bool
	// changedAt is when the stream last changed (a fragment, a copied
	// segment): a copy nobody updates any more is stale.
	changedAt time.Time

	// gated: players see only up to horizon, what the standby holds
	// (gate.go).
	gated   bool
	horizon map[string]Reach

	// thumbs is the latest picture; it is not part of the model's
	// versions (a new picture wakes no blocking reload) nor of the standby
	// copy.
	thumbs thumbnails

	// archive holds the segments written to disk (recording, DVR);
	// dvrSeconds is the DVR window, 0 = none (record.go).
	archive    Archive
	dvrSeconds int
	// dvrInits caches archived init segments' info for dvr.mpd, by
	// "track/file": a few per show (one per generation).
	dvrInits map[string]InitInfo
}

// track is one rendition's (or the audio's) list of segments.
type track struct {
	spec  TrackSpec
	info  InitInfo
	inits map[string][]byte // init file name -> bytes
	segs  []*segment        // oldest first; the last may be open
	// nextBoundary is where the open segment should end, in seconds of the
	// active generation's media time.
	nextBoundary float64
	ended        bool
}

type segment struct {
	MSN      uint64
	Gen      int
	Disc     bool   // an EXT-X-DISCONTINUITY precedes it
	DiscSeq  uint64 // discontinuities up to and including this segment
	PDT      time.Time
	Start    uint64 // decode time of the first sample, track timescale
	Duration float64
	Init     string
	Parts    []part
	Data     []byte
	Complete bool
	// From is set on a copy's wire only (Delta): Data holds the segment's
	// bytes from this offset on, the copy having the ones before.
	From int
}

type part struct {
	Off, Len    int
	Duration    float64
	Independent bool
}

// New makes an empty stream.
func New(cfg Config) *Stream {
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	if cfg.Keep < 0 {
		cfg.Keep = 0
	} else if cfg.Keep == 0 {
		cfg.Keep = defaultKeep
	}
	if cfg.TargetDuration <= 0 {
		cfg.TargetDuration = int(math.Ceil(cfg.Schedule.Seconds))
	}
	if cfg.TargetDuration <= 0 {
		cfg.TargetDuration = 2
	}
	s := &Stream{cfg: cfg, now: cfg.Now, tracks: map[string]*track{}, changed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	now := s.now()
	s.id = cfg.ID
	if s.id == "" {
		s.id = strconv.FormatInt(now.UnixMilli(), 36)
	}
	if s.cfg.FirstMSN == 0 {
		s.cfg.FirstMSN = uint64(now.Unix())
	}
	s.changedAt = now
	return s
}

// ID names this stream's files.
func (s *Stream) ID() string { return s.id }

// Config is the stream's configuration (with defaults applied).
func (s *Stream) Config() Config { return s.cfg }

// notifyLocked wakes everyone waiting for a change.
func (s *Stream) notifyLocked() {
	s.version++
	s.changedAt = s.now()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Gen is one producer of the stream: a transcoder run or the slate. Its
// fragments are held back until every one of its tracks has started, then
// it replaces the generation before it (make-before-break) behind one
// discontinuity.
type Gen struct {
	s      *Stream
	id     int
	specs  []TrackSpec
	sched  Schedule
	tracks map[string]*genTrack
	active chan struct{}
	// state, under s.mu
	isActive bool
	retired  bool
	// anchor maps media time to wall-clock time: PDT = anchor + t.
	anchor time.Time
	// held: a hot standby's generation, kept ready (its last GOP) but not
	// made active until Release.
	held bool
}

type genTrack struct {
	info     InitInfo
	initName string
	init     []byte
	pending  []chunk // fragments before the generation became active
	hasInfo  bool
	started  bool
	first    float64 // media time of the first fragment, seconds
	baseMSN  uint64  // number of the generation's first segment
}

var (
	errEnded        = errors.New("stream has ended")
	errUnknownTrack = errors.New("unknown track")
)

// Begin registers a new generation with its tracks. It produces nothing
// until every track has its init segment and a first fragment.
func (s *Stream) Begin(specs []TrackSpec) *Gen {
	return s.BeginWith(specs, s.cfg.Schedule)
}

// BeginWith is Begin with another cutting schedule: the slate, whose
// keyframes are one segment apart, cuts every segment length from the start.
func (s *Stream) BeginWith(specs []TrackSpec, sched Schedule) *Gen {
	return s.begin(specs, sched, false)
}

func (s *Stream) begin(specs []TrackSpec, sched Schedule, held bool) *Gen {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gens++
	g := &Gen{s: s, id: s.gens, specs: slices.Clone(specs), tracks: map[string]*genTrack{}, active: make(chan struct{}), sched: sched, held: held}
	for _, sp := range specs {
		g.tracks[sp.Name] = &genTrack{}
	}
	if !held {
		s.noteSeamLocked()
	}
	return g
}

// noteSeamLocked records that a generation of this node will produce next
// while nothing of this node produces now (a restart, or continuing a
// copy): its first segment follows a discontinuity. A generation that
// replaces a producing one makes its seam when it becomes active, at once.
func (s *Stream) noteSeamLocked() {
	if s.started && (s.active == nil || s.active.retired) {
		s.seamLocal = true
	}
}

// seamNextLocked tells whether the next segment follows a discontinuity.
func (s *Stream) seamNextLocked() bool { return s.seamLocal || s.seamCopied }

// Active is closed once the generation's first segments are in the
// playlists; the generation before it may stop then.
func (g *Gen) Active() <-chan struct{} { return g.active }

// ID is the generation's number within the stream.
func (g *Gen) ID() int { return g.id }

// Init gives a track's init segment (ftyp + moov).
func (g *Gen) Init(name string, b []byte) error {
	info, err := ParseInit(b)
	if err != nil {
		return fmt.Errorf("track %s: %w", name, err)
	}
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	gt, ok := g.tracks[name]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownTrack, name)
	}
	gt.info, gt.init, gt.hasInfo = info, slices.Clone(b), true
	gt.initName = s.id + "-i" + strconv.Itoa(g.id) + ".mp4"
	return nil
}

// Describe gives a track that has no init segment (MPEG-TS: every segment
// carries its own codec set-up) what the playlists say about it.
func (g *Gen) Describe(name string, info InitInfo) error {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	gt, ok := g.tracks[name]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownTrack, name)
	}
	gt.info, gt.hasInfo = info, true
	return nil
}

// chunk is one piece of a track: an fMP4 fragment (moof+mdat), or a run
// of MPEG-TS packets from one keyframe to the next.
type chunk struct {
	data  []byte
	start float64 // seconds of the generation's media time
	dur   float64
	sync  bool // starts with a keyframe
	// base is the fMP4 decode time (the segment's Start), 0 for TS.
	base uint64
}

// Fragment adds one moof+mdat of a track.
func (g *Gen) Fragment(name string, b []byte) error {
	s := g.s
	s.mu.Lock()
	gt, ok := g.tracks[name]
	if !ok || gt.init == nil {
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("%w %q", errUnknownTrack, name)
		}
		return fmt.Errorf("track %s: fragment before the init segment", name)
	}
	info := gt.info
	s.mu.Unlock()
	fi, err := ParseFragment(b, info)
	if err != nil {
		return fmt.Errorf("track %s: %w", name, err)
	}
	ts := float64(info.Timescale)
	return g.add(name, chunk{data: slices.Clone(b), start: float64(fi.BaseTime) / ts, dur: float64(fi.Duration) / ts,
		sync: fi.Sync, base: fi.BaseTime})
}

// Chunk adds a run of MPEG-TS packets of a track: start and duration in
// seconds (PTS), sync when it begins with a keyframe. Describe must come
// first.
func (g *Gen) Chunk(name string, data []byte, start, duration float64, sync bool) error {
	return g.add(name, chunk{data: data, start: start, dur: duration, sync: sync})
}

func (g *Gen) add(name string, c chunk) error {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errEnded
	}
	if g.retired {
		return nil // replaced by a newer generation: drop quietly
	}
	gt, ok := g.tracks[name]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownTrack, name)
	}
	if !gt.hasInfo {
		return fmt.Errorf("track %s: media before the track was described", name)
	}
	if g.isActive {
		return s.addChunkLocked(g, name, c)
	}
	if !gt.started {
		if gt.info.Kind == Video && !c.sync {
			return nil // a decoder cannot start here; wait for a keyframe
		}
		gt.started = true
		gt.first = c.start
	}
	gt.pending = append(gt.pending, c)
	if g.held && gt.info.Kind == Video && c.sync {
		// Only the newest GOP is worth keeping: a release starts from it.
		for _, t := range g.tracks {
			keep := t.pending[:0]
			for _, p := range t.pending {
				switch {
				case t == gt && p.start < c.start:
				case p.start+p.dur <= c.start+0.001:
				case t.info.Kind == Video && len(keep) == 0 && !p.sync:
					// A decoder must start on a keyframe.
				default:
					keep = append(keep, p)
				}
			}
			t.pending = keep
		}
	}
	return s.maybeActivateLocked(g)
}

func (s *Stream) maybeActivateLocked(g *Gen) error {
	if g.held || g.isActive || g.retired {
		return nil
	}
	for _, t := range g.tracks {
		if !t.started || len(t.pending) == 0 {
			return nil
		}
	}
	return s.activateLocked(g)
}

// BeginHeld is Begin for a hot standby: the generation keeps its newest
// GOP ready but replaces nothing until Release.
func (s *Stream) BeginHeld(specs []TrackSpec) *Gen {
	return s.begin(specs, s.cfg.Schedule, true)
}

// Release lets a held generation become active, at once if it has its
// first GOP.
func (g *Gen) Release() error {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errEnded
	}
	if g.held {
		g.held = false
		s.noteSeamLocked()
	}
	return s.maybeActivateLocked(g)
}

// activateLocked makes g the producing generation: the previous one's open
// segments are closed where they are, and g's held-back fragments go in.
func (s *Stream) activateLocked(g *Gen) error {
	prev := s.active
	if prev != nil && prev.id > g.id {
		// An older generation became ready after a newer one: drop it.
		g.retired = true
		return nil
	}
	if prev != nil {
		prev.retired = true
	}
	// Whatever is still open was made by an earlier producer (the previous
	// generation, or the owner a copy came from): it closes where it is,
	// before g's init segments are in (closing trims unused ones).
	for _, t := range s.tracks {
		s.closeOpenLocked(t)
	}
	// A track continues its own numbering (a playlist cannot skip a
	// number); a track new to the stream starts one past the highest any
	// track reached. Tracks cut on the same schedule, so they stay aligned
	// but for a track the old producer left one segment short.
	var next uint64
	var lastEnd time.Time
	for _, t := range s.tracks {
		if n := len(t.segs); n > 0 {
			last := t.segs[n-1]
			next = max(next, last.MSN+1)
			end := last.PDT.Add(secondsDur(last.Duration))
			if end.After(lastEnd) {
				lastEnd = end
			}
		}
	}
	if next == 0 {
		next = s.cfg.FirstMSN
	}
	first := math.Inf(1)
	for _, t := range g.tracks {
		if len(t.pending) > 0 {
			// A held generation dropped older GOPs: it starts here.
			t.first = t.pending[0].start
		}
		first = min(first, t.first)
	}
	var buffered float64
	for _, t := range g.tracks {
		var d float64
		for _, c := range t.pending {
			d += c.dur
		}
		buffered = max(buffered, d)
	}
	// What was held back started playing `buffered` ago; PDT never goes
	// back across a seam.
	anchor := s.now().Add(-secondsDur(buffered)).Add(-secondsDur(first))
	if floor := lastEnd.Add(-secondsDur(first)); anchor.Before(floor) {
		anchor = floor
	}
	seam := s.started
	if seam {
		s.seams++
	}
	s.seamLocal, s.seamCopied = false, false
	g.isActive, g.anchor = true, anchor
	for name, gt := range g.tracks {
		gt.baseMSN = next
		if t, ok := s.tracks[name]; ok {
			if last, has := t.lastMSN(); has {
				gt.baseMSN = last + 1
			}
		}
	}
	s.active = g
	s.order = s.order[:0]
	for _, sp := range g.specs {
		s.order = append(s.order, sp.Name)
		t, ok := s.tracks[sp.Name]
		if !ok {
			t = &track{inits: map[string][]byte{}}
			s.tracks[sp.Name] = t
		}
		gt := g.tracks[sp.Name]
		t.spec, t.info, t.ended = sp, gt.info, false
		if gt.init != nil {
			t.inits[gt.initName] = gt.init
		}
		t.nextBoundary = 0
	}
	// Tracks the new generation lacks (a rendition removed from the
	// profile) end here.
	for name, t := range s.tracks {
		if _, ok := g.tracks[name]; !ok {
			t.ended = true
		}
	}
	for _, sp := range g.specs {
		gt := g.tracks[sp.Name]
		for i, c := range gt.pending {
			if err := s.addChunkLocked(g, sp.Name, c); err != nil {
				return err
			}
			if i == 0 && seam {
				t := s.tracks[sp.Name]
				t.segs[len(t.segs)-1].Disc = true
			}
		}
		gt.pending = nil
	}
	close(g.active)
	s.notifyLocked()
	return nil
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// cutTolerance is how far before a scheduled boundary a fragment may start
// and still open the next segment: half a part, or a tenth of a second.
func (s *Stream) cutTolerance() float64 {
	if s.cfg.PartTarget > 0 {
		return s.cfg.PartTarget / 2
	}
	return 0.1
}

func (s *Stream) addChunkLocked(g *Gen, name string, c chunk) error {
	t := s.tracks[name]
	gt := g.tracks[name]
	start, dur := c.start, c.dur
	open := t.open()
	tol := s.cutTolerance()
	if open == nil || open.Gen != g.id || ((c.sync || t.info.Kind == Audio) && start >= t.nextBoundary-tol) {
		s.closeOpenLocked(t)
		msn := gt.baseMSN
		if n := len(t.segs); n > 0 && t.segs[n-1].Gen == g.id {
			msn = t.segs[n-1].MSN + 1
		}
		open = &segment{
			MSN: msn, Gen: g.id, DiscSeq: s.seams, PDT: g.anchor.Add(secondsDur(start)),
			Start: c.base, Init: gt.initName,
		}
		t.segs = append(t.segs, open)
		t.nextBoundary = g.sched.next(start + tol)
		s.started = true
	}
	open.Parts = append(open.Parts, part{Off: len(open.Data), Len: len(c.data), Duration: dur, Independent: c.sync})
	open.Data = appendData(open.Data, c.data, t.sizeHint())
	open.Duration += dur
	if open.Init == "" && start+dur >= t.nextBoundary-tol {
		// An MPEG-TS chunk runs from one keyframe to the next: one that
		// reaches the boundary ends the segment now rather than when the
		// next chunk comes, a whole GOP later.
		s.closeOpenLocked(t)
	}
	s.notifyLocked()
	return nil
}

// appendData appends b to a segment's data. Past its capacity the data
// goes to a new array of at least hint bytes (what the segment will
// likely hold), or twice what it holds: append's own growth for large
// slices (a quarter at a time) copied a 2 s segment of a 3 Mb/s stream
// about five times over while it was being made.
func appendData(data, b []byte, hint int) []byte {
	if len(data)+len(b) <= cap(data) {
		return append(data, b...)
	}
	grown := make([]byte, len(data), max(hint, 2*cap(data), len(data)+len(b)))
	copy(grown, data)
	return append(grown, b...)
}

// sizeHint is what the segment being made will likely hold: a little more
// than the last complete segment.
func (t *track) sizeHint() int {
	for i := len(t.segs) - 1; i >= 0; i-- {
		if t.segs[i].Complete {
			n := len(t.segs[i].Data)
			return n + n/8
		}
	}
	return 0
}

// open is the segment still being written, or nil.
func (t *track) open() *segment {
	if n := len(t.segs); n > 0 && !t.segs[n-1].Complete {
		return t.segs[n-1]
	}
	return nil
}

func (s *Stream) closeOpenLocked(t *track) {
	if o := t.open(); o != nil {
		o.Complete = true
		s.trimLocked(t)
	}
}

// trimLocked forgets segments that left the window more than Keep segments
// ago, and init segments nothing refers to any more.
func (s *Stream) trimLocked(t *track) {
	complete := 0
	for _, sg := range t.segs {
		if sg.Complete {
			complete++
		}
	}
	drop := complete - s.cfg.Window - s.cfg.Keep
	if drop <= 0 {
		return
	}
	t.segs = slices.Delete(t.segs, 0, drop)
	used := map[string]bool{}
	for _, sg := range t.segs {
		used[sg.Init] = true
	}
	for name := range t.inits {
		if !used[name] && name != s.currentInitLocked(t) {
			delete(t.inits, name)
		}
	}
}

func (s *Stream) currentInitLocked(t *track) string {
	if n := len(t.segs); n > 0 {
		return t.segs[n-1].Init
	}
	return ""
}

// Close says the generation's producer has stopped: if it is the active
// one, its open segments are closed where they are.
func (g *Gen) Close() {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !g.isActive || g.retired {
		g.retired = true
		return
	}
	g.retired = true
	for _, t := range s.tracks {
		s.closeOpenLocked(t)
	}
	s.noteSeamLocked()
	s.notifyLocked()
}

// Yield says this node no longer produces the stream (another node took
// it over): the producing generation retires at once, so that the new
// owner's copy applies from now on (ErrProducing no more), and whatever its
// producer still sends is dropped.
func (s *Stream) Yield() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.active; g != nil && !g.retired {
		g.retired = true
		for _, t := range s.tracks {
			s.closeOpenLocked(t)
		}
		// The new owner's segments come next, behind its seam; its copies
		// say from now on whether it is at another.
		s.seamCopied = s.started
		s.notifyLocked()
	}
}

// End ends the stream: every playlist gets EXT-X-ENDLIST.
func (s *Stream) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	for _, t := range s.tracks {
		s.closeOpenLocked(t)
	}
	s.ended = true
	// The end shows whole: a player that reads ENDLIST stops asking, so
	// the last segments must be in the same playlist.
	s.gated = false
	s.notifyLocked()
}

// Ended reports whether End was called.
func (s *Stream) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Live reports whether some generation is producing now.
func (s *Stream) Live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active != nil && !s.active.retired && !s.ended
}

// ChangedAt is when the stream last changed.
func (s *Stream) ChangedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changedAt
}

// Changed returns a channel closed at the next change.
func (s *Stream) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// TrackStats describes one track for status pages.
type TrackStats struct {
	Name          string
	Kind          TrackKind
	Width, Height int
	Codec         string
	Segments      int
	MediaSequence uint64 // first listed
	LastMSN       uint64
	BitrateKbps   float64 // of the listed segments
}

// Stats lists the tracks of the active generation.
func (s *Stream) Stats() []TrackStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TrackStats, 0, len(s.order))
	for _, name := range s.order {
		t := s.tracks[name]
		st := TrackStats{Name: name, Kind: t.info.Kind, Width: t.info.Width, Height: t.info.Height, Codec: t.info.Codec}
		listed := s.listedLocked(t)
		var bytes int
		var secs float64
		for _, sg := range listed {
			bytes += len(sg.Data)
			secs += sg.Duration
		}
		st.Segments = len(listed)
		if len(listed) > 0 {
			st.MediaSequence, st.LastMSN = listed[0].MSN, listed[len(listed)-1].MSN
		}
		if secs > 0 {
			st.BitrateKbps = float64(bytes) * 8 / 1000 / secs
		}
		out = append(out, st)
	}
	return out
}

// listedLocked is the complete segments a media playlist lists now.
func (s *Stream) listedLocked(t *track) []*segment {
	var out []*segment
	for _, sg := range t.segs {
		if sg.Complete {
			out = append(out, sg)
		}
	}
	if len(out) > s.cfg.Window {
		out = out[len(out)-s.cfg.Window:]
	}
	return out
}

// Retired reports whether a newer generation replaced this one, or it was
// closed: its producer may stop.
func (g *Gen) Retired() bool {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	return g.retired || g.s.ended
}

// TrackNames lists the tracks of the producing (or last) generation.
func (s *Stream) TrackNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}
