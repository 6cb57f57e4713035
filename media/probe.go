package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// SourceInfo is what the transcoder needs to know about a live source
// before it builds the ladder: its video, and whether its audio can be
// copied.
type SourceInfo struct {
	Width, Height int
	FPS           float64 // 0 when the source does not say
	// AudioCodec and AudioProfile are ffprobe's names ("aac", "LC"); empty
	// when the source has no audio or it was not probed.
	AudioCodec, AudioProfile string
	AudioSampleRate          int
	AudioChannels            int
}

// AudioAAC reports whether the source's audio is AAC-LC, which every HLS
// and DASH player decodes, so a passthrough ladder can copy it. Other AAC
// profiles (HE-AAC) are re-encoded: the slate and other ladders are AAC-LC,
// and a player switching between them at a seam needs no codec change.
func (s SourceInfo) AudioAAC() bool {
	return s.AudioCodec == "aac" && s.AudioProfile == "LC" && s.AudioSampleRate > 0
}

// ProbeSource asks ffprobe for the size and frame rate of a live source's
// video and the codec of its audio. Over RTSP the answer comes from the
// session description (SPS, AudioSpecificConfig), so it costs a round trip,
// not a wait for a keyframe. ffprobe is looked up next to ffmpeg.
func ProbeSource(ctx context.Context, ffmpeg, source string) (SourceInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	args := []string{"-v", "error", "-probesize", "65536", "-analyzeduration", "500000"}
	if strings.HasPrefix(source, "rtsp://") {
		args = append(args, "-rtsp_transport", "tcp")
	}
	args = append(args, "-show_entries",
		"stream=codec_type,codec_name,profile,width,height,avg_frame_rate,r_frame_rate,sample_rate,channels", "-of", "json", source)
	out, err := exec.CommandContext(ctx, ffprobeFor(ffmpeg), args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return SourceInfo{}, fmt.Errorf("probe source: %w: %s", err, Redact(strings.TrimSpace(string(ee.Stderr))))
		}
		return SourceInfo{}, fmt.Errorf("probe source: %w", err)
	}
	return parseProbe(out)
}

// parseProbe reads ffprobe's JSON: the first video stream and the first
// audio stream.
func parseProbe(out []byte) (SourceInfo, error) {
	var res struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			Profile      string `json:"profile"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			RFrameRate   string `json:"r_frame_rate"`
			SampleRate   string `json:"sample_rate"`
			Channels     int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return SourceInfo{}, fmt.Errorf("probe source: %w", err)
	}
	var info SourceInfo
	video, audio := false, false
	for _, st := range res.Streams {
		switch {
		case st.CodecType == "video" && !video:
			video = true
			info.Width, info.Height = st.Width, st.Height
			info.FPS = parseRate(st.AvgFrameRate)
			if info.FPS == 0 {
				info.FPS = parseRate(st.RFrameRate)
			}
		case st.CodecType == "audio" && !audio:
			audio = true
			info.AudioCodec, info.AudioProfile, info.AudioChannels = st.CodecName, st.Profile, st.Channels
			info.AudioSampleRate, _ = strconv.Atoi(st.SampleRate)
		}
	}
	if info.Width == 0 || info.Height == 0 {
		return SourceInfo{}, errors.New("probe source: no video size")
	}
	return info, nil
}

func ffprobeFor(ffmpeg string) string {
	if ffmpeg == "" || !strings.Contains(ffmpeg, "/") {
		return "ffprobe"
	}
	return filepath.Join(filepath.Dir(ffmpeg), "ffprobe")
}

// parseRate reads ffprobe's "30000/1001"; nonsense (0/0, 90000/1 from a
// timebase) gives 0.
func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseFloat(num, 64)
	d := 1.0
	var err2 error
	if ok {
		d, err2 = strconv.ParseFloat(den, 64)
	}
	if err1 != nil || err2 != nil || d == 0 {
		return 0
	}
	r := n / d
	if r <= 0 || r > 240 {
		return 0
	}
	return r
}

// Skipped is a rendition left out of a ladder, and why.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// FitLadder leaves out the renditions that would upscale the source (larger
// in either dimension) or raise its frame rate: players would download
// more bits for no more picture. The smallest rendition always stays, so a
// tiny source still gets a stream; passthrough renditions always stay.
func FitLadder(p fsm.Profile, src SourceInfo) (fsm.Profile, []Skipped) {
	if src.Width == 0 || src.Height == 0 {
		return p, nil
	}
	smallest := -1
	for i, r := range p.Renditions {
		if r.Passthrough {
			continue
		}
		if smallest < 0 || r.Width*r.Height < p.Renditions[smallest].Width*p.Renditions[smallest].Height {
			smallest = i
		}
	}
	out := p
	out.Renditions = nil
	var skipped []Skipped
	for i, r := range p.Renditions {
		reason := ""
		switch {
		case r.Passthrough || i == smallest:
		case r.Width > src.Width || r.Height > src.Height:
			reason = fmt.Sprintf("larger than the source (%dx%d > %dx%d)", r.Width, r.Height, src.Width, src.Height)
		case r.FPS > 0 && src.FPS > 0 && float64(r.FPS) > src.FPS+0.5:
			reason = fmt.Sprintf("frame rate above the source's (%d > %.2f)", r.FPS, src.FPS)
		}
		if reason != "" {
			skipped = append(skipped, Skipped{Name: r.Name, Reason: reason})
			continue
		}
		out.Renditions = append(out.Renditions, r)
	}
	return out, skipped
}
