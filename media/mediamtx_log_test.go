package media

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogLineLevels: mediamtx's warnings and errors reach the node's log at
// warn, everything else at debug; the 404 its control API logs for the
// node's own readiness question (PathReady) is not a warning.
func TestLogLineLevels(t *testing.T) {
	for _, tc := range []struct {
		line, level, msg string
	}{
		{"2026/11/29 02:00:05 WAR [API] path not found", "DEBUG", "[API] path not found"},
		{"2026/11/29 02:00:05 WAR [RTSP] [conn 1.2.3.4:5] closed: EOF", "WARN", "[RTSP] [conn 1.2.3.4:5] closed: EOF"},
		{"2026/11/29 02:00:05 ERR [path live/x] boom", "WARN", "[path live/x] boom"},
		{"2026/11/29 02:00:05 INF [RTMP] listener opened on :1935", "DEBUG", "[RTMP] listener opened on :1935"},
		{"something else", "DEBUG", "something else"},
	} {
		var buf bytes.Buffer
		m := &MediaMTX{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), lastLines: tailLines{n: 8}}
		m.logLine(tc.line)
		require.Contains(t, buf.String(), "level="+tc.level, tc.line)
		require.Contains(t, buf.String(), tc.msg, tc.line)
	}
}
