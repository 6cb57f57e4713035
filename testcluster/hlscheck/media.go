// Package hlscheck checks what a player would see while it polls a live
// stream: the successive fetches of a Media Playlist (RFC 8216 and the
// low-latency additions of draft-pantos-hls-rfc8216bis) and a Multivariant
// Playlist. Integration tests feed it every body they fetch during
// failovers, reconnects and drains, and fail on the first rule a real
// player would trip over.
//
// Most of the rules a player depends on are not visible in a single fetch:
// a media sequence number that is reused, a discontinuity sequence that is
// not incremented when a discontinuity leaves the window, a playlist that
// goes back to an older state after a failover. Media keeps the history it
// needs to check those, and only reports what that history proves.
//
// The package has its own small parser and imports nothing from the
// project, so it cannot share a bug with the code that writes playlists.
package hlscheck

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Tolerances for comparing values that different writers may round
// differently (a standby re-rendering the same model, for instance).
const (
	durationSlack = 0.001 // seconds: EXTINF, EXT-X-PART DURATION
	pdtSlack      = time.Millisecond
)

// partAgeLimit is how many target durations from the end of the playlist a
// part may start. RFC 8216bis asks servers to remove parts older than three
// target durations; servers usually drop a segment's parts together, which
// can leave a part up to one more segment older, hence four.
const partAgeLimit = 4

// Media checks the successive fetches of one Media Playlist URL. The zero
// value is ready to use; it is safe for concurrent use, so a test can poll
// in one goroutine and assert in another.
type Media struct {
	// Name prefixes every violation (the playlist URL, say), so a test that
	// checks several renditions can tell them apart.
	Name string

	mu         sync.Mutex
	fetches    int
	violations []string

	prev        *mediaPlaylist
	lastAt      time.Time
	target      uint64 // from the first fetch that had one
	hasTarget   bool
	partTarget  float64
	hasPartInf  bool
	ptype       string
	maxMediaSeq uint64
	windows     []window
	segs        map[uint64]segRecord
	// ahead is, by media sequence number, whether the segment after the
	// last listed one (being written, or hinted at) was said to follow a
	// discontinuity, and in which fetch.
	ahead        map[uint64]aheadRecord
	parts        map[uint64][]part
	maxMSN       uint64
	hasSegs      bool
	discs        int
	ended        bool
	lastAdvance  time.Time
	longestStall time.Duration
	// The newest part seen (its segment's number and its place in it), and
	// since when, for LongestPartStall.
	edge             partEdge
	hasEdge          bool
	lastPartAdvance  time.Time
	longestPartStall time.Duration
}

// partEdge is where a playlist's newest part is.
type partEdge struct {
	msn uint64
	n   int
}

func (e partEdge) after(o partEdge) bool { return e.msn > o.msn || (e.msn == o.msn && e.n > o.n) }

// window is where one fetch's playlist started.
type window struct{ mediaSeq, discSeq uint64 }

// segRecord is what a media sequence number was first seen to mean.
type segRecord struct {
	uri    string
	dur    float64
	disc   bool
	hasPDT bool
	pdt    time.Time
	fetch  int
}

// aheadRecord is what a fetch said of the segment after its last one.
type aheadRecord struct {
	disc  bool
	fetch int
}

// Summary is what the fetches so far have shown, for assertions such as
// "exactly one discontinuity was seen".
type Summary struct {
	Fetches int
	// Segments counts distinct media sequence numbers of complete
	// segments seen.
	Segments int
	// Discontinuities counts distinct segments seen carrying
	// EXT-X-DISCONTINUITY.
	Discontinuities int
	// MaxMSN is the highest media sequence number of a complete segment
	// seen (0 when none was).
	MaxMSN uint64
	// Ended is whether the last fetch had EXT-X-ENDLIST.
	Ended bool
	// LongestStall is the longest time (by the times given to Add) the
	// newest segment stayed the same while the playlist was live: what a
	// player waits through during a failover, up to the last fetch.
	LongestStall time.Duration
	// LongestPartStall is the same for the newest part (0 without parts):
	// what a low-latency player, which holds back about three parts, waits
	// through.
	LongestPartStall time.Duration
}

