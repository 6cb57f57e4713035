package hlscheck

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file is a deliberately small, strict M3U8 reader. It does not share
// code with the media package on purpose: a checker that reused the
// producer's parser would accept whatever the producer gets wrong.

// attrs is a parsed attribute list (RFC 8216 section 4.2). Quoted-string
// values are stored without their quotes; quoted records which ones were
// quoted, because some attributes must be and others must not be.
type attrs struct {
	vals   map[string]string
	quoted map[string]bool
}

// parseAttrs parses AttributeName=AttributeValue pairs. It rejects what a
// lenient parser would guess about: a missing '=', an unterminated quote,
// garbage after a closing quote, a repeated name.
func parseAttrs(s string) (attrs, error) {
	a := attrs{vals: map[string]string{}, quoted: map[string]bool{}}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return a, fmt.Errorf("attribute %q has no value", s)
		}
		if name == "" || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return a, fmt.Errorf("bad attribute name %q", name)
		}
		if _, dup := a.vals[name]; dup {
			return a, fmt.Errorf("attribute %s repeated", name)
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return a, fmt.Errorf("attribute %s: unterminated quoted string", name)
			}
			val, rest = rest[1:1+end], rest[2+end:]
			if rest != "" && rest[0] != ',' {
				return a, fmt.Errorf("attribute %s: unexpected %q after quoted string", name, rest)
			}
			rest = strings.TrimPrefix(rest, ",")
			a.quoted[name] = true
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			if val == "" || strings.ContainsAny(val, "\" \t") {
				return a, fmt.Errorf("attribute %s: bad value %q", name, val)
			}
		}
		a.vals[name] = val
		s = rest
	}
	return a, nil
}

func (a attrs) has(name string) bool { _, ok := a.vals[name]; return ok }

// str returns a quoted-string attribute.
func (a attrs) str(name string) (string, bool, error) {
	v, ok := a.vals[name]
	if !ok {
		return "", false, nil
	}
	if !a.quoted[name] {
		return v, true, fmt.Errorf("%s must be a quoted string", name)
	}
	return v, true, nil
}

// enum returns an enumerated-string attribute (never quoted).
func (a attrs) enum(name string) (string, bool, error) {
	v, ok := a.vals[name]
	if ok && a.quoted[name] {
		return v, true, fmt.Errorf("%s must not be quoted", name)
	}
	return v, ok, nil
}

func (a attrs) integer(name string) (uint64, bool, error) {
	v, ok := a.vals[name]
	if !ok {
		return 0, false, nil
	}
	n, err := parseDecimalInt(v)
	if err != nil || a.quoted[name] {
		return 0, true, fmt.Errorf("%s=%s is not a decimal-integer", name, v)
	}
	return n, true, nil
}

func (a attrs) float(name string) (float64, bool, error) {
	v, ok := a.vals[name]
	if !ok {
		return 0, false, nil
	}
	f, err := parseDecimalFloat(v)
	if err != nil || a.quoted[name] {
		return 0, true, fmt.Errorf("%s=%s is not a decimal-floating-point", name, v)
	}
	return f, true, nil
}

// parseDecimalInt accepts RFC 8216 decimal-integers only: digits, no sign.
func parseDecimalInt(s string) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a decimal-integer: %q", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseDecimalFloat accepts non-negative decimal-floating-point values:
// digits with an optional fraction, no sign, exponent, NaN or Inf.
func parseDecimalFloat(s string) (float64, error) {
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || s == "." {
		return 0, fmt.Errorf("not a decimal-floating-point: %q", s)
	}
	return strconv.ParseFloat(s, 64)
}

// parsePDT accepts ISO 8601 date-times the way players do: RFC 3339 (Z or
// +00:00) and the colon-less zone ffmpeg writes (+0000).
func parsePDT(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad EXT-X-PROGRAM-DATE-TIME %q", s)
}

// line is one meaningful playlist line: a tag (name and value) or a URI.
type line struct {
	no    int // 1-based, for messages
	tag   string
	value string
	uri   string
	hasV  bool // the tag had a ':' (even with an empty value)
	isURI bool
}

