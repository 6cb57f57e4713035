package packager

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tsChunk is one onChunk call.
type tsChunk struct {
	data            []byte
	start, duration float64
	sync            bool
}

// splitAll runs SplitTS over b and records what it reports, checking the
// contract every caller relies on: onInfo once, before any chunk; chunks of
// whole packets with a positive duration.
func splitAll(t testing.TB, b []byte) (infos []InitInfo, chunks []tsChunk, err error) {
	t.Helper()
	err = SplitTS(bytes.NewReader(b),
		func(info InitInfo) error {
			if len(infos) > 0 || len(chunks) > 0 {
				t.Errorf("onInfo after onInfo or a chunk")
			}
			infos = append(infos, info)
			return nil
		},
		func(data []byte, start, duration float64, sync bool) error {
			if len(infos) != 1 {
				t.Errorf("chunk before onInfo")
			}
			if len(data) == 0 || len(data)%tsPacketSize != 0 {
				t.Errorf("chunk of %d bytes: not whole packets", len(data))
			}
			if !(duration > 0) || math.IsInf(start, 0) || math.IsNaN(start) {
				t.Errorf("chunk at %v lasting %v", start, duration)
			}
			chunks = append(chunks, tsChunk{data: data, start: start, duration: duration, sync: sync})
			return nil
		})
	return infos, chunks, err
}

// tsPIDOf is the PID of packet i of b.
func tsPIDOf(b []byte, i int) int {
	p := b[i*tsPacketSize:]
	return int(p[1]&0x1f)<<8 | int(p[2])
}

// tsPUSI tells whether packet i of b starts a PES or section.
func tsPUSI(b []byte, i int) bool { return b[i*tsPacketSize+1]&0x40 != 0 }

// --- a small MPEG-TS writer for streams ffmpeg cannot make on demand ---

const (
	synthPMTPID   = 0x1000
	synthVideoPID = 0x100
	synthAudioPID = 0x101
)

// sps320x180 is x264's SPS (High, level 1.2) for 320x180: 20x12 macroblocks
// cropped by 12 lines.
var sps320x180, _ = hex.DecodeString("6764000cacd941419f9f011000000300100000030320f1429960")

type synthFrame struct {
	pts  int64 // 90 kHz, taken modulo 2^33
	key  bool  // IDR slice, SPS in front
	rai  bool  // random_access_indicator on the first packet
	size int   // slice payload bytes
}

type synthTS struct {
	buf bytes.Buffer
	cc  map[int]byte
}

func (w *synthTS) packets(pid int, pusi, rai bool, payload []byte) {
	if w.cc == nil {
		w.cc = map[int]byte{}
	}
	first := true
	for first || len(payload) > 0 {
		var af []byte
		if first && rai {
			af = []byte{1, 0x40}
		}
		room := 184 - len(af)
		n := min(room, len(payload))
		if n < room {
			// Stuff the rest with the adaptation field.
			stuff := 184 - n
			if len(af) == 0 {
				af = []byte{byte(stuff - 1)}
				if stuff > 1 {
					af = append(af, 0)
				}
			} else {
				af[0] = byte(stuff - 1)
			}
			for len(af) < stuff {
				af = append(af, 0xff)
			}
		}
		h := []byte{tsSyncByte, byte(pid >> 8 & 0x1f), byte(pid), 0x10 | w.cc[pid]&0x0f}
		if first && pusi {
			h[1] |= 0x40
		}
		if len(af) > 0 {
			h[3] |= 0x20
		}
		w.cc[pid]++
		w.buf.Write(h)
		w.buf.Write(af)
		w.buf.Write(payload[:n])
		payload = payload[n:]
		first = false
	}
}

func psiPacketPayload(section []byte) []byte {
	section = binary.BigEndian.AppendUint32(section, crc32MPEG(section))
	p := append([]byte{0}, section...)
	for len(p) < 184 {
		p = append(p, 0xff)
	}
	return p
}

