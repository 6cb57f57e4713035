package packager

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWindowOf(t *testing.T) {
	segs := func(durs ...float64) []SegmentRecord {
		out := make([]SegmentRecord, len(durs))
		for i, d := range durs {
			out[i] = SegmentRecord{MSN: uint64(i), Duration: d}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		segs    []SegmentRecord
		seconds float64
		first   uint64
		n       int
	}{
		{"empty", nil, 10, 0, 0},
		{"all fit", segs(2, 2, 2), 10, 0, 3},
		{"exactly", segs(2, 2, 2, 2), 6, 1, 3},
		{"the newest that fit", segs(1, 1, 1, 2, 2, 2), 5, 4, 2},
		{"at least one", segs(2, 8), 5, 1, 1},
	} {
		got := WindowOf(tc.segs, tc.seconds)
		require.Len(t, got, tc.n, tc.name)
		if tc.n > 0 {
			require.Equal(t, tc.first, got[0].MSN, tc.name)
		}
	}
}

// memArchive is a recorder in memory: it takes what Finished hands out,
// as the node's recorder writes it to disk.
type memArchive struct {
	segs  map[string][]SegmentRecord
	files map[string][]byte // track/file
	marks map[string]uint64
}

func newMemArchive() *memArchive {
	return &memArchive{segs: map[string][]SegmentRecord{}, files: map[string][]byte{}, marks: map[string]uint64{}}
}

func (a *memArchive) Archived(track string) []SegmentRecord { return a.segs[track] }

func (a *memArchive) ReadArchived(track, file string) ([]byte, error) {
	b, ok := a.files[track+"/"+file]
	if !ok {
		return nil, ErrNotFound
	}
	return b, nil
}

// take writes what the stream finished since the last take; skip leaves
// out the segments it names (a recorder that lost them).
func (a *memArchive) take(s *Stream, skip func(SegmentRecord) bool) (ended bool) {
	_, fin, marks, ended := s.Finished(a.marks)
	for _, f := range fin {
		if skip != nil && skip(f.Record) {
			continue
		}
		a.segs[f.Record.Track] = append(a.segs[f.Record.Track], f.Record)
		a.files[f.Record.Track+"/"+f.Record.File] = f.Data
		if f.Init != nil {
			a.files[f.Record.Track+"/"+f.Record.Init] = f.Init
		}
	}
	a.marks = marks
	return ended
}

func serveBody(t *testing.T, s *Stream, name string) []byte {
	t.Helper()
	f, err := s.Serve(context.Background(), name, nil)
	require.NoError(t, err, name)
	return f.Body
}

// feedRecorded runs two generations (a seam) for about 40 s of media,
// recording as it goes.
func feedRecorded(t *testing.T, skip func(SegmentRecord) bool) (*Stream, *memArchive) {
	clock := newClock()
	s := newTestStream(clock, 0)
	a := newMemArchive()
	s.SetArchive(a, 30)
	specs := []TrackSpec{{Name: "360p", Kind: Video, Bandwidth: 800000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64000}}
	g1 := s.Begin(specs)
	f1 := newFeeder(t, g1, []string{"360p"}, true, twoSecond, clock)
	for range 20 {
		f1.run(1)
		a.take(s, skip)
	}
	g1.Close()
	clock.add(2 * time.Second)
	g2 := s.Begin(specs)
	f2 := newFeeder(t, g2, []string{"360p"}, true, twoSecond, clock)
	for range 20 {
		f2.run(1)
		a.take(s, skip)
	}
	return s, a
}

// The DVR playlist lists the last 30 s although memory holds 8 segments:
// the older ones come from the archive, numbered on without a gap, one
// discontinuity at the seam, and their files are served from it.
func TestDVRWindowFromTheArchive(t *testing.T) {
	s, a := feedRecorded(t, nil)
	live := media(t, s, "360p", nil)
	require.Len(t, live.segs, 6, "the live playlist keeps its window")

	for _, track := range []string{"360p", AudioTrack} {
		p := parse(t, serveBody(t, s, track+"/"+DVRName))
		var total float64
		discs := 0
		for i, sg := range p.segs {
			total += sg.dur
			require.Equal(t, fmt.Sprintf("s1-%d.m4s", p.msn+uint64(i)), sg.uri, "%s: numbers follow each other", track)
			if sg.disc {
				discs++
			}
		}
		require.LessOrEqual(t, total, 30.001, track)
		require.Greater(t, total, 26.0, track)
		require.Equal(t, 1, discs, "%s: the seam", track)
		require.Equal(t, uint64(0), p.dseq)
		require.Len(t, p.maps, 2, "%s: both generations' init segments", track)
		require.False(t, p.ended)
		require.Less(t, p.msn, live.msn-6, "%s: reaches far behind the live window", track)
		s.mu.Lock()
		inMemory := s.tracks[track].find(p.msn) != nil
		s.mu.Unlock()
		require.False(t, inMemory, "%s: the oldest listed segment is on disk only", track)
		require.Zero(t, p.parts)

		// The oldest listed segment is not in memory any more: served from
		// the archive, with its init segment.
		f, err := s.Serve(context.Background(), track+"/"+p.segs[0].uri, nil)
		require.NoError(t, err)
		require.Equal(t, a.files[track+"/"+p.segs[0].uri], f.Body)
		require.True(t, f.Immutable)
		uri := strings.TrimSuffix(strings.TrimPrefix(p.maps[0], `URI="`), `"`)
		f, err = s.Serve(context.Background(), track+"/"+uri, nil)
		require.NoError(t, err, "the first generation's init segment")
		require.Equal(t, "init", f.Kind)
	}
	master := string(serveBody(t, s, DVRName))
	require.Contains(t, master, "360p/"+DVRName)
	require.Contains(t, master, `URI="audio/`+DVRName+`"`)

	s.End()
	require.True(t, parse(t, serveBody(t, s, "360p/"+DVRName)).ended)
}

// A recorder that lost segments (a disk stall longer than memory holds)
// leaves a gap: the DVR window stops at it rather than skip a number.
func TestDVRWindowStopsAtAGap(t *testing.T) {
	var lost uint64
	s, _ := feedRecorded(t, func(r SegmentRecord) bool {
		if r.Track == "360p" && lost == 0 && r.Gen == 1 && r.Duration == 2 {
			lost = r.MSN + 2 // the third segment of two seconds
		}
		return r.MSN == lost
	})
	p := parse(t, serveBody(t, s, "360p/"+DVRName))
	require.Greater(t, p.msn, lost, "nothing before the gap")
}

func TestNoDVRWithoutAWindow(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, g, []string{"v"}, false, twoSecond, clock).run(6)
	for _, name := range []string{DVRName, "v/" + DVRName} {
		_, err := s.Serve(context.Background(), name, nil)
		require.ErrorIs(t, err, ErrNotFound, name)
	}
}

