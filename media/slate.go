package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The slate is what viewers see while a publisher reconnects: a still card
// and silence, encoded once per rendition and repeated by the packager, so
// the stream keeps its cadence (segments, parts, numbering) instead of
// stalling players. It is made by the same ffmpeg, with the same fMP4
// muxer settings as the live tracks, so the packager splits and serves it
// exactly like live output.

// slateFont is the font of the slate's text. It is a variable so tests can
// point it at a missing file: without the font the card is plain.
var slateFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

// slateTimeout bounds one slate encode whatever the caller's context says:
// a 2 s card takes well under a second, so a slow one is a stuck ffmpeg.
var slateTimeout = 30 * time.Second

const (
	slateBackground = "0x101418"
	slateSampleRate = 48000
	aacFrameSamples = 1024
	// slateFragSlack is taken off the part duration for -frag_duration:
	// ffmpeg closes a fragment at the first frame at or past it, so asking
	// for a little less keeps every fragment within the part target.
	slateFragSlack = 20 * time.Millisecond
	// slateStderrMax is how much of ffmpeg's stderr an error carries.
	slateStderrMax = 4 << 10
)

// SlateSpec describes one video slate.
type SlateSpec struct {
	// FFmpeg is the ffmpeg binary; empty means "ffmpeg" from PATH.
	FFmpeg string
	// Width, Height and FPS match the rendition the slate stands in for, so
	// players do not reconfigure their decoder more than the discontinuity
	// forces them to. Width and Height must be even (4:2:0).
	Width, Height, FPS int
	// SegmentSeconds is the length of the slate: one segment, rounded to
	// whole frames.
	SegmentSeconds float64
	// PartSeconds cuts the segment into fragments of about this length (the
	// LL-HLS parts); 0 writes the segment as one fragment.
	PartSeconds float64
	// Text is written in the middle of the card; empty leaves it plain.
	Text string
	// Preset and LowLatency are the live renditions' x264 preset and
	// whether they run with -tune zerolatency: the slate is encoded the same
	// way (same H.264 profile and tools), so a player's decoder goes from
	// live to slate and back without a profile change. An empty Preset
	// makes a High-profile slate.
	Preset     string
	LowLatency bool
}

// MakeVideoSlate encodes one segment of a still card as fragmented MP4
// (CMAF): ftyp and moov, then moof+mdat fragments, the first starting with
// the only keyframe. It returns those bytes; anything ffmpeg adds after the
// last fragment (its mfra index) is dropped, since a live segment has none.
func MakeVideoSlate(ctx context.Context, s SlateSpec) ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("slate: %w", err)
	}
	frames := int(math.Round(s.SegmentSeconds * float64(s.FPS)))
	gop := strconv.Itoa(frames)
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:s=%dx%d:r=%d", slateBackground, s.Width, s.Height, s.FPS),
		"-vf", slateFilter(s), "-frames:v", gop, "-an",
		"-c:v", "libx264", "-pix_fmt", "yuv420p",
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-bf", "0",
		"-r", strconv.Itoa(s.FPS), "-fps_mode", "cfr",
	}
	if s.Preset != "" {
		args = append(args, "-preset", s.Preset)
		if s.LowLatency {
			args = append(args, "-tune", "zerolatency")
		}
	} else {
		// ultrafast turns off CABAC and 8x8 transforms, which makes x264
		// signal Constrained Baseline; these keep the stream High, at no
		// cost for a still picture.
		args = append(args, "-preset", "ultrafast", "-profile:v", "high", "-x264-params", "cabac=1:8x8dct=1:open-gop=0")
	}
	args = append(args, slateMux(s.PartSeconds)...)
	return encodeSlate(ctx, s.FFmpeg, args)
}

// MakeAudioSlate encodes one segment of silence as fragmented MP4 (AAC-LC,
// 48 kHz stereo, 64 kb/s), fragmented like MakeVideoSlate. AAC frames are
// 1024 samples, so the length is the whole number of frames nearest to
// segmentSeconds (2 s is 94 frames, 2.0053 s). ffmpeg empty means "ffmpeg".
func MakeAudioSlate(ctx context.Context, ffmpeg string, segmentSeconds, partSeconds float64) ([]byte, error) {
	if err := checkSlateTiming(segmentSeconds, partSeconds); err != nil {
		return nil, fmt.Errorf("audio slate: %w", err)
	}
	frames := max(1, int(math.Round(segmentSeconds*slateSampleRate/aacFrameSamples)))
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("anullsrc=r=%d:cl=stereo", slateSampleRate),
		// Counting output packets rather than input samples makes the
		// encoder's priming frame part of the length: the fragmented mp4
		// has no edit list to hide it, so players play it.
		"-frames:a", strconv.Itoa(frames), "-vn",
		"-c:a", "aac", "-profile:a", "aac_low", "-b:a", "64k", "-ar", strconv.Itoa(slateSampleRate), "-ac", "2",
	}
	args = append(args, slateMux(partSeconds)...)
	b, err := encodeSlate(ctx, ffmpeg, args)
	if err != nil {
		return nil, fmt.Errorf("audio %w", err)
	}
	return b, nil
}

