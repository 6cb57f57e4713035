package packager

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Copy is one node's copy of a recording, as its index says: the tracks
// and every segment it wrote. A recording may have several (the owner's
// and its standby's, the owners' before and after a move), each whole or
// partial.
type Copy struct {
	Node     string
	Tracks   []TrackRecord
	Segments []SegmentRecord
}

// Asset is a recording as VOD playlists show it: merged from its copies,
// each segment listed once, with the node that holds it.
type Asset struct {
	Tracks []TrackRecord
	// Segments by track, by sequence number.
	Segments map[string][]SegmentRecord
	// files: track -> file name -> node holding it.
	files map[string]map[string]string
}

// Merge makes one asset of a recording's copies. Per track, the copy with
// the most segments is the base and the others fill its gaps: a segment
// number keeps one version (copies made on both sides of a handover may
// differ under the same number; the base's wins). Tracks are listed in the
// order of the copy that knows most of them.
func Merge(copies []Copy) *Asset {
	a := &Asset{Segments: map[string][]SegmentRecord{}, files: map[string]map[string]string{}}
	byTrack := map[string][]*Copy{}
	for i := range copies {
		c := &copies[i]
		if len(c.Tracks) > len(a.Tracks) {
			a.Tracks = slices.Clone(c.Tracks)
		}
	}
	for i := range copies {
		c := &copies[i]
		for _, t := range c.Tracks {
			if !slices.ContainsFunc(a.Tracks, func(x TrackRecord) bool { return x.Spec.Name == t.Spec.Name }) {
				a.Tracks = append(a.Tracks, t)
			}
		}
		seen := map[string]bool{}
		for _, sg := range c.Segments {
			if !seen[sg.Track] {
				seen[sg.Track] = true
				byTrack[sg.Track] = append(byTrack[sg.Track], c)
			}
		}
	}
	for _, t := range a.Tracks {
		name := t.Spec.Name
		holders := byTrack[name]
		count := func(c *Copy) int {
			n := 0
			for _, sg := range c.Segments {
				if sg.Track == name {
					n++
				}
			}
			return n
		}
		// The base first, then the others by name: the same merge on every node.
		slices.SortStableFunc(holders, func(x, y *Copy) int {
			if cx, cy := count(x), count(y); cx != cy {
				return cy - cx
			}
			return strings.Compare(x.Node, y.Node)
		})
		have := map[uint64]bool{}
		var list []SegmentRecord
		files := map[string]string{}
		for _, c := range holders {
			for _, sg := range c.Segments {
				if sg.Track != name || have[sg.MSN] {
					continue
				}
				have[sg.MSN] = true
				sg.Node = c.Node
				list = append(list, sg)
				files[sg.File] = c.Node
				if _, ok := files[sg.Init]; !ok && sg.Init != "" {
					files[sg.Init] = c.Node
				}
			}
		}
		slices.SortFunc(list, func(x, y SegmentRecord) int {
			switch {
			case x.MSN < y.MSN:
				return -1
			case x.MSN > y.MSN:
				return 1
			}
			return 0
		})
		// Where the holder changes, the segment may come from another
		// producer's version of the stream: a discontinuity is harmless
		// and keeps a player from decoding across it.
		for i := 1; i < len(list); i++ {
			if list[i].Node != list[i-1].Node {
				list[i].Disc = true
			}
		}
		if len(list) > 0 {
			a.Segments[name] = list
		}
		a.files[name] = files
	}
	a.Tracks = slices.DeleteFunc(a.Tracks, func(t TrackRecord) bool { return len(a.Segments[t.Spec.Name]) == 0 })
	return a
}

// Duration is the longest track's length in seconds.
func (a *Asset) Duration() float64 {
	var longest float64
	for _, segs := range a.Segments {
		var d float64
		for _, sg := range segs {
			d += sg.Duration
		}
		longest = max(longest, d)
	}
	return longest
}

// Locate names the node that holds a track's file (segment or init).
func (a *Asset) Locate(track, file string) (string, bool) {
	n, ok := a.files[track][file]
	return n, ok
}

// Serve renders the asset's playlists: master.m3u8 and
// <track>/index.m3u8 (VOD, ENDLIST), and manifest.mpd (static DASH).
// Media files are the nodes' to serve.
func (a *Asset) Serve(name string) (File, error) {
	if name == ManifestName {
		b, ok := a.mpd(time.Now())
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeMPD, Kind: "playlist"}, nil
	}
	if name == MultivariantName {
		if len(a.Tracks) == 0 {
			return File{}, ErrNotFound
		}
		var b strings.Builder
		writeMultivariant(&b, a.Tracks, MediaName)
		return File{Body: []byte(b.String()), ContentType: typeM3U8, Kind: "playlist"}, nil
	}
	track, file, ok := strings.Cut(name, "/")
	if !ok || file != MediaName {
		return File{}, ErrNotFound
	}
	segs := a.Segments[track]
	if len(segs) == 0 {
		return File{}, ErrNotFound
	}
	var b strings.Builder
	writeMediaPlaylist(&b, segs, mediaPlaylist{target: vodTarget(segs), vod: true})
	return File{Body: []byte(b.String()), ContentType: typeM3U8, Kind: "playlist"}, nil
}

// vodTarget is EXT-X-TARGETDURATION of a finished list: every EXTINF,
// rounded to the nearest second, is at most it.
func vodTarget(segs []SegmentRecord) int {
	target := 1
	for _, sg := range segs {
		target = max(target, int(math.Round(sg.Duration)))
	}
	return target
}

// MediaType is the content type of a recording's media file.
func MediaType(file string) (contentType, kind string) {
	switch {
	case strings.HasSuffix(file, ".mp4"):
		return typeMP4, "init"
	case strings.HasSuffix(file, ".ts"):
		return typeTS, "segment"
	default:
		return typeM4S, "segment"
	}
}

// mpd is the recording as a static MPD (written by buildMPD, like the live
// one): the segments the HLS media playlists list, under the same names.
// A Period per generation, as live; a new one also where a track's
// numbering has a gap or its init segment or file naming changes (a
// SegmentTemplate cannot say either). Unlike the live MPD the timeline is
// the recording's own: the first Period starts at 0 and each next one
// where the previous ends, the way an HLS VOD playlist plays its
// discontinuities one after the other (the stream may have been down
// between two generations). Within a Period, presentationTimeOffset puts
// every track's media time on the same instant (their wall-clock
// anchors), so audio and video stay in sync. ok is false for MPEG-TS
// recordings (HLS only) and empty ones.
func (a *Asset) mpd(now time.Time) ([]byte, bool) {
	var keys []recordKey
	groups := map[recordKey][]dashRep{}
	maxTarget := 1
	for _, tr := range a.Tracks {
		segs := a.Segments[tr.Spec.Name]
		maxTarget = max(maxTarget, vodTarget(segs))
		info := tr.Info
		if info.Timescale == 0 {
			info.Timescale = 1000
		}
		ks, reps, ok := recordReps(tr.Spec, func(string) InitInfo { return info }, segs)
		if !ok {
			return nil, false
		}
		for i, k := range ks {
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], reps[i])
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.SortFunc(keys, recordKey.compare)
	var periods []dashPeriod
	var endMS int64
	for _, k := range keys {
		reps := groups[k]
		// Each track's wall-clock anchor (PDT - media time) from its first
		// segment; the Period begins at the earliest first segment.
		anchors := make([]int64, len(reps))
		var firstAbs int64 = math.MaxInt64
		for j, r := range reps {
			ts := int64(r.info.Timescale)
			anchors[j] = r.pdt.UnixMilli() - int64(r.entries[0].t)*1000/ts
			firstAbs = min(firstAbs, anchors[j]+int64(r.entries[0].t)*1000/ts)
		}
		p := dashPeriod{id: "g" + strconv.Itoa(k.gen), gen: k.gen, startMS: endMS, reps: reps}
		if k.part > 0 {
			p.id += "-" + strconv.Itoa(k.part)
		}
		var periodEnd int64
		for j := range p.reps {
			r := &p.reps[j]
			ts := int64(r.info.Timescale)
			pto := max(firstAbs-anchors[j], 0) * ts / 1000
			r.pto = uint64(min(pto, int64(r.entries[0].t)))
			last := r.entries[len(r.entries)-1]
			periodEnd = max(periodEnd, ceilDiv((int64(last.t+last.d)-int64(r.pto))*1000, ts))
		}
		endMS += periodEnd
		periods = append(periods, p)
	}
	m, _, end := buildMPD(periods, time.Duration(maxTarget)*time.Second, now, false, "")
	m.MediaPresentationDuration = xsDuration(time.Duration(max(end, endMS)) * time.Millisecond)
	// Segments are found by number, not by the clock: no UTCTiming needed.
	m.UTCTiming = nil
	return marshalMPD(m), true
}
