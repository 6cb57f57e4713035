package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/dionysia/dionysia/peer"
)

// Defaults for zero Config fields. See doc.go for why these numbers.
const (
	DefaultMaxVoters         = 5
	DefaultReapTimeout       = 30 * time.Second
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultSnapshotThreshold = 1024

	defaultProbeInterval  = 500 * time.Millisecond
	defaultProbeTimeout   = 300 * time.Millisecond
	defaultGossipInterval = 100 * time.Millisecond
	defaultSuspicionMult  = 3

	defaultHeartbeatTimeout   = 1000 * time.Millisecond
	defaultElectionTimeout    = 1000 * time.Millisecond
	defaultLeaderLeaseTimeout = 500 * time.Millisecond
	defaultCommitTimeout      = 50 * time.Millisecond

	// retainSnapshots is how many raft snapshots stay on disk.
	retainSnapshots = 2
)

// Meta is what a node tells the others about itself. It is gossiped as
// memberlist node metadata (JSON), which must fit memberlist.MetaMaxSize.
type Meta struct {
	HTTPAddr string `json:"h,omitempty"` // advertised host:port of the HTTP API and origin
	RaftAddr string `json:"r,omitempty"` // advertised host:port of raft (set by Start)
	RTSPAddr string `json:"rtsp,omitempty"`
	// RTSPSAddr is mediamtx's RTSPS listener, where other nodes read this
	// node's ingest in TLS mode; "" in plain mode.
	RTSPSAddr string `json:"rtsps,omitempty"`
	RTMPAddr  string `json:"rtmp,omitempty"`
	SRTAddr   string `json:"srt,omitempty"`
	Load      int    `json:"l,omitempty"` // streams the node transcodes (SetLoad)
	// Capacity is what the node can transcode, in fsm cost units (from its
	// cores, or --transcode-capacity); Cost what the streams it owns cost
	// now (SetCost). Placement reads Capacity; Cost is for operators.
	Capacity int `json:"cap,omitempty"`
	Cost     int `json:"c,omitempty"`
	// Draining nodes own nothing on the ring: their streams move to other
	// nodes (make-before-break) and new ones start elsewhere.
	Draining bool `json:"dr,omitempty"`
}

// wireMeta is Meta as gossiped, plus the leaving flag a node sets just before
// it leaves: memberlist does not tell its event delegate whether a node left
// or died, so receivers use the flag to tell a graceful leave from a death.
type wireMeta struct {
	Meta
	Leaving bool `json:"bye,omitempty"`
}

func (m wireMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	return b, nil
}

func decodeMeta(b []byte) (wireMeta, error) {
	var m wireMeta
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return wireMeta{}, fmt.Errorf("decode meta: %w", err)
	}
	return m, nil
}

// GossipTuning overrides memberlist's failure detector. Zero fields take the
// LAN defaults documented in doc.go.
type GossipTuning struct {
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	GossipInterval time.Duration
	SuspicionMult  int
}

// RaftTuning overrides raft's timeouts. Zero fields take the defaults
// documented in doc.go.
type RaftTuning struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
}

// Config configures one node of the cluster. Zero values mean defaults.
type Config struct {
	// Name is the unique node name: raft server ID and memberlist name.
	Name string
	// DataDir holds raft state in DataDir/raft.
	DataDir string
	// GossipAddr is the host:port memberlist binds (TCP and UDP). Port 0
	// picks a free port.
	GossipAddr string
	// RaftAddr is the host:port the raft transport binds. Port 0 picks a free
	// port.
	RaftAddr string
	// AdvertiseHost is the host others use to reach this node; the advertised
	// gossip and raft addresses are AdvertiseHost with the bound ports. Empty
	// means the host of GossipAddr, which must then be a specific address.
	AdvertiseHost string
	// Join lists gossip addresses of existing members. Empty starts a new
	// cluster (bootstrapped when there is no raft state yet).
	Join []string
	// Meta is gossiped to the other members. Meta.RaftAddr is overwritten
	// with the advertised raft address.
	Meta Meta
	// FSM is the replicated state machine.
	FSM raft.FSM
	// ClusterKey, when set, encrypts and authenticates gossip (16, 24 or 32
	// bytes): a node with another key cannot join.
	ClusterKey []byte
	// Peer authenticates the other nodes on the cluster port (raft and
	// internal HTTP share it) and is the client of forwarded writes. nil:
	// plain mode without a secret, so forwarding is refused.
	Peer *peer.Peer
	// Internal serves the internal HTTP endpoints on the cluster port
	// besides ApplyPath, which the cluster mounts itself; requests reach it
	// only once Peer authenticated them.
	Internal http.Handler

	// wrapApply, for tests, wraps the handler of forwarded writes on the
	// cluster port (to make the network misbehave).
	wrapApply func(http.Handler) http.Handler
	// MaxVoters caps raft voters (0 = 5); further members are non-voters.
	MaxVoters int
	// ReapTimeout is how long a dead member stays in the raft configuration
	// (0 = 30s).
	ReapTimeout time.Duration
	Gossip      GossipTuning
	Raft        RaftTuning
	// SnapshotInterval and SnapshotThreshold control raft snapshots
	// (0 = 30s and 1024 entries).
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// Logger receives the package's logs and the bridged hashicorp logs
	// (nil = slog.Default()).
	Logger *slog.Logger
}

