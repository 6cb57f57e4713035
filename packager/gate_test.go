package packager

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReachCovers(t *testing.T) {
	for _, tc := range []struct {
		m, o Reach
		want bool
	}{
		{Reach{MSN: 5, Complete: true}, Reach{MSN: 5, Parts: 3}, true},
		{Reach{MSN: 5, Parts: 3}, Reach{MSN: 5, Complete: true}, false},
		{Reach{MSN: 5, Parts: 3}, Reach{MSN: 5, Parts: 2}, true},
		{Reach{MSN: 5, Parts: 2}, Reach{MSN: 5, Parts: 3}, false},
		{Reach{MSN: 6}, Reach{MSN: 5, Complete: true}, true},
		{Reach{MSN: 4, Complete: true}, Reach{MSN: 5}, false},
	} {
		t.Run(fmt.Sprintf("%+v/%+v", tc.m, tc.o), func(t *testing.T) {
			require.Equal(t, tc.want, tc.m.covers(tc.o))
		})
	}
}

// listedParts is every segment and part a playlist names, by URI.
func listedParts(t *testing.T, s *Stream, track string) []string {
	t.Helper()
	f, err := s.Serve(context.Background(), track+"/"+MediaName, nil)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(f.Body), "\n") {
		if (line != "" && !strings.HasPrefix(line, "#")) || strings.HasPrefix(line, "#EXT-X-PART:") {
			out = append(out, line)
		}
	}
	return out
}

// TestGateShowsWhatTheStandbyHolds: with the gate on, what the owner's
// playlists list (segments and parts) and the parts it sends are what the
// standby acknowledged; the preload-hinted part waits for the standby.
func TestGateShowsWhatTheStandbyHolds(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video, Bandwidth: 500_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}}
	owner := newTestStream(clock, 0.35)
	g := owner.Begin(specs)
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	f.run(8.2)

	before := media(t, owner, "v", nil)
	owner.Gate(true)
	require.Equal(t, before, media(t, owner, "v", nil), "turning the gate on hides nothing players may have seen")
	require.False(t, owner.Hidden())

	f.run(2.3) // a segment closes, parts of the next are made
	require.True(t, owner.Hidden())
	require.Equal(t, before, media(t, owner, "v", nil), "nothing new shows before the standby has it")
	hint := before.hint
	require.NotEmpty(t, hint)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	uri := hint[len(`TYPE=PART,URI="`) : len(hint)-1]
	_, err := owner.Serve(ctx, "v/"+uri, nil)
	cancel()
	require.ErrorIs(t, err, ErrNotFound, "the hinted part exists, yet it is not sent before the standby has it")

	// The standby takes a copy and says so.
	d, marks := owner.Since(nil)
	standby := NewReplica(d, clock.now)
	owner.Ack(d.Held())
	require.False(t, owner.Hidden())
	shown := listedParts(t, owner, "v")
	require.Greater(t, len(shown), len(listedParts(t, standby, "v"))-1)
	require.Subset(t, listedParts(t, standby, "v"), shown, "the owner lists only what the standby lists")
	_, err = owner.Serve(context.Background(), "v/"+uri, nil)
	require.NoError(t, err, "the hinted part, once the standby has it")

	// More parts; the standby gets only a copy that lacks the last one
	// (it was made after the copy): the owner shows up to the copy.
	f.run(0.35)
	d2, _ := owner.Since(marks)
	f.run(0.35)
	require.NoError(t, standby.Apply(d2))
	owner.Ack(d2.Held())
	require.True(t, owner.Hidden())
	require.Subset(t, listedParts(t, standby, "v"), listedParts(t, owner, "v"))

	// A blocking reload for the part only the owner has waits, then
	// answers without it.
	last := media(t, owner, "v", nil)
	q := url.Values{"_HLS_msn": {fmt.Sprint(last.msn + uint64(len(last.segs)) + 1)}, "_HLS_part": {"5"}}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	got, err := owner.Serve(ctx, "v/"+MediaName, q)
	cancel()
	require.NoError(t, err)
	require.Equal(t, last, parse(t, got.Body))

	// The gate off (the standby lags): everything shows, and on again
	// nothing goes back.
	owner.Gate(false)
	all := media(t, owner, "v", nil)
	require.Greater(t, all.parts, last.parts)
	owner.Gate(true)
	require.Equal(t, all, media(t, owner, "v", nil))
	f.run(2)
	owner.End()
	require.True(t, media(t, owner, "v", nil).ended)
	require.False(t, owner.Hidden(), "the end shows whole")
}

// TestGatedOwnerDiesStandbyContinuesWhatPlayersSaw: the failure the gate
// exists for. The owner is killed while players have its playlists; the
// standby continues from its copy. Every segment number a player saw keeps
// its discontinuity sequence in the standby's playlists, so hls.js can
// merge them.
func TestGatedOwnerDiesStandbyContinuesWhatPlayersSaw(t *testing.T) {
	for _, extra := range []float64{0, 0.35, 1.2, 2.1, 4.3} {
		t.Run(fmt.Sprintf("owner made %.2fs more", extra), func(t *testing.T) {
			clock := newClock()
			specs := []TrackSpec{{Name: "v", Kind: Video, Bandwidth: 500_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}}
			owner := newTestStream(clock, 0.35)
			g := owner.Begin(specs)
			f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
			owner.Gate(true)
			f.run(9.1)
			d, _ := owner.Since(nil)
			standby := NewReplica(d, clock.now)
			owner.Ack(d.Held())
			// The owner makes more, the copy of it never arrives, and a
			// player reads the owner's playlist just before it dies.
			f.run(extra)
			seen := media(t, owner, "v", nil)

			g2 := standby.Begin(specs)
			newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(4)
			after := media(t, standby, "v", nil)
			seq := func(p parsed) map[uint64]uint64 {
				out := map[uint64]uint64{}
				ds := p.dseq
				for i, sg := range p.segs {
					if sg.disc {
						ds++
					}
					out[p.msn+uint64(i)] = ds
				}
				return out
			}
			now := seq(after)
			for msn, ds := range seq(seen) {
				if got, ok := now[msn]; ok {
					require.Equal(t, ds, got, "segment %d: discontinuity sequence", msn)
				}
			}
			require.Greater(t, after.msn+uint64(len(after.segs)), seen.msn+uint64(len(seen.segs)), "the standby went on")
		})
	}
}
