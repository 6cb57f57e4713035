package media

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MediaPlaylist is the part of an HLS media playlist that the node inspects
// (stats, health, ending a stream); it is not a general-purpose parser.
type MediaPlaylist struct {
	TargetDuration int
	MediaSequence  uint64
	Segments       []Segment
	Ended          bool
	Version        int
	// Map is the EXT-X-MAP URI (the fMP4 init segment), "" for MPEG-TS.
	Map string
}

// Segment is one media segment of a playlist.
type Segment struct {
	URI      string
	Duration float64
	// ProgramDateTime is the wall-clock time of the segment's first sample:
	// from its own EXT-X-PROGRAM-DATE-TIME, else extrapolated from the previous
	// segment's; zero when the playlist has none.
	ProgramDateTime time.Time
}

// Variant is one EXT-X-STREAM-INF entry of a master playlist.
type Variant struct {
	URI        string
	Bandwidth  int
	Resolution string
	Codecs     string
}

var errNotM3U8 = errors.New("not an m3u8 playlist: missing #EXTM3U")

// ParseMediaPlaylist reads an HLS media playlist.
func ParseMediaPlaylist(r io.Reader) (*MediaPlaylist, error) {
	p := &MediaPlaylist{}
	var (
		pending    *Segment // EXTINF seen, URI not yet
		pendingPDT time.Time
		lastPDT    time.Time
		lastDur    float64
	)
	err := eachLine(r, "media playlist", func(lineNumber int, line string) error {
		if !strings.HasPrefix(line, "#") {
			// A URI line closes the segment its EXTINF opened.
			seg := Segment{URI: line}
			if pending != nil {
				seg.Duration = pending.Duration
			}
			switch {
			case !pendingPDT.IsZero():
				seg.ProgramDateTime = pendingPDT
			case !lastPDT.IsZero():
				seg.ProgramDateTime = lastPDT.Add(time.Duration(lastDur * float64(time.Second)))
			}
			lastPDT, lastDur = seg.ProgramDateTime, seg.Duration
			p.Segments = append(p.Segments, seg)
			pending, pendingPDT = nil, time.Time{}
			return nil
		}
		tag, value, _ := strings.Cut(line, ":")
		var err error
		switch tag {
		case "#EXT-X-TARGETDURATION":
			p.TargetDuration, err = strconv.Atoi(value)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.MediaSequence, err = strconv.ParseUint(value, 10, 64)
		case "#EXT-X-VERSION":
			p.Version, err = strconv.Atoi(value)
		case "#EXT-X-ENDLIST":
			p.Ended = true
		case "#EXT-X-MAP":
			p.Map = parseAttributes(value)["URI"]
		case "#EXTINF":
			durText, _, _ := strings.Cut(value, ",")
			var d float64
			d, err = strconv.ParseFloat(strings.TrimSpace(durText), 64)
			pending = &Segment{Duration: d}
		case "#EXT-X-PROGRAM-DATE-TIME":
			pendingPDT, err = parseProgramDateTime(value)
		case "#EXT-X-DISCONTINUITY":
			// Timestamps restart; do not extrapolate across it.
			lastPDT = time.Time{}
		}
		if err != nil {
			return fmt.Errorf("m3u8 line %d %q: %w", lineNumber, line, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// eachLine calls fn with every non-blank line of a playlist after its
// #EXTM3U header (numbered from 1 in the file), trimmed; what is names the
// playlist in a read error.
func eachLine(r io.Reader, what string, fn func(lineNumber int, line string) error) error {
	sc := newLineScanner(r)
	n, header := 0, false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case !header:
			if line != "#EXTM3U" {
				return errNotM3U8
			}
			header = true
		default:
			if err := fn(n, line); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if !header {
		return errNotM3U8
	}
	return nil
}

// ParseMasterPlaylist reads the variants of an HLS master playlist.
func ParseMasterPlaylist(r io.Reader) ([]Variant, error) {
	var (
		variants []Variant
		pending  *Variant
	)
	err := eachLine(r, "master playlist", func(_ int, line string) error {
		if rest, ok := strings.CutPrefix(line, "#EXT-X-STREAM-INF:"); ok {
			attrs := parseAttributes(rest)
			v := Variant{Resolution: attrs["RESOLUTION"], Codecs: attrs["CODECS"]}
			if b, ok := attrs["BANDWIDTH"]; ok {
				n, err := strconv.Atoi(b)
				if err != nil {
					return fmt.Errorf("master playlist BANDWIDTH %q: %w", b, err)
				}
				v.Bandwidth = n
			}
			pending = &v
			return nil
		}
		if !strings.HasPrefix(line, "#") && pending != nil {
			pending.URI = line
			variants = append(variants, *pending)
			pending = nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return variants, nil
}

// ParseMasterAudio returns the URIs of the audio renditions of an HLS master
// playlist (EXT-X-MEDIA TYPE=AUDIO entries with a URI), in order. Audio
// carried inside the variants (no URI) is not listed.
func ParseMasterAudio(r io.Reader) ([]string, error) {
	var uris []string
	err := eachLine(r, "master playlist", func(_ int, line string) error {
		if rest, ok := strings.CutPrefix(line, "#EXT-X-MEDIA:"); ok {
			attrs := parseAttributes(rest)
			if attrs["TYPE"] == "AUDIO" && attrs["URI"] != "" {
				uris = append(uris, attrs["URI"])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return uris, nil
}

// newLineScanner scans lines of any length a playlist may reasonably have;
// bufio's default 64 KiB limit is plenty for one line, but a long CODECS or
// URI list should not fail with "token too long".
func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	return sc
}

// parseAttributes parses an HLS attribute list (KEY=VALUE,KEY="quoted, value").
// Quotes are removed; a comma inside quotes does not split.
func parseAttributes(s string) map[string]string {
	attrs := map[string]string{}
	for len(s) > 0 {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		key = strings.TrimSpace(key)
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:1+end], rest[2+end:]
			}
			_, rest, _ = strings.Cut(rest, ",")
		} else {
			val, rest, _ = strings.Cut(rest, ",")
		}
		attrs[key] = strings.TrimSpace(val)
		s = rest
	}
	return attrs
}

// parseProgramDateTime accepts ISO 8601 as players see it: ffmpeg writes the
// zone without a colon (+0000), the RFC says RFC 3339 (Z or +00:00).
func parseProgramDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad program date time %q", s)
}
