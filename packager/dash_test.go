package packager

import (
	"context"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The MPD as a test reads it back.
type tMPD struct {
	Type          string `xml:"type,attr"`
	Profiles      string `xml:"profiles,attr"`
	AST           string `xml:"availabilityStartTime,attr"`
	PublishTime   string `xml:"publishTime,attr"`
	Duration      string `xml:"mediaPresentationDuration,attr"`
	MinUpdate     string `xml:"minimumUpdatePeriod,attr"`
	TimeShift     string `xml:"timeShiftBufferDepth,attr"`
	Delay         string `xml:"suggestedPresentationDelay,attr"`
	MinBufferTime string `xml:"minBufferTime,attr"`
	MaxSegment    string `xml:"maxSegmentDuration,attr"`
	Service       *struct {
		Latency struct {
			Target int `xml:"target,attr"`
			Min    int `xml:"min,attr"`
			Max    int `xml:"max,attr"`
		} `xml:"Latency"`
		PlaybackRate struct {
			Min string `xml:"min,attr"`
			Max string `xml:"max,attr"`
		} `xml:"PlaybackRate"`
	} `xml:"ServiceDescription"`
	Periods []tPeriod `xml:"Period"`
	UTC     []struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"UTCTiming"`
}

type tPeriod struct {
	ID    string `xml:"id,attr"`
	Start string `xml:"start,attr"`
	Sets  []tSet `xml:"AdaptationSet"`
}

type tSet struct {
	ContentType string     `xml:"contentType,attr"`
	MimeType    string     `xml:"mimeType,attr"`
	Lang        string     `xml:"lang,attr"`
	Template    *tTemplate `xml:"SegmentTemplate"`
	Reps        []tRep     `xml:"Representation"`
}

type tRep struct {
	ID        string `xml:"id,attr"`
	Bandwidth int    `xml:"bandwidth,attr"`
	Codecs    string `xml:"codecs,attr"`
	Width     int    `xml:"width,attr"`
	Height    int    `xml:"height,attr"`
	FrameRate string `xml:"frameRate,attr"`
	Sampling  string `xml:"audioSamplingRate,attr"`
	Channels  *struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"AudioChannelConfiguration"`
	Template *tTemplate `xml:"SegmentTemplate"`
}

type tTemplate struct {
	Timescale   uint64 `xml:"timescale,attr"`
	PTO         uint64 `xml:"presentationTimeOffset,attr"`
	StartNumber uint64 `xml:"startNumber,attr"`
	Init        string `xml:"initialization,attr"`
	Media       string `xml:"media,attr"`
	ATO         string `xml:"availabilityTimeOffset,attr"`
	ATC         string `xml:"availabilityTimeComplete,attr"`
	S           []struct {
		T *uint64 `xml:"t,attr"`
		D uint64  `xml:"d,attr"`
		R int     `xml:"r,attr"`
	} `xml:"SegmentTimeline>S"`
}

// tSeg is one segment a timeline implies.
type tSeg struct {
	num, t, d uint64
}

// segments expands a template's timeline into the segments it names.
func (tm *tTemplate) segments() []tSeg {
	var out []tSeg
	num, t := tm.StartNumber, uint64(0)
	for _, s := range tm.S {
		if s.T != nil {
			t = *s.T
		}
		for range s.R + 1 {
			out = append(out, tSeg{num: num, t: t, d: s.D})
			num++
			t += s.D
		}
	}
	return out
}

// uri resolves a template for one Representation (and one $Number$).
func (tm *tTemplate) uri(pattern, rep string, num uint64) string {
	u := strings.ReplaceAll(pattern, "$RepresentationID$", rep)
	u = strings.ReplaceAll(u, "$Number$", strconv.FormatUint(num, 10))
	return strings.ReplaceAll(u, "$$", "$")
}

// rep finds a Representation in a Period with its effective template.
func (p tPeriod) rep(id string) (tSet, tRep, *tTemplate, bool) {
	for _, as := range p.Sets {
		for _, r := range as.Reps {
			if r.ID == id {
				tm := r.Template
				if tm == nil {
					tm = as.Template
				}
				return as, r, tm, true
			}
		}
	}
	return tSet{}, tRep{}, nil, false
}

func mpd(t testing.TB, s *Stream) tMPD {
	t.Helper()
	f, err := s.Serve(context.Background(), ManifestName, nil)
	require.NoError(t, err)
	require.Equal(t, typeMPD, f.ContentType)
	var m tMPD
	require.NoError(t, xml.Unmarshal(f.Body, &m), "%s", f.Body)
	return m
}

var xsDurationRE = regexp.MustCompile(`^PT([0-9]+(\.[0-9]+)?)S$`)

// seconds reads the PTnnn.nnnS durations this package writes.
func seconds(t testing.TB, d string) float64 {
	t.Helper()
	m := xsDurationRE.FindStringSubmatch(d)
	require.NotNil(t, m, "xs:duration %q", d)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// hlsGens splits a media playlist at its discontinuities: the segments of
// each generation, oldest first.
func hlsGens(p parsed) [][]parsedSeg {
	var out [][]parsedSeg
	for i, sg := range p.segs {
		if i == 0 || sg.disc {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], sg)
	}
	return out
}

func msnOf(t testing.TB, uri string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(uri, "s1-"), ".m4s"), 10, 64)
	require.NoError(t, err, uri)
	return n
}

