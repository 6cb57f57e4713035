package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dionysia/dionysia/node"
)

// nodeFlags binds every node flag to its DIONYSIA_<FLAG> environment twin:
// the flag wins, then the environment, then the default.
type nodeFlags struct {
	fs *flag.FlagSet
}

func (f nodeFlags) str(p *string, name, def, help string) {
	f.fs.StringVar(p, name, envOr(name, def), help+" (env "+envName(name)+")")
}

func (f nodeFlags) boolean(p *bool, name string, def bool, help string) {
	v := def
	if s, ok := os.LookupEnv(envName(name)); ok {
		v = s == "1" || strings.EqualFold(s, "true") || strings.EqualFold(s, "yes")
	}
	f.fs.BoolVar(p, name, v, help+" (env "+envName(name)+")")
}

// secret is str for a flag whose value must never be printed: -h and every
// flag error print each flag's default, so the environment twin is not made
// the default but read by fromEnv after parsing.
func (f nodeFlags) secret(p *string, name, help string) {
	f.fs.StringVar(p, name, "", help+" (env "+envName(name)+")")
}

// fromEnv gives a secret flag that was not on the command line the value of
// its environment twin.
func (f nodeFlags) fromEnv(p *string, name string) {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	if !set {
		*p = envOr(name, *p)
	}
}

func envName(flagName string) string {
	return "DIONYSIA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func envOr(flagName, def string) string {
	if v, ok := os.LookupEnv(envName(flagName)); ok {
		return v
	}
	return def
}