func (w *synthTS) tables(audio bool) {
	pat := []byte{0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xe0 | synthPMTPID>>8, synthPMTPID & 0xff}
	w.packets(0, true, false, psiPacketPayload(pat))
	streams := []byte{streamTypeH264, 0xe0 | synthVideoPID>>8, synthVideoPID & 0xff, 0xf0, 0}
	if audio {
		streams = append(streams, streamTypeAAC, 0xe0|synthAudioPID>>8, synthAudioPID&0xff, 0xf0, 0)
	}
	pmt := []byte{0x02, 0xb0, byte(9 + len(streams) + 4), 0, 1, 0xc1, 0, 0, 0xe0 | synthVideoPID>>8, synthVideoPID & 0xff, 0xf0, 0}
	w.packets(synthPMTPID, true, false, psiPacketPayload(append(pmt, streams...)))
}

func pesHeader(streamID byte, pts int64, length int) []byte {
	pts &= ptsWrap - 1
	h := []byte{0, 0, 1, streamID, 0, 0, 0x80, 0x80, 5,
		byte(0x21 | pts>>29&0x0e), byte(pts >> 22), byte(pts>>14 | 1), byte(pts >> 7), byte(pts<<1 | 1)}
	if length > 0 {
		binary.BigEndian.PutUint16(h[4:], uint16(length+8))
	}
	return h
}

// synthStream writes PAT and PMT, then every frame as a PES (and, with
// audio, an audio PES after each), with the tables again every 10 frames.
func synthStream(frames []synthFrame, audio bool) []byte {
	var w synthTS
	for i, f := range frames {
		if i%10 == 0 {
			w.tables(audio)
		}
		es := []byte{0, 0, 0, 1, 0x09, 0xf0}
		slice := byte(0x41)
		if f.key {
			es = append(append(es, 0, 0, 0, 1), sps320x180...)
			es = append(es, 0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0)
			slice = 0x65
		}
		es = append(es, 0, 0, 0, 1, slice)
		es = append(es, bytes.Repeat([]byte{0xaa}, f.size)...)
		w.packets(synthVideoPID, true, f.rai, append(pesHeader(0xe0, f.pts, 0), es...))
		if audio {
			adts := append([]byte{0xff, 0xf1, 0x4c, 0x80, 0x2f, 0xff, 0xfc}, bytes.Repeat([]byte{0x21}, 40)...)
			w.packets(synthAudioPID, true, true, append(pesHeader(0xc0, f.pts, len(adts)), adts...))
		}
	}
	return w.buf.Bytes()
}

// gop25 is n frames at 25 fps from firstPTS, a keyframe every gop frames,
// in decode order with B-frames: each P frame comes before the two B
// frames shown ahead of it.
func gop25(firstPTS int64, n, gop int) []synthFrame {
	const frame = ptsHz / 25
	out := make([]synthFrame, 0, n)
	for i := 0; i < n; {
		if i%gop == 0 {
			out = append(out, synthFrame{pts: firstPTS + int64(i)*frame, key: true, rai: true, size: 900})
			i++
			continue
		}
		// P at i+2, then B at i and i+1 (within the GOP).
		if i+2 < n && (i+2)%gop != 0 && (i+1)%gop != 0 {
			out = append(out,
				synthFrame{pts: firstPTS + int64(i+2)*frame, size: 300},
				synthFrame{pts: firstPTS + int64(i)*frame, size: 100},
				synthFrame{pts: firstPTS + int64(i+1)*frame, size: 100})
			i += 3
			continue
		}
		out = append(out, synthFrame{pts: firstPTS + int64(i)*frame, size: 300})
		i++
	}
	return out
}

func TestSplitTSSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		firstPTS int64
		frames   func([]synthFrame)
		audio    bool
		codec    string
		starts   []float64 // relative to the first
	}{
		{name: "video and audio", firstPTS: 7200, audio: true, codec: "avc1.64000c,mp4a.40.2",
			starts: []float64{0, 1, 2, 3}},
		{name: "video only", firstPTS: 7200, codec: "avc1.64000c", starts: []float64{0, 1, 2, 3}},
		// Begins a second and a half before the 33-bit PTS wraps: time goes
		// on counting past 2^33.
		{name: "across the PTS wrap", firstPTS: ptsWrap - 135000, audio: true, codec: "avc1.64000c,mp4a.40.2",
			starts: []float64{0, 1, 2, 3}},
		// Keyframes found by their IDR slice alone.
		{name: "no random access indicator", firstPTS: 7200, codec: "avc1.64000c", starts: []float64{0, 1, 2, 3},
			frames: func(fs []synthFrame) {
				for i := range fs {
					fs[i].rai = false
				}
			}},
		// A keyframe without an SPS cannot start the stream (its size and
		// codec are unknown): the splitter waits for one with it.
		{name: "first keyframe without SPS", firstPTS: 7200, codec: "avc1.64000c", starts: []float64{0, 1, 2},
			frames: func(fs []synthFrame) {
				fs[0].key = false
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := gop25(tc.firstPTS, 100, 25)
			if tc.frames != nil {
				tc.frames(frames)
			}
			infos, chunks, err := splitAll(t, synthStream(frames, tc.audio))
			require.NoError(t, err)
			require.Len(t, infos, 1)
			require.Equal(t, InitInfo{Kind: Video, Timescale: 90000, Codec: tc.codec, Width: 320, Height: 180}, infos[0])
			require.Len(t, chunks, len(tc.starts))
			first := chunks[0].start
			skipped := float64(4-len(tc.starts)) * 1
			require.InDelta(t, float64(tc.firstPTS)/ptsHz+skipped, first, 1e-9)
			var total float64
			for i, c := range chunks {
				require.True(t, c.sync)
				require.InDelta(t, tc.starts[i], c.start-first, 1e-9, "chunk %d", i)
				require.InDelta(t, 1.0, c.duration, 1e-9, "chunk %d: a GOP, the last one to a frame past its last picture", i)
				total += c.duration
				require.Equal(t, 0, tsPIDOf(c.data, 0), "chunk %d starts with the PAT", i)
				require.Equal(t, synthPMTPID, tsPIDOf(c.data, 1), "chunk %d: then the PMT", i)
				require.Equal(t, synthVideoPID, tsPIDOf(c.data, 2), "chunk %d: then its keyframe", i)
				require.True(t, tsPUSI(c.data, 2))
			}
			require.InDelta(t, float64(len(tc.starts)), total, 1e-9)
		})
	}
}

func TestPTSUnwrap(t *testing.T) {
	var u ptsUnwrapper
	near := int64(ptsWrap - 3000)
	require.Equal(t, near, u.next(near))
	require.Equal(t, near-1500, u.next(near-1500), "a B-frame shown earlier")
	require.Equal(t, int64(ptsWrap+1000), u.next(1000), "past the wrap")
	require.Equal(t, int64(ptsWrap-500), u.next(ptsWrap-500), "a B-frame from before the wrap")
	require.Equal(t, int64(ptsWrap+10), u.next(10))
	require.Equal(t, int64(ptsWrap+ptsWrap/2), u.next(ptsWrap/2), "half the range on: still forward")
}

