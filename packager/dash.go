package packager

import (
	"encoding/xml"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DASH rendering of the model: one MPD (ISO/IEC 23009-1, DASH-IF IOP live
// profile) that lists exactly the segment files the HLS media playlists
// list, under the same names.
//
// Layout:
//
//   - MPD@availabilityStartTime is the Unix epoch, for the life of every
//     stream, so it never has to be stored or agreed on between nodes: the
//     presentation timeline is wall-clock time, and a Period starts at a
//     wall-clock instant (Period@start = seconds since 1970).
//   - One Period per generation that still has listed segments (a seam is a
//     new Period, where HLS writes EXT-X-DISCONTINUITY), id "g<gen>".
//     Period@start is the generation's anchor (the wall-clock time of its
//     media time zero, PDT = anchor + media time), floored to the
//     millisecond, and presentationTimeOffset is 0. Both come from any
//     segment of the generation, so they stay the same while the window
//     slides and the generation's first segments are trimmed: the IOP's MPD
//     update rules forbid Period@start and presentationTimeOffset to change
//     for a Period. (The first listed segment's PDT would move with every
//     trim.) Every segment then sits on the presentation timeline within a
//     millisecond of its HLS PROGRAM-DATE-TIME, never before it, and never
//     before its Period starts, so a player's append window cannot cut a
//     generation's first keyframe. This assumes the transcoder's media time
//     starts near zero (ffmpeg does without -copyts, and the forced-keyframe
//     expressions assume it too).
//   - SegmentTemplate with $Number$ (the HLS media sequence numbers, so the
//     same files) and a SegmentTimeline of each segment's tfdt and exact
//     duration, per Representation, or per AdaptationSet when every
//     Representation's is the same. Audio and video may number differently
//     and have different timescales.
//   - Once the stream has ended the MPD turns static and keeps the same
//     availabilityStartTime, Periods, start numbers and offsets (DASH-IF IOP
//     4.3 §4.6.2: the wall-clock relation is kept through Period@start), so
//     a player that was watching plays to the end;
//     mediaPresentationDuration is then the end of the last segment on that
//     timeline.
//
// Low latency (PartTarget > 0): the segment being written is listed as the
// last S of its timeline, with the duration the schedule says it will have,
// and the SegmentTemplates say availabilityTimeOffset = segment length -
// part target, availabilityTimeComplete = false: a player may ask for it
// once its first part exists and read it as it grows (chunked transfer).
// With a SegmentTimeline a player only asks for segments the timeline
// lists, so leaving the open segment out would make the offset useless
// (that is what the DASH-IF live simulator found, livesim2 issues #181 and
// #182: with SegmentTimeline it lists a segment as soon as its first chunk
// is available). dash.js turns its low-latency mode on from
// availabilityTimeComplete="false" and reads its latency target from
// ServiceDescription. The open segment's listed duration can differ from
// its final one by less than a frame (video: the keyframe lands on the
// first frame at or after the boundary) or not at all (audio: counted in
// whole fragments); the next update states the real one.

// TimeURL is what the MPD's UTCTiming points at (urn:mpeg:dash:utc:http-iso:2014):
// an absolute path on the host that served the MPD, answering GET with the
// current UTC time in ISO 8601 ("2026-11-28T12:00:00.000Z"). Players set
// their clock by it, since a dynamic MPD's segments are found by the clock.
const TimeURL = "/time"

const (
	mpdNamespace        = "urn:mpeg:dash:schema:mpd:2011"
	dashProfileLive     = "urn:mpeg:dash:profile:isoff-live:2011"
	utcTimingHTTPISO    = "urn:mpeg:dash:utc:http-iso:2014"
	audioChannelsScheme = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
	// dashAvailabilityStart is MPD@availabilityStartTime: the epoch, so
	// Period@start is wall-clock time.
	dashAvailabilityStart = "1970-01-01T00:00:00Z"
	// dashRepresentationPath prefixes every template: a track's files live
	// under its name, like its HLS media playlist.
	dashRepresentationPath = "$RepresentationID$/"
)

// The MPD as encoding/xml writes it. Field order is attribute order.
type mpdXML struct {
	XMLName                    xml.Name               `xml:"MPD"`
	Xmlns                      string                 `xml:"xmlns,attr"`
	Profiles                   string                 `xml:"profiles,attr"`
	Type                       string                 `xml:"type,attr"`
	AvailabilityStartTime      string                 `xml:"availabilityStartTime,attr"`
	PublishTime                string                 `xml:"publishTime,attr"`
	MediaPresentationDuration  string                 `xml:"mediaPresentationDuration,attr,omitempty"`
	MinimumUpdatePeriod        string                 `xml:"minimumUpdatePeriod,attr,omitempty"`
	TimeShiftBufferDepth       string                 `xml:"timeShiftBufferDepth,attr,omitempty"`
	SuggestedPresentationDelay string                 `xml:"suggestedPresentationDelay,attr,omitempty"`
	MinBufferTime              string                 `xml:"minBufferTime,attr"`
	MaxSegmentDuration         string                 `xml:"maxSegmentDuration,attr,omitempty"`
	ServiceDescription         *mpdServiceDescription `xml:"ServiceDescription,omitempty"`
	Periods                    []mpdPeriod            `xml:"Period"`
	UTCTiming                  []mpdDescriptor        `xml:"UTCTiming"`
}

type mpdServiceDescription struct {
	ID           int             `xml:"id,attr"`
	Latency      mpdLatency      `xml:"Latency"`
	PlaybackRate mpdPlaybackRate `xml:"PlaybackRate"`
}

// mpdLatency is in milliseconds.
type mpdLatency struct {
	Target int64 `xml:"target,attr"`
	Max    int64 `xml:"max,attr"`
	Min    int64 `xml:"min,attr"`
}

type mpdPlaybackRate struct {
	Max string `xml:"max,attr"`
	Min string `xml:"min,attr"`
}

type mpdDescriptor struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr"`
}

type mpdPeriod struct {
	ID             string             `xml:"id,attr"`
	Start          string             `xml:"start,attr"`
	AdaptationSets []mpdAdaptationSet `xml:"AdaptationSet"`
}

type mpdAdaptationSet struct {
	ID               int                 `xml:"id,attr"`
	ContentType      string              `xml:"contentType,attr"`
	MimeType         string              `xml:"mimeType,attr"`
	Lang             string              `xml:"lang,attr,omitempty"`
	SegmentAlignment string              `xml:"segmentAlignment,attr"`
	StartWithSAP     int                 `xml:"startWithSAP,attr"`
	SegmentTemplate  *mpdSegmentTemplate `xml:"SegmentTemplate,omitempty"`
	Representations  []mpdRepresentation `xml:"Representation"`
}

type mpdRepresentation struct {
	ID                        string              `xml:"id,attr"`
	Bandwidth                 int                 `xml:"bandwidth,attr"`
	Codecs                    string              `xml:"codecs,attr,omitempty"`
	Width                     int                 `xml:"width,attr,omitempty"`
	Height                    int                 `xml:"height,attr,omitempty"`
	FrameRate                 string              `xml:"frameRate,attr,omitempty"`
	AudioSamplingRate         string              `xml:"audioSamplingRate,attr,omitempty"`
	AudioChannelConfiguration *mpdDescriptor      `xml:"AudioChannelConfiguration,omitempty"`
	SegmentTemplate           *mpdSegmentTemplate `xml:"SegmentTemplate,omitempty"`
}

type mpdSegmentTemplate struct {
	Timescale                uint32      `xml:"timescale,attr"`
	PresentationTimeOffset   uint64      `xml:"presentationTimeOffset,attr"`
	StartNumber              uint64      `xml:"startNumber,attr"`
	Initialization           string      `xml:"initialization,attr"`
	Media                    string      `xml:"media,attr"`
	AvailabilityTimeOffset   string      `xml:"availabilityTimeOffset,attr,omitempty"`
	AvailabilityTimeComplete string      `xml:"availabilityTimeComplete,attr,omitempty"`
	Timeline                 mpdTimeline `xml:"SegmentTimeline"`
}

type mpdTimeline struct {
	S []mpdS `xml:"S"`
}

// mpdS is one run of segments: t (when it does not follow the previous
// run), duration d, and r more of the same duration.
type mpdS struct {
	T *uint64 `xml:"t,attr,omitempty"`
	D uint64  `xml:"d,attr"`
	R int     `xml:"r,attr,omitempty"`
}

// dashRep is one track's segments of one Period, ready to write: what
// the live and the VOD MPD both list.
type dashRep struct {
	name    string
	spec    TrackSpec
	info    InitInfo // of this generation's init segment
	init    string   // the init segment's file name
	media   string   // the segment file names before their number
	start   uint64   // the first segment's number
	pto     uint64   // presentationTimeOffset, track timescale
	entries []dashEntry
	// pdt is the first segment's wall-clock time (from records: VOD, DVR).
	pdt time.Time

	// The live model's track and the indexes of its listed segments.
	t    *track
	segs []int
}

// dashPeriod is one generation's part of the MPD.
type dashPeriod struct {
	id      string
	gen     int
	startMS int64 // Period@start, milliseconds on the MPD's timeline
	reps    []dashRep
}

// renderMPDLocked writes the DASH manifest of the same segments the HLS
// media playlists list; ok is false before any generation has started, or
// while no track has a segment to list yet.
func (s *Stream) renderMPDLocked() ([]byte, bool) {
	// A standby's copy has no active generation but serves the same MPD.
	if len(s.order) == 0 {
		return nil, false
	}
	for _, name := range s.order {
		if t := s.tracks[name]; len(t.inits) == 0 {
			return nil, false // MPEG-TS: HLS only
		}
	}
	live := !s.ended
	ll := live && s.lowLatency()
	periods := s.dashPeriodsLocked(ll)
	if len(periods) == 0 {
		return nil, false
	}
	now := s.now()
	target := time.Duration(s.cfg.TargetDuration) * time.Second
	var ato string
	if ll {
		seg := s.cfg.Schedule.Seconds
		if seg <= 0 {
			seg = float64(s.cfg.TargetDuration)
		}
		if v := seg - s.cfg.PartTarget; v > 0 {
			ato = strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
		}
	}
	m, firstMS, endMS := buildMPD(periods, target, now, ll, ato)
	if !live {
		// Measured from the epoch, like every Period@start.
		m.MediaPresentationDuration = xsDuration(time.Duration(endMS) * time.Millisecond)
	} else {
		m.Type = "dynamic"
		m.MinimumUpdatePeriod = xsDuration(target)
		// At least the HLS window, and always every listed segment.
		depth := max(time.Duration(s.cfg.Window)*target, time.Duration(now.UnixMilli()-firstMS)*time.Millisecond)
		m.TimeShiftBufferDepth = xsDuration(depth)
		m.SuggestedPresentationDelay = xsDuration(3 * target)
	}
	if ll {
		lat := s.dashLatency()
		// Up to 1.1×: a player starts a keyframe interval and its own
		// start-up time (together 1.5–2 s) behind its target; at 1.04× it
		// took over half a minute to shed that, at 1.1× about fifteen
		// seconds. At 1.25× dash.js 5.2 undershot its buffer and stalled
		// once in the bench: a viewer would notice that, not 0.3 s.
		m.ServiceDescription = &mpdServiceDescription{Latency: lat, PlaybackRate: mpdPlaybackRate{Max: "1.1", Min: "0.9"}}
		// A player learns of a new segment from the MPD (SegmentTimeline):
		// refreshed once a segment, it learned of one up to a segment late,
		// and the phase of its refreshes drifted through the schedule, so
		// dash.js ran dry every few seconds near its target (a 0.4 s stall
		// every ~5 s in the latency bench). Once a part it learns within a
		// part, the same rate as an LL-HLS player's blocking reloads.
		m.MinimumUpdatePeriod = xsDuration(time.Duration(s.cfg.PartTarget * float64(time.Second)))
		m.SuggestedPresentationDelay = xsDuration(time.Duration(lat.Target) * time.Millisecond)
		m.MinBufferTime = xsDuration(min(time.Second, target))
	}
	return marshalMPD(m), true
}

// buildMPD is the one writer of Periods and SegmentTimelines, for the live
// MPD and the VOD one: a static MPD of the periods (the caller turns it
// dynamic), with the first listed instant and the end of the last segment
// on the MPD's timeline, in milliseconds. ato is the templates'
// availabilityTimeOffset ("" for none).
func buildMPD(periods []dashPeriod, target time.Duration, now time.Time, ll bool, ato string) (m mpdXML, firstMS, endMS int64) {
	m = mpdXML{
		Xmlns:                 mpdNamespace,
		Profiles:              dashProfileLive,
		Type:                  "static",
		AvailabilityStartTime: dashAvailabilityStart,
		PublishTime:           formatPDT(now),
		MinBufferTime:         xsDuration(target),
		UTCTiming:             []mpdDescriptor{{SchemeIDURI: utcTimingHTTPISO, Value: TimeURL}},
	}
	firstMS, endMS = math.MaxInt64, math.MinInt64
	maxSeg := target
	for _, p := range periods {
		m.Periods = append(m.Periods, dashPeriodXML(p, ll, ato))
		for _, r := range p.reps {
			ts := int64(r.info.Timescale)
			for _, e := range r.entries {
				at := int64(e.t) - int64(r.pto)
				firstMS = min(firstMS, p.startMS+at*1000/ts)
				endMS = max(endMS, p.startMS+ceilDiv((at+int64(e.d))*1000, ts))
				maxSeg = max(maxSeg, time.Duration(ceilDiv(int64(e.d)*1000, ts))*time.Millisecond)
			}
		}
	}
	m.MaxSegmentDuration = xsDuration(maxSeg)
	return m, firstMS, endMS
}

func marshalMPD(m mpdXML) []byte {
	b, err := xml.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil // cannot happen: plain strings and numbers
	}
	return append([]byte(xml.Header), append(b, '\n')...)
}

