package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MediaMTXConfig configures the co-located mediamtx.
type MediaMTXConfig struct {
	Binary   string // path to the mediamtx binary
	Dir      string // directory for mediamtx.yml (created if missing)
	RTMPAddr string // e.g. ":1935"
	RTSPAddr string // e.g. ":8554"
	SRTAddr  string // e.g. ":8890"
	// RTSPSAddr, with TLSCert and TLSKey (PEM), adds an RTSPS listener:
	// the one other nodes read this node's streams from in TLS mode.
	RTSPSAddr       string
	TLSCert, TLSKey []byte
	// WebRTCAddr is the WHIP listener (HTTP), e.g. ":8889"; "" = no WebRTC.
	// WebRTCUDPAddr is the one UDP port of every WebRTC session's media
	// (ICE), e.g. ":8189"; required with WebRTCAddr.
	WebRTCAddr, WebRTCUDPAddr string
	// WebRTCHosts are addresses offered to WebRTC clients besides the
	// interfaces' own (IP addresses: mediamtx fails a session on a name
	// it cannot resolve).
	WebRTCHosts []string
	// APIAddr is the control API, on loopback only (it is not
	// authenticated); "" = pick a free 127.0.0.1 port.
	APIAddr string
	// Authorize decides every publish and read; a nil error allows it. It is
	// required. mediamtx calls it through a private HTTP listener on an
	// ephemeral 127.0.0.1 port, open while Run runs.
	Authorize func(ctx context.Context, req AuthRequest) error
	Logger    *slog.Logger
}

// mediamtxStopTimeout is how long mediamtx gets after SIGTERM to close its
// connections before it is killed.
const mediamtxStopTimeout = 5 * time.Second

// MediaMTX supervises one mediamtx child process.
type MediaMTX struct {
	cfg MediaMTXConfig
	// apiAddr changes when a picked port turns out to be taken (see
	// runOnce); read it with api().
	apiMu   sync.Mutex
	apiAddr string
	log     *slog.Logger
	client  *http.Client
	apiPass string // password of apiUser on the control API

	started  atomic.Bool
	restarts atomic.Int64
	// lastLines explain an exit in the restart warning.
	lastLines tailLines
	mu        sync.Mutex
	child     *exec.Cmd // the running child, nil between runs
}

// NewMediaMTX validates cfg and picks the API port. It starts nothing: the
// auth listener and the child start in Run.
func NewMediaMTX(cfg MediaMTXConfig) (*MediaMTX, error) {
	switch {
	case cfg.Binary == "":
		return nil, errors.New("new mediamtx: no binary")
	case cfg.Dir == "":
		return nil, errors.New("new mediamtx: no config dir")
	case cfg.RTMPAddr == "" || cfg.RTSPAddr == "" || cfg.SRTAddr == "":
		return nil, errors.New("new mediamtx: RTMP, RTSP and SRT addresses are required")
	case cfg.RTSPSAddr != "" && (len(cfg.TLSCert) == 0 || len(cfg.TLSKey) == 0):
		return nil, errors.New("new mediamtx: an RTSPS address needs a certificate and a key")
	case cfg.Authorize == nil:
		// Without it mediamtx would have to let everybody publish.
		return nil, errors.New("new mediamtx: Authorize is required")
	}
	// The child runs in Dir: a relative config path would then point
	// somewhere else.
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("new mediamtx: config dir: %w", err)
	}
	cfg.Dir = dir
	addrs := []string{cfg.RTMPAddr, cfg.RTSPAddr, cfg.SRTAddr}
	if cfg.WebRTCAddr != "" {
		if cfg.WebRTCUDPAddr == "" {
			return nil, errors.New("new mediamtx: WebRTC needs a UDP address for ICE")
		}
		addrs = append(addrs, cfg.WebRTCAddr, cfg.WebRTCUDPAddr)
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("new mediamtx: ingest address %q: %w", a, err)
		}
	}
	for _, h := range cfg.WebRTCHosts {
		if net.ParseIP(h) == nil {
			return nil, fmt.Errorf("new mediamtx: WebRTC host %q is not an IP address", h)
		}
	}
	apiAddr := cfg.APIAddr
	if apiAddr == "" {
		a, err := freeLoopbackPort()
		if err != nil {
			return nil, fmt.Errorf("new mediamtx: pick API port: %w", err)
		}
		apiAddr = a
	} else if err := checkLoopback(apiAddr); err != nil {
		return nil, fmt.Errorf("new mediamtx: API address: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &MediaMTX{
		cfg:       cfg,
		apiAddr:   apiAddr,
		log:       log.With("component", "mediamtx"),
		client:    &http.Client{Timeout: 5 * time.Second},
		apiPass:   randomPassword(),
		lastLines: tailLines{n: 8},
	}, nil
}

