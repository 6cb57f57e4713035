package media

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slateBoxes lists the top-level box types of an MP4 byte stream.
func slateBoxes(t *testing.T, b []byte) []string {
	t.Helper()
	var types []string
	for off := 0; off < len(b); {
		require.GreaterOrEqual(t, len(b)-off, 8, "truncated box header at %d", off)
		size := int(binary.BigEndian.Uint32(b[off:]))
		require.GreaterOrEqual(t, size, 8, "box at %d", off)
		require.LessOrEqual(t, off+size, len(b), "box at %d", off)
		types = append(types, string(b[off+4:off+8]))
		off += size
	}
	return types
}

func slateCountBoxes(types []string, typ string) int {
	n := 0
	for _, s := range types {
		if s == typ {
			n++
		}
	}
	return n
}

type slateProbeResult struct {
	Streams []struct {
		CodecName     string `json:"codec_name"`
		Profile       string `json:"profile"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		PixFmt        string `json:"pix_fmt"`
		RFrameRate    string `json:"r_frame_rate"`
		SampleRate    string `json:"sample_rate"`
		Channels      int    `json:"channels"`
		NbReadPackets string `json:"nb_read_packets"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Frames []struct {
		KeyFrame int    `json:"key_frame"`
		PictType string `json:"pict_type"`
	} `json:"frames"`
	Packets []struct {
		Flags string `json:"flags"`
	} `json:"packets"`
}

// slateProbe runs ffprobe on b (written to a temp file) with args.
func slateProbe(t *testing.T, b []byte, args ...string) slateProbeResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slate.mp4")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	out, err := exec.Command("ffprobe", append(append([]string{"-v", "error", "-of", "json"}, args...), path)...).Output()
	require.NoError(t, err)
	var r slateProbeResult
	require.NoError(t, json.Unmarshal(out, &r), string(out))
	return r
}

func slateDuration(t *testing.T, b []byte) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(slateProbe(t, b, "-show_entries", "format=duration").Format.Duration, 64)
	require.NoError(t, err)
	return d
}

