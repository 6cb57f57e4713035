package packager

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// An ISO BMFF box header: 32-bit size and type, or size 1 and a 64-bit size.
// Size 0 ("to the end of the file") never appears in a fragmented stream.
type boxHeader struct {
	typ     string
	size    uint64 // whole box, header included
	hdrSize int
}

func parseBoxHeader(b []byte) (boxHeader, error) {
	if len(b) < 8 {
		return boxHeader{}, io.ErrUnexpectedEOF
	}
	h := boxHeader{size: uint64(binary.BigEndian.Uint32(b)), typ: string(b[4:8]), hdrSize: 8}
	if h.size == 1 {
		if len(b) < 16 {
			return boxHeader{}, io.ErrUnexpectedEOF
		}
		h.size, h.hdrSize = binary.BigEndian.Uint64(b[8:16]), 16
	}
	if h.size < uint64(h.hdrSize) {
		return boxHeader{}, fmt.Errorf("box %q: size %d smaller than its header", h.typ, h.size)
	}
	return h, nil
}

// box is one box inside a buffer: its payload is b[start+hdr : start+size].
type box struct {
	typ   string
	start int
	hdr   int
	end   int
}

func (x box) payload(b []byte) []byte { return b[x.start+x.hdr : x.end] }

// children lists the boxes laid end to end in b[from:to].
func children(b []byte, from, to int) ([]box, error) {
	var out []box
	for off := from; off < to; {
		h, err := parseBoxHeader(b[off:to])
		if err != nil {
			return nil, err
		}
		end := uint64(off) + h.size
		if end > uint64(to) {
			return nil, fmt.Errorf("box %q overruns its parent", h.typ)
		}
		out = append(out, box{typ: h.typ, start: off, hdr: h.hdrSize, end: int(end)})
		off = int(end)
	}
	return out, nil
}

func find(boxes []box, typ string) (box, bool) {
	for _, x := range boxes {
		if x.typ == typ {
			return x, true
		}
	}
	return box{}, false
}

// path walks nested boxes by type: path(b, whole, "moov", "trak", "mdia").
func path(b []byte, in box, types ...string) (box, bool) {
	cur := in
	for _, t := range types {
		kids, err := children(b, cur.start+cur.hdr, cur.end)
		if err != nil {
			return box{}, false
		}
		next, ok := find(kids, t)
		if !ok {
			return box{}, false
		}
		cur = next
	}
	return cur, true
}

// TrackKind tells video from audio.
type TrackKind string

const (
	Video TrackKind = "video"
	Audio TrackKind = "audio"
)

// InitInfo is what the playlists need to know about a track, read from its
// init segment (ftyp + moov).
type InitInfo struct {
	Kind      TrackKind
	Timescale uint32
	// Codec is the RFC 6381 codecs string, e.g. "avc1.64001f" or "mp4a.40.2".
	Codec         string
	Width, Height int
	SampleRate    int
	Channels      int
	// defaultDuration is trex's default sample duration, used when a
	// fragment names none.
	defaultDuration uint32
}

var errNoTrack = errors.New("init segment has no track")

