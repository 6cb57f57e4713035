package media

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// TranscodeSpec is everything one ffmpeg run needs: where to read and which
// ladder to produce. Where the output goes is the transcoder's business
// (pipes into the node's packager).
type TranscodeSpec struct {
	FFmpeg string // binary, "" = "ffmpeg"
	// SourceURL is any ffmpeg input URL. rtsp:// sources are read over TCP
	// with a socket timeout (mediamtx on the same node or a relay).
	SourceURL string
	// Profile is the ladder: segment_seconds ("" / 0 = 2), video_preset
	// ("" = veryfast), latency and part_ms.
	Profile fsm.Profile
	// HasVideo and HasAudio come from the source's tracks (TracksHave).
	HasVideo, HasAudio bool
	// SourceAudioAAC says the source's audio is AAC-LC (SourceInfo.AudioAAC),
	// at SourceAudioRate Hz, so passthrough renditions copy it instead of
	// encoding it again.
	SourceAudioAAC  bool
	SourceAudioRate int
	// Realtime reads the input at its native rate (-re): for files used as
	// a live source in tests and demos. Live inputs (RTSP) set it false.
	Realtime bool
	// Thumbnails adds one more output: a JPEG of the lowest encoded rung
	// every ThumbnailSeconds (see thumbnailArgs). Profiles whose every
	// rendition is passthrough get none: there is no decoded picture to
	// take it from without a second decode.
	Thumbnails bool
}

// Defaults applied to a profile's zero values.
const (
	defaultSegmentSeconds = fsm.DefaultSegmentSeconds
	defaultPreset         = fsm.DefaultVideoPreset
	defaultAudioKbps      = fsm.DefaultAudioKbps
	// assumedFPS sizes the GOP when the rendition keeps the source rate and
	// the rate is unknown; see gopFrames.
	assumedFPS = 30
	// rtspSocketTimeout makes ffmpeg exit (and be restarted) instead of
	// hanging forever when the RTSP source stops sending.
	rtspSocketTimeout = "10000000" // microseconds
	// aacFrameSeconds is one AAC frame at 48 kHz: fragments end on the
	// first frame at or past ffmpeg's frag_duration, so asking for a frame
	// less keeps every fragment within the part target.
	aacFrameSeconds = 1024.0 / 48000
	// slowestFPS is the frame rate assumed for fragment sizing when a
	// rendition keeps the source's rate, which is unknown here.
	slowestFPS = 15
)

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

// segmentSeconds returns the profile's segment duration with its default.
func segmentSeconds(p fsm.Profile) int {
	if p.SegmentSeconds == 0 {
		return defaultSegmentSeconds
	}
	return p.SegmentSeconds
}

// PartSeconds is the LL-HLS part target of a profile, in seconds.
func PartSeconds(p fsm.Profile) float64 {
	return float64(p.EffectivePartMs()) / 1000
}

// LowLatency tells whether a profile asks for LL-HLS parts.
func LowLatency(p fsm.Profile) bool { return p.EffectiveLatency() == fsm.LatencyLow }

