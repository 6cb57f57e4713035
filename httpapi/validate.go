package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dionysia/dionysia/fsm"
)

// Bounds of a profile. They keep ffmpeg's arguments sane and a typo (a bitrate
// in bps instead of kbps, a 40000-pixel frame) from taking a node down.
const (
	minSegmentSeconds = 1
	maxSegmentSeconds = 10
	maxRenditions     = 8
	minDimension      = 16
	maxWidth          = 7680
	maxHeight         = 4320
	minVideoKbps      = 50
	maxVideoKbps      = 100_000
	minAudioKbps      = 16
	maxAudioKbps      = 512
	maxFPS            = 120
	maxNameLen        = 128
)

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// Rendition names become directory names in the output and URLs, hence the
// tight alphabet.
var renditionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Ids chosen by users (profiles may be given one) follow the same rule.
var userID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// profileBody is the JSON a client sends for a profile.
type profileBody struct {
	ID             string        `json:"id"`
	Name           string        `json:"name"`
	SegmentSeconds int           `json:"segment_seconds"`
	VideoPreset    string        `json:"video_preset"`
	SegmentFormat  string        `json:"segment_format"`
	Renditions     renditionList `json:"renditions"`
}

// renditionList decodes each rendition on its own, so that a decoding error
// names the rendition the way validation does: renditions[1].width.
type renditionList []renditionBody

func (l *renditionList) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	out := make(renditionList, len(raws))
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			return &nestedError{At: fmt.Sprintf("renditions[%d]", i), Err: err}
		}
	}
	*l = out
	return nil
}

type renditionBody struct {
	Name             string `json:"name"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	VideoBitrateKbps int    `json:"video_bitrate_kbps"`
	AudioBitrateKbps int    `json:"audio_bitrate_kbps"`
	FPS              int    `json:"fps"`
	Passthrough      bool   `json:"passthrough"`
}

// toProfile validates the body, fills defaults and returns the profile it
// describes (without id or timestamps).
func (b profileBody) toProfile() (*fsm.Profile, error) {
	p := &fsm.Profile{
		Name:           strings.TrimSpace(b.Name),
		SegmentSeconds: b.SegmentSeconds,
		VideoPreset:    b.VideoPreset,
		SegmentFormat:  b.SegmentFormat,
	}
	if err := checkName("name", p.Name, true); err != nil {
		return nil, err
	}
	if p.SegmentSeconds == 0 {
		p.SegmentSeconds = 2
	}
	if p.SegmentSeconds < minSegmentSeconds || p.SegmentSeconds > maxSegmentSeconds {
		return nil, badRequest("segment_seconds", fmt.Sprintf("segment_seconds must be between %d and %d", minSegmentSeconds, maxSegmentSeconds))
	}
	if p.VideoPreset == "" {
		p.VideoPreset = "veryfast"
	}
	if !slices.Contains(x264Presets, p.VideoPreset) {
		return nil, badRequest("video_preset", "video_preset must be one of "+strings.Join(x264Presets, ", "))
	}
	if p.SegmentFormat == "" {
		p.SegmentFormat = fsm.SegmentTS
	}
	if p.SegmentFormat != fsm.SegmentTS && p.SegmentFormat != fsm.SegmentFMP4 {
		return nil, badRequest("segment_format", `segment_format must be "ts" or "fmp4"`)
	}
	if len(b.Renditions) == 0 || len(b.Renditions) > maxRenditions {
		return nil, badRequest("renditions", fmt.Sprintf("renditions must list 1 to %d renditions", maxRenditions))
	}
	seen := map[string]bool{}
	for i, rb := range b.Renditions {
		r, err := rb.toRendition(fmt.Sprintf("renditions[%d]", i))
		if err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, badRequest(fmt.Sprintf("renditions[%d].name", i), fmt.Sprintf("rendition name %q is used twice", r.Name))
		}
		seen[r.Name] = true
		p.Renditions = append(p.Renditions, r)
	}
	return p, nil
}

func (b renditionBody) toRendition(at string) (fsm.Rendition, error) {
	r := fsm.Rendition(b)
	if !renditionName.MatchString(r.Name) {
		return r, badRequest(at+".name", "name must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")
	}
	// Passthrough copies the source: size and bitrate are only advertised, so
	// they may be left out.
	required := !r.Passthrough
	if err := checkRange(at+".width", r.Width, minDimension, maxWidth, required); err != nil {
		return r, err
	}
	if err := checkRange(at+".height", r.Height, minDimension, maxHeight, required); err != nil {
		return r, err
	}
	if r.Width%2 != 0 {
		return r, badRequest(at+".width", "width must be even (x264 with 4:2:0 chroma needs even sizes)")
	}
	if r.Height%2 != 0 {
		return r, badRequest(at+".height", "height must be even (x264 with 4:2:0 chroma needs even sizes)")
	}
	// A passthrough rung needs its bitrate too: it is what the master
	// playlist advertises as BANDWIDTH, and ffmpeg leaves a variant without
	// one out of the master playlist.
	if err := checkRange(at+".video_bitrate_kbps", r.VideoBitrateKbps, minVideoKbps, maxVideoKbps, true); err != nil {
		return r, err
	}
	if r.AudioBitrateKbps == 0 {
		r.AudioBitrateKbps = 128
	}
	if err := checkRange(at+".audio_bitrate_kbps", r.AudioBitrateKbps, minAudioKbps, maxAudioKbps, true); err != nil {
		return r, err
	}
	if err := checkRange(at+".fps", r.FPS, 1, maxFPS, false); err != nil {
		return r, err
	}
	return r, nil
}

// checkRange accepts 0 for optional values.
func checkRange(field string, v, lo, hi int, required bool) error {
	if v == 0 && !required {
		return nil
	}
	if v < lo || v > hi {
		return badRequest(field, fmt.Sprintf("%s must be between %d and %d", field, lo, hi))
	}
	return nil
}

func checkName(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return badRequest(field, field+" is required")
	case utf8.RuneCountInString(v) > maxNameLen:
		return badRequest(field, fmt.Sprintf("%s must be at most %d characters", field, maxNameLen))
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return badRequest(field, field+" must not contain control characters")
	}
	return nil
}

func checkPolicy(v string) error {
	if v != fsm.PlaybackPublic && v != fsm.PlaybackSigned {
		return badRequest("playback_policy", `playback_policy must be "public" or "signed"`)
	}
	return nil
}

// inputBody is the JSON for creating an input.
type inputBody struct {
	Name           string `json:"name"`
	ProfileID      string `json:"profile_id"`
	Enabled        *bool  `json:"enabled"`
	PlaybackPolicy string `json:"playback_policy"`
}

// inputPatchBody is the JSON for PATCH: only the fields present change.
type inputPatchBody struct {
	Name           *string `json:"name"`
	ProfileID      *string `json:"profile_id"`
	Enabled        *bool   `json:"enabled"`
	PlaybackPolicy *string `json:"playback_policy"`
}

func (b inputBody) toInput() (*fsm.Input, error) {
	in := &fsm.Input{
		Name:           strings.TrimSpace(b.Name),
		ProfileID:      b.ProfileID,
		Enabled:        b.Enabled == nil || *b.Enabled,
		PlaybackPolicy: b.PlaybackPolicy,
	}
	if err := checkName("name", in.Name, true); err != nil {
		return nil, err
	}
	if in.PlaybackPolicy == "" {
		in.PlaybackPolicy = fsm.PlaybackPublic
	}
	if err := checkPolicy(in.PlaybackPolicy); err != nil {
		return nil, err
	}
	return in, nil
}

func (b inputPatchBody) toPatch() (*fsm.InputPatch, error) {
	p := &fsm.InputPatch{Name: b.Name, ProfileID: b.ProfileID, Enabled: b.Enabled, PlaybackPolicy: b.PlaybackPolicy}
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if err := checkName("name", n, true); err != nil {
			return nil, err
		}
		p.Name = &n
	}
	if p.PlaybackPolicy != nil {
		if err := checkPolicy(*p.PlaybackPolicy); err != nil {
			return nil, err
		}
	}
	if p.Name == nil && p.ProfileID == nil && p.Enabled == nil && p.PlaybackPolicy == nil {
		return nil, badRequest("", "nothing to change: send at least one of name, profile_id, enabled, playback_policy")
	}
	return p, nil
}