// splitLines returns the tags and URIs of body, dropping blank lines and
// comments, and reports whether the first line is exactly #EXTM3U.
func splitLines(body []byte) (lines []line, header bool) {
	raw := strings.Split(string(body), "\n")
	for i, l := range raw {
		l = strings.TrimRight(l, "\r \t")
		if i == 0 {
			header = l == "#EXTM3U"
			if header {
				continue
			}
		}
		switch {
		case l == "":
		case strings.HasPrefix(l, "#EXT"):
			name, value, hasV := strings.Cut(l[1:], ":")
			lines = append(lines, line{no: i + 1, tag: name, value: value, hasV: hasV})
		case strings.HasPrefix(l, "#"):
			// a comment
		default:
			lines = append(lines, line{no: i + 1, uri: strings.TrimSpace(l), isURI: true})
		}
	}
	return lines, header
}

// part is one EXT-X-PART.
type part struct {
	dur         float64
	uri         string
	byterange   string
	independent bool
}

func (p part) key() string { return p.uri + "@" + p.byterange }

// segment is one Media Segment with the tags that apply to it.
type segment struct {
	msn    uint64
	dur    float64
	uri    string
	disc   bool
	hasPDT bool
	pdt    time.Time
	parts  []part
	line   int
}

// mediaPlaylist is one fetch of a Media Playlist.
type mediaPlaylist struct {
	header bool

	version    uint64
	hasVersion bool
	target     uint64
	hasTarget  bool
	mediaSeq   uint64
	discSeq    uint64
	ended      bool
	ptype      string
	iframes    bool

	hasMap, byterange, floatExtinf, define, defineQuery bool

	hasPartInf bool
	partTarget float64
	server     *attrs
	skipped    uint64
	hasSkip    bool
	skipRRD    bool

	segs      []segment
	tailParts []part // parts of the segment still being written (MSN after the last)
	// tailDisc: an EXT-X-DISCONTINUITY after the last segment, applying to
	// the segment being written or hinted at.
	tailDisc bool
	hints    map[string]int
	reports  int

	problems []string // violations found while reading
}

// duration is the total duration of the listed (not skipped) segments.
func (p *mediaPlaylist) duration() float64 {
	var d float64
	for _, s := range p.segs {
		d += s.dur
	}
	return d
}

// firstMSN is the media sequence number of the first listed segment.
func (p *mediaPlaylist) firstMSN() uint64 { return p.mediaSeq + p.skipped }

// nextMSN is the number the next complete segment will get (the segment the
// trailing parts belong to).
func (p *mediaPlaylist) nextMSN() uint64 { return p.firstMSN() + uint64(len(p.segs)) }

// partEdge is where the newest part listed is: the segment being written,
// or else the last segment that lists parts.
func (p *mediaPlaylist) partEdge() (partEdge, bool) {
	if len(p.tailParts) > 0 {
		return partEdge{p.nextMSN(), len(p.tailParts)}, true
	}
	for i := len(p.segs) - 1; i >= 0; i-- {
		if len(p.segs[i].parts) > 0 {
			return partEdge{p.segs[i].msn, len(p.segs[i].parts)}, true
		}
	}
	return partEdge{}, false
}

// onceTags may appear at most once in a Media Playlist.
var onceTags = map[string]bool{
	"EXT-X-VERSION": true, "EXT-X-TARGETDURATION": true, "EXT-X-MEDIA-SEQUENCE": true,
	"EXT-X-DISCONTINUITY-SEQUENCE": true, "EXT-X-ENDLIST": true, "EXT-X-PLAYLIST-TYPE": true,
	"EXT-X-I-FRAMES-ONLY": true, "EXT-X-PART-INF": true, "EXT-X-SERVER-CONTROL": true,
	"EXT-X-SKIP": true, "EXT-X-INDEPENDENT-SEGMENTS": true, "EXT-X-START": true,
}

// multivariantTags must not appear in a Media Playlist.
var multivariantTags = map[string]bool{
	"EXT-X-STREAM-INF": true, "EXT-X-I-FRAME-STREAM-INF": true, "EXT-X-MEDIA": true,
	"EXT-X-SESSION-DATA": true, "EXT-X-SESSION-KEY": true, "EXT-X-CONTENT-STEERING": true,
}

