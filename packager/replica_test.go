package packager

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReplicaServesAndContinuesTheStream(t *testing.T) {
	clock := newClock()
	owner := newTestStream(clock, 0)
	specs := []TrackSpec{{Name: "v", Kind: Video, Bandwidth: 500_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}}
	g := owner.Begin(specs)
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	f.run(6.5)

	d, marks := owner.Since(nil)
	require.False(t, d.Empty())
	d2, err := DecodeDelta(onWire(t, d))
	require.NoError(t, err)
	replica := NewReplica(d2, clock.now)
	require.Equal(t, owner.ID(), replica.ID())
	require.Equal(t, media(t, owner, "v", nil), media(t, replica, "v", nil), "the standby lists what the owner lists")
	require.Equal(t, media(t, owner, AudioTrack, nil), media(t, replica, AudioTrack, nil))

	// Later segments arrive as increments.
	f.run(4)
	d, marks = owner.Since(marks)
	require.NoError(t, replica.Apply(d))
	require.Equal(t, media(t, owner, "v", nil), media(t, replica, "v", nil))
	d, _ = owner.Since(marks)
	require.True(t, d.Empty(), "nothing new, nothing sent")

	// The owner dies; the standby's transcoder continues the numbering
	// behind one discontinuity, with a new init segment.
	before := media(t, replica, "v", nil)
	last := before.msn + uint64(len(before.segs)) - 1
	g2 := replica.Begin(specs)
	newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(3.5)
	after := media(t, replica, "v", nil)
	var seam int
	for i, sg := range after.segs {
		if sg.disc {
			seam = i
		}
	}
	require.NotZero(t, seam)
	require.Equal(t, last+1, after.msn+uint64(seam))
	require.NotEqual(t, after.maps[0], after.maps[len(after.maps)-1])
	require.False(t, after.segs[seam].pdt.Before(after.segs[seam-1].pdt))

	// An ended owner ends the copy.
	owner.End()
	d, _ = owner.Since(marks)
	replica2 := NewReplica(d, clock.now)
	require.True(t, replica2.Ended())
	require.Error(t, replica2.Apply(&Delta{StreamID: "other"}))
}

// onWire is a delta as the standby receives it.
func onWire(t *testing.T, d *Delta) []byte {
	t.Helper()
	bufs, err := EncodeDelta(d)
	require.NoError(t, err)
	var b []byte
	for _, x := range bufs {
		b = append(b, x...)
	}
	return b
}

func TestDeltaOnTheWire(t *testing.T) {
	clock := newClock()
	owner := newTestStream(clock, 0.35)
	g := owner.Begin([]TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}})
	newFeeder(t, g, []string{"v"}, true, twoSecond, clock).run(5.7)
	d, _ := owner.Since(nil)
	b := onWire(t, d)
	got, err := DecodeDelta(b)
	require.NoError(t, err)
	require.Equal(t, d, got, "the same delta")
	for _, td := range got.Tracks {
		for _, sg := range td.Segments {
			require.Equal(t, len(sg.Data), cap(sg.Data), "capped: an append must not write over the next segment's bytes")
		}
	}
	for _, bad := range [][]byte{nil, b[:3], b[:len(b)-1], append(slices.Clone(b), 0)} {
		_, err := DecodeDelta(bad)
		require.Error(t, err)
	}
}
