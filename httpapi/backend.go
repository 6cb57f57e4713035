package httpapi

import (
	"context"
	"net/url"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// Backend is everything the API needs from a node. Package node implements it.
type Backend interface {
	// State is the local replica: reads never leave the node.
	State() *fsm.State
	// Apply proposes a command, through the leader when this node is not it.
	// Errors that mean "retry later" wrap ErrUnavailable.
	Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error)
	// Route tells which node owns (transcodes and serves) an input.
	Route(inputID string) (Route, error)
	Nodes() []NodeInfo
	// Drain asks the named node to hand its streams to others (on) or to
	// take streams again; ErrNotFound when it is not an alive member.
	Drain(ctx context.Context, name string, on bool) error
	Cluster() ClusterInfo
	// InputStatus gathers the live status of an input, from its owner.
	InputStatus(ctx context.Context, inputID string) (*InputStatus, error)
	// Links are the ingest and playback URLs of an input as seen through this node.
	Links(in *fsm.Input) Links
	// Live answers a playback request (/live/{input}/{file}) from whatever
	// node owns the stream: errors are packager.ErrNotFound, a
	// *packager.BadRequestError, or ones wrapping ErrUnavailable.
	Live(ctx context.Context, inputID, file string, q url.Values) (packager.File, error)
	// VOD answers a recording's playback request (/vod/{recording}/{file})
	// from whatever nodes hold its files; errors as for Live.
	VOD(ctx context.Context, recordingID, file string) (packager.File, error)
	// BaseURL is this node's public URL (scheme, host and port).
	BaseURL() string
	// PreviewWHEP hands a WebRTC (WHEP) offer for a live input's source to
	// the mediamtx of the node its publisher is connected to and returns
	// the SDP answer; ErrNotFound when the input has no publisher.
	PreviewWHEP(ctx context.Context, inputID string, offer []byte) ([]byte, error)
	// PlaybackKey signs and checks playback tokens; the same on every node.
	PlaybackKey() []byte
	// Ready is nil once the node can serve: a raft leader is known and the
	// co-located mediamtx answers.
	Ready() error
}

// Route is the answer of the routing API.
type Route struct {
	InputID string `json:"input_id"`
	Owner   string `json:"owner"`
	Origin  string `json:"origin"`
	// Local is true when this node is the owner.
	Local bool `json:"local"`
}

// Links are what an operator pastes into an encoder or a player.
type Links struct {
	Ingest   IngestLinks   `json:"ingest"`
	Playback PlaybackLinks `json:"playback"`
}

type IngestLinks struct {
	RTMP string `json:"rtmp"`
	SRT  string `json:"srt"`
	RTSP string `json:"rtsp"`
	// WHIP is the WebRTC publish endpoint (mediamtx's WebRTC server).
	WHIP string `json:"whip"`
}

type PlaybackLinks struct {
	HLS  string `json:"hls"`
	DASH string `json:"dash"`
	// DVR is the HLS playlist with the DVR window (seek back), when the
	// input has one; DVRDASH the DASH manifest of the same window.
	DVR     string `json:"dvr,omitempty"`
	DVRDASH string `json:"dvr_dash,omitempty"`
}

// NodeInfo is one member as /v1/nodes shows it.
type NodeInfo struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	RaftRole string `json:"raft_role"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	RTMPAddr string `json:"rtmp_addr"`
	RTSPAddr string `json:"rtsp_addr"`
	SRTAddr  string `json:"srt_addr"`
	Load     int    `json:"load"`
	// Capacity and Cost are in fsm cost units: what the node offers for
	// transcoding, and what the streams it owns cost now.
	Capacity   int      `json:"capacity"`
	Cost       int      `json:"cost"`
	Draining   bool     `json:"draining"`
	Local      bool     `json:"local"`
	Owned      []string `json:"owned_streams"`
	LiveOwned  []string `json:"live_streams"`
	IngestLive []string `json:"ingesting"`
}

// ClusterInfo is /v1/cluster.
type ClusterInfo struct {
	Node    string       `json:"node"`
	Leader  string       `json:"leader"`
	Raft    any          `json:"raft"`
	Members []NodeInfo   `json:"members"`
	Servers []RaftServer `json:"raft_servers"`
}

type RaftServer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}

// InputStatus is /v1/inputs/{id}/status.
type InputStatus struct {
	InputID string `json:"input_id"`
	// Live is true only while a publisher is there (State live).
	Live bool `json:"live"`
	// State is StateIdle, StateLive or StateReconnecting; ReconnectDeadline
	// is set while reconnecting.
	State             string            `json:"state"`
	ReconnectDeadline *time.Time        `json:"reconnect_deadline,omitempty"`
	IngestNode        string            `json:"ingest_node,omitempty"`
	OwnerNode         string            `json:"owner_node,omitempty"`
	Protocol          string            `json:"protocol,omitempty"`
	StartedAt         *time.Time        `json:"started_at,omitempty"`
	Transcoder        *TranscoderStatus `json:"transcoder,omitempty"`
	Renditions        []RenditionStatus `json:"renditions,omitempty"`
	// Packaging is how the owner packages the stream.
	Packaging *PackagingStatus `json:"packaging,omitempty"`
	// Cost is what the stream costs its owner (fsm cost units);
	// Passthrough says it is carried untranscoded because no node had
	// room for its ladder (the input's overload policy).
	Cost        int  `json:"cost,omitempty"`
	Passthrough bool `json:"overload_passthrough,omitempty"`
	// Refused is why this node last refused a publish of the input.
	Refused *Refusal `json:"refused,omitempty"`
}

// Refusal is a publish the node refused, and why.
type Refusal struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// PackagingStatus says how viewers get a stream and which renditions of
// the profile run.
type PackagingStatus struct {
	Latency       string `json:"latency"`
	SegmentFormat string `json:"segment_format"`
	// PartMs is the LL-HLS part target, with low latency only.
	PartMs int `json:"part_ms,omitempty"`
	// Source is the publisher's video as probed; zero when unknown.
	SourceWidth  int     `json:"source_width,omitempty"`
	SourceHeight int     `json:"source_height,omitempty"`
	SourceFPS    float64 `json:"source_fps,omitempty"`
	// Skipped are the profile's renditions left out of this stream.
	Skipped []SkippedRendition `json:"skipped_renditions,omitempty"`
}

// SkippedRendition is a rendition left out of the ladder, and why.
type SkippedRendition struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

type TranscoderStatus struct {
	Running     bool    `json:"running"`
	FPS         float64 `json:"fps"`
	Speed       float64 `json:"speed"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	Frames      uint64  `json:"frames"`
	DropFrames  uint64  `json:"drop_frames"`
	Restarts    int     `json:"restarts"`
	// UpdatedAt is when ffmpeg reported these figures (about every half
	// second): frames over the time between two reports is the rate,
	// whatever the status call's own delay.
	UpdatedAt time.Time `json:"updated_at"`
}

type RenditionStatus struct {
	Name          string  `json:"name"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`
	FPS           float64 `json:"fps"`
	BitrateKbps   float64 `json:"bitrate_kbps"`
	Segments      int     `json:"segments"`
	MediaSequence uint64  `json:"media_sequence"`
}
