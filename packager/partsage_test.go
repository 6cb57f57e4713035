package packager

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster/hlscheck"
)

// TestOldPartsLeaveThePlaylist: a low-latency playlist lists parts only for
// the segments that start within the last three target durations (RFC
// 8216bis), audio included, whose segments are longer than the target by
// up to a part: listing "the segments of the last three target durations"
// kept the parts of a segment that started a whole segment earlier (seen:
// audio parts 4.16 s from the end with a 1 s target).
func TestOldPartsLeaveThePlaylist(t *testing.T) {
	clock := newClock()
	const target = 1
	s := New(Config{TargetDuration: target, Schedule: Schedule{Seconds: 1}, PartTarget: 0.35, Window: 6, Keep: 2, Now: clock.now, FirstMSN: 1000, ID: "s1"})
	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
	f := newFeeder(t, g, []string{"v"}, true, Schedule{Seconds: 1}, clock)
	checks := map[string]*hlscheck.Media{"v": {Name: "v"}, AudioTrack: {Name: AudioTrack}}
	for range 300 {
		f.run(0.05)
		for track, c := range checks {
			file, err := s.Serve(context.Background(), track+"/"+MediaName, nil)
			require.NoError(t, err)
			_ = c.Add(file.Body, clock.now())
			for _, age := range partAges(t, file.Body) {
				require.LessOrEqual(t, age, 3*float64(target)+1e-6, "%s: a segment with parts starts %.3fs from the end:\n%s", track, age, file.Body)
			}
		}
	}
	for _, c := range checks {
		v := c.Violations()
		require.Empty(t, v, "%d violations, the first: %q", len(v), v[:min(3, len(v))])
	}
}

// partAges lists, for each complete segment that lists parts, how far
// from the end of the playlist (its parts included) it starts.
func partAges(t *testing.T, body []byte) []float64 {
	t.Helper()
	type seg struct {
		dur   float64
		parts bool
	}
	var (
		segs     []seg
		pending  float64
		hasParts bool
		dur      float64
	)
	for _, line := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-PART:DURATION="):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXT-X-PART:DURATION="), ",")
			d, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			pending += d
			hasParts = true
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			var err error
			dur, err = strconv.ParseFloat(v, 64)
			require.NoError(t, err)
		case line != "" && !strings.HasPrefix(line, "#"):
			segs = append(segs, seg{dur: dur, parts: hasParts})
			pending, hasParts = 0, false
		}
	}
	end := pending
	for _, sg := range segs {
		end += sg.dur
	}
	var ages []float64
	start := 0.0
	for _, sg := range segs {
		if sg.parts {
			ages = append(ages, end-start)
		}
		start += sg.dur
	}
	return ages
}
