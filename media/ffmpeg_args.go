package media

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dionysia/dionysia/fsm"
)

// TranscodeSpec is everything one ffmpeg run needs: where to read, which
// ladder to produce, where to write it.
type TranscodeSpec struct {
	FFmpeg string // binary, "" = "ffmpeg"
	// SourceURL is any ffmpeg input URL. rtsp:// sources are read over TCP
	// with a socket timeout (mediamtx on the same node or a relay).
	SourceURL string
	// Profile is the ladder: segment_seconds ("" / 0 = 2), video_preset
	// ("" = veryfast), segment_format ("" = ts).
	Profile   fsm.Profile
	OutputDir string // OutputDir(dataDir, inputID)
	// HasVideo and HasAudio come from the source's tracks (TracksHave).
	HasVideo, HasAudio bool
	// SourceAudioAAC says the source audio is AAC (TracksAudioAAC), so a
	// passthrough rendition can copy it; otherwise it is re-encoded, since
	// HLS players only take AAC (or AC-3/E-AC-3) audio.
	SourceAudioAAC bool
	ListSize       int // segments kept in each media playlist; 0 = 6
	// Realtime reads the input at its native rate (-re): for files used as
	// a live source in tests and demos. Live inputs (RTSP) set it false.
	Realtime bool
}

// Defaults applied to a profile's zero values.
const (
	defaultSegmentSeconds = 2
	defaultPreset         = "veryfast"
	defaultListSize       = 6
	defaultAudioKbps      = 128
	// assumedFPS sizes the GOP when the rendition keeps the source rate and
	// the rate is unknown; see gopFrames.
	assumedFPS = 30
	// rtspSocketTimeout makes ffmpeg exit (and be restarted) instead of
	// hanging forever when the RTSP source stops sending.
	rtspSocketTimeout = "10000000" // microseconds
)

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}

// Rendition names become directory names, var_stream_map entries and URL
// path elements, so they are kept to a small safe alphabet.
var renditionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// TracksHave tells whether mediamtx's track list (Path.Tracks, e.g.
// ["H264","MPEG-4 Audio"]) has a video and an audio track.
func TracksHave(tracks []string) (video, audio bool) {
	for _, t := range tracks {
		switch t {
		case "H264", "H265", "AV1", "VP9", "VP8", "M-JPEG", "MPEG-1/2 Video", "MPEG-4 Video":
			video = true
		case "MPEG-4 Audio", "MPEG-4 Audio LATM", "MPEG-1/2 Audio", "AC-3", "Opus", "G711", "G722", "G726", "LPCM", "Speex", "Vorbis":
			audio = true
		}
	}
	return video, audio
}

// TracksAudioAAC tells whether the source audio is plain AAC, which a
// passthrough rendition may copy into HLS. LATM-framed AAC is not: it must be
// re-encoded.
func TracksAudioAAC(tracks []string) bool {
	return slices.Contains(tracks, "MPEG-4 Audio")
}

// segmentSeconds returns the profile's segment duration with its default.
func segmentSeconds(p fsm.Profile) int {
	if p.SegmentSeconds == 0 {
		return defaultSegmentSeconds
	}
	return p.SegmentSeconds
}