// ParseInit reads an init segment: ftyp followed by moov with one track.
func ParseInit(b []byte) (InitInfo, error) {
	var info InitInfo
	top, err := children(b, 0, len(b))
	if err != nil {
		return info, fmt.Errorf("init segment: %w", err)
	}
	moov, ok := find(top, "moov")
	if !ok {
		return info, errors.New("init segment: no moov box")
	}
	if trex, ok := path(b, moov, "mvex", "trex"); ok {
		p := trex.payload(b)
		if len(p) >= 24 {
			info.defaultDuration = binary.BigEndian.Uint32(p[12:16])
		}
	}
	trak, ok := path(b, moov, "trak")
	if !ok {
		return info, errNoTrack
	}
	if mdhd, ok := path(b, trak, "mdia", "mdhd"); ok {
		p := mdhd.payload(b)
		switch {
		case len(p) >= 24 && p[0] == 1:
			info.Timescale = binary.BigEndian.Uint32(p[20:24])
		case len(p) >= 16:
			info.Timescale = binary.BigEndian.Uint32(p[12:16])
		}
	}
	if info.Timescale == 0 {
		return info, errors.New("init segment: no media timescale")
	}
	stsd, ok := path(b, trak, "mdia", "minf", "stbl", "stsd")
	if !ok {
		return info, errors.New("init segment: no sample description")
	}
	// stsd: full box header (4) + entry count (4), then sample entries.
	entries, err := children(b, stsd.start+stsd.hdr+8, stsd.end)
	if err != nil || len(entries) == 0 {
		return info, errors.New("init segment: empty sample description")
	}
	entry := entries[0]
	p := entry.payload(b)
	switch entry.typ {
	case "avc1", "avc3":
		info.Kind = Video
		// VisualSampleEntry: 6 reserved + 2 index + 16 predefined, then
		// width and height; its child boxes start at 78.
		if len(p) < 78 {
			return info, errors.New("init segment: short avc1 entry")
		}
		info.Width = int(binary.BigEndian.Uint16(p[24:26]))
		info.Height = int(binary.BigEndian.Uint16(p[26:28]))
		info.Codec = entry.typ
		kids, err := children(b, entry.start+entry.hdr+78, entry.end)
		if err == nil {
			if avcC, ok := find(kids, "avcC"); ok {
				c := avcC.payload(b)
				if len(c) >= 4 {
					info.Codec = fmt.Sprintf("%s.%02x%02x%02x", entry.typ, c[1], c[2], c[3])
				}
			}
		}
	case "hvc1", "hev1":
		info.Kind = Video
		if len(p) >= 28 {
			info.Width = int(binary.BigEndian.Uint16(p[24:26]))
			info.Height = int(binary.BigEndian.Uint16(p[26:28]))
		}
		info.Codec = entry.typ
	case "mp4a":
		info.Kind = Audio
		// AudioSampleEntry: 6 reserved + 2 index + 8 reserved, channel
		// count, sample size, 4 more, then the rate as 16.16.
		if len(p) >= 28 {
			info.Channels = int(binary.BigEndian.Uint16(p[16:18]))
			info.SampleRate = int(binary.BigEndian.Uint16(p[24:26]))
		}
		// The transcoder always encodes AAC-LC.
		info.Codec = "mp4a.40.2"
	case "Opus", "opus":
		info.Kind, info.Codec = Audio, "opus"
	default:
		return info, fmt.Errorf("init segment: unsupported sample entry %q", entry.typ)
	}
	return info, nil
}

// FragmentInfo is what the packager needs from one moof.
type FragmentInfo struct {
	// BaseTime is the decode time of the first sample, in the track's
	// timescale (tfdt).
	BaseTime uint64
	// Duration is the sum of the sample durations, in the timescale.
	Duration uint64
	// Sync is true when the first sample is a sync sample (a keyframe):
	// the fragment can start a segment, and its part is INDEPENDENT.
	Sync bool
	// tfdtOffset locates tfdt's time inside the fragment (with its
	// version), so SetBaseTime can rewrite it.
	tfdtOffset  int
	tfdtVersion byte
}

// Sample flags: sample_is_non_sync_sample, and sample_depends_on == 2
// ("does not depend on others", an I picture).
const (
	flagNonSync       = 0x00010000
	flagDependsOnMask = 0x03000000
	flagDependsOnNone = 0x02000000
)

