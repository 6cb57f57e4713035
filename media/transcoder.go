package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TranscoderConfig configures one supervised ffmpeg.
type TranscoderConfig struct {
	Spec   TranscodeSpec
	Logger *slog.Logger
	// StopTimeout is how long ffmpeg gets after SIGINT to finish its
	// playlists before it is killed; 0 = 5s.
	StopTimeout time.Duration
}

const defaultStopTimeout = 5 * time.Second

// stderrTail is how many of ffmpeg's last stderr lines explain a crash.
const stderrTail = 10

// Transcoder runs ffmpeg for one live input and restarts it when it dies.
type Transcoder struct {
	bin         string
	args        []string
	outputDir   string
	renditions  []string
	stopTimeout time.Duration
	log         *slog.Logger

	started  atomic.Bool
	restarts atomic.Int64
	// lastStderr explains the last crash in the restart log line.
	lastStderr tailLines
	mu         sync.Mutex
	stats      TranscodeStats
}

// NewTranscoder validates the spec by building ffmpeg's arguments; it starts
// nothing.
func NewTranscoder(cfg TranscoderConfig) (*Transcoder, error) {
	args, err := FFmpegArgs(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("new transcoder: %w", err)
	}
	t := &Transcoder{
		bin:         cfg.Spec.FFmpeg,
		args:        args,
		outputDir:   cfg.Spec.OutputDir,
		stopTimeout: cfg.StopTimeout,
		log:         cfg.Logger,
	}
	for _, r := range cfg.Spec.Profile.Renditions {
		t.renditions = append(t.renditions, r.Name)
	}
	t.lastStderr.n = stderrTail
	if t.bin == "" {
		t.bin = "ffmpeg"
	}
	if t.stopTimeout <= 0 {
		t.stopTimeout = defaultStopTimeout
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.log = t.log.With("component", "ffmpeg", "output", t.outputDir)
	return t, nil
}

// Run clears what an earlier transcoder left in the output dir, then runs
// ffmpeg and restarts it with backoff whenever it exits (a live source that
// drops, a crash) until ctx ends. Then ffmpeg gets SIGINT, so it writes its
// last segment and #EXT-X-ENDLIST, and SIGKILL if it has not exited after
// StopTimeout; either way every media playlist is ended before Run returns.
// Run returns nil when ctx ends, and an error only if it could not start at
// all. A Transcoder runs once.
func (t *Transcoder) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return errors.New("transcoder: Run called twice")
	}
	// Stale segments and playlists of an earlier run (another node's, or
	// before a crash of this one) would be served as if they were live.
	if err := clearDir(t.outputDir); err != nil {
		return fmt.Errorf("transcoder: clear output dir: %w", err)
	}
	t.log.Info("transcoder starting", "renditions", t.renditions)
	sup := supervisor{
		runOnce:   t.runOnce,
		onRestart: func() { t.restarts.Add(1) },
		onExit:    t.logExit,
	}
	sup.run(ctx)
	if err := EndPlaylists(t.outputDir); err != nil {
		t.log.Warn("transcoder: end playlists", "err", err)
	}
	t.log.Info("transcoder stopped", "restarts", t.Restarts())
	return nil
}

// Stats returns the latest progress of ffmpeg.
func (t *Transcoder) Stats() TranscodeStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Restarts counts how many times ffmpeg was started again after exiting.
func (t *Transcoder) Restarts() int { return int(t.restarts.Load()) }

func (t *Transcoder) logExit(err error, ran, delay time.Duration) {
	t.log.Warn("ffmpeg exited, restarting",
		"err", exitError(err), "ran", ran.Round(time.Millisecond), "restart_in", delay,
		"stderr", strings.Join(t.lastStderr.take(), "\n"))
}

// runOnce runs one ffmpeg to completion.
func (t *Transcoder) runOnce(ctx context.Context) error {
	if err := os.MkdirAll(t.outputDir, 0o755); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	cmd := childCmd(ctx, os.Interrupt, t.stopTimeout, t.bin, t.args...)
	progressR, progressW := io.Pipe()
	cmd.Stdout = progressW
	stderr := newLineWriter(func(line string) {
		t.lastStderr.add(line)
		t.log.Debug(line)
	})
	cmd.Stderr = stderr

	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		_ = ParseProgress(progressR, func(st TranscodeStats) {
			st.Running = true
			st.UpdatedAt = time.Now()
			t.setStats(st)
		})
		// Keep draining so ffmpeg never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, progressR)
	}()

	err := cmd.Start()
	if err == nil {
		t.mu.Lock()
		t.stats = TranscodeStats{Running: true, UpdatedAt: time.Now()}
		t.mu.Unlock()
		err = cmd.Wait()
	} else {
		err = fmt.Errorf("start %s: %w", t.bin, err)
	}
	progressW.Close()
	<-parsed
	stderr.Flush()
	t.mu.Lock()
	t.stats.Running = false
	t.stats.UpdatedAt = time.Now()
	t.mu.Unlock()
	return err
}

func (t *Transcoder) setStats(st TranscodeStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats = st
}

// clearDir empties dir (creating it if missing) without removing dir itself,
// which the origin may be watching.
func clearDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
