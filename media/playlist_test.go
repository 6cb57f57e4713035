package media

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// As written by ffmpeg 5.1 (fmp4, program_date_time).
const ffmpegMedia = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1795793123
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init_hi.mp4"
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-27T15:25:23.905+0000
seg_1795793123.m4s
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-27T15:25:25.905+0000
seg_1795793124.m4s
#EXTINF:0.033333,
#EXT-X-PROGRAM-DATE-TIME:2026-11-27T15:25:27.905+0000
seg_1795793125.m4s
#EXT-X-ENDLIST
`

func TestParseMediaPlaylist(t *testing.T) {
	pl, err := ParseMediaPlaylist(strings.NewReader(ffmpegMedia))
	require.NoError(t, err)
	require.Equal(t, 7, pl.Version)
	require.Equal(t, 2, pl.TargetDuration)
	require.Equal(t, uint64(1795793123), pl.MediaSequence)
	require.Equal(t, "init_hi.mp4", pl.Map)
	require.True(t, pl.Ended)
	require.Len(t, pl.Segments, 3)
	require.Equal(t, Segment{URI: "seg_1795793124.m4s", Duration: 2,
		ProgramDateTime: time.Date(2026, 11, 27, 15, 25, 25, 905e6, time.UTC)}, normalize(pl.Segments[1]))
	require.InDelta(t, 0.033333, pl.Segments[2].Duration, 1e-9)
}

func normalize(s Segment) Segment { s.ProgramDateTime = s.ProgramDateTime.UTC(); return s }

func TestParseMediaPlaylistTricky(t *testing.T) {
	// CRLF, blank lines, unknown tags, a titled EXTINF, PDT before EXTINF
	// in RFC 3339 form, extrapolated PDT, no ENDLIST, no MAP.
	text := "#EXTM3U\r\n\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-UNKNOWN:foo\r\n" +
		"#EXT-X-PROGRAM-DATE-TIME:2024-01-02T03:04:05Z\r\n#EXTINF:4.0,title, with comma\r\na.ts\r\n" +
		"#EXTINF:3.5,\r\nb.ts\r\n#EXT-X-DISCONTINUITY\r\n#EXTINF:1,\r\nc.ts\r\n"
	pl, err := ParseMediaPlaylist(strings.NewReader(text))
	require.NoError(t, err)
	require.False(t, pl.Ended)
	require.Empty(t, pl.Map)
	require.Zero(t, pl.MediaSequence)
	require.Len(t, pl.Segments, 3)
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	require.Equal(t, Segment{URI: "a.ts", Duration: 4, ProgramDateTime: t0}, normalize(pl.Segments[0]))
	require.Equal(t, Segment{URI: "b.ts", Duration: 3.5, ProgramDateTime: t0.Add(4 * time.Second)}, normalize(pl.Segments[1]))
	require.True(t, pl.Segments[2].ProgramDateTime.IsZero(), "no extrapolation across a discontinuity")

	for name, bad := range map[string]string{
		"empty":          "",
		"no header":      "#EXTINF:1,\na.ts\n",
		"bad duration":   "#EXTM3U\n#EXTINF:abc,\na.ts\n",
		"bad sequence":   "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n",
		"bad date":       "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
		"master instead": "<html>",
	} {
		_, err := ParseMediaPlaylist(strings.NewReader(bad))
		require.Error(t, err, name)
	}
}

func TestParseMasterPlaylist(t *testing.T) {
	// As written by ffmpeg 5.1, plus a quoted attribute with a comma before
	// BANDWIDTH and an attribute without quotes after it.
	text := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-STREAM-INF:BANDWIDTH=545600,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2"
240p/index.m3u8

#EXT-X-STREAM-INF:CODECS="avc1.42c00c,mp4a.40.2",BANDWIDTH=290400,RESOLUTION=160x120,FRAME-RATE=15.000
120p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=79273,RESOLUTION=320x240
src/index.m3u8
`
	vs, err := ParseMasterPlaylist(strings.NewReader(text))
	require.NoError(t, err)
	require.Equal(t, []Variant{
		{URI: "240p/index.m3u8", Bandwidth: 545600, Resolution: "320x240", Codecs: "avc1.42c00d,mp4a.40.2"},
		{URI: "120p/index.m3u8", Bandwidth: 290400, Resolution: "160x120", Codecs: "avc1.42c00c,mp4a.40.2"},
		{URI: "src/index.m3u8", Bandwidth: 79273, Resolution: "320x240"},
	}, vs)

	_, err = ParseMasterPlaylist(strings.NewReader("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\na.m3u8\n"))
	require.Error(t, err)
	_, err = ParseMasterPlaylist(strings.NewReader("nope"))
	require.Error(t, err)
	vs, err = ParseMasterPlaylist(strings.NewReader("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"unterminated\n"))
	require.NoError(t, err)
	require.Empty(t, vs, "a STREAM-INF without its URI is not a variant")
}

func TestParseMasterAudio(t *testing.T) {
	// As the node's packager writes it: the audio is one alternate
	// rendition every variant refers to.
	text := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="und",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",URI="subs/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="muxed",NAME="main"
#EXT-X-STREAM-INF:BANDWIDTH=788000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="audio"
360p/index.m3u8
`
	uris, err := ParseMasterAudio(strings.NewReader(text))
	require.NoError(t, err)
	require.Equal(t, []string{"audio/index.m3u8"}, uris, "only AUDIO entries with a URI")
	vs, err := ParseMasterPlaylist(strings.NewReader(text))
	require.NoError(t, err)
	require.Equal(t, []Variant{{URI: "360p/index.m3u8", Bandwidth: 788000, Resolution: "640x360", Codecs: "avc1.64001e,mp4a.40.2"}}, vs,
		"EXT-X-MEDIA lines are not variants")

	uris, err = ParseMasterAudio(strings.NewReader("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"))
	require.NoError(t, err)
	require.Empty(t, uris)
	_, err = ParseMasterAudio(strings.NewReader("nope"))
	require.Error(t, err)
}

func TestEndPlaylists(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(MediaPlaylistPath(dir, name), []byte(content), 0o644))
	}
	write("open", "#EXTM3U\n#EXTINF:2,\nseg_1.ts\n")
	write("nonewline", "#EXTM3U\n#EXTINF:2,\nseg_1.ts")
	write("ended", ffmpegMedia)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, MasterPlaylistName), []byte("#EXTM3U\n"), 0o644))

	for range 2 { // idempotent
		require.NoError(t, EndPlaylists(dir))
		for _, name := range []string{"open", "nonewline", "ended"} {
			b, err := os.ReadFile(MediaPlaylistPath(dir, name))
			require.NoError(t, err)
			require.Equal(t, 1, strings.Count(string(b), "#EXT-X-ENDLIST"), name)
			pl, err := ParseMediaPlaylist(strings.NewReader(string(b)))
			require.NoError(t, err)
			require.True(t, pl.Ended)
			require.NotEmpty(t, pl.Segments)
		}
	}
	b, err := os.ReadFile(MediaPlaylistPath(dir, "nonewline"))
	require.NoError(t, err)
	require.Equal(t, "#EXTM3U\n#EXTINF:2,\nseg_1.ts\n#EXT-X-ENDLIST\n", string(b))
	require.NoFileExists(t, MediaPlaylistPath(dir, "empty"))
	require.NoError(t, EndPlaylists(filepath.Join(dir, "missing")))
}

func TestReadRenditionStats(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "hi"), 0o755))
	require.NoError(t, os.WriteFile(MediaPlaylistPath(dir, "hi"),
		[]byte("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:42\n#EXTINF:2.0,\nseg_42.ts\n#EXTINF:2.0,\nseg_43.ts\n#EXTINF:1.5,\nseg_44.ts\n#EXTINF:2,\n../../etc/passwd\n"), 0o644))
	// 2 s of 50 kB and 2 s of 50 kB: 200 kbit/s; seg_44 is gone.
	for _, s := range []string{"seg_42.ts", "seg_43.ts"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "hi", s), make([]byte, 50_000), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bad"), 0o755))
	require.NoError(t, os.WriteFile(MediaPlaylistPath(dir, "bad"), []byte("garbage"), 0o644))

	st := ReadRenditionStats(dir, []string{"hi", "lo", "bad"})
	require.Equal(t, []RenditionStats{
		{Name: "hi", Segments: 4, MediaSequence: 42, LastSegmentSeconds: 2, BitrateKbps: 200},
		{Name: "lo"},
		{Name: "bad"},
	}, st)
}

func TestOutputDir(t *testing.T) {
	require.Equal(t, filepath.Join("data", "hls", "abc"), OutputDir("data", "abc"))
	require.Equal(t, filepath.Join("data", "hls", "abc", "hi", "index.m3u8"), MediaPlaylistPath(OutputDir("data", "abc"), "hi"))
}
