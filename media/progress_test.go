package media

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProgress(t *testing.T) {
	f, err := os.Open("testdata/progress.txt") // captured from ffmpeg 5.1 -progress pipe:1
	require.NoError(t, err)
	defer f.Close()
	var got []TranscodeStats
	require.NoError(t, ParseProgress(f, func(s TranscodeStats) { got = append(got, s) }))
	require.Len(t, got, 3, "blocks after progress=end are not read")
	require.Equal(t, TranscodeStats{}, got[0], "N/A and AV_NOPTS_VALUE leave zeros")
	require.Equal(t, TranscodeStats{Frame: 36, FPS: 28.2, Speed: 0.953, DupFrames: 1, DropFrames: 2, OutTime: 1216 * time.Millisecond}, got[1])
	require.Equal(t, TranscodeStats{Frame: 90, FPS: 29.51, Speed: 1.01, BitrateKbps: 612.3, DupFrames: 1, DropFrames: 2, OutTime: 3 * time.Second}, got[2])
}

func TestParseProgressGarbageAndErrors(t *testing.T) {
	n := 0
	require.NoError(t, ParseProgress(strings.NewReader("garbage\n=\nframe=x\nprogress=continue\nframe=3"), func(s TranscodeStats) {
		n++
		require.Zero(t, s.Frame)
	}))
	require.Equal(t, 1, n, "a block without its progress line is not reported")
	boom := errors.New("boom")
	err := ParseProgress(&failingReader{err: boom}, func(TranscodeStats) {})
	require.ErrorIs(t, err, boom)
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }
