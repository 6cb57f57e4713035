package hlscheck

import (
	"errors"
	"fmt"
	"strings"
)

// mediaPlaylistTags must not appear in a Multivariant Playlist (RFC 8216
// 4.1: a playlist is one or the other).
var mediaPlaylistTags = map[string]bool{
	"EXTINF": true, "EXT-X-TARGETDURATION": true, "EXT-X-MEDIA-SEQUENCE": true,
	"EXT-X-DISCONTINUITY-SEQUENCE": true, "EXT-X-ENDLIST": true, "EXT-X-PLAYLIST-TYPE": true,
	"EXT-X-I-FRAMES-ONLY": true, "EXT-X-DISCONTINUITY": true, "EXT-X-PROGRAM-DATE-TIME": true,
	"EXT-X-MAP": true, "EXT-X-PART": true, "EXT-X-PART-INF": true, "EXT-X-SERVER-CONTROL": true,
	"EXT-X-PRELOAD-HINT": true, "EXT-X-SKIP": true, "EXT-X-RENDITION-REPORT": true,
}

// Multivariant checks a Multivariant (master) Playlist and returns every
// rule it breaks, joined, or nil. Besides RFC 8216 it requires CODECS on
// every variant: players pick variants by codec before fetching anything,
// and the project always knows them.
func Multivariant(body []byte) error {
	lines, header := splitLines(body)
	var errs []error
	bad := func(l line, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", l.no, fmt.Sprintf(format, args...)))
	}
	if !header {
		errs = append(errs, errors.New("first line is not #EXTM3U"))
	}

	type groupRef struct {
		l          line
		typ, group string
	}
	var (
		refs     []groupRef
		variants int
		version  uint64 = 1
		service  bool
		pending  *line // EXT-X-STREAM-INF waiting for its URI line
	)
	groups := map[string]bool{}  // TYPE/GROUP-ID
	names := map[string]bool{}   // TYPE/GROUP-ID/NAME
	defaults := map[string]int{} // TYPE/GROUP-ID -> DEFAULT=YES count
	seenOnce := map[string]bool{}

	for i := range lines {
		l := lines[i]
		if pending != nil {
			if !l.isURI {
				bad(*pending, "EXT-X-STREAM-INF is not followed by its URI line (got #%s on line %d)", l.tag, l.no)
			}
			pending = nil
			if l.isURI {
				continue
			}
		}
		if l.isURI {
			bad(l, "URI %q without EXT-X-STREAM-INF", l.uri)
			continue
		}
		if mediaPlaylistTags[l.tag] {
			bad(l, "%s belongs in a Media Playlist", l.tag)
			continue
		}
		switch l.tag {
		case "EXT-X-VERSION", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START":
			if seenOnce[l.tag] {
				bad(l, "%s appears more than once", l.tag)
			}
			seenOnce[l.tag] = true
			if l.tag == "EXT-X-VERSION" {
				n, err := parseDecimalInt(l.value)
				if err != nil {
					bad(l, "EXT-X-VERSION: %v", err)
				}
				version = n
			}
		case "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF":
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "%s: %v", l.tag, err)
				if l.tag == "EXT-X-STREAM-INF" {
					pending = &lines[i]
				}
				continue
			}
			variants++
			if _, ok, err := a.integer("BANDWIDTH"); err != nil || !ok {
				bad(l, "%s needs a decimal-integer BANDWIDTH (%v)", l.tag, err)
			}
			if _, _, err := a.integer("AVERAGE-BANDWIDTH"); err != nil {
				bad(l, "%s: %v", l.tag, err)
			}
			if _, _, err := a.float("FRAME-RATE"); err != nil {
				bad(l, "%s: %v", l.tag, err)
			}
			if codecs, ok, err := a.str("CODECS"); err != nil || !ok || codecs == "" {
				bad(l, "%s needs a quoted, non-empty CODECS (%v)", l.tag, err)
			}
			if res, ok, err := a.enum("RESOLUTION"); ok && (err != nil || !validResolution(res)) {
				bad(l, "%s: RESOLUTION %q is not <width>x<height>", l.tag, res)
			}
			for _, typ := range []string{"AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"} {
				g, ok, err := a.str(typ)
				if typ == "CLOSED-CAPTIONS" && !a.quoted[typ] && g == "NONE" {
					continue
				}
				if err != nil {
					bad(l, "%s: %v", l.tag, err)
				}
				if ok {
					refs = append(refs, groupRef{l, typ, g})
				}
			}
			if l.tag == "EXT-X-STREAM-INF" {
				pending = &lines[i]
			} else if _, ok, err := a.str("URI"); err != nil || !ok {
				bad(l, "EXT-X-I-FRAME-STREAM-INF needs a quoted URI")
			}
		case "EXT-X-MEDIA":
			a, err := parseAttrs(l.value)
			if err != nil {
				bad(l, "EXT-X-MEDIA: %v", err)
				continue
			}
			typ, _, _ := a.enum("TYPE")
			group, hasGroup, gErr := a.str("GROUP-ID")
			name, hasName, nErr := a.str("NAME")
			uri, hasURI, _ := a.str("URI")
			switch {
			case typ != "AUDIO" && typ != "VIDEO" && typ != "SUBTITLES" && typ != "CLOSED-CAPTIONS":
				bad(l, "EXT-X-MEDIA TYPE %q is not AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS", typ)
			case !hasGroup || gErr != nil || group == "":
				bad(l, "EXT-X-MEDIA needs a quoted GROUP-ID")
			case !hasName || nErr != nil || name == "":
				bad(l, "EXT-X-MEDIA needs a quoted NAME")
			}
			switch typ {
			case "CLOSED-CAPTIONS":
				id, ok, _ := a.str("INSTREAM-ID")
				if !ok {
					bad(l, "EXT-X-MEDIA TYPE=CLOSED-CAPTIONS needs INSTREAM-ID")
				}
				if strings.HasPrefix(id, "SERVICE") {
					service = true
				}
				if hasURI {
					bad(l, "EXT-X-MEDIA TYPE=CLOSED-CAPTIONS must not have a URI (%q)", uri)
				}
			case "SUBTITLES":
				if !hasURI {
					bad(l, "EXT-X-MEDIA TYPE=SUBTITLES needs a URI")
				}
			}
			key := typ + "/" + group
			groups[key] = true
			if names[key+"/"+name] {
				bad(l, "EXT-X-MEDIA NAME %q repeated in group %s", name, key)
			}
			names[key+"/"+name] = true
			def, _, _ := a.enum("DEFAULT")
			auto, hasAuto, _ := a.enum("AUTOSELECT")
			if def == "YES" {
				defaults[key]++
				if defaults[key] == 2 {
					bad(l, "more than one DEFAULT=YES rendition in group %s", key)
				}
				if hasAuto && auto != "YES" {
					bad(l, "EXT-X-MEDIA with DEFAULT=YES must have AUTOSELECT=YES")
				}
			}
		}
	}
	if pending != nil {
		bad(*pending, "EXT-X-STREAM-INF is not followed by its URI line")
	}
	for _, r := range refs {
		if !groups[r.typ+"/"+r.group] {
			bad(r.l, "%s=%q names no EXT-X-MEDIA TYPE=%s group", r.typ, r.group, r.typ)
		}
	}
	if variants == 0 {
		errs = append(errs, errors.New("no EXT-X-STREAM-INF"))
	}
	if service && version < 7 {
		errs = append(errs, fmt.Errorf("INSTREAM-ID SERVICE values need EXT-X-VERSION 7 or higher, playlist has %d", version))
	}
	return errors.Join(errs...)
}

// validResolution reports whether s is a decimal-resolution with both
// dimensions positive.
func validResolution(s string) bool {
	w, h, ok := strings.Cut(s, "x")
	if !ok {
		return false
	}
	wn, err1 := parseDecimalInt(w)
	hn, err2 := parseDecimalInt(h)
	return err1 == nil && err2 == nil && wn > 0 && hn > 0
}
