package packager

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPreloadHintWhileNothingProduces: a low-latency playlist keeps its
// preload hint while no generation produces (the transcoder stopped, the
// next producer has not started), and the hinted part is the first part of
// the next generation's first segment. Without a hint, hls.js takes the
// last listed segment for the one being made and cannot merge the next
// update ("media sequence mismatch"), which ends playback.
func TestPreloadHintWhileNothingProduces(t *testing.T) {
	clock := newClock()
	s := newTestStream(clock, 0.334)
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	g1 := s.Begin(specs)
	newFeeder(t, g1, []string{"v"}, true, twoSecond, clock).run(6.2)
	for _, track := range []string{"v", AudioTrack} {
		require.False(t, media(t, s, track, nil).hintDisc, "%s: the producer goes on, no discontinuity ahead", track)
	}
	g1.Close() // the publisher went away
	d, _ := s.Since(nil)
	require.True(t, d.AtSeam, "the copy learns that the next segment follows a seam")
	copied := NewReplica(d, clock.now)

	hints := map[string]string{}
	for _, track := range []string{"v", AudioTrack} {
		p := media(t, s, track, nil)
		require.False(t, p.ended)
		require.True(t, p.hintDisc, "%s: the hinted segment comes from the next producer, behind a discontinuity", track)
		require.True(t, media(t, copied, track, nil).hintDisc, "%s: a copy says the same", track)
		require.NotEmpty(t, p.hint, "%s: a hint while nothing produces", track)
		last := p.segs[len(p.segs)-1].uri
		next := p.msn + uint64(len(p.segs))
		require.Equal(t, `TYPE=PART,URI="s1-`+strconv.FormatUint(next, 10)+`.0.m4s"`, p.hint, "%s: the hint names the next segment's first part (last listed: %s)", track, last)
		hints[track] = strings.TrimSuffix(strings.SplitN(p.hint, `URI="`, 2)[1], `"`)
	}

	clock.add(2 * time.Second)
	g2 := s.Begin(specs)
	newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(1.5)
	<-g2.Active()
	for track, uri := range hints {
		p := media(t, s, track, nil)
		var first *parsedSeg
		for i := range p.segs {
			if p.segs[i].disc {
				first = &p.segs[i]
				break
			}
		}
		require.NotNil(t, first, "%s: the new generation behind a discontinuity", track)
		require.Equal(t, strings.TrimSuffix(uri, ".0.m4s")+".m4s", first.uri, "%s: the hinted part opened the new generation", track)
		require.False(t, p.hintDisc, "%s: a producer again, no discontinuity ahead", track)
	}
	d, _ = s.Since(nil)
	require.False(t, d.AtSeam)
	require.NoError(t, copied.Apply(d))
	require.False(t, media(t, copied, "v", nil).hintDisc, "the copy follows its producer")

	s.End()
	for _, track := range []string{"v", AudioTrack} {
		p := media(t, s, track, nil)
		require.True(t, p.ended)
		require.Empty(t, p.hint, "%s: no hint once the stream is over", track)
	}
}

// TestSeamAheadOfAContinuedCopy: a node that starts producing on a copy
// (the owner died) or on a stream whose producer stopped says that a
// discontinuity is ahead only where the next segment will be its own: a
// copy that holds the segment being made hints at that segment's next
// part, which the new producer closes without; a hot standby held ready
// says nothing until it is released.
func TestSeamAheadOfAContinuedCopy(t *testing.T) {
	clock := newClock()
	owner := newTestStream(clock, 0.334)
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	newFeeder(t, owner.Begin(specs), []string{"v"}, true, twoSecond, clock).run(5.7)
	d, _ := owner.Since(nil)
	require.False(t, d.AtSeam)

	standby := NewReplica(d, clock.now)
	held := standby.BeginHeld(specs)
	require.False(t, media(t, standby, "v", nil).hintDisc, "a held generation replaces nothing yet")

	// The owner dies mid-segment: the copy's segment being made closes
	// where it is when the standby's generation starts; players that have
	// its parts number it with the discontinuities before it, as before.
	require.NoError(t, held.Release())
	f, err := standby.Serve(context.Background(), "v/"+MediaName, nil)
	require.NoError(t, err)
	body := string(f.Body)
	require.Greater(t, strings.LastIndex(body, "#EXT-X-PART:"), strings.LastIndex(body, "#EXTINF"), "the copy lists the parts of the segment being made")
	require.False(t, parse(t, f.Body).hintDisc, "no discontinuity before the segment being made")

	// The producer had stopped at a segment's end before it died: the
	// next segment is the new producer's.
	owner2 := newTestStream(clock, 0.334)
	g := owner2.Begin(specs)
	newFeeder(t, g, []string{"v"}, true, twoSecond, clock).run(5.1)
	g.Close()
	d, _ = owner2.Since(nil)
	standby2 := NewReplica(d, clock.now)
	require.True(t, media(t, standby2, "v", nil).hintDisc)
	g2 := standby2.Begin(specs)
	require.True(t, media(t, standby2, "v", nil).hintDisc, "still ahead while the new producer starts")
	newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(2.5)
	<-g2.Active()
	require.False(t, media(t, standby2, "v", nil).hintDisc, "past the new producer's first segment")
}

// TestGatedSeamIsSaidAhead: a producer stops, the standby takes the copy
// that ends with the closed segment, and the next producer's first segment
// (behind a discontinuity) is made before the standby has it. The gated
// playlist ends with the closed segment; the discontinuity the gate still
// hides is said before the hint, as it will be when that segment shows.
func TestGatedSeamIsSaidAhead(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	s := newTestStream(clock, 0.334)
	g1 := s.Begin(specs)
	newFeeder(t, g1, []string{"v"}, true, twoSecond, clock).run(6.2)
	s.Gate(true)
	g1.Close()
	d, _ := s.Since(nil)
	s.Ack(d.Held()) // the standby holds the closed segment
	require.True(t, media(t, s, "v", nil).hintDisc)

	g2 := s.Begin(specs)
	newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(0.7)
	<-g2.Active()
	require.True(t, s.Hidden(), "the new producer's parts wait for the standby")
	for _, track := range []string{"v", AudioTrack} {
		p := media(t, s, track, nil)
		require.False(t, p.segs[len(p.segs)-1].disc)
		require.True(t, p.hintDisc, "%s: the hidden segment follows a discontinuity, said ahead", track)
	}
	d, _ = s.Since(nil)
	s.Ack(d.Held())
	require.False(t, s.Hidden())
	f, err := s.Serve(context.Background(), "v/"+MediaName, nil)
	require.NoError(t, err)
	require.Contains(t, string(f.Body), "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:", "shown, the segment carries the discontinuity itself")
	require.NotContains(t, string(f.Body), "#EXT-X-DISCONTINUITY\n#EXT-X-PRELOAD-HINT")
}