func TestFinishedHandsOutEachSegmentOnce(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.5)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	f.run(3.5)
	tracks, segs, marks, ended := s.Finished(nil)
	require.Equal(t, []string{"v", AudioTrack}, []string{tracks[0].Spec.Name, tracks[1].Spec.Name})
	require.False(t, ended)
	seen := map[string]bool{}
	for _, sg := range segs {
		seen[sg.Record.Track+sg.Record.File] = true
		require.NotEmpty(t, sg.Data)
		require.NotEmpty(t, sg.Init, "the init segment goes with it")
		require.Equal(t, len(sg.Data), sg.Record.Size)
	}
	require.Len(t, segs, 6, "three complete segments per track; the open one (low latency) is not handed out")
	f.run(2)
	_, more, marks2, _ := s.Finished(marks)
	require.Len(t, more, 2)
	for _, sg := range more {
		require.False(t, seen[sg.Record.Track+sg.Record.File])
	}
	s.End()
	_, last, _, ended := s.Finished(marks2)
	require.True(t, ended)
	require.Len(t, last, 2, "End closes the open segments")
}

func rec(track string, msn uint64, dur float64, init string) SegmentRecord {
	return SegmentRecord{Track: track, MSN: msn, Duration: dur, Init: init, File: fmt.Sprintf("s-%d.m4s", msn),
		PDT: time.Date(2026, 11, 28, 12, 0, int(msn), 0, time.UTC)}
}

var vodTracks = []TrackRecord{
	{Spec: TrackSpec{Name: "360p", Kind: Video, Bandwidth: 800000}, Info: InitInfo{Kind: Video, Codec: "avc1.64001e", Width: 640, Height: 360}},
	{Spec: TrackSpec{Name: AudioTrack, Kind: Audio, Bandwidth: 64000}, Info: InitInfo{Kind: Audio, Codec: "mp4a.40.2", Channels: 2}},
}