func TestMakeVideoSlate(t *testing.T) {
	requireFFmpeg(t)
	cases := []struct {
		name       string
		spec       SlateSpec
		noFont     bool
		wantFrames int
		wantMoofs  int // 0: at least two
	}{
		{name: "360p25", spec: SlateSpec{Width: 640, Height: 360, FPS: 25, SegmentSeconds: 2, PartSeconds: 1.0 / 3, Text: "Back in a moment"}, wantFrames: 50},
		{name: "720p30", spec: SlateSpec{Width: 1280, Height: 720, FPS: 30, SegmentSeconds: 2, PartSeconds: 1.0 / 3, Text: "Back in a moment"}, wantFrames: 60, wantMoofs: 6},
		{name: "font missing", spec: SlateSpec{Width: 640, Height: 360, FPS: 25, SegmentSeconds: 2, PartSeconds: 0.5, Text: "Back in a moment"}, noFont: true, wantFrames: 50},
		{name: "text that needs escaping", spec: SlateSpec{Width: 640, Height: 360, FPS: 30, SegmentSeconds: 1, PartSeconds: 0.2, Text: `It's 100%: [back], soon; \o/ "ok"`}, wantFrames: 30},
		{name: "no text", spec: SlateSpec{Width: 320, Height: 180, FPS: 24, SegmentSeconds: 4, PartSeconds: 1}, wantFrames: 96},
		{name: "one fragment without parts", spec: SlateSpec{Width: 640, Height: 360, FPS: 25, SegmentSeconds: 2, Text: "Back in a moment"}, wantFrames: 50, wantMoofs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noFont {
				old := slateFont
				slateFont = filepath.Join(t.TempDir(), "DejaVuSans-Bold.ttf")
				t.Cleanup(func() { slateFont = old })
				require.NotContains(t, slateFilter(tc.spec), "drawtext")
			}
			start := time.Now()
			b, err := MakeVideoSlate(context.Background(), tc.spec)
			require.NoError(t, err)
			t.Logf("%dx%d@%d, %gs: %d bytes in %s", tc.spec.Width, tc.spec.Height, tc.spec.FPS, tc.spec.SegmentSeconds, len(b), time.Since(start).Round(time.Millisecond))

			boxes := slateBoxes(t, b)
			require.Equal(t, []string{"ftyp", "moov"}, boxes[:2])
			require.Equal(t, "mdat", boxes[len(boxes)-1])
			require.Zero(t, slateCountBoxes(boxes, "mfra"))
			if tc.wantMoofs > 0 {
				require.Equal(t, tc.wantMoofs, slateCountBoxes(boxes, "moof"), boxes)
			} else {
				require.GreaterOrEqual(t, slateCountBoxes(boxes, "moof"), 2, boxes)
			}

			frame := 1 / float64(tc.spec.FPS)
			require.InDelta(t, tc.spec.SegmentSeconds, slateDuration(t, b), frame)

			p := slateProbe(t, b, "-count_packets", "-show_entries",
				"stream=codec_name,profile,width,height,pix_fmt,r_frame_rate,nb_read_packets:packet=flags")
			require.Len(t, p.Streams, 1)
			s := p.Streams[0]
			require.Equal(t, "h264", s.CodecName)
			require.Equal(t, "High", s.Profile)
			require.Equal(t, "yuv420p", s.PixFmt)
			require.Equal(t, []int{tc.spec.Width, tc.spec.Height}, []int{s.Width, s.Height})
			require.Equal(t, strconv.Itoa(tc.spec.FPS)+"/1", s.RFrameRate)
			require.Equal(t, strconv.Itoa(tc.wantFrames), s.NbReadPackets)
			keys := 0
			for i, pk := range p.Packets {
				if strings.Contains(pk.Flags, "K") {
					keys++
					require.Zero(t, i, "keyframe at packet %d", i)
				}
			}
			require.Equal(t, 1, keys, "one keyframe, at the start")

			f := slateProbe(t, b, "-show_frames", "-select_streams", "v", "-read_intervals", "%+#1",
				"-show_entries", "frame=key_frame,pict_type")
			require.NotEmpty(t, f.Frames)
			require.Equal(t, 1, f.Frames[0].KeyFrame)
			require.Equal(t, "I", f.Frames[0].PictType)
		})
	}
}

func TestMakeAudioSlate(t *testing.T) {
	requireFFmpeg(t)
	const aacFrame = 1024.0 / 48000
	for _, seg := range []float64{2, 1, 6} {
		b, err := MakeAudioSlate(context.Background(), "", seg, 1.0/3)
		require.NoError(t, err)
		boxes := slateBoxes(t, b)
		require.Equal(t, []string{"ftyp", "moov"}, boxes[:2])
		require.Equal(t, "mdat", boxes[len(boxes)-1])
		require.GreaterOrEqual(t, slateCountBoxes(boxes, "moof"), 2, boxes)

		d := slateDuration(t, b)
		require.InDelta(t, seg, d, aacFrame/2+1e-6, "whole AAC frames nearest to %gs", seg)
		require.InDelta(t, 0, math.Remainder(d, aacFrame), 1e-6)

		p := slateProbe(t, b, "-show_entries", "stream=codec_name,profile,sample_rate,channels")
		require.Len(t, p.Streams, 1)
		s := p.Streams[0]
		require.Equal(t, []any{"aac", "LC", "48000", 2}, []any{s.CodecName, s.Profile, s.SampleRate, s.Channels})
	}
}

