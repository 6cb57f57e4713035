package media

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// TestFFmpegArgsThumbnail: with Thumbnails on, ffmpeg gets one more output,
// last, taken from the lowest encoded rung's scaled picture inside the one
// filter graph: no second input, no second decode, no second scaler of the
// source.
func TestFFmpegArgsThumbnail(t *testing.T) {
	// The lowest rung is not the last one, so picking by position fails.
	ladder := []fsm.Rendition{
		{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 700},
		{Name: "180p", Width: 320, Height: 180, VideoBitrateKbps: 250},
		{Name: "240p", Width: 426, Height: 240, VideoBitrateKbps: 400},
	}
	for _, tc := range []struct {
		name    string
		profile fsm.Profile
		audio   bool
		tracks  int // outputs before the thumbnail
		rung    int // the rendition the thumbnail comes from
	}{
		{"cmaf", fsm.Profile{SegmentSeconds: 2, SegmentFormat: fsm.SegmentFMP4, Renditions: ladder}, true, 4, 1},
		{"cmaf, no audio", fsm.Profile{SegmentSeconds: 2, SegmentFormat: fsm.SegmentFMP4, Renditions: ladder}, false, 3, 1},
		{"ts", fsm.Profile{SegmentSeconds: 2, SegmentFormat: fsm.SegmentTS, Latency: fsm.LatencyStandard, Renditions: ladder}, true, 3, 1},
		{"passthrough first", fsm.Profile{SegmentSeconds: 2, SegmentFormat: fsm.SegmentFMP4, Renditions: append(
			[]fsm.Rendition{{Name: "src", Passthrough: true, VideoBitrateKbps: 3000}}, ladder[2], ladder[0])}, true, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := TranscodeSpec{SourceURL: "rtsp://u:p@127.0.0.1:8554/live/KEY", Profile: tc.profile,
				HasVideo: true, HasAudio: tc.audio, Thumbnails: true}
			args, outs, err := FFmpegArgs(spec)
			require.NoError(t, err)
			input, groups := splitArgs(t, args)
			require.Len(t, outs, tc.tracks+1)
			require.Len(t, groups, tc.tracks+1)

			// Still one input, decoded once.
			require.Equal(t, 1, strings.Count(strings.Join(input, " "), "-i "), "one input")
			fc := argAfter(args, "-filter_complex")
			require.Equal(t, 1, strings.Count(fc, "[0:v:0]"), "the source is decoded once: %s", fc)

			// The thumbnail is the last output, a JPEG stream on its pipe.
			th := outs[len(outs)-1]
			require.Equal(t, FormatJPEG, th.Format)
			require.Equal(t, firstOutputFD+tc.tracks, th.FD, "the tracks keep their descriptors")
			g := groups[len(groups)-1]
			require.Equal(t, thumbnailLabel, argAfter(g, "-map"))
			require.Equal(t, 1, strings.Count(strings.Join(g, " "), "-map"), "only the thumbnail is mapped")
			require.Contains(t, g, "-an")
			require.Equal(t, "mjpeg", argAfter(g, "-c:v"))
			require.Equal(t, "image2pipe", argAfter(g, "-f"))
			require.Equal(t, "passthrough", argAfter(g, "-fps_mode"), "each picture written once")

			// It is split off the lowest rung after that rung's scaling,
			// one picture every ThumbnailSeconds.
			r := tc.profile.Renditions[tc.rung]
			chains := strings.Split(fc, ";")
			var tap string
			for _, c := range chains {
				if strings.Contains(c, fmt.Sprintf("[v%d]", tc.rung)) {
					tap = c
				}
			}
			require.NotEmpty(t, tap, "no chain makes [v%d]: %s", tc.rung, fc)
			require.Contains(t, tap, fmt.Sprintf("scale=w=%d:h=%d", r.Width, r.Height))
			require.True(t, strings.HasSuffix(tap, fmt.Sprintf(",split=2[v%d][t0]", tc.rung)), tap)
			require.Equal(t, 1, strings.Count(fc, "scale=w="+fmt.Sprint(r.Width)), "no second scaler for the thumbnail")
			sel := chains[slices.IndexFunc(chains, func(c string) bool { return strings.HasPrefix(c, "[t0]") })]
			require.Contains(t, sel, fmt.Sprintf("gte(t-prev_selected_t,%d)", ThumbnailSeconds))
			require.Contains(t, sel, "isnan(prev_selected_t)", "the first picture at once")
			require.True(t, strings.HasSuffix(sel, thumbnailLabel), sel)
			require.Equal(t, 1, strings.Count(fc, thumbnailLabel))
		})
	}

	t.Run("off", func(t *testing.T) {
		args, outs, err := FFmpegArgs(TranscodeSpec{SourceURL: "rtsp://h/x", HasVideo: true, HasAudio: true,
			Profile: fsm.Profile{SegmentFormat: fsm.SegmentFMP4, Renditions: ladder}})
		require.NoError(t, err)
		require.Len(t, outs, 4)
		require.NotContains(t, strings.Join(args, " "), "mjpeg")
		require.NotContains(t, argAfter(args, "-filter_complex"), "select")
	})
	t.Run("every rendition passthrough", func(t *testing.T) {
		// A thumbnail would need a decode the ladder does not make.
		args, outs, err := FFmpegArgs(TranscodeSpec{SourceURL: "rtsp://h/x", HasVideo: true, HasAudio: true, Thumbnails: true,
			Profile: fsm.Profile{SegmentFormat: fsm.SegmentFMP4, Renditions: []fsm.Rendition{{Name: "src", Passthrough: true, VideoBitrateKbps: 3000}}}})
		require.NoError(t, err)
		require.Len(t, outs, 2)
		require.NotContains(t, args, "-filter_complex")
		require.NotContains(t, strings.Join(args, " "), "mjpeg")
	})
}

