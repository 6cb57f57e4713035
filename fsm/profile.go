package fsm

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of a profile. They keep ffmpeg's arguments sane and a typo (a bitrate
// in bps instead of kbps, a 40000-pixel frame) from taking a node down.
const (
	MinSegmentSeconds = 1
	MaxSegmentSeconds = 10
	MinPartMs         = 100
	MaxPartMs         = 1000
	MaxRenditions     = 8
	MinDimension      = 16
	MaxWidth          = 7680
	MaxHeight         = 4320
	MinVideoKbps      = 50
	MaxVideoKbps      = 100_000
	MinAudioKbps      = 16
	MaxAudioKbps      = 512
	MaxFPS            = 120
	MaxNameLen        = 128
)

// Defaults Normalize fills in for a new profile.
const (
	DefaultSegmentSeconds = 2
	DefaultVideoPreset    = "veryfast"
	DefaultSegmentFormat  = SegmentFMP4
	DefaultLatency        = LatencyLow
	// DefaultPartMs cuts the default 2 s segment into six parts, which is
	// what ffmpeg's dash muxer does with -frag_duration 0.333.
	DefaultPartMs    = 334
	DefaultAudioKbps = 128
)

// ReservedRenditionName is the directory of the audio track the renditions
// share; no rendition may take it.
const ReservedRenditionName = "audio"

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// Rendition names become directory names in the output and URLs, hence the
// tight alphabet; lower case only, so that two renditions never share a
// directory on a case-insensitive file system.
var renditionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// EffectiveSegmentFormat is the segment format to produce: "" (a profile
// stored before the default became fmp4) means ts.
func (p Profile) EffectiveSegmentFormat() string {
	if p.SegmentFormat == "" {
		return SegmentTS
	}
	return p.SegmentFormat
}

// EffectiveLatency is the latency mode to produce: "" (a profile stored
// before latency existed) means standard, which is what it was made with.
func (p Profile) EffectiveLatency() string {
	if p.Latency == "" {
		return LatencyStandard
	}
	return p.Latency
}

// EffectivePartMs is the LL-HLS part target in milliseconds: 0 (a profile
// stored before part_ms existed) means DefaultPartMs.
func (p Profile) EffectivePartMs() int {
	if p.PartMs == 0 {
		return DefaultPartMs
	}
	return p.PartMs
}

// Normalize trims the name and fills the defaults of a new or replaced
// profile. The default latency is low, except for a profile that asks for ts
// segments, which cannot carry LL-HLS parts: it gets standard rather than an
// error about a field the client never sent.
func (p *Profile) Normalize() {
	p.Name = strings.TrimSpace(p.Name)
	if p.SegmentSeconds == 0 {
		p.SegmentSeconds = DefaultSegmentSeconds
	}
	if p.VideoPreset == "" {
		p.VideoPreset = DefaultVideoPreset
	}
	if p.SegmentFormat == "" {
		p.SegmentFormat = DefaultSegmentFormat
	}
	if p.Latency == "" {
		p.Latency = DefaultLatency
		if p.SegmentFormat == SegmentTS {
			p.Latency = LatencyStandard
		}
	}
	if p.PartMs == 0 {
		p.PartMs = DefaultPartMs
	}
	for i := range p.Renditions {
		if p.Renditions[i].AudioBitrateKbps == 0 {
			p.Renditions[i].AudioBitrateKbps = DefaultAudioKbps
		}
	}
}

// Validate checks a profile against every rule the transcoder and packager
// rely on, and returns an *Error (CodeInvalid) naming the first offending
// field, e.g. "renditions[1].height". It expects a normalized profile, but
// accepts the zero values of segment_format, latency and part_ms (see the
// Effective methods) so that profiles stored before them still pass.
//
// Apply never calls it: a rule added later must not change how an old log
// replays.
func (p Profile) Validate() error {
	if err := CheckName("name", p.Name); err != nil {
		return err
	}
	return p.ValidateLadder()
}

