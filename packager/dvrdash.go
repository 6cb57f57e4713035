package packager

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DVRManifestName is the DASH manifest of the DVR window: the segments
// dvr.m3u8 lists, as a dynamic MPD whose timeShiftBufferDepth reaches the
// oldest of them (ADR 0014). manifest.mpd keeps the short live window and
// its low-latency attributes, as master.m3u8 does beside dvr.m3u8.
const DVRManifestName = "dvr.mpd"

// recordKey orders the Periods written from segment records: a generation,
// and a run within it (a new one where a SegmentTemplate cannot go on).
type recordKey struct{ gen, part int }

func (k recordKey) compare(o recordKey) int {
	if k.gen != o.gen {
		return k.gen - o.gen
	}
	return k.part - o.part
}

// recordReps cuts one track's records (oldest first) into runs that one
// SegmentTemplate can name, each with its key: a new run at every
// generation, and where the numbers jump, the init segment changes or the
// file names stop following "<prefix><number>.m4s" ($Number$ can skip
// none of these). info gives the timescale and codec of an init segment.
// ok is false for MPEG-TS (no init segment: HLS only) and for files no
// template can name.
func recordReps(spec TrackSpec, info func(init string) InitInfo, segs []SegmentRecord) (keys []recordKey, reps []dashRep, ok bool) {
	part := 0
	for i, sg := range segs {
		if sg.Init == "" {
			return nil, nil, false
		}
		media, named := strings.CutSuffix(sg.File, strconv.FormatUint(sg.MSN, 10)+".m4s")
		if !named {
			return nil, nil, false
		}
		n := len(reps)
		if n == 0 || sg.Gen != keys[n-1].gen || sg.MSN != segs[i-1].MSN+1 || sg.Init != reps[n-1].init || media != reps[n-1].media {
			if n > 0 && sg.Gen == keys[n-1].gen {
				part++
			} else {
				part = 0
			}
			keys = append(keys, recordKey{sg.Gen, part})
			reps = append(reps, dashRep{name: spec.Name, spec: spec, info: info(sg.Init), init: sg.Init, media: media, start: sg.MSN, pdt: sg.PDT})
		}
		r := &reps[len(reps)-1]
		ts := float64(r.info.Timescale)
		// Exact when the next segment follows on the same timeline (the
		// live MPD's rule, so both MPDs agree on every segment).
		d := uint64(math.Round(sg.Duration * ts))
		if i+1 < len(segs) {
			if next := segs[i+1]; next.Gen == sg.Gen && next.Node == sg.Node && next.Start > sg.Start && next.MSN == sg.MSN+1 {
				d = next.Start - sg.Start
			}
		}
		r.entries = append(r.entries, dashEntry{t: sg.Start, d: max(d, 1)})
	}
	return keys, reps, true
}

// renderDVRMPDLocked writes the DVR window as a dynamic MPD: every track's
// DVR segments (memory, then the archive, what dvr.m3u8 lists) on the live
// MPD's timeline (Period@start = the generation's wall-clock anchor,
// presentationTimeOffset 0, the same Period ids), so Periods keep their
// start while the window slides. No low-latency attributes: a player
// seeking back must not be pulled to the live edge by a latency target,
// and only complete segments are listed, as in dvr.m3u8. ok is false
// without a DVR window, for MPEG-TS, and before any segment is complete.
func (s *Stream) renderDVRMPDLocked() ([]byte, bool) {
	if s.dvrSeconds <= 0 || len(s.order) == 0 {
		return nil, false
	}
	periods, ok := s.dvrPeriodsLocked()
	if !ok || len(periods) == 0 {
		return nil, false
	}
	now := s.now()
	target := time.Duration(s.cfg.TargetDuration) * time.Second
	m, firstMS, endMS := buildMPD(periods, target, now, false, "")
	if s.ended {
		m.MediaPresentationDuration = xsDuration(time.Duration(endMS) * time.Millisecond)
		return marshalMPD(m), true
	}
	m.Type = "dynamic"
	m.MinimumUpdatePeriod = xsDuration(target)
	// Exactly what is listed: from the oldest segment to now. The listed
	// media is at most the window; the rest is the segment being made.
	m.TimeShiftBufferDepth = xsDuration(time.Duration(max(now.UnixMilli()-firstMS, 0)) * time.Millisecond)
	m.SuggestedPresentationDelay = xsDuration(3 * target)
	return marshalMPD(m), true
}

// dvrPeriodsLocked groups every track's DVR segments into one Period per
// generation.
func (s *Stream) dvrPeriodsLocked() ([]dashPeriod, bool) {
	var keys []recordKey
	groups := map[recordKey][]dashRep{}
	for _, name := range s.dashTrackNamesLocked() {
		t := s.viewLocked(name, s.tracks[name])
		if len(t.inits) == 0 && len(t.segs) > 0 {
			return nil, false // MPEG-TS: HLS only
		}
		segs := s.dvrSegmentsLocked(name, t)
		ks, reps, ok := recordReps(t.spec, func(init string) InitInfo { return s.dvrInitInfoLocked(name, t, init) }, segs)
		if !ok {
			return nil, false
		}
		// The window never spans a gap in the numbers (dvrSegmentsLocked),
		// so a generation is one run; should it be cut anyway, keep its
		// newest run, as the HLS window stops at a gap: a later run of the
		// same generation cannot start where the live MPD's Period does.
		for i := len(ks) - 1; i > 0; i-- {
			if ks[i].gen == ks[i-1].gen {
				ks, reps = slices.Delete(ks, 0, i), slices.Delete(reps, 0, i)
				break
			}
		}
		for i, k := range ks {
			k.part = 0
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], reps[i])
		}
	}
	slices.SortFunc(keys, recordKey.compare)
	periods := make([]dashPeriod, 0, len(keys))
	for _, k := range keys {
		reps := groups[k]
		// The live MPD's anchor: PDT minus media time of the first track's
		// segment, so both MPDs start a generation's Period alike.
		r := reps[0]
		anchor := r.pdt.Add(-secondsDur(float64(r.entries[0].t) / float64(r.info.Timescale)))
		periods = append(periods, dashPeriod{id: "g" + strconv.Itoa(k.gen), gen: k.gen, startMS: anchor.UnixMilli(), reps: reps})
	}
	return periods, true
}

// dvrInitInfoLocked reads a generation's init segment of a track: from
// memory, or from the archive for a generation memory has forgotten (its
// timescale may differ from the current one), parsed once per stream.
func (s *Stream) dvrInitInfoLocked(name string, t *track, init string) InitInfo {
	if _, ok := t.inits[init]; ok || s.archive == nil {
		return initInfoOf(t, init)
	}
	key := name + "/" + init
	if info, ok := s.dvrInits[key]; ok {
		return info
	}
	b, err := s.archive.ReadArchived(name, init)
	if err != nil {
		return initInfoOf(t, init) // not cached: the file may come
	}
	info, err := ParseInit(b)
	if err != nil || info.Timescale == 0 {
		return initInfoOf(t, init)
	}
	if s.dvrInits == nil {
		s.dvrInits = map[string]InitInfo{}
	}
	s.dvrInits[key] = info
	return info
}
