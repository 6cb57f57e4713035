package media

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[RTMP] [conn 127.0.0.1:5555] is publishing to path 'live/skabcdefghijklmnop', 2 tracks", "[RTMP] [conn 127.0.0.1:5555] is publishing to path 'live/skab…', 2 tracks"},
		{"rtsp://dionysia:s3cr3t@127.0.0.1:8554/live/skabcdefgh: Connection refused", "rtsp://dionysia:***@127.0.0.1:8554/live/skab…: Connection refused"},
		{"nothing secret here", "nothing secret here"},
		{"live/ab", "live/ab"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, Redact(tc.in))
	}
	var got []string
	w := newLineWriter(func(l string) { got = append(got, l) })
	_, _ = w.Write([]byte("reading rtsp://u:p@h/live/keykeykeykey\n"))
	require.Equal(t, []string{"reading rtsp://u:***@h/live/keyk…"}, got)
}