// APIAddr is the host:port of mediamtx's control API.
func (m *MediaMTX) APIAddr() string { return m.api() }

func (m *MediaMTX) api() string {
	m.apiMu.Lock()
	defer m.apiMu.Unlock()
	return m.apiAddr
}

// Restarts counts how many times mediamtx was started again after exiting.
func (m *MediaMTX) Restarts() int { return int(m.restarts.Load()) }

// Run opens the auth listener, writes the config, then starts mediamtx and
// restarts it with backoff whenever it exits, until ctx ends. Then it sends
// SIGTERM, kills the child if it is still there 5s later, closes the auth
// listener and returns nil. It returns an error only if it cannot start at
// all. A MediaMTX runs once.
func (m *MediaMTX) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("mediamtx: Run called twice")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("mediamtx: open auth listener: %w", err)
	}
	srv := &http.Server{
		Handler:           &authHandler{authorize: m.cfg.Authorize, log: m.log, apiPass: m.apiPass},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("mediamtx auth listener failed", "err", err)
		}
	}()
	defer func() {
		// The child is gone by now; nobody needs the hook any more.
		srv.Close()
		<-served
	}()

	authURL := "http://" + ln.Addr().String() + authPath
	path, err := m.writeConfig(authURL)
	if err != nil {
		return fmt.Errorf("mediamtx: %w", err)
	}
	m.log.Info("mediamtx starting", "config", path, "api", m.api(),
		"rtmp", m.cfg.RTMPAddr, "rtsp", m.cfg.RTSPAddr, "srt", m.cfg.SRTAddr,
		"webrtc", m.cfg.WebRTCAddr, "webrtc_udp", m.cfg.WebRTCUDPAddr)
	quickExits := 0
	sup := supervisor{
		runOnce: func(ctx context.Context) error {
			start := time.Now()
			err := m.runOnce(ctx, path)
			// A picked API port can be taken by someone else between the
			// pick and mediamtx's bind; mediamtx then exits at once. Pick
			// another one rather than retrying the same port forever.
			if quickExits++; time.Since(start) > 5*time.Second {
				quickExits = 0
			}
			if err != nil && ctx.Err() == nil && m.cfg.APIAddr == "" && quickExits >= 2 {
				if a, perr := freeLoopbackPort(); perr == nil {
					m.apiMu.Lock()
					m.apiAddr = a
					m.apiMu.Unlock()
					if _, werr := m.writeConfig(authURL); werr != nil {
						m.log.Warn("rewrite mediamtx config", "err", werr)
					}
					m.log.Info("mediamtx API moved to another port", "api", a)
				}
			}
			return err
		},
		onRestart: func() { m.restarts.Add(1) },
		onExit: func(err error, ran, delay time.Duration) {
			m.log.Warn("mediamtx exited, restarting", "err", exitError(err),
				"ran", ran.Round(time.Millisecond), "restart_in", delay,
				"output", strings.Join(m.lastLines.take(), "\n"))
		},
	}
	sup.run(ctx)
	m.log.Info("mediamtx stopped", "restarts", m.Restarts())
	return nil
}

// writeConfig (re)writes mediamtx.yml with the current API address.
func (m *MediaMTX) writeConfig(authURL string) (string, error) {
	s := mediamtxSettings{
		RTMPAddr:      m.cfg.RTMPAddr,
		RTSPAddr:      m.cfg.RTSPAddr,
		SRTAddr:       m.cfg.SRTAddr,
		APIAddr:       m.api(),
		AuthURL:       authURL,
		WebRTCAddr:    m.cfg.WebRTCAddr,
		WebRTCUDPAddr: m.cfg.WebRTCUDPAddr,
		WebRTCHosts:   m.cfg.WebRTCHosts,
	}
	if m.cfg.RTSPSAddr != "" {
		if err := os.MkdirAll(m.cfg.Dir, 0o700); err != nil {
			return "", fmt.Errorf("write rtsps certificate: %w", err)
		}
		var err error
		if s.CertFile, err = writePrivate(m.cfg.Dir, serverCertName, m.cfg.TLSCert); err != nil {
			return "", fmt.Errorf("write rtsps certificate: %w", err)
		}
		if s.KeyFile, err = writePrivate(m.cfg.Dir, serverKeyName, m.cfg.TLSKey); err != nil {
			return "", fmt.Errorf("write rtsps key: %w", err)
		}
		s.RTSPSAddr = m.cfg.RTSPSAddr
	}
	return writeMediaMTXConfig(m.cfg.Dir, s)
}

// runOnce runs one mediamtx to completion.
func (m *MediaMTX) runOnce(ctx context.Context, configPath string) error {
	cmd := childCmd(ctx, syscall.SIGTERM, mediamtxStopTimeout, m.cfg.Binary, configPath)
	cmd.Dir = m.cfg.Dir
	out := newLineWriter(m.logLine)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.cfg.Binary, err)
	}
	m.mu.Lock()
	m.child = cmd
	m.mu.Unlock()
	err := cmd.Wait()
	out.Flush()
	m.mu.Lock()
	m.child = nil
	m.mu.Unlock()
	return err
}

// pid is the running child's process id, 0 if none; for tests.
func (m *MediaMTX) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.child == nil || m.child.Process == nil {
		return 0
	}
	return m.child.Process.Pid
}

// logLine forwards one mediamtx log line ("2025/01/02 15:04:05 INF [RTMP]
// ...") at debug, or at warn when mediamtx itself says WAR or ERR, so that a
// node at info level shows mediamtx's problems and nothing else.
func (m *MediaMTX) logLine(line string) {
	m.lastLines.add(line)
	level, msg := slog.LevelDebug, line
	if f := strings.SplitN(line, " ", 4); len(f) == 4 && len(f[2]) == 3 {
		switch f[2] {
		case "WAR", "ERR":
			level, msg = slog.LevelWarn, f[3]
		case "INF", "DEB":
			msg = f[3]
		}
		if f[3] == apiPathNotFound {
			// The node's own question (PathReady) about a path nobody
			// publishes: an answer, not a problem. Only the node can reach
			// the control API.
			level = slog.LevelDebug
		}
	}
	m.log.Log(context.Background(), level, msg)
}

// apiPathNotFound is what mediamtx logs, as a warning, when its control API
// answers 404 for a path.
const apiPathNotFound = "[API] path not found"

// randomPassword returns 128 random bits in hex.
func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails on supported platforms (Go 1.24+ panics instead)
	return hex.EncodeToString(b)
}

// freeLoopbackPort asks the kernel for a free 127.0.0.1 port. Another process
// could take it before mediamtx binds it; mediamtx then exits and the
// supervisor retries, which is good enough for a port nobody else expects.
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// checkLoopback refuses a non-loopback address: the control API has no
// authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address", addr)
}