func TestParseSPS(t *testing.T) {
	// SPSs x264 wrote (ffmpeg 5.1), NAL header byte included.
	for _, tc := range []struct {
		name, hex     string
		width, height int
		codec         string
	}{
		{"320x180 high", "6764000cacd941419f9f011000000300100000030320f1429960", 320, 180, "64000c"},
		{"640x360 high", "6764001eacd940a02ff97011000003000100000300320f162d96", 640, 360, "64001e"},
		{"1280x720 high", "6764001facd9405005bb011000000300100000030320f1831960", 1280, 720, "64001f"},
		{"1920x1080 high", "67640028acd940780227e5c044000003000400000300c83c60c658", 1920, 1080, "640028"},
		{"160x90 high", "6764000bacd9428df93011000003000100000300320f142996", 160, 90, "64000b"},
		{"854x480 high", "6764001eacd940d83de6f011000003000100000300320f162d96", 854, 480, "64001e"},
		{"320x180 constrained baseline", "6742c00cda05067e7c0440000003004000000c83c50aa8", 320, 180, "42c00c"},
		// High 4:4:4 Predictive, interlaced: crop units of two lines.
		{"176x144 4:4:4 interlaced", "67f40015919b28595f89c044000003000400000300c87c50a658", 176, 144, "f40015"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			require.NoError(t, err)
			v, err := parseSPS(b)
			require.NoError(t, err)
			require.Equal(t, tc.width, v.width)
			require.Equal(t, tc.height, v.height)
			require.Equal(t, tc.codec, fmt.Sprintf("%02x%02x%02x", v.profile, v.constraints, v.level))
			for n := range len(b) - 1 {
				_, _ = parseSPS(b[:n]) // short: an error, never a panic
			}
		})
	}
	for _, bad := range []string{"", "67", "6764000c", "68ebe3cb22c0", "6764000cffffffffffffffff", "676400"} {
		b, _ := hex.DecodeString(bad)
		_, err := parseSPS(b)
		require.Error(t, err, bad)
	}
}

func TestCRC32MPEG(t *testing.T) {
	// The check value of CRC-32/MPEG-2.
	require.Equal(t, uint32(0x0376e6e7), crc32MPEG([]byte("123456789")))
}

func TestSplitTSDamage(t *testing.T) {
	clean := synthStream(gop25(7200, 100, 25), true)
	_, want, err := splitAll(t, clean)
	require.NoError(t, err)
	require.Len(t, want, 4)

	t.Run("empty", func(t *testing.T) {
		infos, chunks, err := splitAll(t, nil)
		require.NoError(t, err)
		require.Empty(t, infos)
		require.Empty(t, chunks)
	})
	t.Run("truncated inside a packet", func(t *testing.T) {
		infos, chunks, err := splitAll(t, clean[:len(clean)-100])
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Len(t, infos, 1)
		require.Len(t, chunks, 4, "what came whole still goes out")
	})
	t.Run("truncated between packets", func(t *testing.T) {
		n := len(clean) / tsPacketSize / 2 * tsPacketSize
		_, chunks, err := splitAll(t, clean[:n])
		require.NoError(t, err)
		require.Len(t, chunks, 2)
	})
	t.Run("a few stray bytes", func(t *testing.T) {
		at := len(clean) / tsPacketSize / 3 * tsPacketSize
		b := append(append(append([]byte{}, clean[:at]...), 0x47, 1, 2, 0x47, 5, 6, 7), clean[at:]...)
		_, chunks, err := splitAll(t, b)
		require.NoError(t, err, "sync is found again")
		require.Len(t, chunks, 4)
		for i := range chunks {
			require.InDelta(t, want[i].start, chunks[i].start, 1e-9)
		}
	})
	t.Run("a lost packet", func(t *testing.T) {
		at := len(clean) / tsPacketSize * 2 / 3 * tsPacketSize
		b := append(append([]byte{}, clean[:at+50]...), clean[at+tsPacketSize:]...)
		_, chunks, err := splitAll(t, b)
		require.NoError(t, err)
		require.Len(t, chunks, 4)
	})
	t.Run("garbage", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		b := make([]byte, 50_000)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		infos, chunks, err := splitAll(t, b)
		require.Error(t, err)
		require.Empty(t, infos)
		require.Empty(t, chunks)
	})
	t.Run("garbage past the limit", func(t *testing.T) {
		_, _, err := splitAll(t, make([]byte, tsMaxLost+2*tsPacketSize))
		require.ErrorContains(t, err, "no sync byte in")
	})
	t.Run("no H.264 in the PMT", func(t *testing.T) {
		var w synthTS
		w.packets(0, true, false, psiPacketPayload([]byte{0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0}))
		pmt := []byte{0x02, 0xb0, 9 + 5 + 4, 0, 1, 0xc1, 0, 0, 0xe1, 0, 0xf0, 0, 0x24, 0xe1, 0, 0xf0, 0} // HEVC
		w.packets(synthPMTPID, true, false, psiPacketPayload(pmt))
		_, _, err := splitAll(t, w.buf.Bytes())
		require.ErrorContains(t, err, "no H.264")
	})
	t.Run("tables with a bad CRC are ignored", func(t *testing.T) {
		b := bytes.Clone(clean)
		b[4+1+12] ^= 0xff // the first PAT's CRC
		_, chunks, err := splitAll(t, b)
		require.NoError(t, err)
		require.Len(t, chunks, 3, "the next PAT brings the program, in time for the second keyframe")
	})
	t.Run("callback errors stop it", func(t *testing.T) {
		boom := errors.New("boom")
		err := SplitTS(bytes.NewReader(clean), func(InitInfo) error { return boom }, nil)
		require.ErrorIs(t, err, boom)
		n := 0
		err = SplitTS(bytes.NewReader(clean), func(InitInfo) error { return nil },
			func([]byte, float64, float64, bool) error { n++; return boom })
		require.ErrorIs(t, err, boom)
		require.Equal(t, 1, n)
	})
}