// ValidateLadder is Validate without the display name: every rule the
// transcoder and packager rely on. Package media checks a profile with it
// before building ffmpeg's arguments.
func (p Profile) ValidateLadder() error {
	if p.SegmentSeconds < MinSegmentSeconds || p.SegmentSeconds > MaxSegmentSeconds {
		return invalid("segment_seconds", "segment_seconds must be between %d and %d", MinSegmentSeconds, MaxSegmentSeconds)
	}
	if !slices.Contains(x264Presets, p.VideoPreset) {
		return invalid("video_preset", "video_preset must be one of %s", strings.Join(x264Presets, ", "))
	}
	switch p.SegmentFormat {
	case "", SegmentTS, SegmentFMP4:
	default:
		return invalid("segment_format", `segment_format must be "ts" or "fmp4"`)
	}
	switch p.Latency {
	case "", LatencyLow, LatencyStandard:
	default:
		return invalid("latency", `latency must be "low" or "standard"`)
	}
	if p.EffectiveLatency() == LatencyLow && p.EffectiveSegmentFormat() != SegmentFMP4 {
		return invalid("latency", "low latency needs segment_format fmp4")
	}
	if p.PartMs != 0 && (p.PartMs < MinPartMs || p.PartMs > MaxPartMs) {
		return invalid("part_ms", "part_ms must be between %d and %d", MinPartMs, MaxPartMs)
	}
	if len(p.Renditions) == 0 || len(p.Renditions) > MaxRenditions {
		return invalid("renditions", "renditions must list 1 to %d renditions", MaxRenditions)
	}
	seen := map[string]bool{}
	for i, r := range p.Renditions {
		at := fmt.Sprintf("renditions[%d]", i)
		if err := r.validate(at); err != nil {
			return err
		}
		if seen[r.Name] {
			return invalid(at+".name", "rendition name %q is used twice", r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

// validate checks one rendition; at is its place in the profile, for the
// error's field.
func (r Rendition) validate(at string) error {
	if !renditionName.MatchString(r.Name) {
		return invalid(at+".name", "name must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")
	}
	if r.Name == ReservedRenditionName {
		return invalid(at+".name", "name %q is reserved for the shared audio track", ReservedRenditionName)
	}
	// Passthrough copies the source: size is only advertised, so it may be
	// left out, but when given it must be a size a player can believe.
	required := !r.Passthrough
	if err := checkRange(at+".width", r.Width, MinDimension, MaxWidth, required); err != nil {
		return err
	}
	if err := checkRange(at+".height", r.Height, MinDimension, MaxHeight, required); err != nil {
		return err
	}
	if r.Width%2 != 0 {
		return invalid(at+".width", "width must be even (x264 with 4:2:0 chroma needs even sizes)")
	}
	if r.Height%2 != 0 {
		return invalid(at+".height", "height must be even (x264 with 4:2:0 chroma needs even sizes)")
	}
	// A passthrough rung needs its bitrate too: it is what the master
	// playlist advertises as BANDWIDTH, and ffmpeg leaves a variant without
	// one out of the master playlist.
	if err := checkRange(at+".video_bitrate_kbps", r.VideoBitrateKbps, MinVideoKbps, MaxVideoKbps, true); err != nil {
		return err
	}
	if err := checkRange(at+".audio_bitrate_kbps", r.AudioBitrateKbps, MinAudioKbps, MaxAudioKbps, true); err != nil {
		return err
	}
	return checkRange(at+".fps", r.FPS, 1, MaxFPS, false)
}

// checkRange accepts 0 for optional values.
func checkRange(field string, v, lo, hi int, required bool) error {
	if v == 0 && !required {
		return nil
	}
	if v < lo || v > hi {
		return invalid(field, "%s must be between %d and %d", field, lo, hi)
	}
	return nil
}

// CheckName checks a required display name (of a profile or an input): at
// most MaxNameLen characters and no control characters, which would break
// logs, tables and playlists.
func CheckName(field, v string) error {
	switch {
	case v == "":
		return invalid(field, "%s is required", field)
	case utf8.RuneCountInString(v) > MaxNameLen:
		return invalid(field, "%s must be at most %d characters", field, MaxNameLen)
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalid(field, "%s must not contain control characters", field)
	}
	return nil
}
