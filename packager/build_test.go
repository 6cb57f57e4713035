package packager

import (
	"encoding/binary"
	"testing"
	"time"
)

// Builders of minimal fragmented-MP4 boxes, so the model can be tested
// without ffmpeg.

func mkbox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func fullHeader(version byte, flags uint32) []byte {
	return u32(uint32(version)<<24 | flags)
}

func zeros(n int) []byte { return make([]byte, n) }

func mdhd(timescale uint32) []byte {
	return mkbox("mdhd", fullHeader(0, 0), u32(0), u32(0), u32(timescale), u32(0), u16(0x55c4), u16(0))
}

func trex(defDur uint32) []byte {
	return mkbox("trex", fullHeader(0, 0), u32(1), u32(1), u32(defDur), u32(0), u32(0))
}

func initSegment(timescale uint32, entry []byte) []byte {
	stsd := mkbox("stsd", fullHeader(0, 0), u32(1), entry)
	trak := mkbox("trak", mkbox("mdia", mdhd(timescale), mkbox("minf", mkbox("stbl", stsd))))
	return append(mkbox("ftyp", []byte("iso6"), u32(0), []byte("iso6cmfc")),
		mkbox("moov", mkbox("mvhd", fullHeader(0, 0), zeros(96)), trak, mkbox("mvex", trex(0)))...)
}

func videoInit(w, h int) []byte {
	avcC := mkbox("avcC", []byte{1, 0x64, 0x00, 0x1f, 0xff, 0xe0, 0, 0})
	entry := mkbox("avc1", zeros(6), u16(1), zeros(16), u16(uint16(w)), u16(uint16(h)), zeros(50), avcC)
	return initSegment(15360, entry)
}

func audioInit() []byte {
	entry := mkbox("mp4a", zeros(6), u16(1), zeros(8), u16(2), u16(16), zeros(4), u16(48000), u16(0))
	return initSegment(48000, entry)
}

// fragment makes a moof+mdat of n samples of dur each, starting at base;
// sync marks the first sample as a keyframe.
func fragment(base uint64, dur uint32, n int, sync bool) []byte {
	const nonSync = 0x00010000
	tfhd := mkbox("tfhd", fullHeader(0, 0x020000|0x08|0x20), u32(1), u32(dur), u32(nonSync))
	tfdt := mkbox("tfdt", fullHeader(1, 0), u64(base))
	var trun []byte
	if sync {
		trun = mkbox("trun", fullHeader(0, 0x01|0x04|0x200), u32(uint32(n)), u32(0), u32(0x02000000))
	} else {
		trun = mkbox("trun", fullHeader(0, 0x01|0x200), u32(uint32(n)), u32(0))
	}
	for i := 0; i < n; i++ {
		trun = append(trun, u32(4)...)
	}
	binary.BigEndian.PutUint32(trun, uint32(len(trun)))
	moof := mkbox("moof", mkbox("mfhd", fullHeader(0, 0), u32(1)), mkbox("traf", tfhd, tfdt, trun))
	return append(moof, mkbox("mdat", zeros(4*n))...)
}

// feeder plays a synthetic ladder (one video track at 30 fps in 10-frame
// fragments, keyframes at the schedule's boundaries, and an audio track in
// 16-frame AAC fragments) into a generation.
type feeder struct {
	t       testing.TB
	g       *Gen
	video   []string
	audio   bool
	sched   Schedule
	clock   *fakeClock
	vt, at  uint64 // next decode times
	nextKey float64
}

const (
	videoTS   = 15360
	frameDur  = 512 // 1/30 s
	audioTS   = 48000
	aacFrames = 16
)

func newFeeder(t testing.TB, g *Gen, video []string, audio bool, sched Schedule, clock *fakeClock) *feeder {
	f := &feeder{t: t, g: g, video: video, audio: audio, sched: sched, clock: clock}
	for _, v := range video {
		if err := g.Init(v, videoInit(640, 360)); err != nil {
			t.Fatal(err)
		}
	}
	if audio {
		if err := g.Init(AudioTrack, audioInit()); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// run feeds d seconds of media, advancing the clock as it goes.
func (f *feeder) run(d float64) {
	f.t.Helper()
	end := float64(f.vt)/videoTS + d
	for float64(f.vt)/videoTS < end-1e-9 {
		start := float64(f.vt) / videoTS
		sync := start >= f.nextKey-1e-6
		if sync {
			f.nextKey = f.sched.next(start + 0.01)
		}
		// 10 frames, or fewer up to the next keyframe.
		n := 10
		if left := int((f.nextKey-start)*30 + 0.5); left < n {
			n = left
		}
		for _, v := range f.video {
			if err := f.g.Fragment(v, fragment(f.vt, frameDur, n, sync)); err != nil {
				f.t.Fatal(err)
			}
		}
		f.vt += uint64(n * frameDur)
		for f.audio && float64(f.at)/audioTS < float64(f.vt)/videoTS {
			if err := f.g.Fragment(AudioTrack, fragment(f.at, 1024, aacFrames, true)); err != nil {
				f.t.Fatal(err)
			}
			f.at += aacFrames * 1024
		}
		if f.clock != nil {
			f.clock.add(time.Duration(n) * time.Second / 30)
		}
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }
