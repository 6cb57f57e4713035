package packager

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Delta carries what a standby lacks of a stream: the complete segments
// after the ones it has, with the init segments they name, and the
// stream-wide counters. The owner sends one after every new segment (and,
// with low latency, every new part); the standby serves from it while the
// owner is gone, and continues it if it becomes the owner.
//
// A segment the standby already has the start of (the one being made,
// copied part by part) carries only its new bytes (segment.From): sending
// it whole at every part cost about four times the stream's bitrate in
// encoding, TLS and decoding on both nodes, for every live stream.
type Delta struct {
	StreamID string
	Config   ReplicaConfig
	Gens     int
	Seams    uint64
	// AtSeam: the producer stopped (or is starting over on a copy); its
	// next segment follows a discontinuity.
	AtSeam bool
	Ended  bool
	Order  []string
	Tracks []TrackDelta
}

// ReplicaConfig is the part of Config a copy needs.
type ReplicaConfig struct {
	TargetDuration int
	Schedule       Schedule
	PartTarget     float64
	Window, Keep   int
	FirstMSN       uint64
}

// TrackDelta is one track's new segments.
type TrackDelta struct {
	Spec     TrackSpec
	Info     InitInfo
	Inits    map[string][]byte
	Segments []segment
	Ended    bool
}

// Marks are how far a copy has each track (by name), as a sender last
// knew it; a track missing gets its whole list.
type Marks map[string]Mark

// Mark is how far a copy has one track: the complete segments up to MSN,
// and, when Open, the first OpenBytes bytes of segment OpenMSN (made by
// generation OpenGen), which was being made.
type Mark struct {
	MSN       uint64
	Open      bool
	OpenMSN   uint64
	OpenGen   int
	OpenBytes int
}

// Whole forgets what the copy has of the segments being made, so that the
// next delta carries them whole: for a sender that does not know whether
// its last delta arrived.
func (m Marks) Whole() Marks {
	out := make(Marks, len(m))
	for k, v := range m {
		v.Open = false
		out[k] = v
	}
	return out
}

// Continues reports whether the delta continues a segment the receiver
// must have the start of.
func (d *Delta) Continues() bool {
	for _, t := range d.Tracks {
		for _, sg := range t.Segments {
			if sg.From > 0 {
				return true
			}
		}
	}
	return false
}

// ErrNoStart: a delta continues a segment of which the copy lacks the
// start (or has another one); the sender must send it whole.
var ErrNoStart = errors.New("packager: the copy lacks the start of a segment the delta continues")

// Empty reports whether the delta carries no segment.
func (d *Delta) Empty() bool {
	for _, t := range d.Tracks {
		if len(t.Segments) > 0 {
			return false
		}
	}
	return true
}

// Signature names what a delta carries (per track: segment numbers, whether
// complete, parts): a sender need not send the same again.
func (d *Delta) Signature() string {
	var b strings.Builder
	for _, t := range d.Tracks {
		b.WriteString(t.Spec.Name)
		for _, sg := range t.Segments {
			fmt.Fprintf(&b, " %d:%t:%d", sg.MSN, sg.Complete, len(sg.Parts))
		}
		b.WriteByte(';')
	}
	if d.AtSeam {
		b.WriteString("seam")
	}
	return b.String()
}

// Since lists every track's complete segments after the marks in have
// (a track missing from have gets its whole list), and, with low latency,
// the segment being made with the parts it has so far. A segment of which
// have says the copy has the start carries only the rest. It also returns
// the marks the copy has once it applied the delta.
func (s *Stream) Since(have Marks) (*Delta, Marks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &Delta{
		StreamID: s.id, Gens: s.gens, Seams: s.seams, AtSeam: s.seamNextLocked(), Ended: s.ended, Order: slices.Clone(s.order),
		Config: ReplicaConfig{TargetDuration: s.cfg.TargetDuration, Schedule: s.cfg.Schedule, PartTarget: s.cfg.PartTarget,
			Window: s.cfg.Window, Keep: s.cfg.Keep, FirstMSN: s.cfg.FirstMSN},
	}
	marks := Marks{}
	for _, name := range sortedKeys(s.tracks) {
		t := s.tracks[name]
		td := TrackDelta{Spec: t.spec, Info: t.info, Inits: map[string][]byte{}, Ended: t.ended}
		had, known := have[name]
		m := Mark{MSN: had.MSN}
		// rest is a copy of sg for the delta: from where the copy's start
		// of it ends, when it has one.
		rest := func(sg *segment) segment {
			c := *sg
			c.Parts = slices.Clone(sg.Parts)
			c.Data = sg.Data[:len(sg.Data):len(sg.Data)]
			if known && had.Open && had.OpenMSN == sg.MSN && had.OpenGen == sg.Gen && had.OpenBytes <= len(sg.Data) {
				c.From = had.OpenBytes
				c.Data = c.Data[c.From:]
			}
			if b, ok := t.inits[sg.Init]; ok {
				td.Inits[sg.Init] = b
			}
			return c
		}
		for _, sg := range t.segs {
			if !sg.Complete || (known && sg.MSN <= had.MSN) {
				continue
			}
			td.Segments = append(td.Segments, rest(sg))
			m.MSN = sg.MSN
		}
		if o := t.open(); o != nil && s.cfg.PartTarget > 0 && len(o.Parts) > 0 {
			// Low latency: players have seen the parts of the segment being
			// made. The copy holds them too, so that a next owner closes
			// that segment where it is and goes on behind it, instead of
			// making another segment under the same number. It goes again,
			// with its new parts, until it is complete.
			td.Segments = append(td.Segments, rest(o))
			m.Open, m.OpenMSN, m.OpenGen, m.OpenBytes = true, o.MSN, o.Gen, len(o.Data)
		}
		marks[name] = m
		d.Tracks = append(d.Tracks, td)
	}
	return d, marks
}

// NewReplica makes a stream from a delta: a copy that serves what the
// owner made and that a new owner can continue.
func NewReplica(d *Delta, now func() time.Time) *Stream {
	s := New(Config{TargetDuration: d.Config.TargetDuration, Schedule: d.Config.Schedule, PartTarget: d.Config.PartTarget,
		Window: d.Config.Window, Keep: d.Config.Keep, FirstMSN: d.Config.FirstMSN, ID: d.StreamID, Now: now})
	s.Apply(d)
	return s
}

// ErrProducing: Apply left the stream as it was, because this node's own
// producer writes it.
var ErrProducing = errors.New("packager: this node produces the stream; copy not applied")

// Apply merges a delta from the owner into a replica; ErrProducing when
// this node's own producer writes the stream (the sender must send the
// same segments again later).
func (s *Stream) Apply(d *Delta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.StreamID != s.id {
		return fmt.Errorf("delta of stream %s applied to %s", d.StreamID, s.id)
	}
	if s.active != nil && !s.active.retired {
		// This node produces the stream now: it is the owner, and another
		// node's copy (the one handing it over, still producing for a
		// moment) does not rewrite it, nor add to it. Or it is the
		// previous owner, still producing for a moment after the new one
		// took over: the sender must send these segments again once it
		// stops, or this copy keeps its own version of those numbers.
		return ErrProducing
	}
	if err := s.joinStartsLocked(d); err != nil {
		return err
	}
	// A copy shows what it has: its owner gated it already.
	s.gated = false
	s.gens = max(s.gens, d.Gens)
	s.seams = max(s.seams, d.Seams)
	s.seamCopied = d.AtSeam
	if len(d.Order) > 0 {
		s.order = slices.Clone(d.Order)
	}
	for _, td := range d.Tracks {
		t, ok := s.tracks[td.Spec.Name]
		if !ok {
			t = &track{inits: map[string][]byte{}}
			s.tracks[td.Spec.Name] = t
		}
		t.spec, t.info, t.ended = td.Spec, td.Info, td.Ended
		for name, b := range td.Inits {
			t.inits[name] = b
		}
		last, has := t.lastMSN()
		// A copy mirrors its owner. Where the owner's segment under a
		// number is not the one this copy has (the segment being made has
		// grown, or this node produced that number itself before it handed
		// the stream over while the new owner produced its own), the
		// owner's wins from there on.
		for _, sg := range td.Segments {
			if !has || sg.MSN > last {
				break
			}
			i := t.index(sg.MSN)
			if i < 0 || sameSegment(t.segs[i], &sg) {
				continue
			}
			if mine := t.segs[i]; i == len(t.segs)-1 && grows(mine, &sg) {
				// The segment being made, further on (or complete): the same
				// segment, updated in place, so that a reader following it
				// as it grows (a progressive answer) gets the rest.
				mine.Parts, mine.Data = slices.Clone(sg.Parts), sg.Data
				mine.Duration, mine.Complete = sg.Duration, sg.Complete
				continue
			}
			for _, dropped := range t.segs[i:] {
				dropped.Complete = true // a reader following it stops
			}
			t.segs = t.segs[:i]
			last, has = t.lastMSN()
			break
		}
		for _, sg := range td.Segments {
			if has && sg.MSN <= last {
				continue
			}
			c := sg
			t.segs = append(t.segs, &c)
			last, has = c.MSN, true
			s.started = true
			s.trimLocked(t)
		}
	}
	if d.Ended {
		s.ended = true
	}
	s.notifyLocked()
	return nil
}

