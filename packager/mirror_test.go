package packager

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	require.ErrorIs(t, b.Apply(d), ErrProducing, "b produces: a's copy is not applied, and the sender is told")
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

	// A producing stream is neither rewritten nor added to by a copy (it
	// is the owner; the node handing it over still produces for a moment).
	c := newTestStream(clock, 0)
	gc := c.Begin(specs)
	newFeeder(t, gc, []string{"v"}, true, twoSecond, clock).run(4.5)
	own := media(t, c, "v", nil)
	d, _ = b.Since(nil)
	d.StreamID = c.ID()
	require.ErrorIs(t, c.Apply(d), ErrProducing)
	require.Equal(t, own, media(t, c, "v", nil), "a producing stream ignores copies")

	// Once c stops producing, the same copy (sent again: the sender was
	// told it was not applied) applies.
	gc.Close()
	require.NoError(t, c.Apply(d))
	require.Equal(t, media(t, b, "v", nil).segs[3:], media(t, c, "v", nil).segs[3:], "from where b's and c's segments differ, c's copy is b's")
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
	f.run(20.7) // the window is full (old segments and init segments go), a 2 s segment started at 19 s is being made
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
	for _, m := range after.maps {
		uri := strings.TrimSuffix(strings.TrimPrefix(m, `URI="`), `"`)
		_, err := copy.Serve(context.Background(), "v/"+uri, nil)
		require.NoError(t, err, "init segment %s, named in the playlist", uri)
	}
}

// TestCopyCompletesTheSegmentBeingMadeInPlace: a reader following the
// copy's segment being made (a progressive answer) gets the rest of it as
// the owner's copies arrive, and its end.
func TestCopyCompletesTheSegmentBeingMadeInPlace(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video}}
	owner := newTestStream(clock, 0.35)
	g := owner.Begin(specs)
	f := newFeeder(t, g, []string{"v"}, false, twoSecond, clock)
	f.run(5.7) // segment 1004 (5 s to 7 s) is being made
	d, marks := owner.Since(nil)
	copy := NewReplica(d, clock.now)
	file, err := copy.Serve(context.Background(), "v/s1-1004.m4s", nil)
	require.NoError(t, err)
	require.NotNil(t, file.Progressive, "the segment being made is followed as it grows")
	var got bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- file.Progressive(context.Background(), &got, func() {}) }()

	for range 4 {
		f.run(0.35)
		d, marks = owner.Since(marks)
		require.NoError(t, copy.Apply(d))
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the reader of the copy's segment never got its end")
	}
	whole, err := owner.Serve(context.Background(), "v/s1-1004.m4s", nil)
	require.NoError(t, err)
	require.Nil(t, whole.Progressive, "complete at the owner")
	require.Equal(t, whole.Body, got.Bytes(), "the reader got the whole segment")
}

// TestCopyGetsOnlyTheRestOfTheSegmentBeingMade: each delta carries only
// the bytes of the segment being made that the copy lacks, not the whole
// segment again at every part; a copy that lacks the start (a delta lost,
// or applied twice) refuses, and the segment goes whole.
func TestCopyGetsOnlyTheRestOfTheSegmentBeingMade(t *testing.T) {
	clock := newClock()
	specs := []TrackSpec{{Name: "v", Kind: Video}, {Name: AudioTrack, Kind: Audio}}
	owner := newTestStream(clock, 0.35)
	g := owner.Begin(specs)
	f := newFeeder(t, g, []string{"v"}, true, twoSecond, clock)
	f.run(5.7)
	d, marks := owner.Since(nil)
	copy := NewReplica(d, clock.now)
	open := func(d *Delta) segment {
		for _, td := range d.Tracks {
			if td.Spec.Name == "v" {
				return td.Segments[len(td.Segments)-1]
			}
		}
		t.Fatal("no video track in the delta")
		return segment{}
	}
	// The copy lists what the owner lists (its preload hint aside: it does
	// not know the owner's schedule).
	mirrors := func(msg string) {
		t.Helper()
		for _, name := range []string{"v", AudioTrack} {
			want, got := media(t, owner, name, nil), media(t, copy, name, nil)
			got.hint = want.hint
			require.Equal(t, want, got, msg)
		}
	}
	had := open(d)
	require.False(t, had.Complete)

	f.run(0.35)
	d, next := owner.Since(marks)
	rest := open(d)
	require.Equal(t, had.MSN, rest.MSN, "the same segment, further on")
	require.Equal(t, len(had.Data), rest.From, "from where the copy's start of it ends")
	require.Equal(t, next["v"].OpenBytes-rest.From, len(rest.Data), "only the new bytes")
	require.NotEmpty(t, rest.Data)
	wire := onWire(t, d)
	whole, _ := owner.Since(marks.Whole())
	wholeWire := onWire(t, whole)
	left := 0
	for _, td := range d.Tracks {
		for _, sg := range td.Segments {
			left += sg.From
		}
	}
	require.InDelta(t, left, len(wholeWire)-len(wire), 32, "the delta leaves out what the copy has (give or take the encoding of the offsets)")
	d2, err := DecodeDelta(wire)
	require.NoError(t, err)
	require.True(t, d2.Continues())
	require.NoError(t, copy.Apply(d2))
	mirrors("the rest applied")

	// The same rest again (its answer was lost, say): the copy's start of
	// the segment is no longer where the rest begins.
	d2, err = DecodeDelta(wire)
	require.NoError(t, err)
	require.ErrorIs(t, copy.Apply(d2), ErrNoStart)
	require.ErrorIs(t, New(Config{ID: owner.ID()}).Apply(d2), ErrNoStart, "a copy with nothing of the segment")
	mirrors("a refused delta changes nothing")

	// The sender forgets the copy's starts: the segment goes whole, and
	// the copy completes it in place.
	f.run(2)
	d, _ = owner.Since(next.Whole())
	require.False(t, d.Continues())
	require.NoError(t, copy.Apply(d))
	mirrors("the whole segment applied")
}