func TestMergeCopies(t *testing.T) {
	owner := Copy{Node: "a", Tracks: vodTracks}
	standby := Copy{Node: "b", Tracks: vodTracks}
	for msn := uint64(10); msn <= 20; msn++ {
		owner.Segments = append(owner.Segments, rec("360p", msn, 2, "s-i1.mp4"), rec(AudioTrack, msn, 2, "s-i1.mp4"))
	}
	// The standby's copy started later and went on after the owner died:
	// 15-25, a seam (new generation) at 21.
	for msn := uint64(15); msn <= 25; msn++ {
		init := "s-i1.mp4"
		if msn >= 21 {
			init = "s-i2.mp4"
		}
		v := rec("360p", msn, 2, init)
		v.Disc = msn == 21
		standby.Segments = append(standby.Segments, v)
	}
	for _, tc := range []struct {
		name   string
		copies []Copy
		check  func(t *testing.T, a *Asset)
	}{
		{"one copy", []Copy{owner}, func(t *testing.T, a *Asset) {
			require.Len(t, a.Segments["360p"], 11)
			require.Equal(t, 22.0, a.Duration())
			n, ok := a.Locate("360p", "s-10.m4s")
			require.True(t, ok)
			require.Equal(t, "a", n)
		}},
		{"the standby fills what the owner never wrote", []Copy{standby, owner}, func(t *testing.T, a *Asset) {
			v := a.Segments["360p"]
			require.Len(t, v, 16, "10-25, once each")
			for i, sg := range v {
				require.Equal(t, uint64(10+i), sg.MSN)
			}
			// The base is the copy with most segments (a tie: by name), so
			// 10-20 are a's and 21-25 b's.
			require.Equal(t, "a", v[10].Node)
			require.Equal(t, "b", v[11].Node)
			require.True(t, v[11].Disc, "where the holder changes")
			n, _ := a.Locate("360p", "s-i2.mp4")
			require.Equal(t, "b", n)
			n, _ = a.Locate("360p", "s-i1.mp4")
			require.Equal(t, "a", n)
			require.Len(t, a.Segments[AudioTrack], 11, "the audio only the owner wrote")
			require.Equal(t, 32.0, a.Duration())
			_, ok := a.Locate("360p", "s-99.m4s")
			require.False(t, ok)
		}},
		{"no segments", []Copy{{Node: "a", Tracks: vodTracks}}, func(t *testing.T, a *Asset) {
			require.Empty(t, a.Tracks)
			_, err := a.Serve(MultivariantName)
			require.ErrorIs(t, err, ErrNotFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, Merge(tc.copies)) })
	}
}

func TestVODPlaylists(t *testing.T) {
	c := Copy{Node: "a", Tracks: vodTracks}
	for msn := uint64(100); msn < 110; msn++ {
		if msn == 104 {
			continue // lost: a gap
		}
		init := "s-i1.mp4"
		if msn >= 107 {
			init = "s-i2.mp4"
		}
		v := rec("360p", msn, 2, init)
		v.Disc = msn == 107
		if msn == 109 {
			v.Duration = 2.6 // the last one a little longer
		}
		c.Segments = append(c.Segments, v, rec(AudioTrack, msn, 2, "s-i1.mp4"))
	}
	a := Merge([]Copy{c})
	f, err := a.Serve(MultivariantName)
	require.NoError(t, err)
	master := string(f.Body)
	require.Contains(t, master, "360p/index.m3u8")
	require.Contains(t, master, `URI="audio/index.m3u8"`)
	require.Contains(t, master, `CODECS="avc1.64001e,mp4a.40.2"`)

	f, err = a.Serve("360p/" + MediaName)
	require.NoError(t, err)
	require.Equal(t, "playlist", f.Kind)
	body := string(f.Body)
	require.Contains(t, body, "#EXT-X-PLAYLIST-TYPE:VOD\n")
	p := parse(t, f.Body)
	require.True(t, p.ended)
	require.Equal(t, 3, p.target, "2.6 s rounds to 3")
	require.Equal(t, uint64(0), p.msn)
	require.Len(t, p.segs, 9)
	var discAt []string
	for _, sg := range p.segs {
		if sg.disc {
			discAt = append(discAt, sg.uri)
		}
	}
	require.Equal(t, []string{"s-105.m4s", "s-107.m4s"}, discAt, "at the gap and at the seam")
	require.Equal(t, []string{`URI="s-i1.mp4"`, `URI="s-i1.mp4"`, `URI="s-i2.mp4"`}, p.maps, "EXT-X-MAP again after each discontinuity")

	for _, name := range []string{"1080p/index.m3u8", "360p/s-100.m4s", "nope.m3u8"} {
		_, err := a.Serve(name)
		require.ErrorIs(t, err, ErrNotFound, name)
	}
	ct, kind := MediaType("s-i1.mp4")
	require.Equal(t, [2]string{typeMP4, "init"}, [2]string{ct, kind})
	ct, kind = MediaType("s-3.ts")
	require.Equal(t, [2]string{typeTS, "segment"}, [2]string{ct, kind})
}