// parseMedia reads one Media Playlist. It never fails: what it cannot make
// sense of becomes a problem and reading goes on, so one bad line does not
// hide the rest of the fetch.
func parseMedia(body []byte) *mediaPlaylist {
	lines, header := splitLines(body)
	p := &mediaPlaylist{header: header, hints: map[string]int{}}
	bad := func(l line, format string, args ...any) {
		p.problems = append(p.problems, fmt.Sprintf("line %d: ", l.no)+fmt.Sprintf(format, args...))
	}
	if !header {
		p.problems = append(p.problems, "first line is not #EXTM3U")
	}

	seen := map[string]bool{}
	var (
		cur       segment // tags seen for the next segment
		hasExtinf bool
	)
	for _, l := range lines {
		if l.isURI {
			if !hasExtinf {
				bad(l, "URI %q without EXTINF", l.uri)
			}
			cur.uri, cur.line = l.uri, l.no
			p.segs = append(p.segs, cur)
			cur, hasExtinf = segment{}, false
			continue
		}
		if onceTags[l.tag] && seen[l.tag] {
			bad(l, "%s appears more than once", l.tag)
		}
		seen[l.tag] = true
		if multivariantTags[l.tag] {
			bad(l, "%s belongs in a Multivariant Playlist", l.tag)
			continue
		}
		beforeSegments := func() {
			if len(p.segs) > 0 || hasExtinf {
				bad(l, "%s must appear before the first segment", l.tag)
			}
		}
		switch l.tag {
		case "EXT-X-VERSION":
			n, err := parseDecimalInt(l.value)
			if err != nil {
				bad(l, "EXT-X-VERSION: %v", err)
			}
			p.version, p.hasVersion = n, true
		case "EXT-X-TARGETDURATION":
			n, err := parseDecimalInt(l.value)
			if err != nil {
				bad(l, "EXT-X-TARGETDURATION: %v", err)
				continue
			}
			p.target, p.hasTarget = n, true
		case "EXT-X-MEDIA-SEQUENCE":
			beforeSegments()
			n, err := parseDecimalInt(l.value)
			if err != nil {
				bad(l, "EXT-X-MEDIA-SEQUENCE: %v", err)
			}
			p.mediaSeq = n
		case "EXT-X-DISCONTINUITY-SEQUENCE":
			beforeSegments()
			n, err := parseDecimalInt(l.value)
			if err != nil {
				bad(l, "EXT-X-DISCONTINUITY-SEQUENCE: %v", err)
			}
			p.discSeq = n
		case "EXT-X-ENDLIST":
			p.ended = true
		case "EXT-X-PLAYLIST-TYPE":
			if l.value != "EVENT" && l.value != "VOD" {
				bad(l, "EXT-X-PLAYLIST-TYPE %q is neither EVENT nor VOD", l.value)
			}
			p.ptype = l.value
		case "EXT-X-I-FRAMES-ONLY":
			p.iframes = true
		case "EXT-X-MAP":
			p.hasMap = true
			a, err := parseAttrs(l.value)
			if err == nil {
				if _, ok, e := a.str("URI"); !ok || e != nil {
					err = fmt.Errorf("URI missing or not quoted")
				}
			}
			if err != nil {
				bad(l, "EXT-X-MAP: %v", err)
			}
		case "EXT-X-BYTERANGE":
			p.byterange = true
		case "EXT-X-DEFINE":
			p.define = true
			if a, err := parseAttrs(l.value); err != nil {
				bad(l, "EXT-X-DEFINE: %v", err)
			} else if a.has("QUERYPARAM") {
				p.defineQuery = true
			}
		case "EXTINF":
			if hasExtinf {
				bad(l, "two EXTINF tags for one segment")
			}
			hasExtinf = true
			d, _, _ := strings.Cut(l.value, ",")
			f, err := parseDecimalFloat(d)
			if err != nil {
				bad(l, "EXTINF: %v", err)
			} else if f <= 0 {
				bad(l, "EXTINF duration %s is not positive", d)
			}
			cur.dur = f
			if strings.Contains(d, ".") {
				p.floatExtinf = true
			}
		case "EXT-X-DISCONTINUITY":
			cur.disc = true
		case "EXT-X-PROGRAM-DATE-TIME":
			t, err := parsePDT(l.value)
			if err != nil {
				bad(l, "%v", err)
				continue
			}
			cur.pdt, cur.hasPDT = t, true
		case "EXT-X-PART-INF":
			p.hasPartInf = true
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-PART-INF: %v", err)
				continue
			}
			f, ok, err := a.float("PART-TARGET")
			switch {
			case err != nil:
				bad(l, "EXT-X-PART-INF: %v", err)
			case !ok || f <= 0:
				bad(l, "EXT-X-PART-INF without a positive PART-TARGET")
			}
			p.partTarget = f
		case "EXT-X-PART":
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-PART: %v", err)
				continue
			}
			var pt part
			var ok bool
			if pt.dur, ok, err = a.float("DURATION"); err != nil || !ok {
				bad(l, "EXT-X-PART needs a DURATION (%v)", err)
			}
			if pt.uri, ok, err = a.str("URI"); err != nil || !ok {
				bad(l, "EXT-X-PART needs a quoted URI (%v)", err)
			}
			pt.byterange, _, _ = a.str("BYTERANGE")
			ind, _, _ := a.enum("INDEPENDENT")
			pt.independent = ind == "YES"
			cur.parts = append(cur.parts, pt)
		case "EXT-X-PRELOAD-HINT":
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-PRELOAD-HINT: %v", err)
				continue
			}
			typ, _, _ := a.enum("TYPE")
			if typ != "PART" && typ != "MAP" {
				bad(l, "EXT-X-PRELOAD-HINT TYPE %q is neither PART nor MAP", typ)
			}
			if _, ok, err := a.str("URI"); !ok || err != nil {
				bad(l, "EXT-X-PRELOAD-HINT needs a quoted URI")
			}
			p.hints[typ]++
			if p.hints[typ] == 2 {
				bad(l, "more than one EXT-X-PRELOAD-HINT with TYPE=%s", typ)
			}
		case "EXT-X-RENDITION-REPORT":
			p.reports++
			a, err := parseAttrs(l.value)
			if err == nil {
				if _, ok, e := a.str("URI"); !ok || e != nil {
					err = fmt.Errorf("URI missing or not quoted")
				}
			}
			if err == nil {
				_, _, err = a.integer("LAST-MSN")
			}
			if err == nil {
				_, _, err = a.integer("LAST-PART")
			}
			if err != nil {
				bad(l, "EXT-X-RENDITION-REPORT: %v", err)
			}
		case "EXT-X-SERVER-CONTROL":
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-SERVER-CONTROL: %v", err)
				continue
			}
			for _, name := range []string{"CAN-SKIP-UNTIL", "HOLD-BACK", "PART-HOLD-BACK"} {
				if _, _, err := a.float(name); err != nil {
					bad(l, "EXT-X-SERVER-CONTROL: %v", err)
				}
			}
			p.server = &a
		case "EXT-X-SKIP":
			beforeSegments()
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-SKIP: %v", err)
				continue
			}
			n, ok, err := a.integer("SKIPPED-SEGMENTS")
			if err != nil || !ok {
				bad(l, "EXT-X-SKIP needs SKIPPED-SEGMENTS (%v)", err)
			}
			p.skipped, p.hasSkip = n, true
			p.skipRRD = a.has("RECENTLY-REMOVED-DATERANGES")
		}
	}
	if hasExtinf {
		p.problems = append(p.problems, "last EXTINF has no URI")
	}
	p.tailParts, p.tailDisc = cur.parts, cur.disc
	for i := range p.segs {
		p.segs[i].msn = p.firstMSN() + uint64(i)
	}
	return p
}

// roundHalfUp rounds a duration the way RFC 8216 compares EXTINF with
// EXT-X-TARGETDURATION ("rounded to the nearest integer").
func roundHalfUp(f float64) uint64 { return uint64(math.Floor(f + 0.5)) }