// validate rejects specs ffmpeg would fail on, so that a bad profile is an
// error at start instead of a crash loop. The profile's rules are fsm's
// (Profile.ValidateLadder, what the API checked before storing it), applied to
// the profile with the defaults this package fills in for zero values.
func (s TranscodeSpec) validate() error {
	if s.SourceURL == "" {
		return errors.New("no source URL")
	}
	if !s.HasVideo {
		// Audio-only inputs would need a different ladder (no scaling, audio
		// variants); the platform does not offer it.
		return errors.New("source has no video track")
	}
	if err := withDefaults(s.Profile).ValidateLadder(); err != nil {
		var fe *fsm.Error
		if errors.As(err, &fe) && fe.Field != "" {
			return fmt.Errorf("profile %s: %w", fe.Field, err)
		}
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// withDefaults fills the zero values this package reads as defaults
// (segment duration, preset, audio bitrates), as fsm's Normalize does for
// a new profile; the zero latency, format and part target of an old
// profile keep their meaning (see fsm.Profile.EffectiveLatency).
func withDefaults(p fsm.Profile) fsm.Profile {
	p.Renditions = slices.Clone(p.Renditions)
	if p.SegmentSeconds == 0 {
		p.SegmentSeconds = fsm.DefaultSegmentSeconds
	}
	if p.VideoPreset == "" {
		p.VideoPreset = fsm.DefaultVideoPreset
	}
	for i := range p.Renditions {
		if p.Renditions[i].AudioBitrateKbps == 0 {
			p.Renditions[i].AudioBitrateKbps = fsm.DefaultAudioKbps
		}
	}
	return p
}

// startSegments: a stream starts with this many segments of this duration
// before settling on the profile's segment duration. A player starts after
// about three segments, so three 1 s segments make a stream playable (after
// a publish or a failover) a segment duration sooner than the profile alone
// would, at no cost once the stream runs.
var startSegments = struct{ count, seconds int }{3, 1}

// Schedule is where segments of a profile end: the transcoder forces a
// keyframe at each boundary and the packager cuts there.
func Schedule(p fsm.Profile) packager.Schedule {
	seg := segmentSeconds(p)
	if seg <= startSegments.seconds {
		return packager.Schedule{Seconds: float64(seg)}
	}
	return packager.Schedule{StartCount: startSegments.count, StartSeconds: float64(startSegments.seconds), Seconds: float64(seg)}
}

// keyframeSeconds is the keyframe interval. A standard stream has one
// keyframe per segment. A low-latency one has one every second (a part in
// three at the default part target): hls.js and dash.js start a viewer at an
// independent part at or before their target, so with one keyframe per 2 s
// segment a viewer who joins at a random moment starts up to 2 s (1 s on
// average) further behind than the playlist asks, for good — hls.js does not
// catch up by default. A keyframe a second halves that, for a few per cent
// of bitrate. Every segment boundary is on a whole second, so each still
// starts on a keyframe; the packager cuts on the schedule only.
func keyframeSeconds(p fsm.Profile) int {
	if LowLatency(p) {
		return startSegments.seconds
	}
	return segmentSeconds(p)
}

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

// Output formats: how an output is muxed, and so how the transcoder splits
// it.
const (
	// FormatFMP4 is one track (a video rendition or the shared audio) as
	// fragmented MP4, split by packager.Split.
	FormatFMP4 = "fmp4"
	// FormatTS is one video rendition with its own audio muxed in, as
	// MPEG-TS, split by packager.SplitTS.
	FormatTS = "ts"
	// FormatJPEG is a stream of whole JPEG pictures (the thumbnails), split
	// by packager.SplitJPEG. It is not a track of the stream.
	FormatJPEG = "jpeg"
)

// ThumbnailSeconds is how often the transcoder writes a thumbnail.
const ThumbnailSeconds = 5

// Output is one of ffmpeg's outputs: a track written to file descriptor FD
// in Format.
type Output struct {
	FD     int
	Track  packager.TrackSpec
	Format string
}

// TSSegments tells whether a profile is packaged as MPEG-TS segments
// (segment_format ts, which old devices need) rather than CMAF. Low latency
// needs CMAF parts, so a profile asking for both (fsm.Profile.Validate
// refuses it; only hand-made profiles have it) gets CMAF.
func TSSegments(p fsm.Profile) bool {
	return p.EffectiveSegmentFormat() == fsm.SegmentTS && !LowLatency(p)
}

// firstOutputFD is the descriptor of the first output pipe: 0-2 are stdio.
const firstOutputFD = 3

// FFmpegArgs builds the arguments (without the binary) of the one ffmpeg
// process that transcodes a live source into the whole ladder, and the
// outputs it writes: one fragmented-MP4 (CMAF) stream per video rendition
// and one for the shared audio, each on its own pipe.
//
// The source is decoded once and split into every encoded rendition inside
// one filter graph. Keyframes are forced at every segment boundary (by time,
// not by frame count, so renditions with different frame rates agree) and
// scene-cut keyframes are off, so every rendition cuts its segments at the
// same instants and players can switch between them at any segment. Every
// keyframe starts a fragment (frag_keyframe); between them fragments last
// about one part target, which makes them the LL-HLS parts.
//
// Audio is encoded once (AAC-LC, stereo, 48 kHz) at the highest audio
// bitrate of the ladder: every variant shares it as an alternate rendition,
// which is how CMAF and DASH carry audio. A ladder of passthrough
// renditions copies the source's audio instead, when it is AAC-LC.
//
// A profile with MPEG-TS segments (TSSegments) gets one MPEG-TS output per
// rendition instead, each with its video (encoded the same way) and its own
// AAC track at the rendition's audio bitrate muxed in, as old devices expect
// of a TS variant; there is no separate audio output. The packager cuts
// those streams at the forced keyframes.
func FFmpegArgs(spec TranscodeSpec) ([]string, []Output, error) {
	if err := spec.validate(); err != nil {
		return nil, nil, fmt.Errorf("transcode spec: %w", err)
	}
	p := spec.Profile
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats", "-progress", "pipe:1"}
	if strings.HasPrefix(spec.SourceURL, "rtsp://") {
		// fpsprobesize 0: take the frame rate from the stream's SPS instead
		// of reading ~20 frames to measure it, which delays the first
		// output by about a second (encoders such as x264 and OBS write it).
		args = append(args, "-rtsp_transport", "tcp", "-timeout", rtspSocketTimeout, "-fpsprobesize", "0")
	}
	if spec.Realtime {
		args = append(args, "-re")
	}
	args = append(args, "-i", spec.SourceURL)
	thumb := -1
	if spec.Thumbnails {
		thumb = lowestRung(p.Renditions)
	}
	if g := filterGraph(p.Renditions, thumb); g != "" {
		args = append(args, "-filter_complex", g)
	}
	if TSSegments(p) {
		args, outs := tsOutputs(spec, args)
		if thumb >= 0 {
			args, outs = thumbnailOutput(args, outs)
		}
		return args, outs, nil
	}
	var outs []Output
	part := PartSeconds(p)
	for i, r := range p.Renditions {
		fd := firstOutputFD + len(outs)
		args = append(args, videoArgs(p, i)...)
		args = append(args, "-an")
		// A fragment ends on the first frame at or past frag_duration: ask
		// for one frame less than the part target (a slow frame rate when
		// the rendition keeps the source's unknown one).
		frame := 1.0 / slowestFPS
		if r.FPS > 0 && !r.Passthrough {
			frame = 1 / float64(r.FPS)
		}
		args = append(args, muxArgs(part-frame)...)
		args = append(args, "pipe:"+strconv.Itoa(fd))
		outs = append(outs, Output{FD: fd, Format: FormatFMP4, Track: packager.TrackSpec{
			Name: r.Name, Kind: packager.Video, Bandwidth: r.VideoBitrateKbps * 1100, FrameRate: float64(r.FPS),
		}})
	}
	if spec.HasAudio {
		kbps := audioKbps(p.Renditions)
		fd := firstOutputFD + len(outs)
		args = append(args, "-map", "0:a:0", "-vn")
		frame := aacFrameSeconds
		if spec.copiesAudio(p.Renditions) {
			args = append(args, copyAACArgs()...)
			frame = 1024 / float64(spec.SourceAudioRate)
		} else {
			args = append(args, aacArgs(kbps)...)
		}
		args = append(args, muxArgs(part-frame)...)
		args = append(args, "pipe:"+strconv.Itoa(fd))
		outs = append(outs, Output{FD: fd, Format: FormatFMP4, Track: packager.TrackSpec{Name: packager.AudioTrack, Kind: packager.Audio, Bandwidth: kbps * 1000}})
	}
	if thumb >= 0 {
		args, outs = thumbnailOutput(args, outs)
	}
	return args, outs, nil
}

// thumbnailLabel is the filter graph's thumbnail output.
const thumbnailLabel = "[thumb]"

// thumbnailOutput adds the thumbnail output, last, so the tracks keep their
// descriptors: the pictures filterGraph selects, as baseline JPEG (-q:v 5,
// a few tens of kB at 360p), one after the other on a pipe. fps_mode
// passthrough writes each selected picture once: image2pipe has no frame
// rate of its own, and ffmpeg would otherwise repeat the picture at the
// source's rate. The pictures are full-range yuv420p (filterGraph converts
// them), which JPEG decoders expect; -strict unofficial lets mjpeg take that
// format as it is instead of having a scaler convert it again to the
// deprecated yuvj420p.
func thumbnailOutput(args []string, outs []Output) ([]string, []Output) {
	fd := firstOutputFD + len(outs)
	args = append(args, "-map", thumbnailLabel, "-an",
		"-c:v", "mjpeg", "-q:v", "5", "-strict", "unofficial", "-fps_mode", "passthrough",
		"-f", "image2pipe", "-flush_packets", "1", "pipe:"+strconv.Itoa(fd))
	return args, append(outs, Output{FD: fd, Format: FormatJPEG, Track: packager.TrackSpec{Name: "thumbnail"}})
}

// lowestRung is the encoded rendition with the fewest pixels (the first of
// equals), the cheapest picture to compress into a thumbnail; -1 when every
// rendition is passthrough.
func lowestRung(rs []fsm.Rendition) int {
	best := -1
	for i, r := range rs {
		if r.Passthrough {
			continue
		}
		if best < 0 || r.Width*r.Height < rs[best].Width*rs[best].Height {
			best = i
		}
	}
	return best
}

// tsOutputs adds one MPEG-TS output per rendition to args: its video and,
// when the source has audio, its own AAC track. A variant's BANDWIDTH
// advertises the peak of both: their targets plus 10%, like the CMAF video
// tracks.
func tsOutputs(spec TranscodeSpec, args []string) ([]string, []Output) {
	p := spec.Profile
	var outs []Output
	for i, r := range p.Renditions {
		fd := firstOutputFD + len(outs)
		args = append(args, videoArgs(p, i)...)
		kbps := r.VideoBitrateKbps
		if spec.HasAudio {
			a := r.AudioBitrateKbps
			if a == 0 {
				a = defaultAudioKbps
			}
			args = append(args, "-map", "0:a:0")
			if spec.copiesAudio(p.Renditions[i : i+1]) {
				// The MPEG-TS muxer writes the ADTS headers itself.
				args = append(args, "-c:a", "copy")
			} else {
				args = append(args, aacArgs(a)...)
			}
			kbps += a
		} else {
			args = append(args, "-an")
		}
		args = append(args, tsMuxArgs()...)
		args = append(args, "pipe:"+strconv.Itoa(fd))
		outs = append(outs, Output{FD: fd, Format: FormatTS, Track: packager.TrackSpec{
			Name: r.Name, Kind: packager.Video, Bandwidth: kbps * 1100, FrameRate: float64(r.FPS),
		}})
	}
	return args, outs
}

// copiesAudio tells whether the audio that serves these renditions is the
// source's, copied: when it is AAC-LC and every one of them is passthrough.
// The CMAF audio track is shared by the whole ladder, so one encoded
// rendition is enough to encode it (at the ladder's audio bitrate, which
// the source's may exceed many times).
func (s TranscodeSpec) copiesAudio(rs []fsm.Rendition) bool {
	if !s.SourceAudioAAC || s.SourceAudioRate <= 0 || len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if !r.Passthrough {
			return false
		}
	}
	return true
}

// copyAACArgs copies AAC audio into MP4, which wants raw AAC: an ADTS
// source is unwrapped, a raw one (RTSP, RTMP) passes unchanged.
func copyAACArgs() []string {
	return []string{"-c:a", "copy", "-bsf:a", "aac_adtstoasc"}
}

// aacArgs encodes the source's audio as AAC-LC, stereo, 48 kHz.
func aacArgs(kbps int) []string {
	return []string{"-c:a", "aac", "-b:a", strconv.Itoa(kbps) + "k", "-ac", "2", "-ar", "48000"}
}

// tsMuxArgs writes MPEG-TS to a pipe: PAT and PMT first, every PES as soon
// as its frame is encoded (no mux delay: timestamps start at the encoder's,
// near zero, where the schedule's keyframes are) and flushed at once.
func tsMuxArgs() []string {
	// max_interleave_delta: with audio muxed in, a stalled audio input must
	// not hold the video back for ffmpeg's default 10 s.
	return []string{"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-max_interleave_delta", "1000000", "-flush_packets", "1"}
}

// filterGraph decodes once and splits, scales (and caps the frame rate of)
// every encoded rendition; "" when every rendition is passthrough. With
// thumb >= 0, rendition thumb's scaled picture is split once more into
// thumbnailLabel: one frame every ThumbnailSeconds (the first at once, not
// after a period as the fps filter would), converted to full range for JPEG.
// That costs no decode and no scaling beyond one range conversion per
// picture.
func filterGraph(rs []fsm.Rendition, thumb int) string {
	var encoded []int
	for i, r := range rs {
		if !r.Passthrough {
			encoded = append(encoded, i)
		}
	}
	if len(encoded) == 0 {
		return ""
	}
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
		r := rs[i]
		// Fit inside WxH keeping the aspect ratio: a 4:3 source in a 16:9
		// ladder is not stretched. Dimensions stay even for yuv420p.
		fmt.Fprintf(&g, "[s%d]scale=w=%d:h=%d:force_original_aspect_ratio=decrease:force_divisible_by=2", k, r.Width, r.Height)
		if r.FPS > 0 {
			fmt.Fprintf(&g, ",fps=%d", r.FPS)
		}
		if i == thumb {
			fmt.Fprintf(&g, ",split=2[v%d][t0];[t0]select='isnan(prev_selected_t)+gte(t-prev_selected_t,%d)',scale=out_range=full%s", i, ThumbnailSeconds, thumbnailLabel)
		} else {
			fmt.Fprintf(&g, "[v%d]", i)
		}
		if k < len(encoded)-1 {
			g.WriteString(";")
		}
	}
	return g.String()
}

