package packager

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parsed is a media playlist as a test reads it.
type parsed struct {
	target, version   int
	msn, dseq         uint64
	segs              []parsedSeg
	parts             int // EXT-X-PART lines
	hint              string
	hintDisc          bool // an EXT-X-DISCONTINUITY is pending where the hint is
	reports           int
	ended             bool
	maps              []string
	partTarget        string
	skipped           int
	lastPartsOfOpenSN int
}

type parsedSeg struct {
	uri  string
	dur  float64
	disc bool
	pdt  time.Time
}

func parse(t testing.TB, b []byte) parsed {
	t.Helper()
	var p parsed
	sc := bufio.NewScanner(bytes.NewReader(b))
	var disc bool
	var pdt time.Time
	var dur float64
	require.True(t, sc.Scan())
	require.Equal(t, "#EXTM3U", sc.Text())
	for sc.Scan() {
		line := sc.Text()
		tag, val, _ := strings.Cut(line, ":")
		switch tag {
		case "#EXT-X-TARGETDURATION":
			p.target, _ = strconv.Atoi(val)
		case "#EXT-X-VERSION":
			p.version, _ = strconv.Atoi(val)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.msn, _ = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-DISCONTINUITY-SEQUENCE":
			p.dseq, _ = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-DISCONTINUITY":
			disc = true
		case "#EXT-X-PROGRAM-DATE-TIME":
			var err error
			pdt, err = time.Parse(time.RFC3339Nano, val)
			require.NoError(t, err)
		case "#EXTINF":
			d, _, _ := strings.Cut(val, ",")
			dur, _ = strconv.ParseFloat(d, 64)
		case "#EXT-X-PART":
			p.parts++
		case "#EXT-X-PART-INF":
			p.partTarget = strings.TrimPrefix(val, "PART-TARGET=")
		case "#EXT-X-PRELOAD-HINT":
			p.hint, p.hintDisc = val, disc
		case "#EXT-X-RENDITION-REPORT":
			p.reports++
		case "#EXT-X-ENDLIST":
			p.ended = true
		case "#EXT-X-MAP":
			p.maps = append(p.maps, val)
		case "#EXT-X-SKIP":
			p.skipped, _ = strconv.Atoi(strings.TrimPrefix(val, "SKIPPED-SEGMENTS="))
		default:
			if !strings.HasPrefix(line, "#") && line != "" {
				p.segs = append(p.segs, parsedSeg{uri: line, dur: dur, disc: disc, pdt: pdt})
				disc = false
			}
		}
	}
	return p
}

func media(t testing.TB, s *Stream, track string, q url.Values) parsed {
	t.Helper()
	f, err := s.Serve(context.Background(), track+"/"+MediaName, q)
	require.NoError(t, err)
	return parse(t, f.Body)
}

var twoSecond = Schedule{StartCount: 3, StartSeconds: 1, Seconds: 2}

func newTestStream(clock *fakeClock, partTarget float64) *Stream {
	return New(Config{TargetDuration: 2, Schedule: twoSecond, PartTarget: partTarget, Window: 6, Keep: 2, Now: clock.now, FirstMSN: 1000, ID: "s1"})
}

func TestScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		s    Schedule
		t    float64
		want float64
	}{
		{twoSecond, 0, 1}, {twoSecond, 0.5, 1}, {twoSecond, 1, 2}, {twoSecond, 2.9, 3},
		{twoSecond, 3, 5}, {twoSecond, 4.99, 5}, {twoSecond, 5, 7},
		{Schedule{Seconds: 2}, 0, 2}, {Schedule{Seconds: 2}, 2, 4},
		{Schedule{StartCount: 3, StartSeconds: 1, Seconds: 1}, 7.2, 8},
	} {
		require.InDelta(t, tc.want, tc.s.next(tc.t), 1e-9, "next(%v) of %+v", tc.t, tc.s)
	}
}

