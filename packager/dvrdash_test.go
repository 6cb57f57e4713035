package packager

import (
	"context"
	"encoding/xml"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dvrStream plays two generations (a seam) of a two-rendition ladder with
// audio, about 40 s of media, recording as it goes, with a DVR window of
// dvrSeconds; the second generation's feeder goes on playing.
func dvrStream(t *testing.T, partTarget float64, dvrSeconds int) (*Stream, *memArchive, *feeder) {
	clock := newClock()
	s := newTestStream(clock, partTarget)
	a := newMemArchive()
	s.SetArchive(a, dvrSeconds)
	specs := []TrackSpec{
		{Name: "360p", Kind: Video, Bandwidth: 800_000, FrameRate: 30},
		{Name: "240p", Kind: Video, Bandwidth: 400_000, FrameRate: 30},
		{Name: AudioTrack, Kind: Audio, Bandwidth: 64_000},
	}
	g1 := s.Begin(specs)
	f1 := newFeeder(t, g1, []string{"360p", "240p"}, true, twoSecond, clock)
	for range 20 {
		f1.run(1)
		a.take(s, nil)
	}
	g1.Close()
	clock.add(2 * time.Second)
	g2 := s.Begin(specs)
	f2 := newFeeder(t, g2, []string{"360p", "240p"}, true, twoSecond, clock)
	for range 20 {
		f2.run(1)
		a.take(s, nil)
	}
	return s, a, f2
}

func dvrMPD(t testing.TB, s *Stream) tMPD {
	t.Helper()
	f, err := s.Serve(context.Background(), DVRManifestName, nil)
	require.NoError(t, err)
	require.Equal(t, typeMPD, f.ContentType)
	require.Equal(t, "playlist", f.Kind)
	require.False(t, f.Immutable)
	var m tMPD
	require.NoError(t, xml.Unmarshal(f.Body, &m), "%s", f.Body)
	return m
}

// mpdSeg is one segment of a track as an MPD lists it, on the MPD's
// timeline (seconds since the epoch).
type mpdSeg struct {
	period    string
	num       uint64
	at, dur   float64
	init, uri string
}

// trackSegments lists a track's segments over every Period of an MPD.
func trackSegments(t testing.TB, m tMPD, track string) []mpdSeg {
	t.Helper()
	var out []mpdSeg
	for _, p := range m.Periods {
		_, _, tm, ok := p.rep(track)
		if !ok {
			continue
		}
		start := seconds(t, p.Start)
		for _, sg := range tm.segments() {
			out = append(out, mpdSeg{
				period: p.ID, num: sg.num,
				at:   start + (float64(sg.t)-float64(tm.PTO))/float64(tm.Timescale),
				dur:  float64(sg.d) / float64(tm.Timescale),
				init: tm.uri(tm.Init, track, 0), uri: tm.uri(tm.Media, track, sg.num),
			})
		}
	}
	return out
}

// The DVR MPD lists exactly what dvr.m3u8 lists, from the archive and from
// memory, on the live MPD's timeline, with a Period per seam and a
// timeShiftBufferDepth that reaches its oldest segment and no further.
func TestDVRMPDListsTheDVRWindow(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partTarget float64
		dvrSeconds int
		// fromDisk: the oldest listed segment is no longer in memory.
		fromDisk bool
		periods  []string
	}{
		{"standard, 30 s from disk and memory", 0, 30, true, []string{"g1", "g2"}},
		{"low latency, 30 s from disk and memory", 0.5, 30, true, []string{"g1", "g2"}},
		{"a window memory holds", 0, 10, false, []string{"g2"}},
		{"a window longer than the show", 0, 3600, true, []string{"g1", "g2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, a, _ := dvrStream(t, tc.partTarget, tc.dvrSeconds)
			m := dvrMPD(t, s)
			require.Equal(t, "dynamic", m.Type)
			require.Equal(t, dashAvailabilityStart, m.AST)
			require.Equal(t, "PT2S", m.MinUpdate)
			require.Equal(t, "PT6S", m.Delay)
			require.Nil(t, m.Service, "no latency target: a player seeking back stays there")
			require.Len(t, m.UTC, 1)

			var ids []string
			for _, p := range m.Periods {
				ids = append(ids, p.ID)
				require.Len(t, p.Sets, 2, p.ID)
			}
			require.Equal(t, tc.periods, ids, "a Period per seam")

			now := float64(s.now().UnixMilli()) / 1000
			depth := seconds(t, m.TimeShift)
			live := mpd(t, s)
			var oldest float64
			for _, track := range []string{"360p", "240p", AudioTrack} {
				hls := parse(t, serveBody(t, s, track+"/"+DVRName))
				segs := trackSegments(t, m, track)
				require.Len(t, segs, len(hls.segs), "%s: the segments dvr.m3u8 lists", track)
				var listed float64
				for i, sg := range segs {
					require.Equal(t, track+"/"+hls.segs[i].uri, sg.uri, "%s %d: the same file", track, sg.num)
					require.Equal(t, hls.msn+uint64(i), sg.num, "%s: $Number$ is the HLS numbering", track)
					require.InDelta(t, float64(hls.segs[i].pdt.UnixNano())/1e9, sg.at, 0.0015, "%s %d: where PDT says", track, sg.num)
					require.InDelta(t, hls.segs[i].dur, sg.dur, 0.0015, "%s %d: its duration", track, sg.num)
					if i > 0 && sg.period == segs[i-1].period {
						require.InDelta(t, segs[i-1].at+segs[i-1].dur, sg.at, 1e-6, "%s %d: no hole within a Period", track, sg.num)
					}
					require.Equal(t, hls.segs[i].disc, i > 0 && sg.period != segs[i-1].period, "%s %d: a new Period where HLS has a discontinuity", track, sg.num)
					listed += sg.dur
				}
				require.LessOrEqual(t, listed, float64(tc.dvrSeconds)+0.001, "%s: bounded by the window", track)
				if tc.dvrSeconds < 40 {
					require.Greater(t, listed, float64(tc.dvrSeconds)-2.5, "%s: fills the window", track)
				}
				s.mu.Lock()
				inMemory := s.tracks[track].find(segs[0].num) != nil
				s.mu.Unlock()
				require.Equal(t, !tc.fromDisk, inMemory, "%s: where the oldest segment is", track)
				if tc.fromDisk {
					arch := a.Archived(track)
					k, found := searchMSN(arch, segs[0].num)
					require.True(t, found, "%s: the oldest segment is archived", track)
					require.InDelta(t, float64(arch[k].PDT.UnixNano())/1e9, segs[0].at, 0.0015, "%s: at its archived time", track)
					require.Equal(t, track+"/"+arch[k].File, segs[0].uri)
					if tc.dvrSeconds > 40 {
						require.Equal(t, arch[0].MSN, segs[0].num, "%s: a window longer than the show lists all of it", track)
					}
					s.mu.Lock()
					_, initInMemory := s.tracks[track].inits[segs[0].init[len(track)+1:]]
					_, parsed := s.dvrInits[segs[0].init]
					s.mu.Unlock()
					require.False(t, initInMemory, "%s: the first generation's init segment left memory", track)
					require.True(t, parsed, "%s: its timescale and codec were read from the archive", track)
				}
				if track == "360p" {
					oldest = segs[0].at
				}
				oldest = min(oldest, segs[0].at)

				// The newest listed segment is the live edge's newest
				// complete one: the live MPD lists it too, in the same
				// Period, at the same time.
				lsegs := trackSegments(t, live, track)
				if tc.partTarget > 0 {
					lsegs = lsegs[:len(lsegs)-1] // the open one
				}
				require.Equal(t, lsegs[len(lsegs)-1], segs[len(segs)-1], "%s: the live edge", track)

				// Every file it names is served, the archived ones too.
				for _, sg := range []mpdSeg{segs[0], segs[len(segs)-1]} {
					for _, name := range []string{sg.init, sg.uri} {
						_, err := s.Serve(context.Background(), name, nil)
						require.NoError(t, err, name)
					}
				}
			}
			require.InDelta(t, now-oldest, depth, 0.002, "timeShiftBufferDepth reaches the oldest segment")
			require.LessOrEqual(t, depth, float64(tc.dvrSeconds)+2*2+0.002, "and no more than the window and the segment being made")

			// The live MPD keeps its short window and, for low latency,
			// its attributes.
			if tc.dvrSeconds > 2*6 {
				require.Less(t, seconds(t, live.TimeShift), depth)
			}
			if tc.partTarget > 0 {
				require.NotNil(t, live.Service)
				_, _, tm, _ := live.Periods[len(live.Periods)-1].rep("360p")
				require.Equal(t, "false", tm.ATC)
			}
		})
	}
}