// twoGenerations plays a two-rendition ladder with audio, restarts the
// transcoder (a seam), and plays on.
func twoGenerations(t testing.TB, partTarget float64) *Stream {
	clock := newClock()
	s := newTestStream(clock, partTarget)
	specs := []TrackSpec{
		{Name: "360p", Kind: Video, Bandwidth: 800_000, FrameRate: 30},
		{Name: "240p", Kind: Video, Bandwidth: 400_000, FrameRate: 29.97},
		{Name: AudioTrack, Kind: Audio, Bandwidth: 64_000},
	}
	g1 := s.Begin(specs)
	newFeeder(t, g1, []string{"360p", "240p"}, true, twoSecond, clock).run(7.5)
	g1.Close()
	clock.add(3 * time.Second)
	g2 := s.Begin(specs)
	newFeeder(t, g2, []string{"360p", "240p"}, true, twoSecond, clock).run(5.5)
	return s
}

func TestMPDNeedsAGeneration(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	_, err := s.Serve(context.Background(), ManifestName, nil)
	require.ErrorIs(t, err, ErrNotFound)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	f := newFeeder(t, g, []string{"v"}, false, twoSecond, clock)
	s.mu.Lock()
	_, ok := s.renderMPDLocked()
	s.mu.Unlock()
	require.False(t, ok, "inits alone make no generation active")
	f.run(1.5)
	_, err = s.Serve(context.Background(), ManifestName, nil)
	require.NoError(t, err)
}

func TestMPDDescribesTheSegmentsHLSLists(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partTarget float64
	}{
		{"standard", 0},
		{"low latency", 0.334},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := twoGenerations(t, tc.partTarget)
			ll := tc.partTarget > 0
			m := mpd(t, s)
			require.Equal(t, "dynamic", m.Type)
			require.Equal(t, dashProfileLive, m.Profiles)
			require.Equal(t, "1970-01-01T00:00:00Z", m.AST)
			if ll {
				require.Equal(t, "PT0.334S", m.MinUpdate, "refreshed once a part")
			} else {
				require.Equal(t, "PT2S", m.MinUpdate)
			}
			require.NotEmpty(t, m.TimeShift)
			require.NotEmpty(t, m.MinBufferTime)
			require.GreaterOrEqual(t, seconds(t, m.MaxSegment), 2.0)
			require.Len(t, m.UTC, 1)
			require.Equal(t, "urn:mpeg:dash:utc:http-iso:2014", m.UTC[0].Scheme)
			require.Equal(t, TimeURL, m.UTC[0].Value)
			require.Empty(t, m.Duration)

			require.Len(t, m.Periods, 2, "one Period per generation")
			require.Equal(t, "g1", m.Periods[0].ID)
			require.Equal(t, "g2", m.Periods[1].ID)
			require.Greater(t, seconds(t, m.Periods[1].Start), seconds(t, m.Periods[0].Start))

			for _, p := range m.Periods {
				require.Len(t, p.Sets, 2)
				v, a := p.Sets[0], p.Sets[1]
				require.Equal(t, "video", v.ContentType)
				require.Equal(t, "video/mp4", v.MimeType)
				require.Len(t, v.Reps, 2)
				for i, want := range []tRep{
					{ID: "360p", Bandwidth: 800_000, FrameRate: "30"},
					{ID: "240p", Bandwidth: 400_000, FrameRate: "30000/1001"},
				} {
					r := v.Reps[i]
					require.Equal(t, want.ID, r.ID)
					require.Equal(t, want.Bandwidth, r.Bandwidth)
					require.Equal(t, want.FrameRate, r.FrameRate)
					require.Equal(t, "avc1.64001f", r.Codecs)
					require.Equal(t, [2]int{640, 360}, [2]int{r.Width, r.Height})
				}
				require.Equal(t, "audio", a.ContentType)
				require.Equal(t, "und", a.Lang)
				require.Len(t, a.Reps, 1)
				require.Equal(t, AudioTrack, a.Reps[0].ID)
				require.Equal(t, "mp4a.40.2", a.Reps[0].Codecs)
				require.Equal(t, "48000", a.Reps[0].Sampling)
				require.NotNil(t, a.Reps[0].Channels)
				require.Equal(t, "urn:mpeg:dash:23003:3:audio_channel_configuration:2011", a.Reps[0].Channels.Scheme)
				require.Equal(t, "2", a.Reps[0].Channels.Value)
			}

			for _, track := range []string{"360p", "240p", AudioTrack} {
				checkTrackAgainstHLS(t, s, m, track, ll)
			}

			if ll {
				require.NotNil(t, m.Service)
				require.Equal(t, 1002, m.Service.Latency.Target)
				require.Less(t, m.Service.Latency.Min, m.Service.Latency.Target)
				require.Greater(t, m.Service.Latency.Max, m.Service.Latency.Target)
				require.Equal(t, "1.1", m.Service.PlaybackRate.Max)
				require.Equal(t, "0.9", m.Service.PlaybackRate.Min)
				require.InDelta(t, 1.002, seconds(t, m.Delay), 1e-9)
			} else {
				require.Nil(t, m.Service)
				require.Equal(t, "PT6S", m.Delay)
			}
		})
	}
}

