package bench

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

// The generated sources carry their frame number in the picture: a band
// over the top 1/barcodeBandDiv of the frame split into barcodeBits blocks,
// block X white when bit X of the frame number is set. The blocks are large
// (80 px wide at 720p, 40 px at 360p) so the number survives scaling and
// x264 at ladder bitrates, and reading it back needs no OCR: crop the band,
// average each block down to one pixel, threshold.
const (
	barcodeBits    = 16 // 65536 frames: 36 minutes at 30 fps
	barcodeBandDiv = 9
)

// readFrameNumber decodes the first frame (in presentation order) of a media
// file or URL and returns the frame number drawn into it.
func readFrameNumber(ctx context.Context, target string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", target,
		"-frames:v", "1", "-vf", fmt.Sprintf("crop=iw:ih/%d:0:0,scale=%d:1:flags=area,format=gray", barcodeBandDiv, barcodeBits),
		"-f", "rawvideo", "-").Output()
	if err != nil {
		return 0, fmt.Errorf("decode barcode of %s: %w", target, err)
	}
	if len(out) != barcodeBits {
		return 0, fmt.Errorf("decode barcode of %s: got %d bytes", target, len(out))
	}
	n := 0
	for i, v := range out {
		if v >= 128 {
			n |= 1 << i
		}
	}
	return n, nil
}
