package media

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/stretchr/testify/require"
)

func ladder3() []fsm.Rendition {
	return []fsm.Rendition{
		{Name: "240p", Width: 320, Height: 240, VideoBitrateKbps: 400, AudioBitrateKbps: 96},
		{Name: "180p", Width: 240, Height: 180, VideoBitrateKbps: 250, AudioBitrateKbps: 64},
		{Name: "120p", Width: 160, Height: 120, VideoBitrateKbps: 120, AudioBitrateKbps: 48},
	}
}

// argAfter returns the value following flag, "" if absent.
func argAfter(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

func TestFFmpegArgs(t *testing.T) {
	base := TranscodeSpec{
		SourceURL: "rtsp://u:p@127.0.0.1:8554/live/KEY",
		Profile:   fsm.Profile{SegmentSeconds: 2, Renditions: ladder3()},
		OutputDir: "/data/hls/in1", HasVideo: true, HasAudio: true,
	}
	type check func(t *testing.T, args []string)
	tests := []struct {
		name   string
		mutate func(*TranscodeSpec)
		err    string
		checks []check
	}{
		{
			name: "three rungs",
			checks: []check{func(t *testing.T, a []string) {
				require.Equal(t, "tcp", argAfter(a, "-rtsp_transport"))
				require.Equal(t, rtspSocketTimeout, argAfter(a, "-timeout"))
				require.NotContains(t, a, "-re")
				require.Equal(t, base.SourceURL, argAfter(a, "-i"))
				fc := argAfter(a, "-filter_complex")
				require.Contains(t, fc, "[0:v:0]split=3[s0][s1][s2]")
				require.Contains(t, fc, "scale=w=240:h=180")
				require.NotContains(t, fc, "fps=")
				for i, want := range []string{"400k", "250k", "120k"} {
					v := fmt.Sprint(i)
					require.Equal(t, "libx264", argAfter(a, "-c:v:"+v))
					require.Equal(t, "veryfast", argAfter(a, "-preset:v:"+v))
					require.Equal(t, want, argAfter(a, "-b:v:"+v))
					require.Equal(t, want, argAfter(a, "-maxrate:v:"+v))
					require.Equal(t, "0", argAfter(a, "-sc_threshold:v:"+v))
					require.Equal(t, "60", argAfter(a, "-g:v:"+v))
					require.Equal(t, "yuv420p", argAfter(a, "-pix_fmt:v:"+v))
					require.Equal(t, "expr:gte(t,if(lt(n_forced,4),n_forced*1,3+(n_forced-3)*2))", argAfter(a, "-force_key_frames:v:"+v))
					require.Equal(t, "aac", argAfter(a, "-c:a:"+v))
					require.Equal(t, "2", argAfter(a, "-ac:a:"+v))
					require.Equal(t, "48000", argAfter(a, "-ar:a:"+v))
				}
				require.Equal(t, "800k", argAfter(a, "-bufsize:v:0"))
				require.Equal(t, "96k", argAfter(a, "-b:a:0"))
				require.Equal(t, "v:0,a:0,name:240p v:1,a:1,name:180p v:2,a:2,name:120p", argAfter(a, "-var_stream_map"))
				require.Equal(t, "epoch", argAfter(a, "-hls_start_number_source"))
				require.Equal(t, "2", argAfter(a, "-hls_time"))
				require.Equal(t, "6", argAfter(a, "-hls_list_size"))
				flags := argAfter(a, "-hls_flags")
				require.Contains(t, flags, "delete_segments")
				require.Contains(t, flags, "independent_segments")
				require.Contains(t, flags, "program_date_time")
				require.NotContains(t, flags, "omit_endlist")
				require.Equal(t, "master.m3u8", argAfter(a, "-master_pl_name"))
				require.Equal(t, "/data/hls/in1/%v/seg_%d.ts", argAfter(a, "-hls_segment_filename"))
				require.Equal(t, "/data/hls/in1/%v/index.m3u8", a[len(a)-1])
				require.Equal(t, "pipe:1", argAfter(a, "-progress"))
				require.Contains(t, a, "-nostats")
				require.Equal(t, "warning", argAfter(a, "-loglevel"))
				require.NotContains(t, a, "-hls_segment_type")
			}},
		},
		{
			name: "fps cap, preset, list size, file source, realtime",
			mutate: func(s *TranscodeSpec) {
				s.SourceURL = "/tmp/source.ts"
				s.Realtime = true
				s.ListSize = 10
				s.Profile.SegmentSeconds = 4
				s.Profile.VideoPreset = "ultrafast"
				s.Profile.Renditions[2].FPS = 15
			},
			checks: []check{func(t *testing.T, a []string) {
				require.NotContains(t, a, "-rtsp_transport")
				require.NotContains(t, a, "-timeout")
				require.Less(t, slices.Index(a, "-re"), slices.Index(a, "-i"))
				require.Contains(t, argAfter(a, "-filter_complex"), "scale=w=160:h=120:force_original_aspect_ratio=decrease:force_divisible_by=2,fps=15[v2]")
				require.Equal(t, "60", argAfter(a, "-g:v:2"), "GOP = fps x segment")
				require.Equal(t, "120", argAfter(a, "-g:v:0"))
				require.Equal(t, "expr:gte(t,if(lt(n_forced,4),n_forced*1,3+(n_forced-3)*4))", argAfter(a, "-force_key_frames:v:2"))
				require.Equal(t, "ultrafast", argAfter(a, "-preset:v:1"))
				require.Equal(t, "10", argAfter(a, "-hls_list_size"))
				require.Equal(t, "4", argAfter(a, "-hls_time"))
			}},
		},
		{
			name: "passthrough rung copies aac",
			mutate: func(s *TranscodeSpec) {
				s.SourceAudioAAC = true
				s.Profile.Renditions = append([]fsm.Rendition{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000, AudioBitrateKbps: 128}}, s.Profile.Renditions...)
			},
			checks: []check{func(t *testing.T, a []string) {
				require.Equal(t, "copy", argAfter(a, "-c:v:0"))
				require.Equal(t, "copy", argAfter(a, "-c:a:0"))
				require.Equal(t, "3000k", argAfter(a, "-b:v:0"), "advertised bandwidth")
				require.Empty(t, argAfter(a, "-force_key_frames:v:0"))
				require.Contains(t, argAfter(a, "-filter_complex"), "split=3[s0][s1][s2]")
				require.Contains(t, argAfter(a, "-filter_complex"), "[v1]")
				require.Equal(t, "libx264", argAfter(a, "-c:v:1"))
				require.Equal(t, "aac", argAfter(a, "-c:a:1"))
				require.True(t, strings.HasPrefix(argAfter(a, "-var_stream_map"), "v:0,a:0,name:source v:1,a:1,name:240p"))
			}},
		},
		{
			name: "passthrough rung re-encodes non-aac audio",
			mutate: func(s *TranscodeSpec) {
				s.Profile.Renditions = []fsm.Rendition{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000}}
			},
			checks: []check{func(t *testing.T, a []string) {
				require.NotContains(t, a, "-filter_complex")
				require.Equal(t, "copy", argAfter(a, "-c:v:0"))
				require.Equal(t, "aac", argAfter(a, "-c:a:0"))
				require.Equal(t, "128k", argAfter(a, "-b:a:0"), "default audio bitrate")
			}},
		},
		{
			name:   "no audio",
			mutate: func(s *TranscodeSpec) { s.HasAudio = false },
			checks: []check{func(t *testing.T, a []string) {
				require.NotContains(t, a, "0:a:0")
				require.Empty(t, argAfter(a, "-c:a:0"))
				require.Equal(t, "v:0,name:240p v:1,name:180p v:2,name:120p", argAfter(a, "-var_stream_map"))
			}},
		},
		{
			name:   "fmp4",
			mutate: func(s *TranscodeSpec) { s.Profile.SegmentFormat = fsm.SegmentFMP4 },
			checks: []check{func(t *testing.T, a []string) {
				require.Equal(t, "fmp4", argAfter(a, "-hls_segment_type"))
				require.Equal(t, "init_%v.mp4", argAfter(a, "-hls_fmp4_init_filename"))
				require.Equal(t, "/data/hls/in1/%v/seg_%d.m4s", argAfter(a, "-hls_segment_filename"))
			}},
		},
		{
			name: "fmp4 single rendition names its init file",
			mutate: func(s *TranscodeSpec) {
				s.Profile.SegmentFormat = fsm.SegmentFMP4
				s.Profile.Renditions = s.Profile.Renditions[:1]
			},
			checks: []check{func(t *testing.T, a []string) {
				require.Equal(t, "init_240p.mp4", argAfter(a, "-hls_fmp4_init_filename"))
				require.Contains(t, argAfter(a, "-filter_complex"), "[0:v:0]null[s0]")
			}},
		},
		{name: "no renditions", mutate: func(s *TranscodeSpec) { s.Profile.Renditions = nil }, err: "no renditions"},
		{name: "no video", mutate: func(s *TranscodeSpec) { s.HasVideo = false }, err: "no video"},
		{name: "no source", mutate: func(s *TranscodeSpec) { s.SourceURL = "" }, err: "source"},
		{name: "no output dir", mutate: func(s *TranscodeSpec) { s.OutputDir = "" }, err: "output dir"},
		{name: "odd size", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[0].Width = 321 }, err: "even"},
		{name: "zero bitrate", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].VideoBitrateKbps = 0 }, err: "video_bitrate_kbps"},
		{name: "passthrough without bitrate", mutate: func(s *TranscodeSpec) {
			s.Profile.Renditions[0] = fsm.Rendition{Name: "src", Passthrough: true}
		}, err: "video_bitrate_kbps"},
		{name: "duplicate name", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "240p" }, err: "twice"},
		{name: "unsafe name", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "../x" }, err: "name"},
		{name: "name with space", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "a b" }, err: "name"},
		{name: "bad preset", mutate: func(s *TranscodeSpec) { s.Profile.VideoPreset = "turbo" }, err: "video_preset"},
		{name: "bad format", mutate: func(s *TranscodeSpec) { s.Profile.SegmentFormat = "webm" }, err: "segment_format"},
		{name: "negative segment", mutate: func(s *TranscodeSpec) { s.Profile.SegmentSeconds = -1 }, err: "segment_seconds"},
		{name: "negative fps", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[0].FPS = -1 }, err: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Profile.Renditions = ladder3()
			if tc.mutate != nil {
				tc.mutate(&spec)
			}
			args, err := FFmpegArgs(spec)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			for _, c := range tc.checks {
				c(t, args)
			}
		})
	}
}