// checkTrackAgainstHLS compares one track's Representations with its HLS
// media playlist and with the model, and fetches every file they name.
func checkTrackAgainstHLS(t *testing.T, s *Stream, m tMPD, track string, ll bool) {
	t.Helper()
	ctx := context.Background()
	p := media(t, s, track, nil)
	gens := hlsGens(p)
	require.Len(t, gens, len(m.Periods), "%s: a Period per HLS discontinuity", track)
	for gi, period := range m.Periods {
		_, _, tm, ok := period.rep(track)
		require.True(t, ok, "%s in %s", track, period.ID)
		hls := gens[gi]
		require.Equal(t, msnOf(t, hls[0].uri), tm.StartNumber, "%s %s: startNumber is the first HLS MSN of the generation", track, period.ID)
		require.Zero(t, tm.PTO)
		if ll {
			require.Equal(t, "1.666", tm.ATO)
			require.Equal(t, "false", tm.ATC)
		} else {
			require.Empty(t, tm.ATO)
			require.Empty(t, tm.ATC)
		}

		segs := tm.segments()
		open := ll && gi == len(m.Periods)-1
		complete := segs
		if open {
			require.Len(t, segs, len(hls)+1, "%s: the open segment is listed last", track)
			complete = segs[:len(hls)]
		} else {
			require.Len(t, segs, len(hls), "%s %s: the same segments as HLS", track, period.ID)
		}
		var sumD, sumHLS float64
		for i, sg := range complete {
			require.Equal(t, msnOf(t, hls[i].uri), sg.num, "%s: segment %d", track, i)
			sumD += float64(sg.d) / float64(tm.Timescale)
			sumHLS += hls[i].dur
			// The presentation timeline is wall-clock time: a segment sits
			// where its PROGRAM-DATE-TIME says, within a millisecond, and
			// not before its Period's start.
			at := seconds(t, period.Start) + float64(sg.t-tm.PTO)/float64(tm.Timescale)
			pdt := float64(hls[i].pdt.UnixNano()) / 1e9
			require.InDelta(t, pdt, at, 0.0015, "%s %d: where PDT says", track, sg.num)
			require.GreaterOrEqual(t, at, seconds(t, period.Start))
		}
		require.InDelta(t, sumHLS, sumD, 0.0005*float64(len(complete)), "%s %s: S@d adds up to the EXTINFs", track, period.ID)

		s.mu.Lock()
		model := map[uint64]*segment{}
		for _, sg := range s.tracks[track].segs {
			model[sg.MSN] = sg
		}
		s.mu.Unlock()
		for i, sg := range segs {
			ms := model[sg.num]
			require.NotNil(t, ms, "%s: $Number$ %d is a segment of the model", track, sg.num)
			require.Equal(t, ms.Start, sg.t, "%s %d: S@t is the tfdt", track, sg.num)
			uri := tm.uri(tm.Media, track, sg.num)
			if open && i == len(segs)-1 {
				require.False(t, ms.Complete)
				part, err := s.Serve(ctx, strings.TrimSuffix(uri, ".m4s")+".0.m4s", nil)
				require.NoError(t, err, "the open segment's first part is there")
				require.Equal(t, "part", part.Kind)
				continue
			}
			require.InDelta(t, ms.Duration, float64(sg.d)/float64(tm.Timescale), 1e-6, "%s %d: S@d", track, sg.num)
			f, err := s.Serve(ctx, uri, nil)
			require.NoError(t, err, uri)
			require.Equal(t, "segment", f.Kind)
			require.Equal(t, ms.Data, f.Body)
		}
		initURI := tm.uri(tm.Init, track, 0)
		require.Contains(t, p.maps, `URI="`+strings.TrimPrefix(initURI, track+"/")+`"`, "the init HLS maps for this generation")
		in, err := s.Serve(ctx, initURI, nil)
		require.NoError(t, err)
		_, err = ParseInit(in.Body)
		require.NoError(t, err)
	}
}

