package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Hashicorp's libraries log a lot at INFO (every election, every peer
// change), and at ERROR for conditions this package expects and handles (a
// dead peer fails every heartbeat until it is reaped). So their INFO and below
// land at slog Debug and their WARN and ERROR at slog Warn. The package's own
// logs say what matters (leader changes, member joins and deaths, raft
// configuration changes) at Info, and its own failures at Warn or Error.

// hclogAdapter implements hclog.Logger on top of slog, for raft.
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLog(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{l: l.With("lib", name), name: name}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Warn, hclog.Error:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lvl := slogLevel(level)
	ctx := context.Background()
	if !h.l.Enabled(ctx, lvl) {
		return
	}
	h.l.Log(ctx, lvl, msg, args...)
}

func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogAdapter) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}

func (h *hclogAdapter) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogAdapter) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogAdapter) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogAdapter) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogAdapter) IsError() bool { return h.enabled(hclog.Error) }

func (h *hclogAdapter) ImpliedArgs() []any { return h.args }

func (h *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: h.l.With(args...), name: h.name, args: append(append([]any(nil), h.args...), args...)}
}

func (h *hclogAdapter) Name() string { return h.name }

func (h *hclogAdapter) Named(name string) hclog.Logger {
	full := name
	if h.name != "" {
		full = h.name + "." + name
	}
	return &hclogAdapter{l: h.l.With("sub", name), name: full, args: h.args}
}

func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: h.l, name: name, args: h.args}
}

// SetLevel is a no-op: the slog handler decides what is shown.
func (h *hclogAdapter) SetLevel(hclog.Level) {}

func (h *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case h.IsDebug():
		return hclog.Debug
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}

func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &stdlogWriter{l: h.l}
}

// stdlogWriter turns "[LEVEL] lib: message" lines of a standard *log.Logger
// (memberlist's logging) into slog records.
type stdlogWriter struct {
	l *slog.Logger
}

func newStdLogger(l *slog.Logger, name string) *log.Logger {
	return log.New(&stdlogWriter{l: l.With("lib", name)}, "", 0)
}

func (w *stdlogWriter) Write(p []byte) (int, error) {
	n := len(p)
	for line := range bytes.Lines(p) {
		msg := strings.TrimSpace(string(line))
		if msg == "" {
			continue
		}
		lvl := slog.LevelDebug
		if tag, rest, ok := strings.Cut(msg, "] "); ok && strings.HasPrefix(tag, "[") {
			switch tag[1:] {
			case "WARN", "ERR", "ERROR":
				lvl = slog.LevelWarn
			}
			msg = rest
		}
		msg = strings.TrimPrefix(msg, "memberlist: ")
		w.l.Log(context.Background(), lvl, msg)
	}
	return n, nil
}