func TestFFmpegArgsDefaultSegment(t *testing.T) {
	args, err := FFmpegArgs(TranscodeSpec{SourceURL: "x.ts", OutputDir: "o", HasVideo: true,
		Profile: fsm.Profile{Renditions: ladder3()[:1]}})
	require.NoError(t, err)
	require.Equal(t, "2", argAfter(args, "-hls_time"))
}

func TestTracksHave(t *testing.T) {
	for _, tc := range []struct {
		tracks       []string
		video, audio bool
		aac          bool
	}{
		{[]string{"H264", "MPEG-4 Audio"}, true, true, true},
		{[]string{"H265"}, true, false, false},
		{[]string{"Opus"}, false, true, false},
		{[]string{"H264", "MPEG-4 Audio LATM"}, true, true, false},
		{nil, false, false, false},
	} {
		v, a := TracksHave(tc.tracks)
		require.Equal(t, tc.video, v, tc.tracks)
		require.Equal(t, tc.audio, a, tc.tracks)
		require.Equal(t, tc.aac, TracksAudioAAC(tc.tracks), tc.tracks)
	}
}

// TestFFmpegArgsRealLadder runs real ffmpeg on the arguments and checks the
// output a player would see.
func TestFFmpegArgsRealLadder(t *testing.T) {
	requireFFmpeg(t)
	src := makeSource(t, 6)
	for _, format := range []string{fsm.SegmentTS, fsm.SegmentFMP4} {
		t.Run(format, func(t *testing.T) {
			out := t.TempDir()
			rungs := append(ladder3(), fsm.Rendition{Name: "source", Passthrough: true, VideoBitrateKbps: 900, AudioBitrateKbps: 64})
			rungs[2].FPS = 15
			spec := TranscodeSpec{
				SourceURL: src, OutputDir: out, HasVideo: true, HasAudio: true, SourceAudioAAC: true,
				Profile: fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", SegmentFormat: format, Renditions: rungs},
				// Keep every segment so all renditions can be compared.
				ListSize: 100,
			}
			args, err := FFmpegArgs(spec)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ffmpeg", args...)
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "ffmpeg: %s", lastBytes(b, 2000))

			f, err := os.Open(filepath.Join(out, MasterPlaylistName))
			require.NoError(t, err)
			variants, err := ParseMasterPlaylist(f)
			f.Close()
			require.NoError(t, err)
			require.Len(t, variants, len(rungs))
			for i, v := range variants {
				r := rungs[i]
				require.Equal(t, r.Name+"/"+MediaPlaylistName, v.URI)
				require.Positive(t, v.Bandwidth, v.URI)
				if !r.Passthrough {
					// A copied stream from MPEG-TS has no codec extradata, so
					// ffmpeg cannot name its profile; from RTSP it can (see
					// TestMediaMTXIntegration).
					require.Contains(t, v.Codecs, "avc1.", v.URI)
					require.Contains(t, v.Codecs, "mp4a.40.2", v.URI)
					require.Equal(t, fmt.Sprintf("%dx%d", r.Width, r.Height), v.Resolution)
				} else {
					require.Equal(t, "320x240", v.Resolution)
				}
				t.Logf("variant %s", fmt.Sprintf("%+v", v))
			}

			// Keyframe alignment: every rendition cuts at the same instants.
			// The last segment is a remainder of the source and may differ.
			var want []float64
			var seq uint64
			for i, r := range rungs {
				pl := readMediaPlaylist(t, MediaPlaylistPath(out, r.Name))
				require.True(t, pl.Ended)
				durs := segmentDurations(pl)
				require.GreaterOrEqual(t, len(durs), 4, r.Name)
				if format == fsm.SegmentFMP4 {
					require.Equal(t, "init_"+r.Name+".mp4", pl.Map)
					require.FileExists(t, filepath.Join(out, r.Name, pl.Map))
				} else {
					require.Empty(t, pl.Map)
				}
				if i == 0 {
					want, seq = durs, pl.MediaSequence
					require.InDelta(t, float64(time.Now().Unix()), float64(seq), 120, "epoch media sequence")
					continue
				}
				require.Equal(t, seq, pl.MediaSequence, r.Name)
				require.Equal(t, want, durs, "segments of %s differ from %s", r.Name, rungs[0].Name)

				// ffprobe decodes a segment at the expected size.
				seg := filepath.Join(out, r.Name, pl.Segments[1].URI)
				if pl.Map != "" {
					seg = "concat:" + filepath.Join(out, r.Name, pl.Map) + "|" + seg
				}
				w, h := r.Width, r.Height
				if r.Passthrough {
					w, h = 320, 240
				}
				require.Equal(t, fmt.Sprintf("%dx%d", w, h), probeSize(t, seg), r.Name)
			}
		})
	}
}