func TestMPDPeriodStaysPutWhileTheWindowSlides(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	g1 := s.Begin(specs)
	newFeeder(t, g1, []string{"v"}, true, twoSecond, clock).run(9)
	g1.Close()
	clock.add(time.Second)
	g2 := s.Begin(specs)
	f2 := newFeeder(t, g2, []string{"v"}, true, twoSecond, clock)
	f2.run(4)
	before := mpd(t, s)
	require.Len(t, before.Periods, 2)

	// Generation one's first segments are trimmed, then all of them.
	var seen []tMPD
	for range 8 {
		f2.run(2)
		seen = append(seen, mpd(t, s))
	}
	last := seen[len(seen)-1]
	require.Len(t, last.Periods, 1, "generation one left the window")
	require.Equal(t, "g2", last.Periods[0].ID)
	for _, m := range seen {
		for _, p := range m.Periods {
			var was *tPeriod
			for i := range before.Periods {
				if before.Periods[i].ID == p.ID {
					was = &before.Periods[i]
				}
			}
			require.NotNil(t, was)
			require.Equal(t, was.Start, p.Start, "Period %s@start never moves", p.ID)
			for _, track := range []string{"v", AudioTrack} {
				_, _, tm, ok := p.rep(track)
				require.True(t, ok)
				_, _, wasTM, _ := was.rep(track)
				require.Equal(t, wasTM.PTO, tm.PTO)
				require.Equal(t, wasTM.Timescale, tm.Timescale)
				require.GreaterOrEqual(t, tm.StartNumber, wasTM.StartNumber)
			}
		}
	}
	_, _, tm, _ := last.Periods[0].rep("v")
	_, _, wasTM, _ := before.Periods[1].rep("v")
	require.Greater(t, tm.StartNumber, wasTM.StartNumber, "generation two's first segments left too")
	require.Equal(t, media(t, s, "v", nil).msn, tm.StartNumber)
}

func TestMPDTurnsStaticAtTheEnd(t *testing.T) {
	for _, partTarget := range []float64{0, 0.334} {
		t.Run(fmt.Sprint(partTarget), func(t *testing.T) {
			clock := newClock()
			s := newTestStream(clock, partTarget)
			g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
			newFeeder(t, g, []string{"v"}, true, twoSecond, clock).run(7)
			g.Close()
			live := mpd(t, s)
			s.End()
			m := mpd(t, s)
			require.Equal(t, "static", m.Type)
			require.Empty(t, m.MinUpdate)
			require.Empty(t, m.TimeShift)
			require.Empty(t, m.Delay)
			require.Nil(t, m.Service, "nothing is being written any more")
			require.Equal(t, live.AST, m.AST)
			require.Equal(t, live.Periods[0].Start, m.Periods[0].Start, "the timeline stays where a watching player has it")
			_, _, tm, _ := m.Periods[0].rep("v")
			_, _, liveTM, _ := live.Periods[0].rep("v")
			require.Equal(t, liveTM.StartNumber, tm.StartNumber)
			require.Equal(t, liveTM.S, tm.S)
			require.Empty(t, tm.ATO)
			require.Empty(t, tm.ATC)

			// mediaPresentationDuration is the end of the last segment on
			// the presentation timeline (seconds since the epoch).
			var end float64
			for _, track := range []string{"v", AudioTrack} {
				_, _, tm, _ := m.Periods[0].rep(track)
				segs := tm.segments()
				l := segs[len(segs)-1]
				end = max(end, seconds(t, m.Periods[0].Start)+float64(l.t+l.d)/float64(tm.Timescale))
			}
			require.InDelta(t, end, seconds(t, m.Duration), 0.0015)
		})
	}
}