func runNode(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("dionysia node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := nodeFlags{fs}
	var (
		cfg                                 node.Config
		join, tokens, clusterKey, logFormat string
		logLevel                            string
		noDemo                              bool
		originMode                          string
		capacity                            string
		reserve                             string
	)
	f.str(&cfg.Name, "name", "", "unique node name (default: the hostname)")
	f.str(&cfg.DataDir, "data-dir", "./data", "raft log, snapshots, HLS output, mediamtx config")
	f.str(&cfg.HTTPAddr, "http-addr", ":8080", "API, routing and origin listen address")
	f.str(&cfg.GossipAddr, "gossip-addr", ":7946", "memberlist listen address (TCP and UDP)")
	f.str(&cfg.RaftAddr, "raft-addr", ":7947", "cluster port: raft and the internal HTTP calls between nodes (mutual TLS with --cluster-key or --tls-*)")
	f.str(&cfg.RTMPAddr, "rtmp-addr", ":1935", "RTMP ingest listen address")
	f.str(&cfg.RTSPAddr, "rtsp-addr", ":8554", "RTSP ingest listen address")
	f.str(&cfg.SRTAddr, "srt-addr", ":8890", "SRT ingest listen address")
	f.str(&cfg.RTSPSAddr, "rtsps-addr", ":8322", "RTSPS listener other nodes read this node's ingest from (TLS mode only)")
	f.str(&cfg.WebRTCAddr, "webrtc-addr", ":8889", "WebRTC (WHIP) ingest listen address: HTTP, where publishers POST their SDP offer")
	f.str(&cfg.WebRTCUDPAddr, "webrtc-udp-addr", ":8189", "WebRTC media (ICE) listen address: one UDP port shared by every WebRTC publisher")
	f.str(&cfg.AdvertiseHost, "advertise-host", "", "host other nodes and clients use to reach this node (default: first non-loopback address, or loopback when bound there)")
	f.str(&join, "join", "", "comma-separated gossip addresses of existing members; empty = bootstrap a new cluster")
	f.secret(&tokens, "api-token", "comma-separated bearer tokens required on /v1 (empty = open API)")
	f.secret(&clusterKey, "cluster-key", "base64 key (16/24/32 bytes): encrypts gossip, and without --tls-* files the nodes make their TLS certificates from it (raft, internal calls, media reads)")
	f.str(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) this node shows other nodes; with --tls-key and --tls-ca it replaces the certificates made from --cluster-key")
	f.str(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.str(&cfg.TLSCA, "tls-ca", "", "PEM CA bundle other nodes' certificates must chain to")
	f.str(&cfg.MediaMTX, "mediamtx", "bin/mediamtx", "mediamtx binary")
	f.str(&cfg.FFmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary")
	f.str(&cfg.HLSJS, "hlsjs", "bin/hls.min.js", "hls.min.js the dashboard's preview player loads (make deps fetches it)")
	f.str(&logFormat, "log-format", "text", "log format: text or json")
	f.str(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.boolean(&noDemo, "no-demo", false, "do not create the demo input in a new cluster")
	f.str(&cfg.PublishAuthURL, "publish-auth-url", "", "http(s) URL asked before every publish is accepted (admission; an input's publish_auth_url overrides it); non-2xx or no answer within 2 s refuses the publish")
	f.secret(&cfg.PublishAuthSecret, "publish-auth-secret", "secret that signs admission requests (Dionysia-Signature, like webhooks); the same on every node")
	f.str(&originMode, "origin-mode", "proxy", "how a node answers /live for a stream another node owns: proxy (fetch it from the owner; works behind any CDN) or redirect (307 to the owner; only for CDNs that follow redirects)")
	f.str(&capacity, "transcode-capacity", "0", "what this node may transcode, in cost units (100 per core is the default; the default 720p ladder costs 48, a passthrough stream 1; see README)")
	f.str(&reserve, "recording-reserve-mb", "0", "free space (MB) recordings and DVR windows leave on their file system, for raft and the node; 0 = 5% of it, at most 1024")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dionysia node: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	f.fromEnv(&tokens, "api-token")
	f.fromEnv(&clusterKey, "cluster-key")
	f.fromEnv(&cfg.PublishAuthSecret, "publish-auth-secret")
	logger, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "dionysia node: %v\n", err)
		return 2
	}
	cfg.Logger = logger
	cfg.NoDemo = noDemo
	if cfg.TranscodeCapacity, err = strconv.Atoi(strings.TrimSpace(capacity)); err != nil || cfg.TranscodeCapacity < 0 {
		fmt.Fprintf(stderr, "dionysia node: --transcode-capacity must be a whole number of cost units (0 = from the cores), not %q\n", capacity)
		return 2
	}
	if cfg.RecordingReserveMB, err = strconv.Atoi(strings.TrimSpace(reserve)); err != nil || cfg.RecordingReserveMB < 0 {
		fmt.Fprintf(stderr, "dionysia node: --recording-reserve-mb must be a whole number of megabytes (0 = 5%% of the disk, at most 1024), not %q\n", reserve)
		return 2
	}
	switch originMode {
	case "proxy":
	case "redirect":
		cfg.RedirectOrigin = true
	default:
		fmt.Fprintf(stderr, "dionysia node: --origin-mode must be proxy or redirect, not %q\n", originMode)
		return 2
	}
	cfg.Join = splitList(join)
	cfg.APITokens = splitList(tokens)
	if cfg.ClusterKey, err = node.ParseClusterKey(clusterKey); err != nil {
		fmt.Fprintf(stderr, "dionysia node: %v\n", err)
		return 2
	}
	if cfg.MediaMTX, err = findBinary(cfg.MediaMTX); err != nil {
		fmt.Fprintf(stderr, "dionysia node: mediamtx: %v (run `make deps`, or pass --mediamtx)\n", err)
		return 1
	}
	if cfg.FFmpeg, err = findBinary(cfg.FFmpeg); err != nil {
		fmt.Fprintf(stderr, "dionysia node: ffmpeg: %v (run `make deps`, or pass --ffmpeg)\n", err)
		return 1
	}
	// Resolved like the binaries, but a missing player only costs the
	// dashboard its preview: warn and go on.
	if abs, err := filepath.Abs(cfg.HLSJS); err == nil {
		cfg.HLSJS = abs
	}
	if _, err := os.Stat(cfg.HLSJS); err != nil {
		logger.Warn("hls.min.js not found: the dashboard's preview player will not load (run `make deps`, or pass --hlsjs)", "path", cfg.HLSJS)
	}
	cfg.Banner = stderr

	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "dionysia node: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		logger.Error("cannot start node", "err", err)
		return 1
	}
	<-ctx.Done()
	stop()
	logger.Info("shutting down (Ctrl-C again to force)")
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(cctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// findBinary resolves a binary to an absolute path: children run in their
// own working directories, where a relative path would mean something else.
func findBinary(p string) (string, error) {
	if !strings.Contains(p, "/") {
		return exec.LookPath(p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%s not found", abs)
	}
	return abs, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log-format: %q is not text or json", format)
	}
}