func TestSegmentsFollowTheSchedule(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	g := s.Begin([]TrackSpec{{Name: "360p", Kind: Video, Bandwidth: 800_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}})
	f := newFeeder(t, g, []string{"360p"}, true, twoSecond, clock)
	f.run(10.5)

	v := media(t, s, "360p", nil)
	require.Equal(t, 2, v.target)
	require.Equal(t, uint64(1000), v.msn)
	var durs []float64
	for _, sg := range v.segs {
		durs = append(durs, sg.dur)
		require.False(t, sg.disc)
		require.False(t, sg.pdt.IsZero())
	}
	// 1+1+1+2+2+2 complete (the seventh is still open).
	require.Equal(t, []float64{1, 1, 1, 2, 2, 2}, durs)
	a := media(t, s, AudioTrack, nil)
	require.Equal(t, v.msn, a.msn, "audio numbered like video")
	require.Len(t, a.segs, len(v.segs))
	for i := range a.segs {
		require.InDelta(t, v.segs[i].dur, a.segs[i].dur, 0.35, "audio segment %d lines up", i)
	}
	// PDT advances by the durations.
	for i := 1; i < len(v.segs); i++ {
		require.InDelta(t, v.segs[i-1].dur, v.segs[i].pdt.Sub(v.segs[i-1].pdt).Seconds(), 0.01)
	}

	mv, err := s.Serve(context.Background(), MultivariantName, nil)
	require.NoError(t, err)
	body := string(mv.Body)
	require.Contains(t, body, `CODECS="avc1.64001f,mp4a.40.2"`)
	require.Contains(t, body, "RESOLUTION=640x360")
	require.Contains(t, body, "BANDWIDTH=864000")
	require.Contains(t, body, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`)
	require.Contains(t, body, "360p/index.m3u8")
}

func TestGenerationsContinueNumberingBehindADiscontinuity(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	specs := []TrackSpec{{Name: "360p", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	g1 := s.Begin(specs)
	newFeeder(t, g1, []string{"360p"}, true, twoSecond, clock).run(7.5)
	// The transcoder restarts: its media time starts at zero again.
	g1.Close()
	before := media(t, s, "360p", nil)
	lastBefore := before.msn + uint64(len(before.segs)) - 1
	clock.add(3 * time.Second)
	g2 := s.Begin(specs)
	newFeeder(t, g2, []string{"360p"}, true, twoSecond, clock).run(4)
	select {
	case <-g2.Active():
	default:
		t.Fatal("second generation never became active")
	}
	after := media(t, s, "360p", nil)
	require.Equal(t, 2, after.target, "target duration constant")
	idx := -1
	for i, sg := range after.segs {
		if sg.disc {
			require.Equal(t, -1, idx, "one discontinuity")
			idx = i
		}
	}
	require.NotEqual(t, -1, idx, "a discontinuity at the seam")
	require.Equal(t, lastBefore+1, after.msn+uint64(idx), "numbering continues across the seam")
	require.Len(t, after.maps, 2, "a new EXT-X-MAP for the new init")
	require.True(t, after.segs[idx].pdt.After(after.segs[idx-1].pdt), "PDT moves on across the seam")
	require.Equal(t, uint64(0), after.dseq)
	a := media(t, s, AudioTrack, nil)
	require.Equal(t, after.msn, a.msn)
}

func TestDiscontinuitySequenceCountsSeamsThatLeft(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	specs := []TrackSpec{{Name: "v", Kind: Video}}
	for range 3 {
		g := s.Begin(specs)
		newFeeder(t, g, []string{"v"}, false, Schedule{Seconds: 2}, clock).run(4)
		g.Close()
	}
	// Each generation made two segments (2 s each): six segments, two
	// seams, all still listed.
	p := media(t, s, "v", nil)
	require.Len(t, p.segs, 6)
	require.Equal(t, uint64(0), p.dseq)
	g := s.Begin(specs)
	newFeeder(t, g, []string{"v"}, false, Schedule{Seconds: 2}, clock).run(8.1)
	p = media(t, s, "v", nil)
	// Window 6: the first generation's two segments and the second's two
	// are gone; the first listed segment opens generation three.
	require.Len(t, p.segs, 6)
	require.True(t, p.segs[0].disc)
	require.Equal(t, uint64(1), p.dseq, "the seam of generation two left the window")
	require.Equal(t, uint64(1000+4), p.msn)
}

func TestEndListOnlyAtTheEnd(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, g, []string{"v"}, false, twoSecond, clock).run(6)
	g.Close()
	require.False(t, media(t, s, "v", nil).ended, "a stopped transcoder does not end the stream")
	s.End()
	p := media(t, s, "v", nil)
	require.True(t, p.ended)
	require.ErrorIs(t, g.Fragment("v", fragment(0, frameDur, 10, true)), errEnded)
}

func TestMakeBeforeBreak(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0)
	specs := []TrackSpec{{Name: "v", Kind: Video}}
	old := s.Begin(specs)
	fo := newFeeder(t, old, []string{"v"}, false, twoSecond, clock)
	fo.run(6)
	// The new transcoder starts; until its first fragment arrives the old
	// one keeps the playlist moving.
	next := s.Begin(specs)
	fn := newFeeder(t, next, []string{"v"}, false, twoSecond, clock)
	fo.run(1)
	select {
	case <-next.Active():
		t.Fatal("active before it produced anything")
	default:
	}
	before := media(t, s, "v", nil)
	fn.run(0.4)
	<-next.Active()
	fo.run(1) // the old one's late fragments are dropped
	fn.run(2)
	after := media(t, s, "v", nil)
	require.Greater(t, len(after.segs), len(before.segs)-1)
	var seams int
	for _, sg := range after.segs {
		if sg.disc {
			seams++
		}
	}
	require.Equal(t, 1, seams)
}

func TestLowLatencyParts(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	g := s.Begin([]TrackSpec{{Name: "a", Kind: Video}, {Name: "b", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
	f := newFeeder(t, g, []string{"a", "b"}, true, twoSecond, clock)
	f.run(6.34)
	p := media(t, s, "a", nil)
	require.Equal(t, 9, p.version)
	require.Equal(t, "0.334", p.partTarget)
	require.NotEmpty(t, p.hint)
	require.Equal(t, 1, p.reports, "a report for the other video rendition")
	require.Greater(t, p.parts, 6)
	// The preload hint names a part that does not exist yet; asking for it
	// waits until it does.
	uri := strings.TrimSuffix(strings.SplitN(p.hint, `URI="`, 2)[1], `"`)
	got := make(chan error, 1)
	go func() {
		_, err := s.Serve(context.Background(), "a/"+uri, nil)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the request block first (the test passes either way)
	f.run(0.34)
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("the hinted part was never served")
	}
}

func TestBlockingReload(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	f := newFeeder(t, g, []string{"v"}, false, twoSecond, clock)
	f.run(3.1)
	p := media(t, s, "v", nil)
	last := p.msn + uint64(len(p.segs)) // the open segment
	q := url.Values{"_HLS_msn": {strconv.FormatUint(last, 10)}, "_HLS_part": {"3"}}
	done := make(chan parsed, 1)
	go func() { done <- media(t, s, "v", q) }()
	select {
	case <-done:
		t.Fatal("answered before the part existed")
	case <-time.After(50 * time.Millisecond):
	}
	f.run(1)
	select {
	case got := <-done:
		require.GreaterOrEqual(t, got.parts, 4)
	case <-time.After(2 * time.Second):
		t.Fatal("blocking reload never woke")
	}

	_, err := s.Serve(context.Background(), "v/"+MediaName, url.Values{"_HLS_msn": {strconv.FormatUint(last+10, 10)}})
	var bad *BadRequestError
	require.ErrorAs(t, err, &bad, "too far ahead is a 400")
	_, err = s.Serve(context.Background(), "v/"+MediaName, url.Values{"_HLS_msn": {"x"}})
	require.ErrorAs(t, err, &bad)
	_, err = s.Serve(context.Background(), "v/"+MediaName, url.Values{"_HLS_part": {"1"}})
	require.ErrorAs(t, err, &bad)
}

func TestServeFiles(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, g, []string{"v"}, false, twoSecond, clock).run(4)
	p := media(t, s, "v", nil)
	ctx := context.Background()
	seg, err := s.Serve(ctx, "v/"+p.segs[0].uri, nil)
	require.NoError(t, err)
	require.True(t, seg.Immutable)
	require.Equal(t, "segment", seg.Kind)
	initURI := strings.TrimSuffix(strings.TrimPrefix(p.maps[0], `URI="`), `"`)
	in, err := s.Serve(ctx, "v/"+initURI, nil)
	require.NoError(t, err)
	_, err = ParseInit(in.Body)
	require.NoError(t, err)
	for _, name := range []string{"v/other-1000.m4s", "x/" + MediaName, "v/s1-99.m4s", "v/s1-1000.99.m4s", "nope", "v/s1-i9.mp4"} {
		_, err := s.Serve(ctx, name, nil)
		require.ErrorIs(t, err, ErrNotFound, name)
	}
}

// A low-latency segment still being made is sent as its fragments arrive
// and the response ends, whole, when the segment does.
func TestProgressiveSegment(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	f := newFeeder(t, g, []string{"v"}, false, twoSecond, clock)
	f.run(3.4) // segment 1003 (3..5 s) is open with one or two parts
	p := media(t, s, "v", nil)
	open := p.msn + uint64(len(p.segs))
	file, err := s.Serve(context.Background(), "v/"+s.segmentURI(open), nil)
	require.NoError(t, err)
	require.NotNil(t, file.Progressive)
	require.True(t, file.Immutable)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var flushes atomic.Int32
	go func() {
		done <- file.Progressive(context.Background(), pw, func() { flushes.Add(1) })
		pw.Close()
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		got <- b
	}()
	waitFlushes := func(n int32) {
		deadline := time.Now().Add(2 * time.Second)
		for flushes.Load() < n {
			require.True(t, time.Now().Before(deadline), "no flush %d", n)
			time.Sleep(time.Millisecond)
		}
	}
	waitFlushes(1) // what there was
	f.run(0.34)
	waitFlushes(2) // the next fragment, on its own
	f.run(2)       // the segment completes at 5 s
	require.NoError(t, <-done)
	whole, err := s.Serve(context.Background(), "v/"+s.segmentURI(open), nil)
	require.NoError(t, err)
	require.Nil(t, whole.Progressive, "a complete segment is served whole")
	require.Equal(t, whole.Body, <-got)
	require.GreaterOrEqual(t, flushes.Load(), int32(2), "sent in several pieces")

	// The next segment, asked for before it starts (dash.js goes by the
	// clock), is held until it does and then sent as it is made; one
	// further ahead is not found.
	s.mu.Lock()
	last, _ := s.tracks["v"].lastMSN()
	s.mu.Unlock()
	next := last + 1
	_, err = s.Serve(context.Background(), "v/"+s.segmentURI(next+1), nil)
	require.ErrorIs(t, err, ErrNotFound)
	early := make(chan File, 1)
	go func() {
		f, err := s.Serve(context.Background(), "v/"+s.segmentURI(next), nil)
		assert.NoError(t, err)
		early <- f
	}()
	select {
	case <-early:
		t.Fatal("answered before the segment started")
	case <-time.After(50 * time.Millisecond):
	}
	f.run(2)
	select {
	case file := <-early:
		require.NotNil(t, file.Progressive, "the next segment, sent as it is made")
	case <-time.After(2 * time.Second):
		t.Fatal("the held request was not answered once the segment started")
	}

	// Standard latency waits for the whole segment instead.
	std := newTestStream(newClock(), 0)
	sg := std.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	newFeeder(t, sg, []string{"v"}, false, twoSecond, nil).run(3.4)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = std.Serve(ctx, "v/"+std.segmentURI(1003), nil)
	require.ErrorIs(t, err, ErrNotFound)
}

// A hot standby's generation stays ready with its newest GOP and replaces
// the producing one at once when released.
func TestHeldGenerationReleasesItsLastGOP(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	owner := s.Begin(specs)
	fo := newFeeder(t, owner, []string{"v"}, true, twoSecond, clock)
	hot := s.BeginHeld(specs)
	fh := newFeeder(t, hot, []string{"v"}, true, twoSecond, nil)
	for range 8 {
		fo.run(1)
		fh.run(1)
	}
	select {
	case <-hot.Active():
		t.Fatal("a held generation became active by itself")
	default:
	}
	before := media(t, s, "v", nil)
	for _, sg := range before.segs {
		require.False(t, sg.disc, "the held generation changed nothing")
	}
	owner.Close() // the owner is gone
	require.NoError(t, hot.Release())
	select {
	case <-hot.Active():
	default:
		t.Fatal("released but not active")
	}
	fh.run(2.5)
	after := media(t, s, "v", nil)
	var seams int
	for _, sg := range after.segs {
		if sg.disc {
			seams++
		}
	}
	require.Equal(t, 1, seams)
	// It started from its newest GOP: at most one segment (2 s) was held.
	hot.s.mu.Lock()
	first := hot.tracks["v"].first
	hot.s.mu.Unlock()
	require.GreaterOrEqual(t, first, 5.0, "older GOPs were dropped while held")
}
