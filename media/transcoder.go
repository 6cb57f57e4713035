package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dionysia/dionysia/packager"
)

// TranscoderConfig configures one supervised ffmpeg.
type TranscoderConfig struct {
	Spec TranscodeSpec
	// Stream is the packager model the output goes into; each ffmpeg run
	// is one generation of it.
	Stream *packager.Stream
	Logger *slog.Logger
	// StopTimeout is how long ffmpeg gets after SIGINT to flush its last
	// fragments before it is killed; 0 = 5s.
	StopTimeout time.Duration
	// Held makes a hot standby: its output is kept ready (the newest GOP)
	// but replaces nothing in the stream until Release.
	Held bool
}

const defaultStopTimeout = 5 * time.Second

// stderrTail is how many of ffmpeg's last stderr lines explain a crash.
const stderrTail = 10

// Transcoder runs ffmpeg for one live input and restarts it when it dies.
type Transcoder struct {
	bin         string
	args        []string
	outputs     []Output
	stream      *packager.Stream
	stopTimeout time.Duration
	log         *slog.Logger

	started  atomic.Bool
	restarts atomic.Int64
	// active is closed once the first run's segments are in the playlists.
	active     chan struct{}
	activeOnce sync.Once
	// held and gen (under mu): a hot standby's state and its current run.
	held bool
	gen  *packager.Gen
	// lastStderr explains the last crash in the restart log line.
	lastStderr tailLines
	mu         sync.Mutex
	stats      TranscodeStats
}

// NewTranscoder validates the spec by building ffmpeg's arguments; it starts
// nothing.
func NewTranscoder(cfg TranscoderConfig) (*Transcoder, error) {
	args, outs, err := FFmpegArgs(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("new transcoder: %w", err)
	}
	if cfg.Stream == nil {
		return nil, errors.New("new transcoder: no stream")
	}
	t := &Transcoder{
		bin:         cfg.Spec.FFmpeg,
		args:        args,
		outputs:     outs,
		stream:      cfg.Stream,
		stopTimeout: cfg.StopTimeout,
		log:         cfg.Logger,
		active:      make(chan struct{}),
		held:        cfg.Held,
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
	t.log = t.log.With("component", "ffmpeg")
	return t, nil
}

// Release turns a hot standby into the producer: its held output (from
// its newest keyframe) goes into the stream at once, and later runs are
// not held.
func (t *Transcoder) Release() error {
	t.mu.Lock()
	t.held = false
	gen := t.gen
	t.mu.Unlock()
	if gen == nil {
		return nil
	}
	return gen.Release()
}

// Tracks lists the tracks each run produces (thumbnails are not a track).
func (t *Transcoder) Tracks() []packager.TrackSpec {
	out := make([]packager.TrackSpec, 0, len(t.outputs))
	for _, o := range t.outputs {
		if o.Format != FormatJPEG {
			out = append(out, o.Track)
		}
	}
	return out
}

// Active is closed once the transcoder's first segments are in the
// playlists: whatever produced the stream before may stop then.
func (t *Transcoder) Active() <-chan struct{} { return t.active }

// Run runs ffmpeg and restarts it with backoff whenever it exits (a live
// source that drops, a crash) until ctx ends; then ffmpeg gets SIGINT and
// SIGKILL after StopTimeout. Every run is a new generation of the stream
// (one discontinuity). Run never ends the stream: whether the show is over
// is the node's decision. A Transcoder runs once.
func (t *Transcoder) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return errors.New("transcoder: Run called twice")
	}
	names := make([]string, len(t.outputs))
	for i, o := range t.outputs {
		names[i] = o.Track.Name
	}
	t.log.Info("transcoder starting", "tracks", names)
	sup := supervisor{
		runOnce:   t.runOnce,
		onRestart: func() { t.restarts.Add(1) },
		onExit:    t.logExit,
	}
	sup.run(ctx)
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

// runOnce runs one ffmpeg to completion, feeding its outputs into a new
// generation of the stream.
func (t *Transcoder) runOnce(ctx context.Context) error {
	t.mu.Lock()
	var gen *packager.Gen
	if t.held {
		gen = t.stream.BeginHeld(t.Tracks())
	} else {
		gen = t.stream.Begin(t.Tracks())
	}
	t.gen = gen
	t.mu.Unlock()
	defer gen.Close()
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		select {
		case <-gen.Active():
			t.activeOnce.Do(func() { close(t.active) })
		case <-runDone:
		}
	}()

	readers := make([]*os.File, len(t.outputs))
	writers := make([]*os.File, len(t.outputs))
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range t.outputs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers)
			closeAll(writers)
			return fmt.Errorf("output pipe: %w", err)
		}
		readers[i], writers[i] = r, w
	}
	defer closeAll(readers)

	cmd := childCmd(ctx, os.Interrupt, t.stopTimeout, t.bin, t.args...)
	// ExtraFiles[i] becomes descriptor 3+i in ffmpeg: outputs name them.
	cmd.ExtraFiles = writers
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
	// The child has its copies; ours must go, or the readers never see EOF.
	closeAll(writers)
	var wg sync.WaitGroup
	if err == nil {
		t.mu.Lock()
		t.stats = TranscodeStats{Running: true, UpdatedAt: time.Now()}
		t.mu.Unlock()
		for i, o := range t.outputs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := packageOutput(readers[i], o, gen)
				if err != nil && ctx.Err() == nil {
					t.log.Warn("packaging output", "track", o.Track.Name, "err", err)
				}
				// Whatever happened, keep the pipe drained so ffmpeg can exit.
				_, _ = io.Copy(io.Discard, readers[i])
			}()
		}
		err = cmd.Wait()
	} else {
		err = fmt.Errorf("start %s: %w", t.bin, err)
	}
	wg.Wait()
	progressW.Close()
	<-parsed
	stderr.Flush()
	t.mu.Lock()
	t.stats.Running = false
	t.stats.UpdatedAt = time.Now()
	t.mu.Unlock()
	return err
}

// packageOutput feeds one of ffmpeg's outputs into its track of gen until
// the output ends: fragmented MP4 as an init segment and fragments, MPEG-TS
// as a description and keyframe-to-keyframe chunks, JPEG pictures as the
// stream's thumbnail.
func packageOutput(r io.Reader, o Output, gen *packager.Gen) error {
	name := o.Track.Name
	if o.Format == FormatJPEG {
		return packager.SplitJPEG(r, gen.Thumbnail)
	}
	if o.Format == FormatTS {
		return packager.SplitTS(r,
			func(info packager.InitInfo) error { return gen.Describe(name, info) },
			func(b []byte, start, duration float64, sync bool) error {
				return gen.Chunk(name, b, start, duration, sync)
			})
	}
	return packager.Split(r,
		func(b []byte) error { return gen.Init(name, b) },
		func(b []byte) error { return gen.Fragment(name, b) })
}

func (t *Transcoder) setStats(st TranscodeStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats = st
}