// videoArgs encodes (or copies) rendition i into its own output; the
// caller says what becomes of audio there.
func videoArgs(p fsm.Profile, i int) []string {
	r := p.Renditions[i]
	if r.Passthrough {
		// -copypriorss 0 drops a copied packet without a timestamp before
		// the first one with. ffmpeg's RTSP demuxer gives the first frame
		// it reads none; when that frame is a keyframe (always through the
		// relay's live pull, about one start in twenty reading mediamtx,
		// whose readers join anywhere in a GOP) and the source has
		// B-frames, the copy gives it a negative decode time, which the
		// mp4 muxer cannot write once its moov is out, and every packet
		// after it is refused ("pts has no value"): the stream never
		// plays. Dropped, the copy starts at the next keyframe.
		return []string{"-map", "0:v:0", "-c:v", "copy", "-copypriorss", "0"}
	}
	kf := keyframeSeconds(p)
	preset := p.VideoPreset
	if preset == "" {
		preset = defaultPreset
	}
	gop := strconv.Itoa(gopFrames(r, kf))
	args := []string{
		"-map", "[v" + strconv.Itoa(i) + "]",
		"-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p",
		"-b:v", kbps(r.VideoBitrateKbps), "-maxrate", kbps(r.VideoBitrateKbps), "-bufsize", kbps(2 * r.VideoBitrateKbps),
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-force_key_frames", keyframeExpr(kf),
	}
	if LowLatency(p) {
		// No lookahead and no B-frames: a frame leaves the encoder as soon
		// as it is encoded, which is most of what low latency is about.
		args = append(args, "-tune", "zerolatency")
	}
	return args
}