// ParseFragment reads a fragment (moof followed by its mdat) of a track
// whose init segment said info.
func ParseFragment(b []byte, info InitInfo) (FragmentInfo, error) {
	var fi FragmentInfo
	top, err := children(b, 0, len(b))
	if err != nil {
		return fi, fmt.Errorf("fragment: %w", err)
	}
	moof, ok := find(top, "moof")
	if !ok {
		return fi, errors.New("fragment: no moof box")
	}
	traf, ok := path(b, moof, "traf")
	if !ok {
		return fi, errors.New("fragment: no traf box")
	}
	kids, err := children(b, traf.start+traf.hdr, traf.end)
	if err != nil {
		return fi, fmt.Errorf("fragment: %w", err)
	}
	defDur, defFlags := info.defaultDuration, uint32(0)
	haveDefFlags := false
	if tfhd, ok := find(kids, "tfhd"); ok {
		p := tfhd.payload(b)
		if len(p) < 8 {
			return fi, errors.New("fragment: short tfhd")
		}
		flags := binary.BigEndian.Uint32(p[0:4]) & 0xffffff
		off := 8 // version+flags, track id
		if flags&0x01 != 0 {
			off += 8 // base data offset
		}
		if flags&0x02 != 0 {
			off += 4 // sample description index
		}
		if flags&0x08 != 0 && len(p) >= off+4 {
			defDur = binary.BigEndian.Uint32(p[off:])
			off += 4
		}
		if flags&0x10 != 0 {
			off += 4 // default sample size
		}
		if flags&0x20 != 0 && len(p) >= off+4 {
			defFlags, haveDefFlags = binary.BigEndian.Uint32(p[off:]), true
		}
	}
	tfdt, ok := find(kids, "tfdt")
	if !ok {
		return fi, errors.New("fragment: no tfdt box")
	}
	p := tfdt.payload(b)
	switch {
	case len(p) >= 12 && p[0] == 1:
		fi.BaseTime = binary.BigEndian.Uint64(p[4:12])
	case len(p) >= 8:
		fi.BaseTime = uint64(binary.BigEndian.Uint32(p[4:8]))
	default:
		return fi, errors.New("fragment: short tfdt")
	}
	fi.tfdtOffset, fi.tfdtVersion = tfdt.start+tfdt.hdr+4, p[0]

	firstFlags, haveFirst := defFlags, haveDefFlags
	firstSample := true
	for _, trun := range kids {
		if trun.typ != "trun" {
			continue
		}
		p := trun.payload(b)
		if len(p) < 8 {
			return fi, errors.New("fragment: short trun")
		}
		flags := binary.BigEndian.Uint32(p[0:4]) & 0xffffff
		count := int(binary.BigEndian.Uint32(p[4:8]))
		off := 8
		if flags&0x01 != 0 {
			off += 4 // data offset
		}
		if flags&0x04 != 0 {
			if len(p) < off+4 {
				return fi, errors.New("fragment: short trun")
			}
			if firstSample {
				firstFlags, haveFirst = binary.BigEndian.Uint32(p[off:]), true
			}
			off += 4
		}
		per := 0
		for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} {
			if flags&f != 0 {
				per += 4
			}
		}
		if count < 0 || len(p) < off+count*per {
			return fi, errors.New("fragment: trun sample table overruns the box")
		}
		for i := 0; i < count; i++ {
			rec := p[off+i*per:]
			field := 0
			d := defDur
			if flags&0x100 != 0 {
				d = binary.BigEndian.Uint32(rec[field:])
				field += 4
			}
			if flags&0x200 != 0 {
				field += 4
			}
			if flags&0x400 != 0 && firstSample && i == 0 && flags&0x04 == 0 {
				firstFlags, haveFirst = binary.BigEndian.Uint32(rec[field:]), true
			}
			fi.Duration += uint64(d)
		}
		if count > 0 {
			firstSample = false
		}
	}
	switch {
	case info.Kind == Audio:
		fi.Sync = true // every AAC frame decodes on its own
	case haveFirst:
		fi.Sync = firstFlags&flagNonSync == 0 || firstFlags&flagDependsOnMask == flagDependsOnNone
	}
	return fi, nil
}

// SetBaseTime rewrites a fragment's decode time in place. The slate's
// fragments are reused over and over; each repetition needs a later time.
func SetBaseTime(b []byte, fi FragmentInfo, t uint64) {
	if fi.tfdtVersion == 1 {
		binary.BigEndian.PutUint64(b[fi.tfdtOffset:], t)
		return
	}
	binary.BigEndian.PutUint32(b[fi.tfdtOffset:], uint32(t))
}
