package httpapi

import (
	"context"
	"time"

	"github.com/dionysia/dionysia/fsm"
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
	Cluster() ClusterInfo
	// InputStatus gathers the live status of an input, from its owner.
	InputStatus(ctx context.Context, inputID string) (*InputStatus, error)
	// Links are the ingest and playback URLs of an input as seen through this node.
	Links(in *fsm.Input) Links
	// OutputDir is where this node writes the HLS output of an input.
	OutputDir(inputID string) string
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
}

type PlaybackLinks struct {
	HLS string `json:"hls"`
}

// NodeInfo is one member as /v1/nodes shows it.
type NodeInfo struct {
	Name       string   `json:"name"`
	State      string   `json:"state"`
	RaftRole   string   `json:"raft_role"`
	HTTPAddr   string   `json:"http_addr"`
	RaftAddr   string   `json:"raft_addr"`
	RTMPAddr   string   `json:"rtmp_addr"`
	RTSPAddr   string   `json:"rtsp_addr"`
	SRTAddr    string   `json:"srt_addr"`
	Load       int      `json:"load"`
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
	InputID    string            `json:"input_id"`
	Live       bool              `json:"live"`
	IngestNode string            `json:"ingest_node,omitempty"`
	OwnerNode  string            `json:"owner_node,omitempty"`
	Protocol   string            `json:"protocol,omitempty"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	Transcoder *TranscoderStatus `json:"transcoder,omitempty"`
	Renditions []RenditionStatus `json:"renditions,omitempty"`
}

type TranscoderStatus struct {
	Running     bool    `json:"running"`
	FPS         float64 `json:"fps"`
	Speed       float64 `json:"speed"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	Frames      uint64  `json:"frames"`
	DropFrames  uint64  `json:"drop_frames"`
	Restarts    int     `json:"restarts"`
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