// TestTracksLeaveThumbnailOut: the thumbnail output is no track of the
// stream, or every generation would wait for its fragments forever.
func TestTracksLeaveThumbnailOut(t *testing.T) {
	tr, err := NewTranscoder(TranscoderConfig{Spec: TranscodeSpec{SourceURL: "rtsp://h/x", HasVideo: true, HasAudio: true,
		Thumbnails: true, Profile: fsm.Profile{SegmentFormat: fsm.SegmentFMP4, Renditions: ladder3()}}, Stream: packager.New(packager.Config{})})
	require.NoError(t, err)
	var names []string
	for _, ts := range tr.Tracks() {
		names = append(names, ts.Name)
	}
	require.Equal(t, []string{"240p", "180p", "120p", "audio"}, names)
}

// TestTranscoderThumbnails runs real ffmpeg: the stream gets a JPEG of the
// lowest rung's size at once, then a new one every ThumbnailSeconds.
func TestTranscoderThumbnails(t *testing.T) {
	requireFFmpeg(t)
	src := makeSource(t, 12)
	profile := fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", SegmentFormat: fsm.SegmentFMP4,
		Latency: fsm.LatencyStandard, Renditions: testLadder()}
	stream := packager.New(packager.Config{TargetDuration: 1, Schedule: Schedule(profile), Window: 30})
	tr, err := NewTranscoder(TranscoderConfig{Spec: TranscodeSpec{SourceURL: src, Realtime: true, HasVideo: true,
		HasAudio: true, Profile: profile, Thumbnails: true}, Stream: stream, StopTimeout: 2 * time.Second})
	require.NoError(t, err)
	stop := runTranscoder(t, tr)
	defer stop()

	var first []byte
	var firstAt time.Time
	waitFor(t, 20*time.Second, "a first thumbnail", func() (bool, string) {
		f, err := stream.Serve(context.Background(), packager.ThumbnailName, nil)
		if err != nil {
			return false, err.Error()
		}
		first, firstAt = f.Body, stream.ThumbnailAt()
		return true, ""
	})
	img, err := jpeg.Decode(bytes.NewReader(first))
	require.NoError(t, err)
	require.Equal(t, "160x90", fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()), "the lowest rung's size")

	waitFor(t, 3*ThumbnailSeconds*time.Second, "a newer thumbnail", func() (bool, string) {
		at := stream.ThumbnailAt()
		return at.After(firstAt), "still the one of " + firstAt.Format(time.StampMilli)
	})
	f, err := stream.Serve(context.Background(), packager.ThumbnailName, url.Values{"width": {"80"}})
	require.NoError(t, err)
	small, err := jpeg.Decode(bytes.NewReader(f.Body))
	require.NoError(t, err)
	require.Equal(t, "80x45", fmt.Sprintf("%dx%d", small.Bounds().Dx(), small.Bounds().Dy()))
}