// The open segment is listed with the duration it ends up with.
func TestMPDOpenSegmentIsListedWithItsFinalDuration(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	// 3.0 stops on a boundary: the open segments are as long as they get.
	for _, step := range []float64{3.0, 0.2, 1.34, 2.1, 0.7, 1.5, 2.0} {
		f.run(step)
		before := mpd(t, s)
		f.run(2.5) // the open segment closes
		after := mpd(t, s)
		for _, track := range []string{"v", AudioTrack} {
			_, _, tm, _ := before.Periods[0].rep(track)
			segs := tm.segments()
			open := segs[len(segs)-1]
			_, _, tm2, _ := after.Periods[0].rep(track)
			var found bool
			for _, sg := range tm2.segments() {
				if sg.num == open.num {
					require.Equal(t, open, sg, "%s: segment %d as listed while open", track, open.num)
					found = true
				}
			}
			require.True(t, found)
		}
	}
}

func TestMPDRenditionRemovedAtASeam(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	g1 := s.Begin([]TrackSpec{{Name: "hi", Kind: Video}, {Name: "lo", Kind: Video}})
	newFeeder(t, g1, []string{"hi", "lo"}, false, twoSecond, clock).run(5)
	g1.Close()
	g2 := s.Begin([]TrackSpec{{Name: "lo", Kind: Video}})
	newFeeder(t, g2, []string{"lo"}, false, twoSecond, clock).run(4)
	m := mpd(t, s)
	require.Len(t, m.Periods, 2)
	require.Len(t, m.Periods[0].Sets, 1, "no audio, no audio AdaptationSet")
	var ids [2][]string
	for i, p := range m.Periods {
		for _, r := range p.Sets[0].Reps {
			ids[i] = append(ids[i], r.ID)
		}
	}
	require.Equal(t, [2][]string{{"lo", "hi"}, {"lo"}}, ids, "the active generation's tracks first, then the rest by name")
}

func TestMPDIsDeterministic(t *testing.T) {
	s := twoGenerations(t, 0.334)
	a, err := s.Serve(context.Background(), ManifestName, nil)
	require.NoError(t, err)
	b, err := s.Serve(context.Background(), ManifestName, nil)
	require.NoError(t, err)
	require.Equal(t, string(a.Body), string(b.Body))
}

func TestMPDEscapesTemplateText(t *testing.T) {
	clock := newClock()
	s := New(Config{TargetDuration: 2, Schedule: twoSecond, Now: clock.now, FirstMSN: 7, ID: `a$b"<c`})
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, g, []string{"v"}, false, twoSecond, clock).run(3)
	m := mpd(t, s) // well-formed, or this fails
	_, _, tm, _ := m.Periods[0].rep("v")
	require.Equal(t, `$RepresentationID$/a$$b"<c-$Number$.m4s`, tm.Media)
	f, err := s.Serve(context.Background(), tm.uri(tm.Media, "v", tm.StartNumber), nil)
	require.NoError(t, err)
	require.Equal(t, "segment", f.Kind)
}

func TestXSDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "PT0S"}, {2 * time.Second, "PT2S"}, {334 * time.Millisecond, "PT0.334S"},
		{1500 * time.Millisecond, "PT1.5S"}, {1020 * time.Millisecond, "PT1.02S"},
		{1999999 * time.Microsecond, "PT1.999S"}, {-time.Second, "-PT1S"},
		{time.Duration(1795867199658) * time.Millisecond, "PT1795867199.658S"},
	} {
		require.Equal(t, tc.want, xsDuration(tc.d), tc.d.String())
	}
}

func TestDashFrameRate(t *testing.T) {
	for _, tc := range []struct {
		fps  float64
		want string
	}{
		{0, ""}, {30, "30"}, {25, "25"}, {29.97, "30000/1001"}, {30000.0 / 1001, "30000/1001"},
		{59.94, "60000/1001"}, {23.976, "24000/1001"}, {12.5, "25/2"},
	} {
		require.Equal(t, tc.want, dashFrameRate(tc.fps), "%v", tc.fps)
	}
}