// Add checks one fetch of the playlist, fetched at the given time; fetches
// must be added in the order they were made. It returns an error listing
// every rule this fetch breaks (nil when none) and records them for
// Violations.
func (c *Media) Add(body []byte, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetches++
	if c.segs == nil {
		c.segs = map[uint64]segRecord{}
		c.ahead = map[uint64]aheadRecord{}
		c.parts = map[uint64][]part{}
	}

	p := parseMedia(body)
	v := append([]string(nil), p.problems...)
	report := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	if c.fetches > 1 && at.Before(c.lastAt) {
		report("fetch time %s is before the previous fetch's %s (add fetches in order)",
			at.Format(time.RFC3339Nano), c.lastAt.Format(time.RFC3339Nano))
	}
	c.checkAlone(p, report)
	c.checkHistory(p, at, report)

	c.prev, c.lastAt = p, at
	if len(v) == 0 {
		return nil
	}
	prefix := fmt.Sprintf("fetch %d", c.fetches)
	if c.Name != "" {
		prefix = c.Name + ": " + prefix
	}
	for i := range v {
		v[i] = prefix + ": " + v[i]
	}
	c.violations = append(c.violations, v...)
	return fmt.Errorf("hlscheck: %s", strings.Join(v, "\n\t"))
}

// Violations returns every violation recorded so far, in order.
func (c *Media) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Summary reports what the fetches so far have shown.
func (c *Media) Summary() Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Summary{
		Fetches:          c.fetches,
		Segments:         len(c.segs),
		Discontinuities:  c.discs,
		MaxMSN:           c.maxMSN,
		Ended:            c.ended,
		LongestStall:     c.longestStall,
		LongestPartStall: c.longestPartStall,
	}
}

// checkAlone applies the rules that one fetch can break by itself.
func (c *Media) checkAlone(p *mediaPlaylist, report func(string, ...any)) {
	if !p.hasTarget {
		report("EXT-X-TARGETDURATION missing")
	}
	for _, s := range p.segs {
		if p.hasTarget && roundHalfUp(s.dur) > p.target {
			report("segment %d (%s): EXTINF %.3f rounds above EXT-X-TARGETDURATION %d", s.msn, s.uri, s.dur, p.target)
		}
	}

	// Program date time: the project writes it on every segment, so a
	// player can map any segment to wall-clock time after a seam.
	for i, s := range p.segs {
		if !s.hasPDT {
			report("segment %d (%s): no EXT-X-PROGRAM-DATE-TIME", s.msn, s.uri)
			continue
		}
		if i > 0 && p.segs[i-1].hasPDT && !s.disc && s.pdt.Before(p.segs[i-1].pdt) {
			report("segment %d: EXT-X-PROGRAM-DATE-TIME %s goes back from %s without a discontinuity",
				s.msn, s.pdt.Format(time.RFC3339Nano), p.segs[i-1].pdt.Format(time.RFC3339Nano))
		}
	}

	// Protocol version (RFC 8216 section 7, rfc8216bis section 8).
	version := uint64(1)
	if p.hasVersion {
		version = p.version
	}
	need := func(min uint64, what string) {
		if version < min {
			report("%s needs EXT-X-VERSION %d or higher, playlist has %d", what, min, version)
		}
	}
	if p.floatExtinf {
		need(3, "a decimal EXTINF duration")
	}
	if p.byterange {
		need(4, "EXT-X-BYTERANGE")
	}
	if p.iframes {
		need(4, "EXT-X-I-FRAMES-ONLY")
	}
	if p.hasMap && p.iframes {
		need(5, "EXT-X-MAP")
	}
	if p.hasMap && !p.iframes {
		need(6, "EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY")
	}
	if p.define {
		need(8, "EXT-X-DEFINE")
	}
	if p.hasSkip {
		need(9, "EXT-X-SKIP")
	}
	if p.skipRRD {
		need(10, "EXT-X-SKIP with RECENTLY-REMOVED-DATERANGES")
	}
	if p.defineQuery {
		need(11, "EXT-X-DEFINE with QUERYPARAM")
	}

	c.checkLowLatency(p, report)
}