func TestSlateRejectsBadSpecs(t *testing.T) {
	ok := SlateSpec{Width: 640, Height: 360, FPS: 25, SegmentSeconds: 2, PartSeconds: 0.5}
	for name, mutate := range map[string]func(*SlateSpec){
		"odd width":        func(s *SlateSpec) { s.Width = 641 },
		"no height":        func(s *SlateSpec) { s.Height = 0 },
		"no fps":           func(s *SlateSpec) { s.FPS = 0 },
		"no segment":       func(s *SlateSpec) { s.SegmentSeconds = 0 },
		"NaN segment":      func(s *SlateSpec) { s.SegmentSeconds = math.NaN() },
		"tiny part":        func(s *SlateSpec) { s.PartSeconds = 0.01 },
		"negative part":    func(s *SlateSpec) { s.PartSeconds = -1 },
		"under one frame":  func(s *SlateSpec) { s.SegmentSeconds = 0.01 },
		"absurd dimension": func(s *SlateSpec) { s.Width = 10000 },
	} {
		s := ok
		mutate(&s)
		// A binary that cannot run proves the spec is refused before ffmpeg.
		s.FFmpeg = filepath.Join(t.TempDir(), "no-ffmpeg")
		_, err := MakeVideoSlate(context.Background(), s)
		require.ErrorContains(t, err, "slate: ", name)
		require.NotContains(t, err.Error(), "no-ffmpeg", name)
	}
	_, err := MakeAudioSlate(context.Background(), "", 0, 0.5)
	require.ErrorContains(t, err, "audio slate: segment of 0s")
}

// slateFakeFFmpeg writes a shell script standing in for ffmpeg.
func slateFakeFFmpeg(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ffmpeg")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	return path
}

func TestSlateFFmpegFailures(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	spec := SlateSpec{Width: 640, Height: 360, FPS: 25, SegmentSeconds: 2, PartSeconds: 0.5}

	spec.FFmpeg = slateFakeFFmpeg(t, `echo "Unknown encoder 'libx264'" >&2; exit 1`)
	_, err := MakeVideoSlate(context.Background(), spec)
	require.ErrorContains(t, err, "Unknown encoder 'libx264'")

	spec.FFmpeg = slateFakeFFmpeg(t, `echo "not an mp4 at all"`)
	_, err = MakeVideoSlate(context.Background(), spec)
	require.ErrorContains(t, err, "slate: ffmpeg output: ")

	_, err = MakeAudioSlate(context.Background(), slateFakeFFmpeg(t, `echo "no aac here" >&2; exit 1`), 2, 0.5)
	require.ErrorContains(t, err, "audio slate: ffmpeg: ")
	require.ErrorContains(t, err, "no aac here")

	// A hung ffmpeg is killed at the caller's deadline...
	spec.FFmpeg = slateFakeFFmpeg(t, `exec sleep 60`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = MakeVideoSlate(ctx, spec)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second)

	// ...and at slateTimeout when the caller set none.
	old := slateTimeout
	slateTimeout = 200 * time.Millisecond
	t.Cleanup(func() { slateTimeout = old })
	_, err = MakeVideoSlate(context.Background(), spec)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSlateCMAFOnly(t *testing.T) {
	box := func(typ string, payload int) []byte {
		b := make([]byte, 8+payload)
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		copy(b[4:], typ)
		return b
	}
	cat := func(types ...string) []byte {
		var b []byte
		for _, typ := range types {
			b = append(b, box(typ, 4)...)
		}
		return b
	}
	good := cat("ftyp", "moov", "moof", "mdat", "moof", "mdat")
	got, err := cmafOnly(append(append([]byte{}, good...), box("mfra", 20)...))
	require.NoError(t, err)
	require.Equal(t, good, got)

	for name, b := range map[string][]byte{
		"moov first":         cat("moov", "ftyp", "moof", "mdat"),
		"no fragments":       cat("ftyp", "moov"),
		"mdat without moof":  cat("ftyp", "moov", "mdat"),
		"truncated fragment": cat("ftyp", "moov", "moof", "mdat", "moof"),
		"bad size":           append(cat("ftyp", "moov", "moof", "mdat"), 0, 0, 1, 0, 'm', 'o', 'o', 'f'),
	} {
		_, err := cmafOnly(b)
		require.Error(t, err, name)
	}
}

func TestSlateFilterValue(t *testing.T) {
	require.Equal(t, `It\\\'s 1\\: a\,b \[x\]\; c\\\\d`, filterValue(`It's 1: a,b [x]; c\d`))
}

func BenchmarkMakeVideoSlate720p(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("no ffmpeg")
	}
	spec := SlateSpec{Width: 1280, Height: 720, FPS: 30, SegmentSeconds: 2, PartSeconds: 1.0 / 3, Text: "Back in a moment"}
	for b.Loop() {
		if _, err := MakeVideoSlate(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}
