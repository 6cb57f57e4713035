package packager

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCopyMirrorsItsOwnerAfterAHandOver: during a planned move both nodes
// produce for a while (make-before-break), so the old owner's own last
// segments are not the ones the new owner numbered the same. When the new
// owner's copy comes back to the old owner (it owns the stream again, or
// is the new owner's standby), the copy takes the new owner's segments
// from the first number where they differ.
func TestCopyMirrorsItsOwnerAfterAHandOver(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video, Bandwidth: 500_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}}
	a := newTestStream(clock, 0)
	ga := a.Begin(specs)
	fa := newFeeder(t, ga, []string{"v"}, true, twoSecond, clock)
	fa.run(6.5)

	// The new owner starts from a copy of what a made so far.
	d, _ := a.Since(nil)
	b := NewReplica(d, clock.now)
	gb := b.Begin(specs)
	fb := newFeeder(t, gb, []string{"v"}, true, twoSecond, clock)
	// Both produce for a while: a's segments under the numbers b uses now
	// are a's own (b drops a's later copies, it has those numbers).
	fa.run(3)
	fb.run(3)
	d, _ = a.Since(nil)
	require.NoError(t, b.Apply(d))
	ga.Close() // a hands over
	fb.run(2)

	before := media(t, a, "v", nil)
	want := media(t, b, "v", nil)
	require.NotEqual(t, want, before, "a's copy differs from b's where both produced")

	// b's copy reaches a (a full resend: a was not b's standby before).
	d, _ = b.Since(nil)
	require.NoError(t, a.Apply(d))
	require.Equal(t, want, media(t, a, "v", nil), "a's copy is b's")
	require.Equal(t, media(t, b, AudioTrack, nil), media(t, a, AudioTrack, nil))

	// A producing stream is not rewritten by a copy (it is the owner).
	c := newTestStream(clock, 0)
	gc := c.Begin(specs)
	newFeeder(t, gc, []string{"v"}, true, twoSecond, clock).run(4.5)
	own := media(t, c, "v", nil)
	d, _ = b.Since(nil)
	d.StreamID = c.ID()
	require.NoError(t, c.Apply(d))
	require.Equal(t, own.segs, media(t, c, "v", nil).segs[:len(own.segs)], "the producer's own segments stay")
}

// TestCopyHoldsTheSegmentBeingMade: with low latency, players see the parts
// of the segment being made; the copy holds them too, so that when the
// owner dies the next owner closes that segment where the copy has it and
// continues behind it, instead of making another segment under a number
// whose parts players already have.
func TestCopyHoldsTheSegmentBeingMade(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video, Bandwidth: 500_000}, {Name: AudioTrack, Kind: Audio, Bandwidth: 64_000}}
	owner := newTestStream(clock, 0.35)
	g := owner.Begin(specs)
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	f.run(6.7) // a 2 s segment started at 5 s is being made
	d, marks := owner.Since(nil)
	copy := NewReplica(d, clock.now)
	seen := media(t, owner, "v", nil)
	require.Equal(t, seen.parts, media(t, copy, "v", nil).parts, "the copy lists the parts players saw")

	f.run(0.35) // one more part, copied as well
	d, _ = owner.Since(marks)
	require.NotEmpty(t, d.Signature())
	require.NoError(t, copy.Apply(d))
	seen = media(t, owner, "v", nil)
	got := media(t, copy, "v", nil)
	// The copy does not know the owner's schedule: its hint names the
	// part a next owner starts with, the next segment's first.
	require.Equal(t, fmt.Sprintf(`TYPE=PART,URI="s1-%d.0.m4s"`, seen.msn+uint64(len(seen.segs))+1), got.hint)
	got.hint = seen.hint
	require.Equal(t, seen, got)
	open := seen.msn + uint64(len(seen.segs)) // the number of the segment being made

	// The owner dies; the copy's new owner goes on behind that segment.
	g2 := copy.Begin(specs)
	newFeeder(t, g2, []string{"v"}, true, twoSecond, clock).run(2.5)
	after := media(t, copy, "v", nil)
	for i, sg := range after.segs {
		msn := after.msn + uint64(i)
		if msn == open {
			require.False(t, sg.disc, "the segment players had parts of is the old owner's")
		}
		if msn == open+1 {
			require.True(t, sg.disc, "the new owner's first segment follows it, behind a discontinuity")
		}
	}
	require.Greater(t, after.msn+uint64(len(after.segs)), open+1)
}