// segmentDurations lists the durations of all but a short final remainder.
func segmentDurations(pl *MediaPlaylist) []float64 {
	var d []float64
	for i, s := range pl.Segments {
		if i == len(pl.Segments)-1 && s.Duration < float64(pl.TargetDuration)/2 {
			break
		}
		d = append(d, s.Duration)
	}
	return d
}

func probeSize(t *testing.T, input string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=s=x:p=0", input).CombinedOutput()
	require.NoError(t, err, "ffprobe %s: %s", input, out)
	// MPEG-TS lists the stream once more under its program; take the first.
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(first)
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func TestStartSegments(t *testing.T) {
	tests := []struct {
		seg      int
		expr     string
		initTime string
	}{
		{1, "expr:gte(t,n_forced*1)", ""},
		{2, "expr:gte(t,if(lt(n_forced,4),n_forced*1,3+(n_forced-3)*2))", "1"},
		{6, "expr:gte(t,if(lt(n_forced,4),n_forced*1,3+(n_forced-3)*6))", "1"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.expr, keyframeExpr(tc.seg))
		spec := TranscodeSpec{SourceURL: "rtsp://x/live/k", OutputDir: "/tmp/o", HasVideo: true,
			Profile: fsm.Profile{SegmentSeconds: tc.seg, Renditions: []fsm.Rendition{{Name: "a", Width: 320, Height: 180, VideoBitrateKbps: 300}}}}
		a, err := FFmpegArgs(spec)
		require.NoError(t, err)
		if tc.initTime == "" {
			require.NotContains(t, a, "-hls_init_time")
		} else {
			require.Equal(t, tc.initTime, argAfter(a, "-hls_init_time"))
		}
	}
}
