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

// Latency modes of a profile. Low latency adds LL-HLS parts (and LL-DASH
// chunks) of PartMs to the playlists, which needs CMAF (fMP4) segments.
const (
	LatencyLow      = "low"
	LatencyStandard = "standard"
)

// Profile is a transcoding profile: how one live input becomes a ladder.
//
// Latency, PartMs and SegmentFormat may be zero in profiles stored
// before those fields existed; read them through EffectiveLatency,
// EffectivePartMs and EffectiveSegmentFormat, never directly. New profiles
// get explicit values from Normalize.
type Profile struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	SegmentSeconds int    `json:"segment_seconds"`
	VideoPreset    string `json:"video_preset"`
	SegmentFormat  string `json:"segment_format"`
	Latency        string `json:"latency"`
	// PartMs is the LL-HLS part target (EXT-X-PART-INF PART-TARGET) in
	// milliseconds; only used with low latency.
	PartMs     int         `json:"part_ms"`
	Renditions []Rendition `json:"renditions"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
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

// Reconnect windows of an input, in seconds. The default is what the API
// gives an input created without one: long enough for an encoder's own
// reconnect loop (OBS retries after 2-10 s), short enough that a stream that
// really ended gets its ENDLIST soon.
const (
	DefaultReconnectWindowSeconds = 30
	MaxReconnectWindowSeconds     = 3600
)

// Input is something a streamer publishes to. ID is public (it is in playback
// URLs); StreamKey is the secret that lets a publish through.
type Input struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	ProfileID      string `json:"profile_id"`
	StreamKey      string `json:"stream_key"`
	Enabled        bool   `json:"enabled"`
	PlaybackPolicy string `json:"playback_policy"`
	// ReconnectWindowSeconds is how long a session outlives its publisher
	// (reconnecting) so that a publisher coming back continues the same
	// stream; 0 ends the stream as soon as the publisher goes.
	ReconnectWindowSeconds int `json:"reconnect_window_seconds"`
	// HotStandby asks the ring successor of the owner to transcode too, so
	// that a failover costs only the detection time.
	HotStandby bool `json:"hot_standby"`
	// Overload is what happens to a publish whose ladder fits on no node:
	// OverloadRefuse ("" in inputs stored before the field existed) or
	// OverloadPassthrough.
	Overload string `json:"overload,omitempty"`
	// PublishAuthURL, when set, is asked before a publish of this input is
	// accepted (admission); it overrides the cluster-wide URL.
	PublishAuthURL string `json:"publish_auth_url,omitempty"`
	// Record writes every show to disk and keeps it as a recording (a VOD
	// asset) once it is over.
	Record bool `json:"record"`
	// DVRWindowSeconds is how far back viewers may seek in the live
	// stream (dvr.m3u8); 0 = off. The window is read from disk.
	DVRWindowSeconds int `json:"dvr_window_seconds"`
	// RecordingRetentionDays: a recording is deleted this long after its
	// show ended; 0 = kept until deleted.
	RecordingRetentionDays int       `json:"recording_retention_days"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
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
	// EndedAt is when the publisher went away while the input's reconnect
	// window kept the session: the session is then reconnecting until a new
	// publish replaces it or the leader expires it. Zero while live.
	EndedAt time.Time `json:"ended_at,omitzero"`

	// Owner is the node that transcodes and packages the stream, chosen by
	// load when the session started (Place) and sticky: every node routes
	// to it without asking anyone. Empty for sessions recorded before
	// placement existed; the ring's owner serves those. While the owner is
	// dead or draining, the next serving node after it in the ring's order
	// stands in (its standby), until the leader records a new owner.
	Owner string `json:"owner,omitempty"`
	// Cost is what the stream costs its owner, in cost units (Cost).
	Cost int `json:"cost,omitempty"`
	// Passthrough: no node had room for the input's ladder and its
	// overload policy asked for the source to be carried as is.
	Passthrough bool `json:"passthrough,omitempty"`
	// PlacedAt is when Owner was last chosen.
	PlacedAt time.Time `json:"placed_at,omitzero"`
	// MovedFrom is the owner before the last PlaceSessions: the stream
	// has been produced elsewhere, so its new owner continues that
	// node's copy instead of starting a new one.
	MovedFrom string `json:"moved_from,omitempty"`
}

// Live reports whether the publisher is still there (the session is not
// reconnecting).
func (s *Session) Live() bool { return s.EndedAt.IsZero() }

// ReconnectDeadline is when a reconnecting session expires: EndedAt plus
// the input's current window (a PATCH of the window moves it). in may be
// nil (the input is gone): the deadline is then EndedAt. Zero for a live
// session.
func (s *Session) ReconnectDeadline(in *Input) time.Time {
	if s.Live() {
		return time.Time{}
	}
	if in == nil {
		return s.EndedAt
	}
	return s.EndedAt.Add(time.Duration(in.ReconnectWindowSeconds) * time.Second)
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