// checkLowLatency applies the rfc8216bis low-latency rules of one fetch.
func (c *Media) checkLowLatency(p *mediaPlaylist, report func(string, ...any)) {
	td := float64(p.target)
	anyParts := len(p.tailParts) > 0
	for _, s := range p.segs {
		anyParts = anyParts || len(s.parts) > 0
	}
	if anyParts && !p.hasPartInf {
		report("EXT-X-PART without EXT-X-PART-INF")
	}
	if p.hasPartInf && p.partTarget > 0 {
		checkPart := func(msn uint64, i int, pt part) {
			if pt.dur > p.partTarget+durationSlack {
				report("part %d.%d (%s): DURATION %.3f exceeds PART-TARGET %.3f", msn, i, pt.uri, pt.dur, p.partTarget)
			}
		}
		for _, s := range p.segs {
			for i, pt := range s.parts {
				checkPart(s.msn, i, pt)
			}
		}
		for i, pt := range p.tailParts {
			checkPart(p.nextMSN(), i, pt)
		}
	}

	// Parts of old segments: measured from the end of the playlist (the
	// last part written) to the start of each part. A segment's parts are
	// the last ones of that segment if the server pruned some, so start
	// times are computed backwards from the segment's end.
	if p.hasTarget && td > 0 {
		end := p.duration()
		for _, pt := range p.tailParts {
			end += pt.dur
		}
		var segEnd float64
		for _, s := range p.segs {
			segEnd += s.dur
			start := segEnd
			for i := len(s.parts) - 1; i >= 0; i-- {
				start -= s.parts[i].dur
			}
			if len(s.parts) > 0 && end-start > partAgeLimit*td+durationSlack {
				report("segment %d still lists parts %.3fs from the end of the playlist (more than %d target durations)",
					s.msn, end-start, partAgeLimit)
			}
		}
	}

	sc := p.server
	floatAttr := func(name string) (float64, bool) {
		if sc == nil {
			return 0, false
		}
		f, ok, err := sc.float(name)
		return f, ok && err == nil
	}
	if p.hasPartInf {
		phb, ok := floatAttr("PART-HOLD-BACK")
		switch {
		case !ok:
			report("EXT-X-PART-INF present but EXT-X-SERVER-CONTROL has no PART-HOLD-BACK")
		case p.partTarget > 0 && phb < 2*p.partTarget-durationSlack:
			report("PART-HOLD-BACK %.3f is less than twice PART-TARGET %.3f", phb, p.partTarget)
		}
	}
	if hb, ok := floatAttr("HOLD-BACK"); ok && p.hasTarget && hb < 3*td-durationSlack {
		report("HOLD-BACK %.3f is less than three target durations (%d)", hb, p.target)
	}
	csu, hasCSU := floatAttr("CAN-SKIP-UNTIL")
	if hasCSU && p.hasTarget && csu < 6*td-durationSlack {
		report("CAN-SKIP-UNTIL %.3f is less than six target durations (%d)", csu, p.target)
	}
	if p.hasSkip && !hasCSU {
		report("EXT-X-SKIP without CAN-SKIP-UNTIL in EXT-X-SERVER-CONTROL")
	}
}