func (s SlateSpec) validate() error {
	switch {
	case s.Width <= 0 || s.Height <= 0 || s.Width%2 != 0 || s.Height%2 != 0 || s.Width > 8192 || s.Height > 8192:
		return fmt.Errorf("size %dx%d: want even dimensions up to 8192", s.Width, s.Height)
	case s.FPS <= 0 || s.FPS > 240:
		return fmt.Errorf("fps %d: want 1 to 240", s.FPS)
	}
	if err := checkSlateTiming(s.SegmentSeconds, s.PartSeconds); err != nil {
		return err
	}
	if math.Round(s.SegmentSeconds*float64(s.FPS)) < 1 {
		return fmt.Errorf("segment of %gs is shorter than one frame at %d fps", s.SegmentSeconds, s.FPS)
	}
	return nil
}

func checkSlateTiming(segment, part float64) error {
	switch {
	case !(segment > 0 && segment <= 60):
		return fmt.Errorf("segment of %gs: want more than 0 and at most 60", segment)
	case part != 0 && !(part > 0 && time.Duration(part*float64(time.Second)) > slateFragSlack):
		return fmt.Errorf("part of %gs: want 0 (no parts) or more than %s", part, slateFragSlack)
	}
	return nil
}

// slateMux is the live tracks' muxer setup: fragments are flushed whole to
// stdout, a new one at the keyframe and after about partSeconds.
func slateMux(partSeconds float64) []string {
	args := []string{"-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe+cmaf"}
	if partSeconds > 0 {
		frag := time.Duration(partSeconds*float64(time.Second)) - slateFragSlack
		args = append(args, "-frag_duration", strconv.FormatInt(frag.Microseconds(), 10))
	}
	return append(args, "-flush_packets", "1", "pipe:1")
}

// slateFilter draws the text when the font is there. A missing font must
// not cost the stream its slate: the card is shown plain instead.
func slateFilter(s SlateSpec) string {
	const format = ",format=yuv420p"
	text := strings.TrimSpace(s.Text)
	if text == "" {
		return "null" + format
	}
	if _, err := os.Stat(slateFont); err != nil {
		return "null" + format
	}
	// Large, but narrow enough for the longest line to fit: DejaVu Sans
	// Bold averages about 0.65 em per character.
	longest := 1
	for _, l := range strings.Split(text, "\n") {
		longest = max(longest, utf8.RuneCountInString(l))
	}
	size := min(s.Height/9, int(0.85*float64(s.Width)/(0.65*float64(longest))))
	size = max(size, 8)
	return fmt.Sprintf("drawtext=fontfile=%s:text=%s:expansion=none:fontcolor=white:fontsize=%d:x=(w-text_w)/2:y=(h-text_h)/2",
		filterValue(slateFont), filterValue(text), size) + format
}

// filterValue escapes an option value for a filtergraph given to -vf: once
// for the filter's option parser (\ ' :), then once for the graph parser
// (\ ' [ ] , ;). Text and font path can then hold any character.
func filterValue(v string) string {
	opt := strings.NewReplacer(`\`, `\\`, `'`, `\'`, `:`, `\:`).Replace(v)
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, `[`, `\[`, `]`, `\]`, `,`, `\,`, `;`, `\;`).Replace(opt)
}

// encodeSlate runs ffmpeg to completion and returns its checked stdout.
func encodeSlate(ctx context.Context, ffmpeg string, args []string) ([]byte, error) {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	ctx, cancel := context.WithTimeout(ctx, slateTimeout)
	defer cancel()
	var stdout bytes.Buffer
	stderr := &slateTail{}
	cmd := childCmd(ctx, os.Kill, 2*time.Second, ffmpeg, args...)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("slate: ffmpeg: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("slate: ffmpeg: %w", err)
	}
	b, err := cmafOnly(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("slate: ffmpeg output: %w", err)
	}
	return b, nil
}

// cmafOnly checks that b is ftyp, moov, then fragments (moof+mdat, with
// the styp/sidx/prft boxes a fragment may carry), and cuts what follows the
// last mdat: the packager reads the stream box by box and would take a
// trailing mfra for an unfinished fragment.
func cmafOnly(b []byte) ([]byte, error) {
	var (
		off, end int
		types    []string
	)
	for off < len(b) {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("%d stray bytes at offset %d", len(b)-off, off)
		}
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		switch size {
		case 0:
			size = uint64(len(b) - off)
		case 1:
			if len(b)-off < 16 {
				return nil, fmt.Errorf("%q box: truncated size", typ)
			}
			size = binary.BigEndian.Uint64(b[off+8:])
		}
		if size < 8 || size > uint64(len(b)-off) {
			return nil, fmt.Errorf("%q box at offset %d: bad size %d", typ, off, size)
		}
		off += int(size)
		switch {
		case len(types) == 0 && typ != "ftyp", len(types) == 1 && typ != "moov":
			return nil, fmt.Errorf("box %d is %q, want ftyp then moov", len(types)+1, typ)
		case typ == "mfra" || typ == "free" || typ == "skip":
			continue
		case typ == "mdat" && (len(types) == 0 || types[len(types)-1] != "moof"):
			return nil, errors.New("mdat without moof")
		case typ == "mdat":
			end = off
		}
		types = append(types, typ)
	}
	if end == 0 {
		return nil, fmt.Errorf("no fragment (boxes %s)", strings.Join(types, " "))
	}
	if last := types[len(types)-1]; last != "mdat" {
		return nil, fmt.Errorf("ends with %q, inside a fragment", last)
	}
	return b[:end:end], nil
}

// slateTail keeps the end of ffmpeg's stderr, where its reason to fail is.
type slateTail struct{ b []byte }

func (t *slateTail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - slateStderrMax; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *slateTail) String() string { return string(t.b) }