// withDefaults validates cfg and returns a copy with every default filled in.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if cfg.FSM == nil {
		errs = append(errs, errors.New("fsm is required"))
	}
	gossipHost, _, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("gossip addr: %w", err))
	}
	if _, _, err := splitHostPort(cfg.RaftAddr); err != nil {
		errs = append(errs, fmt.Errorf("raft addr: %w", err))
	}
	if cfg.AdvertiseHost == "" {
		if ip := net.ParseIP(gossipHost); ip == nil || ip.IsUnspecified() {
			errs = append(errs, errors.New("advertise host is required when gossip binds all interfaces"))
		} else {
			cfg.AdvertiseHost = gossipHost
		}
	}
	switch len(cfg.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("cluster key must be 16, 24 or 32 bytes, not %d", len(cfg.ClusterKey)))
	}
	if cfg.MaxVoters < 0 {
		errs = append(errs, errors.New("max voters must not be negative"))
	}
	// Leave room for the largest Load and the raft address Start fills in.
	probe := wireMeta{Meta: cfg.Meta, Leaving: true}
	probe.Load = 1 << 62
	probe.Capacity, probe.Cost = 1<<62, 1<<62
	probe.RaftAddr = net.JoinHostPort(cfg.AdvertiseHost, "65535")
	if b, err := probe.encode(); err != nil {
		errs = append(errs, err)
	} else if len(b) > memberlist.MetaMaxSize {
		errs = append(errs, fmt.Errorf("meta is %d bytes encoded, more than %d", len(b), memberlist.MetaMaxSize))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("cluster config: %w", err)
	}

	if cfg.Peer == nil {
		p, err := peer.New(peer.Config{})
		if err != nil {
			return Config{}, fmt.Errorf("cluster config: %w", err)
		}
		cfg.Peer = p
	}
	if cfg.MaxVoters == 0 {
		cfg.MaxVoters = DefaultMaxVoters
	}
	if cfg.ReapTimeout <= 0 {
		cfg.ReapTimeout = DefaultReapTimeout
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	g := &cfg.Gossip
	g.ProbeInterval = orDuration(g.ProbeInterval, defaultProbeInterval)
	g.ProbeTimeout = orDuration(g.ProbeTimeout, defaultProbeTimeout)
	g.GossipInterval = orDuration(g.GossipInterval, defaultGossipInterval)
	if g.SuspicionMult <= 0 {
		g.SuspicionMult = defaultSuspicionMult
	}
	r := &cfg.Raft
	r.HeartbeatTimeout = orDuration(r.HeartbeatTimeout, defaultHeartbeatTimeout)
	r.ElectionTimeout = orDuration(r.ElectionTimeout, defaultElectionTimeout)
	r.LeaderLeaseTimeout = orDuration(r.LeaderLeaseTimeout, defaultLeaderLeaseTimeout)
	r.CommitTimeout = orDuration(r.CommitTimeout, defaultCommitTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	cfg.ClusterKey = append([]byte(nil), cfg.ClusterKey...)
	return cfg, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// splitHostPort parses a bind address; the port must be a number (0 = any).
func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, port, nil
}