// validate rejects specs ffmpeg would fail on, so that a bad profile is an
// error at start instead of a crash loop.
func (s TranscodeSpec) validate() error {
	p := s.Profile
	if s.SourceURL == "" {
		return errors.New("no source URL")
	}
	if s.OutputDir == "" {
		return errors.New("no output dir")
	}
	if !s.HasVideo {
		// Audio-only inputs would need a different ladder (no scaling, audio
		// variants); the platform does not offer it.
		return errors.New("source has no video track")
	}
	if len(p.Renditions) == 0 {
		return errors.New("profile has no renditions")
	}
	if p.SegmentSeconds < 0 {
		return fmt.Errorf("segment_seconds %d is negative", p.SegmentSeconds)
	}
	if s.ListSize < 0 {
		return fmt.Errorf("list size %d is negative", s.ListSize)
	}
	if p.VideoPreset != "" && !slices.Contains(x264Presets, p.VideoPreset) {
		return fmt.Errorf("unknown video_preset %q (want one of %s)", p.VideoPreset, strings.Join(x264Presets, ", "))
	}
	switch p.SegmentFormat {
	case "", fsm.SegmentTS, fsm.SegmentFMP4:
	default:
		return fmt.Errorf("unknown segment_format %q", p.SegmentFormat)
	}
	seen := map[string]bool{}
	for i, r := range p.Renditions {
		if !renditionName.MatchString(r.Name) {
			return fmt.Errorf("rendition %d: name %q must be 1-64 letters, digits, '-' or '_'", i, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("rendition %q appears twice", r.Name)
		}
		seen[r.Name] = true
		if r.AudioBitrateKbps < 0 || r.FPS < 0 {
			return fmt.Errorf("rendition %q: negative audio bitrate or fps", r.Name)
		}
		if r.VideoBitrateKbps <= 0 {
			// Also for passthrough: it becomes the variant's BANDWIDTH, and
			// ffmpeg 5.1 omits variants without one from the master playlist.
			return fmt.Errorf("rendition %q: video_bitrate_kbps must be positive", r.Name)
		}
		if r.Passthrough {
			continue
		}
		if r.Width <= 0 || r.Height <= 0 || r.Width%2 != 0 || r.Height%2 != 0 {
			// yuv420p (what players decode) needs even dimensions.
			return fmt.Errorf("rendition %q: size %dx%d must be positive and even", r.Name, r.Width, r.Height)
		}
	}
	return nil
}

// startSegments: a stream starts with this many segments of this duration
// before settling on the profile's segment duration. A player starts after
// about three segments, so three 1 s segments make a stream playable (after
// a publish or a failover) a segment duration sooner than the profile alone
// would, at no cost once the stream runs.
var startSegments = struct{ count, seconds int }{3, 1}

// keyframeExpr forces a keyframe at every segment boundary: every start
// segment (when seg is longer than a start segment), then every seg
// seconds. ffmpeg counts forced keyframes in n_forced; the first is at t=0.
func keyframeExpr(seg int) string {
	if seg <= startSegments.seconds {
		return fmt.Sprintf("expr:gte(t,n_forced*%d)", seg)
	}
	n, d := startSegments.count, startSegments.seconds
	return fmt.Sprintf("expr:gte(t,if(lt(n_forced,%d),n_forced*%d,%d+(n_forced-%d)*%d))", n+1, d, n*d, n, seg)
}

// FFmpegArgs builds the arguments (without the binary) of the one ffmpeg
// process that transcodes a live source into the whole HLS ladder.
//
// The source is decoded once and split into every encoded rendition inside
// one filter graph. Keyframes are forced at every segment boundary (by time,
// not by frame count, so renditions with different frame rates agree) and
// scene-cut keyframes are off, so every rendition cuts its segments at the
// same instants and players can switch between them at any segment.
//
// Media sequence numbers start at the unix time (hls_start_number_source
// epoch): a restarted or moved transcoder always continues above the
// numbers players have already seen, as long as segments last at least one
// second.
//
// Passthrough renditions copy the source video (and its AAC audio), so
// their segments cut at the source's own keyframes and are aligned with the
// encoded rungs only if the source's GOP is. Their video_bitrate_kbps is
// required: it is the BANDWIDTH advertised in the master playlist.
//
// fMP4 segments: ffmpeg 5.1 cannot name the init segment "init.mp4" in each
// variant's dir when there are several variants (it appends "_<index>"), so
// the init segment is <rendition>/init_<rendition>.mp4; the media playlist's
// EXT-X-MAP names it, which is all players use.
func FFmpegArgs(spec TranscodeSpec) ([]string, error) {
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("transcode spec: %w", err)
	}
	p := spec.Profile
	seg := segmentSeconds(p)
	preset := p.VideoPreset
	if preset == "" {
		preset = defaultPreset
	}
	listSize := spec.ListSize
	if listSize == 0 {
		listSize = defaultListSize
	}
	fmp4 := p.SegmentFormat == fsm.SegmentFMP4

	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats", "-progress", "pipe:1"}
	if strings.HasPrefix(spec.SourceURL, "rtsp://") {
		args = append(args, "-rtsp_transport", "tcp", "-timeout", rtspSocketTimeout)
	}
	if spec.Realtime {
		args = append(args, "-re")
	}
	args = append(args, "-i", spec.SourceURL)

	// One filter graph: decode once, split, scale (and cap fps) per rung.
	var encoded []int
	for i, r := range p.Renditions {
		if !r.Passthrough {
			encoded = append(encoded, i)
		}
	}
	if len(encoded) > 0 {
		var g strings.Builder
		if len(encoded) == 1 {
			g.WriteString("[0:v:0]null[s0];")
		} else {
			fmt.Fprintf(&g, "[0:v:0]split=%d", len(encoded))
			for k := range encoded {
				fmt.Fprintf(&g, "[s%d]", k)
			}
			g.WriteString(";")
		}
		for k, i := range encoded {
			r := p.Renditions[i]
			// Fit inside WxH keeping the aspect ratio: a 4:3 source in a 16:9
			// ladder is not stretched. Dimensions stay even for yuv420p.
			fmt.Fprintf(&g, "[s%d]scale=w=%d:h=%d:force_original_aspect_ratio=decrease:force_divisible_by=2", k, r.Width, r.Height)
			if r.FPS > 0 {
				fmt.Fprintf(&g, ",fps=%d", r.FPS)
			}
			fmt.Fprintf(&g, "[v%d]", i)
			if k < len(encoded)-1 {
				g.WriteString(";")
			}
		}
		args = append(args, "-filter_complex", g.String())
	}

	keyframes := keyframeExpr(seg)
	var streamMap []string
	for i, r := range p.Renditions {
		vi, ai := strconv.Itoa(i), strconv.Itoa(i)
		if r.Passthrough {
			args = append(args, "-map", "0:v:0", "-c:v:"+vi, "copy")
			// Not enforced on a copy, only advertised: ffmpeg 5.1 leaves a
			// variant whose bitrate it does not know (any RTSP source) out
			// of the master playlist altogether.
			args = append(args, "-b:v:"+vi, kbps(r.VideoBitrateKbps))
		} else {
			gop := strconv.Itoa(gopFrames(r, seg))
			args = append(args,
				"-map", "[v"+vi+"]",
				"-c:v:"+vi, "libx264",
				"-preset:v:"+vi, preset,
				"-pix_fmt:v:"+vi, "yuv420p",
				"-b:v:"+vi, kbps(r.VideoBitrateKbps),
				"-maxrate:v:"+vi, kbps(r.VideoBitrateKbps),
				"-bufsize:v:"+vi, kbps(2*r.VideoBitrateKbps),
				"-g:v:"+vi, gop,
				"-keyint_min:v:"+vi, gop,
				"-sc_threshold:v:"+vi, "0",
				"-force_key_frames:v:"+vi, keyframes,
			)
		}
		entry := "v:" + vi
		if spec.HasAudio {
			// Each variant gets its own audio stream: var_stream_map cannot
			// share one stream between variants without alternate renditions,
			// and players expect muxed audio in every variant.
			args = append(args, "-map", "0:a:0")
			if r.Passthrough && spec.SourceAudioAAC {
				args = append(args, "-c:a:"+ai, "copy")
				if r.AudioBitrateKbps > 0 {
					args = append(args, "-b:a:"+ai, kbps(r.AudioBitrateKbps)) // advertised only
				}
				if fmp4 {
					// MP4 wants raw AAC; an ADTS source (MPEG-TS, SRT) must be
					// unwrapped. Raw AAC (RTSP, RTMP) passes through unchanged.
					args = append(args, "-bsf:a:"+ai, "aac_adtstoasc")
				}
			} else {
				ab := r.AudioBitrateKbps
				if ab == 0 {
					ab = defaultAudioKbps
				}
				args = append(args, "-c:a:"+ai, "aac", "-b:a:"+ai, kbps(ab), "-ac:a:"+ai, "2", "-ar:a:"+ai, "48000")
			}
			entry += ",a:" + ai
		}
		streamMap = append(streamMap, entry+",name:"+r.Name)
	}

	args = append(args, "-f", "hls")
	if seg > startSegments.seconds {
		// The first segments are short so that a new stream (or one that
		// just moved to this node) is playable sooner; keyframeExpr puts
		// keyframes where they end.
		args = append(args, "-hls_init_time", strconv.Itoa(startSegments.seconds))
	}
	args = append(args,
		"-hls_time", strconv.Itoa(seg),
		"-hls_list_size", strconv.Itoa(listSize),
		// temp_file: segments and playlists are written then renamed, so the
		// origin never serves a half-written file. No omit_endlist: a clean
		// stop must end the playlists.
		"-hls_flags", "delete_segments+independent_segments+program_date_time+temp_file",
		// Keep a few deleted-from-playlist segments on disk for players and
		// CDNs that fetched the playlist just before it moved on.
		"-hls_delete_threshold", "3",
		"-hls_start_number_source", "epoch",
		"-master_pl_name", MasterPlaylistName,
		"-var_stream_map", strings.Join(streamMap, " "),
	)
	segName := "seg_%d.ts"
	if fmp4 {
		segName = "seg_%d.m4s"
		init := "init_%v.mp4"
		if len(p.Renditions) == 1 {
			// With one variant ffmpeg 5.1 leaves %v unexpanded in this name.
			init = "init_" + p.Renditions[0].Name + ".mp4"
		}
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", init)
	}
	args = append(args,
		"-hls_segment_filename", filepath.Join(spec.OutputDir, "%v", segName),
		filepath.Join(spec.OutputDir, "%v", MediaPlaylistName),
	)
	return args, nil
}

// gopFrames is the fixed GOP length: one segment of frames. Forced keyframes
// (by time) are what align segments; the GOP only keeps x264 from adding
// keyframes of its own in between. At an unknown source rate assumedFPS is
// used; a faster source then gets an extra keyframe mid-segment, which costs
// a little bitrate and breaks nothing.
func gopFrames(r fsm.Rendition, seg int) int {
	fps := r.FPS
	if fps == 0 {
		fps = assumedFPS
	}
	return fps * seg
}

func kbps(n int) string { return strconv.Itoa(n) + "k" }
