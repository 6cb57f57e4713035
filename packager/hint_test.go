package packager

import (
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
	g1.Close() // the publisher went away

	hints := map[string]string{}
	for _, track := range []string{"v", AudioTrack} {
		p := media(t, s, track, nil)
		require.False(t, p.ended)
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
	}

	s.End()
	for _, track := range []string{"v", AudioTrack} {
		p := media(t, s, track, nil)
		require.True(t, p.ended)
		require.Empty(t, p.hint, "%s: no hint once the stream is over", track)
	}
}
