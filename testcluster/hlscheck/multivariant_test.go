package hlscheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const multivariant = `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2800000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="aac"
720p/index.m3u8
# a comment between variants
#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,AUDIO="aac",CLOSED-CAPTIONS=NONE
360p/index.m3u8
`

func TestMultivariant(t *testing.T) {
	require.NoError(t, Multivariant([]byte(multivariant)))

	cases := []struct {
		name, old, new, want string
	}{
		{"no header", "#EXTM3U\n", "", "first line is not #EXTM3U"},
		{"no bandwidth", "BANDWIDTH=900000,", "", "line 8: EXT-X-STREAM-INF needs a decimal-integer BANDWIDTH"},
		{"no codecs", `,CODECS="avc1.64001e,mp4a.40.2"`, "", "line 8: EXT-X-STREAM-INF needs a quoted, non-empty CODECS"},
		{"bad resolution", "RESOLUTION=640x360", "RESOLUTION=640*360", `RESOLUTION "640*360" is not <width>x<height>`},
		{"unknown audio group", `AUDIO="aac",CLOSED`, `AUDIO="aac-lo",CLOSED`, `AUDIO="aac-lo" names no EXT-X-MEDIA TYPE=AUDIO group`},
		{"no URI line", "360p/index.m3u8\n", "", "line 8: EXT-X-STREAM-INF is not followed by its URI line"},
		{"tag between variant and URI", "720p/index.m3u8\n", "#EXT-X-INDEPENDENT-SEGMENTS\n720p/index.m3u8\n", "line 5: EXT-X-STREAM-INF is not followed by its URI line"},
		{"media playlist tag", "#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-TARGETDURATION:2\n", "EXT-X-TARGETDURATION belongs in a Media Playlist"},
		{"media without name", `NAME="English",`, "", "EXT-X-MEDIA needs a quoted NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(multivariant, tc.old, tc.new, 1)
			require.NotEqual(t, multivariant, body)
			err := Multivariant([]byte(body))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