// joinStartsLocked makes every segment of d that carries only its rest
// whole again, from the start this copy has of it: the same segment (same
// generation, init and discontinuity), still being made, exactly From
// bytes long. Anything else is ErrNoStart, and d is left as it was.
func (s *Stream) joinStartsLocked(d *Delta) error {
	type join struct {
		sg   *segment
		mine *segment
		t    *track
	}
	var joins []join
	for i, td := range d.Tracks {
		for k, sg := range td.Segments {
			if sg.From == 0 {
				continue
			}
			t, ok := s.tracks[td.Spec.Name]
			if !ok {
				return ErrNoStart
			}
			j := t.index(sg.MSN)
			if j < 0 {
				return ErrNoStart
			}
			mine := t.segs[j]
			if mine.Complete || mine.Gen != sg.Gen || mine.Init != sg.Init || mine.Disc != sg.Disc || len(mine.Data) != sg.From {
				return ErrNoStart
			}
			joins = append(joins, join{&d.Tracks[i].Segments[k], mine, t})
		}
	}
	for _, j := range joins {
		// Appending past the end of mine.Data is safe: a reader of it (a
		// progressive answer) holds a slice capped at the length it saw.
		j.sg.Data = appendData(j.mine.Data, j.sg.Data, j.t.sizeHint())
		j.sg.From = 0
	}
	return nil
}

// index is the position of segment msn in the track, -1 when absent.
func (t *track) index(msn uint64) int {
	for i := len(t.segs) - 1; i >= 0; i-- {
		if t.segs[i].MSN == msn {
			return i
		}
	}
	return -1
}

// sameSegment tells whether two copies of a segment number are the same
// segment: made by the same generation, from the same bytes.
func sameSegment(a, b *segment) bool {
	return a.Gen == b.Gen && a.Init == b.Init && a.Disc == b.Disc && a.Complete == b.Complete && len(a.Data) == len(b.Data)
}

// grows tells whether b is a as the owner has it now: the same segment,
// still being made or complete, with what a had and more.
func grows(a, b *segment) bool {
	return !a.Complete && a.Gen == b.Gen && a.Init == b.Init && a.Disc == b.Disc &&
		len(a.Parts) <= len(b.Parts) && len(a.Data) <= len(b.Data)
}

// wireDelta is a delta's description on the wire: the delta without its
// segments' bytes, and their sizes in order (track by track).
type wireDelta struct {
	Delta *Delta
	Sizes []int
}

// DeltaContentType names the wire format of EncodeDelta. It changed (v1
// was one gob); a node of another version answers a clear error instead
// of failing to decode, which matters during a rolling upgrade.
const DeltaContentType = "application/vnd.dionysia.delta.v2"

// EncodeDelta puts a delta on the wire: the length of its description (4
// bytes, big endian), the description (gob) without the segments' bytes,
// then those bytes as they are. The buffers share the segments' arrays, so
// nothing is copied before they are written: gob copied every byte into
// its own growing buffer, and the receiver's decoder again.
func EncodeDelta(d *Delta) (net.Buffers, error) {
	desc := *d
	desc.Tracks = slices.Clone(d.Tracks)
	var data net.Buffers
	var sizes []int
	for i := range desc.Tracks {
		segs := slices.Clone(desc.Tracks[i].Segments)
		for k := range segs {
			sizes = append(sizes, len(segs[k].Data))
			if len(segs[k].Data) > 0 {
				data = append(data, segs[k].Data)
			}
			segs[k].Data = nil
		}
		desc.Tracks[i].Segments = segs
	}
	var b bytes.Buffer
	b.Write(make([]byte, 4))
	if err := gob.NewEncoder(&b).Encode(wireDelta{Delta: &desc, Sizes: sizes}); err != nil {
		return nil, fmt.Errorf("encode delta: %w", err)
	}
	head := b.Bytes()
	binary.BigEndian.PutUint32(head, uint32(len(head)-4))
	return append(net.Buffers{head}, data...), nil
}

// DecodeDelta reads what EncodeDelta wrote. The segments' bytes are
// slices of b, each capped at its length: appending to one copies it
// rather than writing over the next.
func DecodeDelta(b []byte) (*Delta, error) {
	if len(b) < 4 {
		return nil, errors.New("decode delta: too short")
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > len(b)-4 {
		return nil, errors.New("decode delta: description longer than the delta")
	}
	var w wireDelta
	if err := gob.NewDecoder(bytes.NewReader(b[4 : 4+n])).Decode(&w); err != nil {
		return nil, fmt.Errorf("decode delta: %w", err)
	}
	if w.Delta == nil {
		return nil, errors.New("decode delta: no description")
	}
	off, i := 4+n, 0
	for t := range w.Delta.Tracks {
		segs := w.Delta.Tracks[t].Segments
		for k := range segs {
			if i >= len(w.Sizes) || w.Sizes[i] < 0 || w.Sizes[i] > len(b)-off {
				return nil, errors.New("decode delta: segment sizes do not match the bytes")
			}
			if size := w.Sizes[i]; size > 0 {
				segs[k].Data = b[off : off+size : off+size]
				off += size
			}
			i++
		}
	}
	if i != len(w.Sizes) || off != len(b) {
		return nil, errors.New("decode delta: segment sizes do not match the bytes")
	}
	return w.Delta, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
