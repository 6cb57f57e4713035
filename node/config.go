package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/cluster"
	"github.com/dionysia/dionysia/fsm"
)

// Config is everything a node is built from. Zero values mean defaults.
type Config struct {
	Name       string
	DataDir    string
	HTTPAddr   string
	GossipAddr string
	RaftAddr   string
	RTMPAddr   string
	RTSPAddr   string
	// RTSPSAddr is mediamtx's RTSPS listener in TLS mode, where other
	// nodes read this node's ingest.
	RTSPSAddr string
	SRTAddr   string
	// WebRTCAddr is the WHIP (WebRTC publish) HTTP listener and
	// WebRTCUDPAddr the UDP port all WebRTC media (ICE) shares.
	WebRTCAddr    string
	WebRTCUDPAddr string
	AdvertiseHost string
	Join          []string
	APITokens     []string
	// ClusterKey (16, 24 or 32 bytes) encrypts gossip and authenticates
	// cluster-internal calls; without it the secret chosen at bootstrap and
	// replicated through raft authenticates them.
	ClusterKey []byte
	// TLSCert, TLSKey and TLSCA are the operator's PEM files for mutual TLS
	// between nodes (all three or none); without them a cluster key makes
	// the nodes issue their own certificates (package peer, ADR 0009).
	TLSCert, TLSKey, TLSCA string
	MediaMTX               string // mediamtx binary
	// MediaMTXAPIAddr is mediamtx's loopback control API; "" = a free port.
	MediaMTXAPIAddr string
	FFmpeg          string // ffmpeg binary
	HLSJS           string // hls.min.js served to the dashboard
	// NoDemo skips the demo input a brand-new cluster gets.
	NoDemo bool
	// RedirectOrigin answers /live requests for streams other nodes own
	// with a 307 (--origin-mode redirect) instead of fetching them.
	RedirectOrigin bool
	// TranscodeCapacity is what this node offers for transcoding, in fsm
	// cost units (--transcode-capacity); 0 = fsm.CostUnitsPerCore per core.
	TranscodeCapacity int
	// RecordingReserveMB is the free space recordings and DVR windows
	// leave on their file system (--recording-reserve-mb); 0 = 5 % of it,
	// at most 1 GiB.
	RecordingReserveMB int
	// PublishAuthURL, when set, is asked before every publish of an input
	// that has no publish_auth_url of its own (admission); PublishAuthSecret
	// signs those requests (Dionysia-Signature, like webhooks).
	PublishAuthURL    string
	PublishAuthSecret string
	Logger            *slog.Logger
	// Banner, when set, receives a human-readable "where to publish, where
	// to watch" text once the node is ready.
	Banner io.Writer

	// Tuning, mostly for tests.
	Gossip      cluster.GossipTuning
	Raft        cluster.RaftTuning
	ReapTimeout time.Duration
	IngestPoll  time.Duration // how often mediamtx's paths are read; 0 = 100ms
	HLSListSize int           // segments per media playlist; 0 = 6
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("name: no --name given and the hostname is unknown")
		}
		c.Name = h
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.DataDir, "./data")
	// Children (mediamtx, ffmpeg) run in other working directories.
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	c.DataDir = abs
	def(&c.HTTPAddr, ":8080")
	def(&c.GossipAddr, ":7946")
	def(&c.RaftAddr, ":7947")
	def(&c.RTMPAddr, ":1935")
	def(&c.RTSPAddr, ":8554")
	def(&c.RTSPSAddr, ":8322")
	def(&c.SRTAddr, ":8890")
	def(&c.WebRTCAddr, ":8889")
	def(&c.WebRTCUDPAddr, ":8189")
	def(&c.MediaMTX, "mediamtx")
	def(&c.FFmpeg, "ffmpeg")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IngestPoll <= 0 {
		c.IngestPoll = 100 * time.Millisecond
	}
	for name, addr := range map[string]string{
		"http-addr": c.HTTPAddr, "gossip-addr": c.GossipAddr, "raft-addr": c.RaftAddr,
		"rtmp-addr": c.RTMPAddr, "rtsp-addr": c.RTSPAddr, "srt-addr": c.SRTAddr, "rtsps-addr": c.RTSPSAddr,
		"webrtc-addr": c.WebRTCAddr, "webrtc-udp-addr": c.WebRTCUDPAddr,
	} {
		if _, err := portOf(addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if c.AdvertiseHost == "" {
		c.AdvertiseHost = defaultAdvertiseHost(c.HTTPAddr)
	}
	if c.TranscodeCapacity < 0 {
		return fmt.Errorf("transcode-capacity: must be 0 (from the cores) or more, not %d", c.TranscodeCapacity)
	}
	if c.RecordingReserveMB < 0 {
		return fmt.Errorf("recording-reserve-mb: must be 0 (5 %% of the disk, at most 1 GiB) or more, not %d", c.RecordingReserveMB)
	}
	if c.TranscodeCapacity == 0 {
		c.TranscodeCapacity = fsm.CostUnitsPerCore * runtime.NumCPU()
	}
	if c.PublishAuthURL != "" {
		if u, err := url.Parse(c.PublishAuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("publish-auth-url: %q is not an http:// or https:// URL", c.PublishAuthURL)
		}
	}
	if n := len(c.ClusterKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("cluster-key: must decode to 16, 24 or 32 bytes, not %d", n)
	}
	return nil
}

// ParseClusterKey decodes a base64 cluster key as given on the command line.
func ParseClusterKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("cluster-key: not base64: %w", err)
	}
	if n := len(b); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("cluster-key: must decode to 16, 24 or 32 bytes, not %d", n)
	}
	return b, nil
}

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return n, nil
}

// advertise is the address others use to reach a listener bound at addr.
func (c *Config) advertise(addr string) string {
	p, _ := portOf(addr)
	return net.JoinHostPort(c.AdvertiseHost, strconv.Itoa(p))
}

// webrtcHosts are the addresses mediamtx offers WebRTC clients besides its
// interfaces': the advertised host, when it is an IP address that is not
// one of them for sure (behind NAT, in a container). A name is left out:
// mediamtx would fail every session on a name it cannot resolve.
func (c *Config) webrtcHosts() []string {
	ip := net.ParseIP(c.AdvertiseHost)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		return nil
	}
	return []string{ip.String()}
}

// loopback is the address a co-located process uses to reach a listener.
func loopback(addr string) string {
	host, p, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return addr
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", p)
}

// defaultAdvertiseHost follows the bind address: a node bound to loopback
// advertises loopback, otherwise the first non-loopback interface address.
func defaultAdvertiseHost(httpAddr string) string {
	host, _, _ := net.SplitHostPort(httpAddr)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	if host == "localhost" {
		return "127.0.0.1"
	}
	if host != "" && net.ParseIP(host) == nil {
		return host
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