func FuzzSplitTS(f *testing.F) {
	clean := synthStream(gop25(ptsWrap-45000, 60, 20), true)
	f.Add(clean)
	f.Add(clean[:len(clean)-77])
	f.Add(synthStream(gop25(0, 30, 10), false))
	junk := bytes.Clone(clean)
	for i := 0; i < len(junk); i += 997 {
		junk[i] ^= 0x5a
	}
	f.Add(junk)
	f.Add(bytes.Repeat([]byte{0x47}, 5*tsPacketSize))
	f.Add([]byte("not a transport stream"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = splitAll(t, b)
	})
}

// --- against ffmpeg ---

// requireTSTools skips (fails under CI) without ffmpeg and ffprobe.
func requireTSTools(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found (CI is set, so this is fatal)", b)
			}
			t.Skipf("%s not found; skipping", b)
		}
	}
}

// ffmpegTS encodes seconds of a test pattern (and a tone) the way the
// transcoder does for ts profiles: x264 with a keyframe every gop seconds,
// AAC muxed in, MPEG-TS flushed packet by packet.
func ffmpegTS(t *testing.T, w, h, seconds, gop int, audio bool) []byte {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", w, h)}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", strconv.Itoa(seconds), "-map", "0:v",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(25*gop), "-keyint_min", strconv.Itoa(25*gop), "-sc_threshold", "0",
		"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", gop))
	if audio {
		args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000")
	}
	args = append(args, "-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1", "pipe:1")
	var out, stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), "ffmpeg: %s", stderr.String())
	return out.Bytes()
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	Level        int    `json:"level"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	NbReadFrames string `json:"nb_read_frames"`
}

// ffprobeTS decodes a TS file and lists its streams.
func ffprobeTS(t *testing.T, b []byte) []probeStream {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chunk.ts")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,codec_name,profile,level,width,height,sample_rate,channels,nb_read_frames",
		"-of", "json", path).Output()
	require.NoError(t, err, "ffprobe: %s", out)
	var probe struct{ Streams []probeStream }
	require.NoError(t, json.Unmarshal(out, &probe))
	return probe.Streams
}

var avcProfiles = map[string]int{"High": 100, "Main": 77, "Constrained Baseline": 66, "Baseline": 66}

func TestSplitTSFromFFmpeg(t *testing.T) {
	requireTSTools(t)
	const (
		seconds = 7
		gop     = 2
		fps     = 25
		frame   = 1.0 / fps
	)
	for _, tc := range []struct {
		name  string
		w, h  int
		audio bool
	}{
		{"320x180 with audio", 320, 180, true},
		{"320x180 video only", 320, 180, false},
		{"640x360 with audio", 640, 360, true},
		{"640x360 video only", 640, 360, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := ffmpegTS(t, tc.w, tc.h, seconds, gop, tc.audio)
			whole := ffprobeTS(t, ts)
			require.NotEmpty(t, whole)
			v := whole[0]
			require.Equal(t, "video", v.CodecType)

			// Through a pipe, as the transcoder reads it.
			pr, pw := io.Pipe()
			go func() {
				for b := ts; len(b) > 0; {
					n := min(len(b), 4096)
					_, _ = pw.Write(b[:n])
					b = b[n:]
				}
				pw.Close()
			}()
			var infos []InitInfo
			var chunks []tsChunk
			err := SplitTS(pr, func(info InitInfo) error {
				infos = append(infos, info)
				return nil
			}, func(data []byte, start, duration float64, sync bool) error {
				chunks = append(chunks, tsChunk{data, start, duration, sync})
				return nil
			})
			require.NoError(t, err)

			require.Len(t, infos, 1)
			info := infos[0]
			codec := fmt.Sprintf("avc1.%02x00%02x", avcProfiles[v.Profile], v.Level)
			if tc.audio {
				codec += ",mp4a.40.2"
			}
			require.Equal(t, InitInfo{Kind: Video, Timescale: 90000, Codec: codec, Width: tc.w, Height: tc.h}, info)

			require.Len(t, chunks, (seconds+gop-1)/gop)
			first := chunks[0].start
			require.Less(t, first, 0.25, "muxdelay 0: time starts near zero (x264's B-frame delay)")
			var total float64
			for i, c := range chunks {
				require.True(t, c.sync)
				require.InDelta(t, float64(i*gop), c.start-first, frame/2, "chunk %d starts on a keyframe", i)
				want := float64(gop)
				if i == len(chunks)-1 {
					want = float64(seconds - i*gop)
				}
				require.InDelta(t, want, c.duration, frame/2, "chunk %d", i)
				total += c.duration
				require.Equal(t, 0, tsPIDOf(c.data, 0), "chunk %d starts with the PAT", i)
				require.True(t, tsPUSI(c.data, 1), "chunk %d: then the PMT", i)
				require.True(t, tsPUSI(c.data, 2), "chunk %d: then its keyframe", i)

				// Each chunk is a file a player can start with.
				streams := ffprobeTS(t, c.data)
				var types []string
				for _, s := range streams {
					types = append(types, s.CodecType)
					switch s.CodecType {
					case "video":
						require.Equal(t, "h264", s.CodecName)
						require.Equal(t, tc.w, s.Width)
						require.Equal(t, tc.h, s.Height)
						require.Equal(t, strconv.Itoa(int(math.Round(c.duration*fps))), s.NbReadFrames, "chunk %d decodes whole", i)
					case "audio":
						require.Equal(t, "aac", s.CodecName)
						require.Equal(t, "48000", s.SampleRate)
						require.Equal(t, 2, s.Channels)
						n, err := strconv.Atoi(s.NbReadFrames)
						require.NoError(t, err)
						require.Positive(t, n, "chunk %d has audio", i)
					}
				}
				if tc.audio {
					require.Equal(t, []string{"video", "audio"}, types, "chunk %d", i)
				} else {
					require.Equal(t, []string{"video"}, types, "chunk %d", i)
				}
			}
			require.InDelta(t, float64(seconds), total, frame/2, "the chunks add up to the stream")
			require.True(t, strings.HasPrefix(info.Codec, "avc1."))
		})
	}
}
