package media

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// TranscodeStats is the latest progress report of a transcoder.
type TranscodeStats struct {
	Running bool
	// Frame counts the frames of the first video output (the top rendition).
	Frame       uint64
	FPS         float64
	Speed       float64 // 1.0 = realtime; below 1 the stream falls behind
	BitrateKbps float64 // of ffmpeg's first output; N/A for HLS, so often 0
	DropFrames  uint64
	DupFrames   uint64
	OutTime     time.Duration
	UpdatedAt   time.Time
}

// ParseProgress reads ffmpeg's -progress output (key=value lines, each block
// closed by progress=continue or progress=end) and calls fn once per block
// with the values seen so far. Unknown keys and unparsable values ("N/A")
// are ignored, since ffmpeg prints them while it has nothing to report yet.
// UpdatedAt and Running are left to the caller. It returns nil at EOF or
// after progress=end, and the read error otherwise.
func ParseProgress(r io.Reader, fn func(TranscodeStats)) error {
	var st TranscodeStats
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "frame":
			if n, err := strconv.ParseUint(val, 10, 64); err == nil {
				st.Frame = n
			}
		case "fps":
			if f, err := strconv.ParseFloat(val, 64); err == nil {
				st.FPS = f
			}
		case "bitrate":
			if f, err := strconv.ParseFloat(strings.TrimSuffix(val, "kbits/s"), 64); err == nil {
				st.BitrateKbps = f
			}
		case "speed":
			if f, err := strconv.ParseFloat(strings.TrimSuffix(val, "x"), 64); err == nil {
				st.Speed = f
			}
		case "drop_frames":
			if n, err := strconv.ParseUint(val, 10, 64); err == nil {
				st.DropFrames = n
			}
		case "dup_frames":
			if n, err := strconv.ParseUint(val, 10, 64); err == nil {
				st.DupFrames = n
			}
		case "out_time_us":
			// Before the first packet ffmpeg prints N/A or a huge negative
			// number (AV_NOPTS_VALUE); keep zero then.
			if n, err := strconv.ParseInt(val, 10, 64); err == nil && n >= 0 {
				st.OutTime = time.Duration(n) * time.Microsecond
			}
		case "progress":
			fn(st)
			if val == "end" {
				return nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read ffmpeg progress: %w", err)
	}
	return nil
}