// muxArgs writes fragmented MP4 to a pipe: the moov first (empty_moov), a
// new fragment at every keyframe and once a fragment reaches fragSeconds,
// each flushed at once so the packager sees it as soon as it is complete.
func muxArgs(fragSeconds float64) []string {
	frag := int(fragSeconds * 1e6)
	return []string{
		"-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe+cmaf",
		"-frag_duration", strconv.Itoa(max(frag, 10000)), "-flush_packets", "1",
	}
}

// audioKbps is the bitrate of the one shared audio track: the best any
// rendition asks for.
func audioKbps(rs []fsm.Rendition) int {
	best := 0
	for _, r := range rs {
		best = max(best, r.AudioBitrateKbps)
	}
	if best == 0 {
		return defaultAudioKbps
	}
	return best
}

// gopFrames is the fixed GOP length: one segment of frames. Forced keyframes
// (by time) are what align segments; the GOP only keeps x264 from adding
// keyframes of its own in between. At an unknown source rate assumedFPS is
// used; a faster source then gets an extra keyframe mid-segment, which costs
// a little bitrate and breaks nothing (the packager cuts on the schedule).
func gopFrames(r fsm.Rendition, seg int) int {
	fps := r.FPS
	if fps == 0 {
		fps = assumedFPS
	}
	return fps * seg
}

func kbps(n int) string { return strconv.Itoa(n) + "k" }