// What the DVR MPD does as the stream goes on: its Periods keep their
// start while the window slides off memory onto the disk (the IOP forbids
// Period@start to change), it shows only what the standby acknowledged,
// and it turns static at the end.
func TestDVRMPDFollowsTheStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(t *testing.T, s *Stream, a *memArchive, f *feeder)
	}{
		{"Periods stay put while the window slides", func(t *testing.T, s *Stream, a *memArchive, f *feeder) {
			before := dvrMPD(t, s)
			live := mpd(t, s)
			require.Equal(t, live.Periods[len(live.Periods)-1].Start, before.Periods[len(before.Periods)-1].Start,
				"the live MPD's Period for the same generation")
			first := trackSegments(t, before, "360p")[0]
			for range 6 {
				f.run(1)
				a.take(s, nil)
			}
			after := dvrMPD(t, s)
			require.Greater(t, trackSegments(t, after, "360p")[0].num, first.num, "the window slid")
			for _, p := range after.Periods {
				for _, q := range before.Periods {
					if p.ID == q.ID {
						require.Equal(t, q.Start, p.Start, p.ID)
					}
				}
			}
		}},
		{"only what the standby acknowledged", func(t *testing.T, s *Stream, a *memArchive, f *feeder) {
			s.Gate(true)
			before := dvrMPD(t, s)
			f.run(4.5)
			a.take(s, nil)
			require.Equal(t, trackSegments(t, before, "360p"), trackSegments(t, dvrMPD(t, s), "360p"), "nothing new before the standby has it")
			d, _ := s.Since(nil)
			s.Ack(d.Held())
			segs := trackSegments(t, dvrMPD(t, s), "360p")
			require.Greater(t, segs[len(segs)-1].num, trackSegments(t, before, "360p")[len(trackSegments(t, before, "360p"))-1].num)
		}},
		{"static at the end", func(t *testing.T, s *Stream, a *memArchive, f *feeder) {
			s.End()
			a.take(s, nil)
			m := dvrMPD(t, s)
			require.Equal(t, "static", m.Type)
			require.Empty(t, m.TimeShift)
			require.Empty(t, m.MinUpdate)
			var end float64
			for _, track := range []string{"360p", "240p", AudioTrack} {
				segs := trackSegments(t, m, track)
				end = max(end, segs[len(segs)-1].at+segs[len(segs)-1].dur)
			}
			require.InDelta(t, end, seconds(t, m.Duration), 0.0015, "mediaPresentationDuration is the end of the last segment")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, a, f := dvrStream(t, 0, 30)
			tc.check(t, s, a, f)
		})
	}
}

func TestNoDVRMPD(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	_, err := s.Serve(context.Background(), DVRManifestName, nil)
	require.ErrorIs(t, err, ErrNotFound, "nothing made yet")
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, g, []string{"v"}, false, twoSecond, clock).run(6)
	_, err = s.Serve(context.Background(), DVRManifestName, nil)
	require.ErrorIs(t, err, ErrNotFound, "no DVR window")
}

func TestNoDVRMPDForMPEGTS(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	s.SetArchive(newMemArchive(), 60)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	require.NoError(t, g.Describe("v", InitInfo{Kind: Video, Codec: "avc1.64001f", Width: 640, Height: 360}))
	for i := range 8 {
		require.NoError(t, g.Chunk("v", make([]byte, 188), float64(i), 1, true))
		clock.add(time.Second)
	}
	require.NotEmpty(t, serveBody(t, s, "v/"+DVRName), "HLS has the window")
	_, err := s.Serve(context.Background(), DVRManifestName, nil)
	require.ErrorIs(t, err, ErrNotFound, "DASH needs CMAF")
}
