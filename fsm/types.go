package fsm

import (
	"slices"
	"time"
)

// Rendition is one rung of an adaptive-bitrate ladder.
type Rendition struct {
	Name             string `json:"name"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	VideoBitrateKbps int    `json:"video_bitrate_kbps"`
	AudioBitrateKbps int    `json:"audio_bitrate_kbps"`
	// FPS caps the frame rate; 0 keeps the source rate.
	FPS int `json:"fps"`
	// Passthrough copies the source video (and audio) without re-encoding;
	// Width, Height and bitrates are then only advertised, not enforced.
	Passthrough bool `json:"passthrough"`
}

// Segment formats a profile can ask for.
const (
	SegmentTS   = "ts"
	SegmentFMP4 = "fmp4"
)

// Profile is a transcoding profile: how one live input becomes a ladder.
type Profile struct {
	ID             string      `json:"id"`
	Name           string      `json:"name"`
	SegmentSeconds int         `json:"segment_seconds"`
	VideoPreset    string      `json:"video_preset"`
	SegmentFormat  string      `json:"segment_format"`
	Renditions     []Rendition `json:"renditions"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
}

// Clone returns a deep copy, so callers can never mutate the state through it.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Renditions = slices.Clone(p.Renditions)
	return &c
}

// Playback policies of an input.
const (
	PlaybackPublic = "public"
	PlaybackSigned = "signed"
)

// Input is something a streamer publishes to. ID is public (it is in playback
// URLs); StreamKey is the secret that lets a publish through.
type Input struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	ProfileID      string    `json:"profile_id"`
	StreamKey      string    `json:"stream_key"`
	Enabled        bool      `json:"enabled"`
	PlaybackPolicy string    `json:"playback_policy"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Clone returns a copy of the input.
func (in *Input) Clone() *Input {
	if in == nil {
		return nil
	}
	c := *in
	return &c
}

// Session is a live publish of one input, recorded by the node that ingests it.
type Session struct {
	InputID string `json:"input_id"`
	// ID tells two publishes of the same input apart (mediamtx's path source id
	// or a random id), so that the end of an old publish cannot end a new one.
	ID         string `json:"id"`
	IngestNode string `json:"ingest_node"`
	// Path is the mediamtx path the publisher used (live/<key at publish time>);
	// readers pull this path from the ingest node even after a key rotation.
	Path      string    `json:"path"`
	Protocol  string    `json:"protocol"`
	Tracks    []string  `json:"tracks,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Clone returns a deep copy of the session.
func (s *Session) Clone() *Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Tracks = slices.Clone(s.Tracks)
	return &c
}
