package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/media"
)

// The seeded profile passes the rules the API and the transcoder apply:
// media refuses any profile fsm's Validate would.
func TestDefaultProfileIsValid(t *testing.T) {
	p := DefaultProfile()
	require.NoError(t, p.Validate())
	_, _, err := media.FFmpegArgs(media.TranscodeSpec{SourceURL: "rtsp://127.0.0.1:8554/live/k", Profile: *p, HasVideo: true, HasAudio: true})
	require.NoError(t, err)
}
