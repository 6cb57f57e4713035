package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/dionysia/dionysia/fsm"
)

// Ids chosen by users (profiles may be given one) become URL path elements,
// hence the tight alphabet.
var userID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// profileBody is the JSON a client sends for a profile.
type profileBody struct {
	ID             string        `json:"id"`
	Name           string        `json:"name"`
	SegmentSeconds int           `json:"segment_seconds"`
	VideoPreset    string        `json:"video_preset"`
	SegmentFormat  string        `json:"segment_format"`
	Latency        string        `json:"latency"`
	PartMs         int           `json:"part_ms"`
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

// toProfile fills the defaults and validates the body (fsm.Profile's own
// rules, the same the transcoder relies on) and returns the profile it
// describes (without id or timestamps).
func (b profileBody) toProfile() (*fsm.Profile, error) {
	p := &fsm.Profile{
		Name:           b.Name,
		SegmentSeconds: b.SegmentSeconds,
		VideoPreset:    b.VideoPreset,
		SegmentFormat:  b.SegmentFormat,
		Latency:        b.Latency,
		PartMs:         b.PartMs,
	}
	for _, r := range b.Renditions {
		p.Renditions = append(p.Renditions, fsm.Rendition(r))
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func checkPolicy(v string) error {
	if v != fsm.PlaybackPublic && v != fsm.PlaybackSigned {
		return badRequest("playback_policy", `playback_policy must be "public" or "signed"`)
	}
	return nil
}

func checkOverload(v string) error {
	if v != fsm.OverloadRefuse && v != fsm.OverloadPassthrough {
		return badRequest("overload", `overload must be "refuse" (a publish that fits on no node is refused) or "passthrough" (it is carried as the source, untranscoded)`)
	}
	return nil
}

// checkRecording checks an input's DVR window and recording retention
// (nil: not given).
func checkRecording(dvr, retentionDays *int) error {
	if dvr != nil && *dvr != 0 && (*dvr < fsm.MinDVRWindowSeconds || *dvr > fsm.MaxDVRWindowSeconds) {
		return badRequest("dvr_window_seconds", fmt.Sprintf("dvr_window_seconds must be 0 (off) or between %d and %d (4 h)",
			fsm.MinDVRWindowSeconds, fsm.MaxDVRWindowSeconds))
	}
	if retentionDays != nil && (*retentionDays < 0 || *retentionDays > fsm.MaxRecordingRetentionDays) {
		return badRequest("recording_retention_days", fmt.Sprintf("recording_retention_days must be between 0 (keep until deleted) and %d",
			fsm.MaxRecordingRetentionDays))
	}
	return nil
}

func checkReconnectWindow(v int) error {
	if v < 0 || v > fsm.MaxReconnectWindowSeconds {
		return badRequest("reconnect_window_seconds", fmt.Sprintf("reconnect_window_seconds must be between 0 (off) and %d", fsm.MaxReconnectWindowSeconds))
	}
	return nil
}

// inputBody is the JSON for creating an input.
type inputBody struct {
	Name           string `json:"name"`
	ProfileID      string `json:"profile_id"`
	Enabled        *bool  `json:"enabled"`
	PlaybackPolicy string `json:"playback_policy"`
	// ReconnectWindowSeconds is a pointer because 0 (off) is a choice, while
	// absent means the default.
	ReconnectWindowSeconds *int `json:"reconnect_window_seconds"`
	HotStandby             bool `json:"hot_standby"`
	// Overload: what a publish gets when its ladder fits on no node.
	Overload string `json:"overload"`
	// PublishAuthURL is asked before a publish is accepted; "" = the
	// cluster-wide one, if any.
	PublishAuthURL string `json:"publish_auth_url"`
	// Recording and DVR (recordings.go).
	Record                 bool `json:"record"`
	DVRWindowSeconds       int  `json:"dvr_window_seconds"`
	RecordingRetentionDays int  `json:"recording_retention_days"`
}

// inputPatchBody is the JSON for PATCH: only the fields present change.
type inputPatchBody struct {
	Name                   *string `json:"name"`
	ProfileID              *string `json:"profile_id"`
	Enabled                *bool   `json:"enabled"`
	PlaybackPolicy         *string `json:"playback_policy"`
	ReconnectWindowSeconds *int    `json:"reconnect_window_seconds"`
	HotStandby             *bool   `json:"hot_standby"`
	Overload               *string `json:"overload"`
	PublishAuthURL         *string `json:"publish_auth_url"`
	Record                 *bool   `json:"record"`
	DVRWindowSeconds       *int    `json:"dvr_window_seconds"`
	RecordingRetentionDays *int    `json:"recording_retention_days"`
}

func (b inputBody) toInput() (*fsm.Input, error) {
	in := &fsm.Input{
		Name:                   strings.TrimSpace(b.Name),
		ProfileID:              b.ProfileID,
		Enabled:                b.Enabled == nil || *b.Enabled,
		PlaybackPolicy:         b.PlaybackPolicy,
		ReconnectWindowSeconds: fsm.DefaultReconnectWindowSeconds,
		HotStandby:             b.HotStandby,
		Overload:               b.Overload,
		PublishAuthURL:         strings.TrimSpace(b.PublishAuthURL),
		Record:                 b.Record,
		DVRWindowSeconds:       b.DVRWindowSeconds,
		RecordingRetentionDays: b.RecordingRetentionDays,
	}
	if err := checkRecording(&in.DVRWindowSeconds, &in.RecordingRetentionDays); err != nil {
		return nil, err
	}
	if in.Overload == "" {
		in.Overload = fsm.OverloadRefuse
	}
	if err := checkOverload(in.Overload); err != nil {
		return nil, err
	}
	if err := fsm.CheckName("name", in.Name); err != nil {
		return nil, err
	}
	if in.PlaybackPolicy == "" {
		in.PlaybackPolicy = fsm.PlaybackPublic
	}
	if err := checkPolicy(in.PlaybackPolicy); err != nil {
		return nil, err
	}
	if b.ReconnectWindowSeconds != nil {
		in.ReconnectWindowSeconds = *b.ReconnectWindowSeconds
	}
	if err := checkReconnectWindow(in.ReconnectWindowSeconds); err != nil {
		return nil, err
	}
	if in.PublishAuthURL != "" {
		if err := CheckHookURL("publish_auth_url", in.PublishAuthURL); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func (b inputPatchBody) toPatch() (*fsm.InputPatch, error) {
	p := &fsm.InputPatch{Name: b.Name, ProfileID: b.ProfileID, Enabled: b.Enabled, PlaybackPolicy: b.PlaybackPolicy,
		ReconnectWindowSeconds: b.ReconnectWindowSeconds, HotStandby: b.HotStandby, Overload: b.Overload,
		PublishAuthURL: b.PublishAuthURL, Record: b.Record, DVRWindowSeconds: b.DVRWindowSeconds,
		RecordingRetentionDays: b.RecordingRetentionDays}
	if err := checkRecording(p.DVRWindowSeconds, p.RecordingRetentionDays); err != nil {
		return nil, err
	}
	if p.Overload != nil {
		if err := checkOverload(*p.Overload); err != nil {
			return nil, err
		}
	}
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if err := fsm.CheckName("name", n); err != nil {
			return nil, err
		}
		p.Name = &n
	}
	if p.PlaybackPolicy != nil {
		if err := checkPolicy(*p.PlaybackPolicy); err != nil {
			return nil, err
		}
	}
	if p.ReconnectWindowSeconds != nil {
		if err := checkReconnectWindow(*p.ReconnectWindowSeconds); err != nil {
			return nil, err
		}
	}
	if p.PublishAuthURL != nil {
		// "" removes the input's own URL (the cluster-wide one applies).
		u := strings.TrimSpace(*p.PublishAuthURL)
		if u != "" {
			if err := CheckHookURL("publish_auth_url", u); err != nil {
				return nil, err
			}
		}
		p.PublishAuthURL = &u
	}
	if *p == (fsm.InputPatch{}) {
		return nil, badRequest("", "nothing to change: send at least one of name, profile_id, enabled, playback_policy, reconnect_window_seconds, hot_standby, overload, publish_auth_url, record, dvr_window_seconds, recording_retention_days")
	}
	return p, nil
}
