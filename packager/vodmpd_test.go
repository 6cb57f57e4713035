package packager

import (
	"encoding/xml"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// vodSeg is a recorded fMP4 segment of generation gen, starting at media
// time start (seconds, timescale 1000) of that generation, whose media time
// zero was at anchor.
func vodSeg(track string, msn uint64, gen int, anchor time.Time, start, dur float64) SegmentRecord {
	return SegmentRecord{Track: track, MSN: msn, Gen: gen, Start: uint64(math.Round(start * 1000)), Duration: dur,
		PDT: anchor.Add(time.Duration(start * float64(time.Second))), Init: fmt.Sprintf("s-i%d.mp4", gen), File: fmt.Sprintf("s-%d.m4s", msn)}
}

var vodMPDTracks = []TrackRecord{
	{Spec: TrackSpec{Name: "360p", Kind: Video, Bandwidth: 800000, FrameRate: 30}, Info: InitInfo{Kind: Video, Codec: "avc1.64001e", Width: 640, Height: 360, Timescale: 1000}},
	{Spec: TrackSpec{Name: AudioTrack, Kind: Audio, Bandwidth: 64000}, Info: InitInfo{Kind: Audio, Codec: "mp4a.40.2", Channels: 2, SampleRate: 48000, Timescale: 1000}},
}

// vodMPD fetches and reads back an asset's manifest.mpd.
func vodMPD(t *testing.T, a *Asset) tMPD {
	t.Helper()
	f, err := a.Serve(ManifestName)
	require.NoError(t, err)
	require.Equal(t, typeMPD, f.ContentType)
	var m tMPD
	require.NoError(t, xml.Unmarshal(f.Body, &m), "%s", f.Body)
	return m
}

func TestVODMPD(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	// generation 0: ten 2 s segments, the last 1.5 s; the audio starts
	// 21 ms before the video (its first frame came earlier).
	oneGen := func() []SegmentRecord {
		var out []SegmentRecord
		for i := range 10 {
			d := 2.0
			if i == 9 {
				d = 1.5
			}
			out = append(out, vodSeg("360p", uint64(i), 0, t0, 4+2*float64(i), d), vodSeg(AudioTrack, uint64(i), 0, t0, 3.979+2*float64(i), d))
		}
		return out
	}
	// ...then a seam: generation 1 started 30 s later with media time 0.
	withSeam := func() []SegmentRecord {
		out := oneGen()
		for i := range 5 {
			msn := uint64(10 + i)
			out = append(out, vodSeg("360p", msn, 1, t0.Add(60*time.Second), 2*float64(i), 2), vodSeg(AudioTrack, msn, 1, t0.Add(60*time.Second), 2*float64(i), 2))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		copies  []Copy
		periods []string
		// Where each Period starts on the recording's timeline, seconds.
		starts []float64
		// The audio/video offset in Period 0: video's first segment at
		// presentation time 0.021 s.
		check func(t *testing.T, m tMPD)
	}{
		{name: "one generation", copies: []Copy{{Node: "a", Tracks: vodMPDTracks, Segments: oneGen()}},
			periods: []string{"g0"}, starts: []float64{0},
			check: func(t *testing.T, m tMPD) {
				_, _, v, _ := m.Periods[0].rep("360p")
				_, _, au, _ := m.Periods[0].rep(AudioTrack)
				require.Equal(t, uint64(3979), au.PTO, "the Period begins with its earliest sample")
				require.Equal(t, uint64(3979), v.PTO, "the same instant on the video's timeline: a/v stay in sync")
			}},
		{name: "a seam is a new Period, after the last one ends", copies: []Copy{{Node: "a", Tracks: vodMPDTracks, Segments: withSeam()}},
			periods: []string{"g0", "g1"}, starts: []float64{0, 19.521}},
		{name: "a lost segment starts a new Period (numbers cannot skip)", copies: []Copy{{Node: "a", Tracks: vodMPDTracks, Segments: func() []SegmentRecord {
			segs := oneGen()
			return append(segs[:8], segs[10:]...) // both tracks' msn 4
		}()}}, periods: []string{"g0", "g0-1"}, starts: []float64{0, 8.021}},
		{name: "two copies merged: the standby's segments continue the timeline", copies: []Copy{
			{Node: "a", Tracks: vodMPDTracks, Segments: oneGen()[:12]},
			{Node: "b", Tracks: vodMPDTracks, Segments: oneGen()[6:]},
		}, periods: []string{"g0"}, starts: []float64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Merge(tc.copies)
			m := vodMPD(t, a)
			require.Equal(t, "static", m.Type)
			require.Empty(t, m.MinUpdate)
			require.Empty(t, m.TimeShift)
			var ids []string
			var starts []float64
			for _, p := range m.Periods {
				ids = append(ids, p.ID)
				starts = append(starts, seconds(t, p.Start))
			}
			require.Equal(t, tc.periods, ids)
			require.InDeltaSlice(t, tc.starts, starts, 0.0005)

			var longest float64
			for _, tr := range vodMPDTracks {
				name := tr.Spec.Name
				f, err := a.Serve(name + "/" + MediaName)
				require.NoError(t, err)
				hls := parse(t, f.Body)
				// Every segment the HLS VOD playlist lists, in order, with
				// its duration, and nothing else.
				var uris []string
				var durs []float64
				var end float64
				for k, p := range m.Periods {
					_, _, tm, ok := p.rep(name)
					if !ok {
						continue
					}
					require.Equal(t, "$RepresentationID$/s-$Number$.m4s", tm.Media)
					require.Equal(t, fmt.Sprintf("$RepresentationID$/s-i%d.mp4", a.segmentAt(name, tm.StartNumber).Gen), tm.Init)
					for _, sg := range tm.segments() {
						uris = append(uris, tm.uri("s-$Number$.m4s", name, sg.num))
						durs = append(durs, float64(sg.d)/float64(tm.Timescale))
						at := starts[k] + float64(sg.t-tm.PTO)/float64(tm.Timescale)
						require.GreaterOrEqual(t, at, starts[k]-0.0005, "%s %d: not before its Period", name, sg.num)
						if k+1 < len(starts) {
							require.LessOrEqual(t, at+float64(sg.d)/float64(tm.Timescale), starts[k+1]+0.0005, "%s %d: within its Period", name, sg.num)
						}
						end = max(end, at+float64(sg.d)/float64(tm.Timescale))
					}
				}
				var hlsURIs []string
				var hlsDurs []float64
				for _, sg := range hls.segs {
					hlsURIs = append(hlsURIs, sg.uri)
					hlsDurs = append(hlsDurs, sg.dur)
				}
				require.Equal(t, hlsURIs, uris, name)
				require.InDeltaSlice(t, hlsDurs, durs, 0.0005, name)
				longest = max(longest, end)
			}
			require.InDelta(t, longest, seconds(t, m.Duration), 0.001, "mediaPresentationDuration is the end of the last segment")
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestVODMPDNotForTS(t *testing.T) {
	sg := vodSeg("360p", 0, 0, time.Now(), 0, 2)
	sg.Init, sg.File = "", "s-0.ts"
	a := Merge([]Copy{{Node: "a", Tracks: vodMPDTracks[:1], Segments: []SegmentRecord{sg}}})
	_, err := a.Serve(MultivariantName)
	require.NoError(t, err, "HLS plays it")
	_, err = a.Serve(ManifestName)
	require.ErrorIs(t, err, ErrNotFound, "DASH has no MPEG-TS")
}

// segmentAt is a track's segment numbered msn (it is listed).
func (a *Asset) segmentAt(track string, msn uint64) SegmentRecord {
	segs := a.Segments[track]
	i, _ := searchMSN(segs, msn)
	return segs[i]
}