// dashLatency is the low-latency target: three parts behind the live edge
// like PART-HOLD-BACK, never closer than two (RFC 8216bis' floor for
// PART-HOLD-BACK), and at most one segment more before catching up.
func (s *Stream) dashLatency() mpdLatency {
	part := s.cfg.PartTarget * 1000
	target := int64(math.Round(3 * part))
	return mpdLatency{
		Target: target,
		Min:    int64(math.Round(2 * part)),
		Max:    target + int64(s.cfg.TargetDuration)*1000,
	}
}

// dashTrackNamesLocked orders the tracks: the active generation's order,
// then tracks it no longer has (they may still have listed segments) by
// name.
func (s *Stream) dashTrackNamesLocked() []string {
	names := slices.Clone(s.order)
	var rest []string
	for name := range s.tracks {
		if !slices.Contains(names, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// dashListedLocked is the indexes of the segments a track's MPD timeline
// lists: the complete segments its HLS media playlist lists and, for low
// latency, the open one (whose parts HLS lists).
func (s *Stream) dashListedLocked(t *track, ll bool) []int {
	var out []int
	for i, sg := range t.segs {
		if sg.Complete {
			out = append(out, i)
		}
	}
	if len(out) > s.cfg.Window {
		out = out[len(out)-s.cfg.Window:]
	}
	if n := len(t.segs); ll && n > 0 && !t.segs[n-1].Complete {
		out = append(out, n-1)
	}
	return out
}

// dashPeriodsLocked groups every track's listed segments by generation.
func (s *Stream) dashPeriodsLocked(ll bool) []dashPeriod {
	var periods []dashPeriod
	for _, name := range s.dashTrackNamesLocked() {
		t := s.viewLocked(name, s.tracks[name])
		for _, i := range s.dashListedLocked(t, ll) {
			sg := t.segs[i]
			k := slices.IndexFunc(periods, func(p dashPeriod) bool { return p.gen == sg.Gen })
			if k < 0 {
				periods = append(periods, dashPeriod{gen: sg.Gen, id: "g" + strconv.Itoa(sg.Gen)})
				k = len(periods) - 1
			}
			p := &periods[k]
			if n := len(p.reps); n == 0 || p.reps[n-1].name != name {
				p.reps = append(p.reps, dashRep{name: name, t: t, spec: t.spec, info: initInfoOf(t, sg.Init),
					init: sg.Init, media: s.id + "-", start: sg.MSN})
			}
			r := &p.reps[len(p.reps)-1]
			r.segs = append(r.segs, i)
		}
	}
	slices.SortFunc(periods, func(a, b dashPeriod) int { return a.gen - b.gen })
	for k := range periods {
		for j := range periods[k].reps {
			r := &periods[k].reps[j]
			r.entries = s.dashTimeline(*r, ll)
		}
		// Any segment of the generation gives its anchor: PDT = anchor +
		// media time, computed the way addFragmentLocked computed PDT.
		r := periods[k].reps[0]
		sg := r.t.segs[r.segs[0]]
		anchor := sg.PDT.Add(-secondsDur(float64(sg.Start) / float64(r.info.Timescale)))
		periods[k].startMS = anchor.UnixMilli()
	}
	return periods
}

// initInfoOf reads a generation's init segment of a track; the track's
// current info when it is gone (it never is while a segment refers to it).
func initInfoOf(t *track, name string) InitInfo {
	if b, ok := t.inits[name]; ok {
		if info, err := ParseInit(b); err == nil && info.Timescale > 0 {
			return info
		}
	}
	info := t.info
	if info.Timescale == 0 {
		info.Timescale = 1000
	}
	return info
}

// dashPeriodXML writes one generation's Period: an AdaptationSet for its
// video tracks and one for its audio.
func dashPeriodXML(p dashPeriod, ll bool, ato string) mpdPeriod {
	out := mpdPeriod{ID: p.id, Start: xsDuration(time.Duration(p.startMS) * time.Millisecond)}
	video := mpdAdaptationSet{ID: 0, ContentType: "video", MimeType: "video/mp4", SegmentAlignment: "true", StartWithSAP: 1}
	audio := mpdAdaptationSet{ID: 1, ContentType: "audio", MimeType: "audio/mp4", Lang: "und", SegmentAlignment: "true", StartWithSAP: 1}
	for _, r := range p.reps {
		rep := mpdRepresentation{
			ID:              r.name,
			Bandwidth:       max(r.spec.Bandwidth, 1),
			Codecs:          r.info.Codec,
			SegmentTemplate: dashTemplate(r, ll, ato),
		}
		switch r.info.Kind {
		case Video:
			rep.Width, rep.Height = r.info.Width, r.info.Height
			rep.FrameRate = dashFrameRate(r.spec.FrameRate)
			video.Representations = append(video.Representations, rep)
		case Audio:
			if r.info.SampleRate > 0 {
				rep.AudioSamplingRate = strconv.Itoa(r.info.SampleRate)
			}
			ch := r.info.Channels
			if ch == 0 {
				ch = 2
			}
			rep.AudioChannelConfiguration = &mpdDescriptor{SchemeIDURI: audioChannelsScheme, Value: strconv.Itoa(ch)}
			audio.Representations = append(audio.Representations, rep)
		}
	}
	for _, as := range []mpdAdaptationSet{video, audio} {
		if len(as.Representations) > 0 {
			out.AdaptationSets = append(out.AdaptationSets, hoistTemplate(as))
		}
	}
	return out
}

// hoistTemplate moves the Representations' SegmentTemplate up to the
// AdaptationSet when they are all the same (video renditions of one
// generation usually are: same numbering, same cuts).
func hoistTemplate(as mpdAdaptationSet) mpdAdaptationSet {
	first := as.Representations[0].SegmentTemplate
	for _, r := range as.Representations[1:] {
		if !reflect.DeepEqual(first, r.SegmentTemplate) {
			return as
		}
	}
	as.SegmentTemplate = first
	for i := range as.Representations {
		as.Representations[i].SegmentTemplate = nil
	}
	return as
}

// dashTemplate is one track's SegmentTemplate in one Period.
func dashTemplate(r dashRep, ll bool, ato string) *mpdSegmentTemplate {
	tmpl := &mpdSegmentTemplate{
		Timescale:              r.info.Timescale,
		PresentationTimeOffset: r.pto,
		StartNumber:            r.start,
		Initialization:         dashRepresentationPath + templateLiteral(r.init),
		Media:                  dashRepresentationPath + templateLiteral(r.media) + "$Number$.m4s",
	}
	if ll {
		tmpl.AvailabilityTimeOffset = ato
		tmpl.AvailabilityTimeComplete = "false"
	}
	var prevEnd uint64
	for i, e := range r.entries {
		last := len(tmpl.Timeline.S) - 1
		switch {
		case i > 0 && e.t == prevEnd && e.d == tmpl.Timeline.S[last].D:
			tmpl.Timeline.S[last].R++
		case i > 0 && e.t == prevEnd:
			tmpl.Timeline.S = append(tmpl.Timeline.S, mpdS{D: e.d})
		default:
			t := e.t
			tmpl.Timeline.S = append(tmpl.Timeline.S, mpdS{T: &t, D: e.d})
		}
		prevEnd = e.t + e.d
	}
	return tmpl
}

// dashEntry is one segment on a track's timeline, in its timescale.
type dashEntry struct{ t, d uint64 }

// dashTimeline is the start and duration of every listed segment of r.
// A segment's duration is the next segment's start minus its own when the
// next one is of the same generation (exact, no drift); else the sum of its
// fragments' durations; for the open segment, where it will end.
func (s *Stream) dashTimeline(r dashRep, ll bool) []dashEntry {
	ts := float64(r.info.Timescale)
	out := make([]dashEntry, 0, len(r.segs))
	for _, i := range r.segs {
		sg := r.t.segs[i]
		d := uint64(math.Round(sg.Duration * ts))
		if i+1 < len(r.t.segs) {
			if next := r.t.segs[i+1]; next.Gen == sg.Gen && next.Start > sg.Start {
				d = next.Start - sg.Start
			}
		} else if !sg.Complete && ll {
			d = s.openDurationLocked(r.t, sg, r.info)
		}
		out = append(out, dashEntry{t: sg.Start, d: max(d, 1)})
	}
	return out
}

// openDurationLocked is how long the open segment will be once closed, in
// its timescale: it ends where the first fragment at or after its
// scheduled boundary (less the cut tolerance) begins. Video keyframes are
// forced at the boundary itself; audio fragments keep their length.
func (s *Stream) openDurationLocked(t *track, o *segment, info InitInfo) uint64 {
	ts := float64(info.Timescale)
	cur := uint64(math.Round(o.Duration * ts))
	end := o.Start + cur
	boundary := t.nextBoundary
	if math.IsInf(boundary, 0) || boundary <= 0 {
		return max(cur, uint64(float64(s.cfg.TargetDuration)*ts))
	}
	cut := (boundary - s.cutTolerance()) * ts
	if float64(end) >= cut {
		return cur // the next fragment opens the next segment
	}
	if info.Kind == Audio && len(o.Parts) > 0 {
		if p := math.Round(o.Parts[len(o.Parts)-1].Duration * ts); p > 0 {
			n := math.Ceil((cut - float64(end)) / p)
			return cur + uint64(n*p)
		}
	}
	return max(cur, uint64(math.Round(boundary*ts))-o.Start)
}

// templateLiteral escapes text for a SegmentTemplate: "$" is written "$$".
func templateLiteral(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// xsDuration writes d (whole milliseconds; less is dropped) as an
// xs:duration in seconds: PT2S, PT0.334S, PT1795953600.123S.
func xsDuration(d time.Duration) string {
	ms := d.Milliseconds()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	sec := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		sec += strings.TrimRight("."+strconv.FormatInt(1000+frac, 10)[1:], "0")
	}
	return sign + "PT" + sec + "S"
}

// dashFrameRate writes a frame rate as the MPD's FrameRateType: an integer
// or a fraction ("30", "30000/1001"); "" when unknown.
func dashFrameRate(fps float64) string {
	if fps <= 0 {
		return ""
	}
	if r := math.Round(fps); math.Abs(fps-r) < 1e-6 {
		return strconv.Itoa(int(r))
	}
	if n := math.Round(fps * 1001); math.Abs(fps*1001-n) < 1e-3*1001 && math.Mod(n, 1000) == 0 {
		return strconv.Itoa(int(n)) + "/1001"
	}
	n, d := int64(math.Round(fps*1000)), int64(1000)
	for a, b := n, d; ; {
		if b == 0 {
			n, d = n/a, d/a
			break
		}
		a, b = b, a%b
	}
	return strconv.FormatInt(n, 10) + "/" + strconv.FormatInt(d, 10)
}

func ceilDiv(a, b int64) int64 {
	if b <= 0 {
		return a
	}
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}