// checkHistory applies the rules that span fetches, then records this
// fetch in the history.
func (c *Media) checkHistory(p *mediaPlaylist, at time.Time, report func(string, ...any)) {
	first := c.prev == nil
	if p.hasTarget {
		if !c.hasTarget {
			c.target, c.hasTarget = p.target, true
		} else if p.target != c.target {
			report("EXT-X-TARGETDURATION changed from %d to %d", c.target, p.target)
		}
	}
	if p.hasPartInf && p.partTarget > 0 {
		if !c.hasPartInf {
			c.partTarget, c.hasPartInf = p.partTarget, true
		} else if math.Abs(p.partTarget-c.partTarget) > 1e-9 {
			report("PART-TARGET changed from %.3f to %.3f", c.partTarget, p.partTarget)
		}
	}
	if first {
		c.ptype = p.ptype
	} else if p.ptype != c.ptype {
		report("EXT-X-PLAYLIST-TYPE changed from %q to %q", c.ptype, p.ptype)
	}

	if !first {
		c.checkAgainstPrevious(p, report)
	}

	// Every media sequence number keeps its meaning.
	for _, s := range p.segs {
		rec, ok := c.segs[s.msn]
		if !ok {
			c.segs[s.msn] = segRecord{uri: s.uri, dur: s.dur, disc: s.disc, hasPDT: s.hasPDT, pdt: s.pdt, fetch: c.fetches}
			if s.disc {
				c.discs++
			}
			continue
		}
		if rec.uri != s.uri { // another segment: its other differences say nothing more
			report("media sequence %d is %s, was %s in fetch %d", s.msn, s.uri, rec.uri, rec.fetch)
			continue
		}
		if math.Abs(rec.dur-s.dur) > durationSlack {
			report("segment %d: EXTINF %.3f, was %.3f in fetch %d", s.msn, s.dur, rec.dur, rec.fetch)
		}
		if rec.disc != s.disc {
			report("segment %d: EXT-X-DISCONTINUITY %s since fetch %d", s.msn, map[bool]string{true: "added", false: "removed"}[s.disc], rec.fetch)
		}
		if rec.hasPDT && s.hasPDT && absDuration(rec.pdt.Sub(s.pdt)) > pdtSlack {
			report("segment %d: EXT-X-PROGRAM-DATE-TIME %s, was %s in fetch %d", s.msn,
				s.pdt.Format(time.RFC3339Nano), rec.pdt.Format(time.RFC3339Nano), rec.fetch)
		}
		if !rec.hasPDT && s.hasPDT {
			rec.hasPDT, rec.pdt = true, s.pdt
			c.segs[s.msn] = rec
		}
	}

	// The segment a low-latency playlist has parts of or hints at belongs
	// to the discontinuity before it when it is listed later. hls.js
	// numbers that segment from the tags before it; a later playlist that
	// puts it behind another EXT-X-DISCONTINUITY (or an earlier one read
	// after a later one, from a cache) fails its update with "discontinuity
	// sequence mismatch", and it loads that playlist no more.
	checkAhead := func(msn uint64, disc bool, what string) {
		if rec, ok := c.ahead[msn]; ok && rec.disc != disc {
			report("segment %d %s %s EXT-X-DISCONTINUITY; fetch %d, where it came next, said %s",
				msn, what, map[bool]string{true: "follows an", false: "has no"}[disc], rec.fetch,
				map[bool]string{true: "it follows one", false: "it follows none"}[rec.disc])
		}
	}
	for _, s := range p.segs {
		checkAhead(s.msn, s.disc, "(listed)")
	}
	if p.hasPartInf && !p.ended && (len(p.tailParts) > 0 || p.hints["PART"] > 0) {
		next := p.nextMSN()
		checkAhead(next, p.tailDisc, "(next)")
		if _, ok := c.ahead[next]; !ok {
			c.ahead[next] = aheadRecord{disc: p.tailDisc, fetch: c.fetches}
		}
	}

	// Parts keep their meaning: a later fetch may drop a segment's first
	// parts or add parts after its last, never rewrite one.
	checkParts := func(msn uint64, now []part) {
		if len(now) == 0 {
			return
		}
		if before, ok := c.parts[msn]; ok && !partsAlign(before, now) {
			report("parts of segment %d changed: %s, were %s", msn, partKeys(now), partKeys(before))
		}
		c.parts[msn] = now
	}
	for _, s := range p.segs {
		checkParts(s.msn, s.parts)
	}
	checkParts(p.nextMSN(), p.tailParts)

	// Bookkeeping for the next fetch and for Summary.
	c.windows = append(c.windows, window{p.mediaSeq, p.discSeq})
	if p.mediaSeq > c.maxMediaSeq {
		c.maxMediaSeq = p.mediaSeq
	}
	if first {
		c.lastAdvance = at
	}
	if !c.ended { // the wait lasts until this fetch, whatever it shows
		if stall := at.Sub(c.lastAdvance); stall > c.longestStall {
			c.longestStall = stall
		}
	}
	if n := len(p.segs); n > 0 {
		last := p.segs[n-1].msn
		if !c.hasSegs || last > c.maxMSN {
			c.maxMSN, c.hasSegs, c.lastAdvance = last, true, at
		}
	}
	if e, ok := p.partEdge(); ok {
		if c.hasEdge && !c.ended {
			if stall := at.Sub(c.lastPartAdvance); stall > c.longestPartStall {
				c.longestPartStall = stall
			}
		}
		if !c.hasEdge || e.after(c.edge) {
			c.edge, c.hasEdge, c.lastPartAdvance = e, true, at
		}
	}
	c.ended = p.ended
}

