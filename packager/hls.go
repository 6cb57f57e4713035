package packager

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// File names of a stream's output. They are part of the playback URLs.
const (
	MultivariantName = "master.m3u8"
	MediaName        = "index.m3u8"
	ManifestName     = "manifest.mpd"
	// AudioTrack is the one audio rendition every video rendition shares.
	AudioTrack = "audio"
)

func (s *Stream) segmentURI(msn uint64) string {
	return s.id + "-" + strconv.FormatUint(msn, 10) + ".m4s"
}

// uriOf names a listed segment: CMAF segments have an init segment, MPEG-TS
// ones do not.
func (s *Stream) uriOf(sg *segment) string {
	if sg.Init == "" {
		return s.id + "-" + strconv.FormatUint(sg.MSN, 10) + ".ts"
	}
	return s.segmentURI(sg.MSN)
}

func (s *Stream) partURI(msn uint64, i int) string {
	return s.id + "-" + strconv.FormatUint(msn, 10) + "." + strconv.Itoa(i) + ".m4s"
}

// lowLatency is whether media playlists carry parts.
func (s *Stream) lowLatency() bool { return s.cfg.PartTarget > 0 }

func formatSeconds(d float64) string { return strconv.FormatFloat(d, 'f', 3, 64) }

func formatPDT(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// renderMultivariantLocked writes the multivariant playlist of the active
// generation's tracks, naming each track's media playlist mediaName; ok is
// false before any generation has started.
func (s *Stream) renderMultivariantLocked(mediaName string) ([]byte, bool) {
	if len(s.order) == 0 {
		return nil, false
	}
	tracks := make([]TrackRecord, 0, len(s.order))
	for _, name := range s.order {
		t := s.tracks[name]
		tracks = append(tracks, TrackRecord{Spec: t.spec, Info: t.info})
	}
	var b strings.Builder
	writeMultivariant(&b, tracks, mediaName)
	return []byte(b.String()), true
}

// renderMediaLocked writes one track's media playlist.
func (s *Stream) renderMediaLocked(name string) ([]byte, bool) {
	t, ok := s.tracks[name]
	if !ok {
		return nil, false
	}
	t = s.viewLocked(name, t)
	listed := s.listedLocked(t)
	open := t.open()
	ll := s.lowLatency()
	if !ll {
		open = nil
	}
	if len(listed) == 0 && open == nil {
		return nil, false
	}
	target := s.cfg.TargetDuration
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	if ll {
		b.WriteString("#EXT-X-VERSION:9\n")
	} else {
		b.WriteString("#EXT-X-VERSION:6\n")
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	if ll {
		// No CAN-SKIP-UNTIL: delta updates are not offered. hls.js checks a
		// delta's discontinuity numbers against the playlist it had, which
		// may have come from another node's copy a moment before a
		// takeover; a full playlist (a few kB) never trips that.
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%s\n",
			formatSeconds(3*s.cfg.PartTarget))
		fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%s\n", formatSeconds(s.cfg.PartTarget))
	}
	all := listed
	if open != nil {
		all = append(all[:len(all):len(all)], open)
	}
	first := all[0]
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", first.MSN)
	ds := first.DiscSeq
	if first.Disc {
		ds--
	}
	fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", ds)

	// Parts are listed for the segments that start within the last three
	// target durations (RFC 8216bis removes older parts; a segment's parts
	// go together). Not "the segments of the last three target durations":
	// the oldest of those may start a whole segment earlier, and an audio
	// segment is longer than the target by up to a part.
	partsFrom := len(all)
	var tail float64
	for i := len(all) - 1; i >= 0; i-- {
		tail += all[i].Duration
		if tail > 3*float64(target) && i < len(all)-1 {
			break
		}
		partsFrom = i
	}
	prevInit := ""
	for i, sg := range all {
		if sg.Disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if sg.Init != "" && (sg.Init != prevInit || i == 0) {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", sg.Init)
			prevInit = sg.Init
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", formatPDT(sg.PDT))
		if ll && i >= partsFrom {
			for j, p := range sg.Parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s\"", formatSeconds(p.Duration), s.partURI(sg.MSN, j))
				if p.Independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if sg.Complete {
			fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", formatSeconds(sg.Duration), s.uriOf(sg))
		}
	}
	// A live low-latency playlist always ends with a preload hint, also
	// while nothing produces (a publisher reconnecting, a copy served while
	// the owner is gone): the next producer continues this track's
	// numbering, so the hinted part is the one that will come. Players
	// take the last entry of a playlist without a hint for the segment
	// being made (hls.js does), and then cannot merge the next update.
	if ll && !s.ended && !t.ended {
		if open == nil && s.discAheadLocked(s.tracks[name], t) {
			// The hinted part opens the first segment of the next
			// producer, behind a discontinuity. Said here, a playlist
			// agrees with every later one on the discontinuity of that
			// segment: hls.js numbers the hinted segment with the
			// discontinuities before it, and an update that puts it
			// after another (one served late, by a cache, arriving after
			// a newer one) is a "discontinuity sequence mismatch", after
			// which it stops loading that playlist.
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		msn, idx := s.nextPartLocked(t)
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", s.partURI(msn, idx))
		for _, other := range s.order {
			ot := s.viewLocked(other, s.tracks[other])
			if other == name || ot.info.Kind != t.info.Kind || len(ot.segs) == 0 {
				continue
			}
			last := ot.segs[len(ot.segs)-1]
			fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"../%s/%s\",LAST-MSN=%d,LAST-PART=%d\n",
				other, MediaName, last.MSN, max(len(last.Parts)-1, 0))
		}
	}
	if s.ended || t.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String()), true
}

// discAheadLocked tells whether the segment after the last one of view (a
// track as players may see it, its last segment complete) follows a
// discontinuity: the segment the gate still hides, or else the next
// producer's first.
func (s *Stream) discAheadLocked(t, view *track) bool {
	n := len(view.segs)
	if n == 0 {
		return false
	}
	if i := t.index(view.segs[n-1].MSN); i >= 0 && i+1 < len(t.segs) {
		return t.segs[i+1].Disc
	}
	return s.seamNextLocked()
}

// nextPartLocked names the part that will come next on a track.
func (s *Stream) nextPartLocked(t *track) (uint64, int) {
	if o := t.open(); o != nil {
		// The transcoder cuts where the schedule says: a part that would
		// start on the boundary opens the next segment.
		if ts := float64(t.info.Timescale); ts > 0 && len(o.Parts) > 0 {
			end := float64(o.Start)/ts + o.Duration
			if end >= t.nextBoundary-s.cutTolerance() {
				return o.MSN + 1, 0
			}
		}
		return o.MSN, len(o.Parts)
	}
	if n := len(t.segs); n > 0 {
		return t.segs[n-1].MSN + 1, 0
	}
	return s.cfg.FirstMSN, 0
}