// checkAgainstPrevious applies the rules that compare a fetch with the ones
// before it.
func (c *Media) checkAgainstPrevious(p *mediaPlaylist, report func(string, ...any)) {
	prev := c.prev
	if p.mediaSeq < c.maxMediaSeq {
		report("EXT-X-MEDIA-SEQUENCE went back from %d to %d", c.maxMediaSeq, p.mediaSeq)
	}
	total := uint64(len(p.segs)) + p.skipped
	if n := len(p.segs); n > 0 && c.hasSegs && p.segs[n-1].msn < c.maxMSN {
		report("newest segment is %d, an earlier fetch already had %d (a stale playlist)", p.segs[n-1].msn, c.maxMSN)
	}
	if total == 0 && !p.ended && c.hasSegs {
		report("playlist has no segments and no EXT-X-ENDLIST")
	}
	if prev.ended {
		if !p.ended {
			report("EXT-X-ENDLIST disappeared")
		}
		if p.nextMSN() > prev.nextMSN() {
			report("segments added after EXT-X-ENDLIST (next media sequence %d, was %d)", p.nextMSN(), prev.nextMSN())
		}
	}
	switch c.ptype {
	case "EVENT", "VOD":
		if p.mediaSeq != prev.mediaSeq {
			report("EXT-X-MEDIA-SEQUENCE changed in a %s playlist", c.ptype)
		}
		if c.ptype == "VOD" && p.nextMSN() != prev.nextMSN() {
			report("segments added to a VOD playlist")
		}
	}

	// Discontinuity sequence: the segments that left the window since the
	// latest earlier fetch that started no later than this one took their
	// EXT-X-DISCONTINUITY tags with them, and each must have been counted.
	// Checked only when the history knows every one of those segments.
	for i := len(c.windows) - 1; i >= 0; i-- {
		w := c.windows[i]
		if w.mediaSeq > p.mediaSeq {
			continue
		}
		want, known := w.discSeq, true
		for msn := w.mediaSeq; msn < p.mediaSeq; msn++ {
			rec, ok := c.segs[msn]
			if !ok {
				known = false
				break
			}
			if rec.disc {
				want++
			}
		}
		if known && p.discSeq != want {
			report("EXT-X-DISCONTINUITY-SEQUENCE is %d at media sequence %d, want %d (%d at media sequence %d plus the discontinuities that left the window)",
				p.discSeq, p.mediaSeq, want, w.discSeq, w.mediaSeq)
		}
		break
	}

	// RFC 8216 6.2.2: a segment may leave a live playlist only if at
	// least three target durations remain.
	if p.mediaSeq > prev.mediaSeq && !p.ended && c.hasTarget && total > 0 {
		remaining, known := p.duration(), true
		for msn := p.mediaSeq; msn < p.firstMSN(); msn++ { // skipped by a delta update
			rec, ok := c.segs[msn]
			if !ok {
				known = false
				break
			}
			remaining += rec.dur
		}
		if known && remaining < 3*float64(c.target)-durationSlack {
			report("segments removed leaving %.3fs, less than three target durations (%d)", remaining, c.target)
		}
	}
}

// partsAlign reports whether now is before with some leading parts dropped
// or some trailing parts added (the only changes a server makes to the parts
// of one segment: it prunes old ones and appends while the segment grows).
// The two lists must share at least one part.
func partsAlign(before, now []part) bool {
	for drop := 0; drop <= len(before); drop++ {
		rest := before[drop:]
		n := min(len(rest), len(now))
		ok := true
		for i := 0; i < n && ok; i++ {
			ok = rest[i].key() == now[i].key() && math.Abs(rest[i].dur-now[i].dur) <= durationSlack
		}
		if ok && n > 0 {
			return true
		}
	}
	return false
}

func partKeys(ps []part) string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.uri
		if p.byterange != "" {
			keys[i] += "[" + p.byterange + "]"
		}
	}
	return "[" + strings.Join(keys, " ") + "]"
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
