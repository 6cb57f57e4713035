package media

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
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

var pipeArg = regexp.MustCompile(`^pipe:\d+$`)

// splitArgs cuts ffmpeg's arguments into the input part (everything up to
// and including -filter_complex, or -i when there is no filter graph) and one
// group per output, each ending with its pipe:N.
func splitArgs(t *testing.T, args []string) (input []string, groups [][]string) {
	t.Helper()
	end := slices.Index(args, "-i")
	require.GreaterOrEqual(t, end, 0, "no -i in %q", args)
	end += 2
	if i := slices.Index(args, "-filter_complex"); i >= 0 {
		require.Equal(t, end, i, "-filter_complex must follow the input")
		end = i + 2
	}
	input = args[:end]
	rest := args[end:]
	for len(rest) > 0 {
		i := slices.IndexFunc(rest, pipeArg.MatchString)
		require.GreaterOrEqual(t, i, 0, "arguments after the last output: %q", rest)
		groups = append(groups, rest[:i+1])
		rest = rest[i+1:]
	}
	return input, groups
}

// fragDurationUS is what -frag_duration should be for a part target: the
// target less one AAC frame (1024 samples at 48 kHz), in microseconds.
// fragDurationUS is the -frag_duration of an output: the part target less
// one frame of that output (AAC at 48 kHz, the rendition's rate, or 15 fps
// when the rendition keeps the unknown source rate).
func fragDurationUS(partMs int, o Output) string {
	frame := 1.0 / 15
	switch {
	case o.Track.Kind == packager.Audio:
		frame = 1024.0 / 48000
	case o.Track.FrameRate > 0:
		frame = 1 / o.Track.FrameRate
	}
	return strconv.Itoa(int((float64(partMs)/1000 - frame) * 1e6))
}

func TestFFmpegArgs(t *testing.T) {
	base := TranscodeSpec{
		SourceURL: "rtsp://u:p@127.0.0.1:8554/live/KEY",
		Profile:   fsm.Profile{SegmentSeconds: 2, SegmentFormat: fsm.SegmentFMP4, Renditions: ladder3()},
		HasVideo:  true, HasAudio: true,
	}
	type check func(t *testing.T, args []string, outs []Output, input []string, groups [][]string)
	// Checks shared by several cases.
	outputsAre := func(names ...string) check {
		return func(t *testing.T, a []string, outs []Output, _ []string, groups [][]string) {
			require.Len(t, outs, len(names))
			require.Len(t, groups, len(names), "one argument group per output")
			for i, o := range outs {
				require.Equal(t, names[i], o.Track.Name)
				require.Equal(t, firstOutputFD+i, o.FD, "descriptors in order from 3")
				g := groups[i]
				require.Equal(t, "pipe:"+strconv.Itoa(o.FD), g[len(g)-1], "output %s", o.Track.Name)
				if o.Track.Name == packager.AudioTrack {
					require.Equal(t, packager.Audio, o.Track.Kind)
				} else {
					require.Equal(t, packager.Video, o.Track.Kind)
				}
			}
			require.Equal(t, "pipe:"+strconv.Itoa(firstOutputFD+len(names)-1), a[len(a)-1])
		}
	}
	// Every output is fragmented MP4 with parts of partMs.
	muxedAsCMAF := func(partMs int) check {
		return func(t *testing.T, _ []string, outs []Output, _ []string, groups [][]string) {
			for i, g := range groups {
				require.Equal(t, FormatFMP4, outs[i].Format, "output %d", i)
				require.Equal(t, "mp4", argAfter(g, "-f"), "output %d", i)
				if outs[i].Track.Kind == packager.Video {
					require.Contains(t, g, "-an", "output %d: video only", i)
				}
				flags := strings.Split(argAfter(g, "-movflags"), "+")
				for _, f := range []string{"empty_moov", "default_base_moof", "frag_keyframe"} {
					require.Contains(t, flags, f, "output %d", i)
				}
				require.Equal(t, fragDurationUS(partMs, outs[i]), argAfter(g, "-frag_duration"), "output %d", i)
				require.Equal(t, "1", argAfter(g, "-flush_packets"), "output %d", i)
			}
		}
	}
	// Video output i encodes [v<i>] with x264 at kbps, GOP gop, keyframes
	// forced every kf seconds (after the start segments when longer).
	encodes := func(i int, preset string, kbps, gop, kf int) check {
		return func(t *testing.T, _ []string, _ []Output, _ []string, groups [][]string) {
			g := groups[i]
			require.Equal(t, fmt.Sprintf("[v%d]", i), argAfter(g, "-map"))
			require.Equal(t, "libx264", argAfter(g, "-c:v"))
			require.Equal(t, preset, argAfter(g, "-preset"))
			require.Equal(t, "yuv420p", argAfter(g, "-pix_fmt"))
			require.Equal(t, fmt.Sprintf("%dk", kbps), argAfter(g, "-b:v"))
			require.Equal(t, fmt.Sprintf("%dk", kbps), argAfter(g, "-maxrate"))
			require.Equal(t, fmt.Sprintf("%dk", 2*kbps), argAfter(g, "-bufsize"))
			require.Equal(t, strconv.Itoa(gop), argAfter(g, "-g"), "GOP = fps x keyframe interval")
			require.Equal(t, strconv.Itoa(gop), argAfter(g, "-keyint_min"))
			require.Equal(t, "0", argAfter(g, "-sc_threshold"))
			require.Equal(t, keyframeExpr(kf), argAfter(g, "-force_key_frames"))
		}
	}
	// The audio output (the last) encodes AAC once at kbps.
	audioAt := func(kbps int) check {
		return func(t *testing.T, a []string, outs []Output, _ []string, groups [][]string) {
			g := groups[len(groups)-1]
			require.Equal(t, packager.AudioTrack, outs[len(outs)-1].Track.Name)
			require.Equal(t, kbps*1000, outs[len(outs)-1].Track.Bandwidth)
			require.Equal(t, "0:a:0", argAfter(g, "-map"))
			require.Contains(t, g, "-vn")
			require.Equal(t, "aac", argAfter(g, "-c:a"))
			require.Equal(t, fmt.Sprintf("%dk", kbps), argAfter(g, "-b:a"))
			require.Equal(t, "2", argAfter(g, "-ac"))
			require.Equal(t, "48000", argAfter(g, "-ar"))
			require.NotContains(t, g, "-c:v")
			require.Equal(t, 1, strings.Count(strings.Join(a, " "), "-c:a"), "audio is encoded once")
			for _, vg := range groups[:len(groups)-1] {
				require.NotContains(t, vg, "-c:a", "video outputs carry no audio")
			}
		}
	}
	tuned := func(want bool) check {
		return func(t *testing.T, _ []string, outs []Output, _ []string, groups [][]string) {
			for i, g := range groups {
				if outs[i].Track.Kind != packager.Video || argAfter(g, "-c:v") != "libx264" {
					require.NotContains(t, g, "-tune", outs[i].Track.Name)
					continue
				}
				if want {
					require.Equal(t, "zerolatency", argAfter(g, "-tune"), outs[i].Track.Name)
				} else {
					require.NotContains(t, g, "-tune", outs[i].Track.Name)
				}
			}
		}
	}
	graph := func(want string) check {
		return func(t *testing.T, a []string, _ []Output, _ []string, _ [][]string) {
			if want == "" {
				require.NotContains(t, a, "-filter_complex")
				return
			}
			require.Equal(t, want, argAfter(a, "-filter_complex"))
		}
	}
	// Every output is MPEG-TS: a rendition with its own AAC track (at
	// audioKbps[i], when the source has audio) muxed in, PAT and PMT first,
	// no mux delay, flushed packet by packet.
	muxedAsTS := func(audioKbps ...int) check {
		return func(t *testing.T, a []string, outs []Output, _ []string, groups [][]string) {
			require.Len(t, outs, len(audioKbps))
			for i, g := range groups {
				o := outs[i]
				require.Equal(t, FormatTS, o.Format, o.Track.Name)
				require.Equal(t, packager.Video, o.Track.Kind, "%s: no separate audio track", o.Track.Name)
				require.Equal(t, "mpegts", argAfter(g, "-f"), o.Track.Name)
				require.Equal(t, "0", argAfter(g, "-muxdelay"), o.Track.Name)
				require.Equal(t, "0", argAfter(g, "-muxpreload"), o.Track.Name)
				require.Equal(t, "1", argAfter(g, "-flush_packets"), o.Track.Name)
				for _, f := range []string{"-movflags", "-frag_duration", "-vn"} {
					require.NotContains(t, g, f, o.Track.Name)
				}
				video := argAfter(g, "-map")
				require.True(t, video == "0:v:0" || video == fmt.Sprintf("[v%d]", i), "%s maps %s first", o.Track.Name, video)
				kbps := audioKbps[i]
				if kbps == 0 {
					require.Contains(t, g, "-an", o.Track.Name)
					require.NotContains(t, g, "-c:a", o.Track.Name)
					require.NotContains(t, g, "0:a:0", o.Track.Name)
					continue
				}
				require.NotContains(t, g, "-an", o.Track.Name)
				require.Equal(t, "0:a:0", argAfter(g[slices.Index(g, "-map")+2:], "-map"), "%s: its audio is the second map", o.Track.Name)
				require.Equal(t, "aac", argAfter(g, "-c:a"), o.Track.Name)
				require.Equal(t, fmt.Sprintf("%dk", kbps), argAfter(g, "-b:a"), o.Track.Name)
				require.Equal(t, "2", argAfter(g, "-ac"), o.Track.Name)
				require.Equal(t, "48000", argAfter(g, "-ar"), o.Track.Name)
			}
			require.Equal(t, len(groups), strings.Count(strings.Join(a, " "), "-f mpegts"))
		}
	}
	// bandwidths checks each output's advertised BANDWIDTH.
	bandwidths := func(want ...int) check {
		return func(t *testing.T, _ []string, outs []Output, _ []string, _ [][]string) {
			var got []int
			for _, o := range outs {
				got = append(got, o.Track.Bandwidth)
			}
			require.Equal(t, want, got)
		}
	}
	ts := func(s *TranscodeSpec) {
		s.Profile.SegmentFormat = fsm.SegmentTS
		s.Profile.Latency = fsm.LatencyStandard
	}
	const scale = ":force_original_aspect_ratio=decrease:force_divisible_by=2"

	tests := []struct {
		name   string
		mutate func(*TranscodeSpec)
		err    string
		checks []check
	}{
		{
			name: "three rungs and audio from rtsp",
			checks: []check{
				outputsAre("240p", "180p", "120p", packager.AudioTrack),
				muxedAsCMAF(fsm.DefaultPartMs),
				encodes(0, "veryfast", 400, 60, 2),
				encodes(1, "veryfast", 250, 60, 2),
				encodes(2, "veryfast", 120, 60, 2),
				audioAt(96),
				tuned(false),
				graph("[0:v:0]split=3[s0][s1][s2];" +
					"[s0]scale=w=320:h=240" + scale + "[v0];" +
					"[s1]scale=w=240:h=180" + scale + "[v1];" +
					"[s2]scale=w=160:h=120" + scale + "[v2]"),
				func(t *testing.T, a []string, outs []Output, input []string, _ [][]string) {
					require.Equal(t, "tcp", argAfter(input, "-rtsp_transport"))
					require.Equal(t, rtspSocketTimeout, argAfter(input, "-timeout"))
					require.Less(t, slices.Index(a, "-rtsp_transport"), slices.Index(a, "-i"), "input options precede -i")
					require.NotContains(t, a, "-re")
					require.Equal(t, base.SourceURL, argAfter(input, "-i"))
					require.Equal(t, "pipe:1", argAfter(input, "-progress"))
					require.Contains(t, input, "-nostats")
					require.Contains(t, input, "-nostdin")
					require.Equal(t, "warning", argAfter(input, "-loglevel"))
					// Bandwidth advertises the peak: the target plus 10%.
					for i, kbps := range []int{400, 250, 120} {
						require.Equal(t, kbps*1100, outs[i].Track.Bandwidth)
						require.Zero(t, outs[i].Track.FrameRate, "source rate")
					}
				},
			},
		},
		{
			name:   "no audio, no audio output",
			mutate: func(s *TranscodeSpec) { s.HasAudio = false },
			checks: []check{
				outputsAre("240p", "180p", "120p"),
				func(t *testing.T, a []string, _ []Output, _ []string, _ [][]string) {
					require.NotContains(t, a, "0:a:0")
					require.NotContains(t, a, "-c:a")
					require.NotContains(t, strings.Join(a, " "), "pipe:6")
				},
			},
		},
		{
			name: "fps cap, preset, longer segments, realtime file source",
			mutate: func(s *TranscodeSpec) {
				s.SourceURL = "/tmp/source.ts"
				s.Realtime = true
				s.Profile.SegmentSeconds = 4
				s.Profile.VideoPreset = "ultrafast"
				s.Profile.Renditions[2].FPS = 15
			},
			checks: []check{
				outputsAre("240p", "180p", "120p", packager.AudioTrack),
				encodes(0, "ultrafast", 400, 120, 4),
				encodes(2, "ultrafast", 120, 60, 4),
				func(t *testing.T, a []string, outs []Output, input []string, _ [][]string) {
					require.NotContains(t, a, "-rtsp_transport")
					require.NotContains(t, a, "-timeout")
					require.Contains(t, input, "-re")
					require.Less(t, slices.Index(a, "-re"), slices.Index(a, "-i"), "-re is an input option")
					fc := argAfter(a, "-filter_complex")
					require.Contains(t, fc, "[s2]scale=w=160:h=120"+scale+",fps=15[v2]")
					require.Equal(t, 1, strings.Count(fc, "fps="), "only the capped rung")
					require.Equal(t, 15.0, outs[2].Track.FrameRate)
				},
			},
		},
		{
			name:   "default segment and preset",
			mutate: func(s *TranscodeSpec) { s.Profile.SegmentSeconds = 0; s.Profile.VideoPreset = "" },
			checks: []check{encodes(0, "veryfast", 400, 60, 2), encodes(1, "veryfast", 250, 60, 2)},
		},
		{
			name: "low latency",
			mutate: func(s *TranscodeSpec) {
				s.Profile.Latency = fsm.LatencyLow
				s.Profile.PartMs = 500
			},
			checks: []check{tuned(true), muxedAsCMAF(500), outputsAre("240p", "180p", "120p", packager.AudioTrack),
				encodes(0, "veryfast", 400, 30, 1)},
		},
		{
			name:   "low latency with the default part",
			mutate: func(s *TranscodeSpec) { s.Profile.Latency = fsm.LatencyLow },
			checks: []check{tuned(true), muxedAsCMAF(fsm.DefaultPartMs),
				encodes(0, "veryfast", 400, 30, 1), encodes(2, "veryfast", 120, 30, 1)},
		},
		{
			name:   "small parts",
			mutate: func(s *TranscodeSpec) { s.Profile.Latency = fsm.LatencyLow; s.Profile.PartMs = fsm.MinPartMs },
			checks: []check{muxedAsCMAF(fsm.MinPartMs)},
		},
		{
			name:   "standard latency is not tuned",
			mutate: func(s *TranscodeSpec) { s.Profile.Latency = fsm.LatencyStandard; s.Profile.PartMs = 500 },
			checks: []check{tuned(false), muxedAsCMAF(500)},
		},
		{
			name: "audio at the highest bitrate of the ladder",
			mutate: func(s *TranscodeSpec) {
				s.Profile.Renditions[2].AudioBitrateKbps = 160
			},
			checks: []check{audioAt(160)},
		},
		{
			name: "audio bitrate defaults",
			mutate: func(s *TranscodeSpec) {
				for i := range s.Profile.Renditions {
					s.Profile.Renditions[i].AudioBitrateKbps = 0
				}
			},
			checks: []check{audioAt(defaultAudioKbps), func(t *testing.T, _ []string, _ []Output, _ []string, groups [][]string) {
				require.Equal(t, "128k", argAfter(groups[3], "-b:a"))
			}},
		},
		{
			name: "passthrough rung is copied and stays out of the graph",
			mutate: func(s *TranscodeSpec) {
				s.Profile.Renditions = append([]fsm.Rendition{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000}}, s.Profile.Renditions...)
				s.Profile.Latency = fsm.LatencyLow
			},
			checks: []check{
				outputsAre("source", "240p", "180p", "120p", packager.AudioTrack),
				// Low latency: a keyframe every second, not every segment.
				encodes(1, "veryfast", 400, 30, 1),
				encodes(3, "veryfast", 120, 30, 1),
				tuned(true),
				graph("[0:v:0]split=3[s0][s1][s2];" +
					"[s0]scale=w=320:h=240" + scale + "[v1];" +
					"[s1]scale=w=240:h=180" + scale + "[v2];" +
					"[s2]scale=w=160:h=120" + scale + "[v3]"),
				func(t *testing.T, _ []string, outs []Output, _ []string, groups [][]string) {
					g := groups[0]
					require.Equal(t, "0:v:0", argAfter(g, "-map"))
					require.Equal(t, "copy", argAfter(g, "-c:v"))
					require.Contains(t, g, "-an")
					for _, f := range []string{"-force_key_frames", "-b:v", "-g", "-preset", "-tune", "-pix_fmt"} {
						require.NotContains(t, g, f, "a copied stream is not encoded")
					}
					require.Equal(t, 3000*1100, outs[0].Track.Bandwidth, "advertised bandwidth")
				},
			},
		},
		{
			name: "all passthrough: no filter graph",
			mutate: func(s *TranscodeSpec) {
				s.Profile.Renditions = []fsm.Rendition{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000}}
			},
			checks: []check{
				graph(""),
				outputsAre("source", packager.AudioTrack),
				audioAt(defaultAudioKbps),
				func(t *testing.T, _ []string, _ []Output, _ []string, groups [][]string) {
					require.Equal(t, "copy", argAfter(groups[0], "-c:v"))
					require.Equal(t, "0", argAfter(groups[0], "-copypriorss"), "a first frame without a timestamp is not copied")
				},
			},
		},
		{
			name:   "one encoded rung: no split",
			mutate: func(s *TranscodeSpec) { s.Profile.Renditions = s.Profile.Renditions[1:2] },
			checks: []check{
				graph("[0:v:0]null[s0];[s0]scale=w=240:h=180" + scale + "[v0]"),
				outputsAre("180p", packager.AudioTrack),
				encodes(0, "veryfast", 250, 60, 2),
			},
		},
		{
			name:   "ts: one MPEG-TS output per rendition with its audio",
			mutate: ts,
			checks: []check{
				outputsAre("240p", "180p", "120p"),
				muxedAsTS(96, 64, 48),
				encodes(0, "veryfast", 400, 60, 2),
				encodes(1, "veryfast", 250, 60, 2),
				encodes(2, "veryfast", 120, 60, 2),
				tuned(false),
				// The peak of video and audio: their targets plus 10%.
				bandwidths((400+96)*1100, (250+64)*1100, (120+48)*1100),
				graph("[0:v:0]split=3[s0][s1][s2];" +
					"[s0]scale=w=320:h=240" + scale + "[v0];" +
					"[s1]scale=w=240:h=180" + scale + "[v1];" +
					"[s2]scale=w=160:h=120" + scale + "[v2]"),
				func(t *testing.T, a []string, _ []Output, _ []string, _ [][]string) {
					require.Equal(t, 3, strings.Count(strings.Join(a, " "), "-c:a aac"), "audio is encoded per output")
				},
			},
		},
		{
			name: "ts: a profile stored before segment_format and latency",
			mutate: func(s *TranscodeSpec) {
				s.Profile.SegmentFormat, s.Profile.Latency, s.Profile.PartMs = "", "", 0
			},
			checks: []check{outputsAre("240p", "180p", "120p"), muxedAsTS(96, 64, 48), tuned(false)},
		},
		{
			name:   "ts: no audio",
			mutate: func(s *TranscodeSpec) { ts(s); s.HasAudio = false },
			checks: []check{
				outputsAre("240p", "180p", "120p"),
				muxedAsTS(0, 0, 0),
				bandwidths(400*1100, 250*1100, 120*1100),
			},
		},
		{
			name: "ts: default audio bitrate, fps cap, longer segments",
			mutate: func(s *TranscodeSpec) {
				ts(s)
				s.Profile.SegmentSeconds = 4
				s.Profile.Renditions[1].AudioBitrateKbps = 0
				s.Profile.Renditions[2].FPS = 15
			},
			checks: []check{
				muxedAsTS(96, defaultAudioKbps, 48),
				encodes(0, "veryfast", 400, 120, 4),
				encodes(2, "veryfast", 120, 60, 4),
				bandwidths((400+96)*1100, (250+128)*1100, (120+48)*1100),
				func(t *testing.T, _ []string, outs []Output, _ []string, _ [][]string) {
					require.Equal(t, 15.0, outs[2].Track.FrameRate)
				},
			},
		},
		{
			name: "ts: passthrough rung is copied with its audio encoded",
			mutate: func(s *TranscodeSpec) {
				ts(s)
				s.Profile.Renditions = append([]fsm.Rendition{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000}}, s.Profile.Renditions...)
			},
			checks: []check{
				outputsAre("source", "240p", "180p", "120p"),
				muxedAsTS(defaultAudioKbps, 96, 64, 48),
				encodes(1, "veryfast", 400, 60, 2),
				func(t *testing.T, _ []string, _ []Output, _ []string, groups [][]string) {
					require.Equal(t, "0:v:0", argAfter(groups[0], "-map"))
					require.Equal(t, "copy", argAfter(groups[0], "-c:v"))
				},
			},
		},
		{
			// The rules are fsm's (Profile.ValidateLadder), also for a
			// profile that did not come through the API.
			name:   "ts and low latency",
			mutate: func(s *TranscodeSpec) { s.Profile.SegmentFormat = fsm.SegmentTS; s.Profile.Latency = fsm.LatencyLow },
			err:    "low latency needs segment_format fmp4",
		},
		{name: "upper case name", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "HD" }, err: "renditions[1].name"},
		{name: "bitrate in bps", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].VideoBitrateKbps = 2_500_000 }, err: "renditions[1].video_bitrate_kbps"},
		{name: "placebo preset", mutate: func(s *TranscodeSpec) { s.Profile.VideoPreset = "placebo" }, err: "video_preset"},
		{name: "no source", mutate: func(s *TranscodeSpec) { s.SourceURL = "" }, err: "no source"},
		{name: "no video", mutate: func(s *TranscodeSpec) { s.HasVideo = false }, err: "no video"},
		{name: "no renditions", mutate: func(s *TranscodeSpec) { s.Profile.Renditions = nil }, err: "renditions must list"},
		{name: "bad preset", mutate: func(s *TranscodeSpec) { s.Profile.VideoPreset = "turbo" }, err: "video_preset"},
		{name: "duplicate name", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "240p" }, err: "twice"},
		{name: "odd width", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[0].Width = 321 }, err: "even"},
		{name: "odd height", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[2].Height = 119 }, err: "even"},
		{name: "no size", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[2].Width = 0 }, err: "renditions[2].width"},
		{name: "name audio is reserved", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = packager.AudioTrack }, err: "reserved"},
		{name: "unsafe name", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "../x" }, err: "name"},
		{name: "name with space", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].Name = "a b" }, err: "name"},
		{name: "zero video bitrate", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].VideoBitrateKbps = 0 }, err: "video_bitrate_kbps"},
		{name: "negative video bitrate", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[1].VideoBitrateKbps = -5 }, err: "video_bitrate_kbps"},
		{name: "passthrough without bitrate", mutate: func(s *TranscodeSpec) {
			s.Profile.Renditions[0] = fsm.Rendition{Name: "src", Passthrough: true}
		}, err: "video_bitrate_kbps"},
		{name: "negative segment", mutate: func(s *TranscodeSpec) { s.Profile.SegmentSeconds = -1 }, err: "segment_seconds"},
		{name: "negative fps", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[0].FPS = -1 }, err: "renditions[0].fps"},
		{name: "negative audio bitrate", mutate: func(s *TranscodeSpec) { s.Profile.Renditions[0].AudioBitrateKbps = -1 }, err: "renditions[0].audio_bitrate_kbps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Profile.Renditions = ladder3()
			if tc.mutate != nil {
				tc.mutate(&spec)
			}
			args, outs, err := FFmpegArgs(spec)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Nil(t, args)
				require.Nil(t, outs)
				return
			}
			require.NoError(t, err)
			input, groups := splitArgs(t, args)
			for _, c := range tc.checks {
				c(t, args, outs, input, groups)
			}
		})
	}
}

func TestTracksHave(t *testing.T) {
	for _, tc := range []struct {
		tracks       []string
		video, audio bool
	}{
		{[]string{"H264", "MPEG-4 Audio"}, true, true},
		{[]string{"H265"}, true, false},
		{[]string{"Opus"}, false, true},
		{[]string{"H264", "MPEG-4 Audio LATM"}, true, true},
		{[]string{"Klingon"}, false, false},
		{nil, false, false},
	} {
		v, a := TracksHave(tc.tracks)
		require.Equal(t, tc.video, v, tc.tracks)
		require.Equal(t, tc.audio, a, tc.tracks)
	}
}

func TestLatencyOfProfile(t *testing.T) {
	for _, tc := range []struct {
		latency string
		partMs  int
		low     bool
		part    float64
	}{
		{"", 0, false, 0.334}, // stored before latency existed
		{fsm.LatencyStandard, 500, false, 0.5},
		{fsm.LatencyLow, 0, true, 0.334},
		{fsm.LatencyLow, 200, true, 0.2},
	} {
		p := fsm.Profile{Latency: tc.latency, PartMs: tc.partMs}
		require.Equal(t, tc.low, LowLatency(p), "%+v", tc)
		require.InDelta(t, tc.part, PartSeconds(p), 1e-9, "%+v", tc)
	}
}

// TestScheduleMatchesKeyframes evaluates ffmpeg's -force_key_frames
// expression frame by frame, as ffmpeg does, and checks that the keyframes
// it forces fall on the boundaries of the packager's schedule.
func TestScheduleMatchesKeyframes(t *testing.T) {
	tests := []struct {
		seg        int
		schedule   packager.Schedule
		boundaries []float64 // the first few, after 0
	}{
		{1, packager.Schedule{Seconds: 1}, []float64{1, 2, 3, 4, 5, 6}},
		{0, packager.Schedule{StartCount: 3, StartSeconds: 1, Seconds: 2}, []float64{1, 2, 3, 5, 7, 9}},
		{2, packager.Schedule{StartCount: 3, StartSeconds: 1, Seconds: 2}, []float64{1, 2, 3, 5, 7, 9}},
		{6, packager.Schedule{StartCount: 3, StartSeconds: 1, Seconds: 6}, []float64{1, 2, 3, 9, 15, 21}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.seg), func(t *testing.T) {
			p := fsm.Profile{SegmentSeconds: tc.seg}
			s := Schedule(p)
			require.Equal(t, tc.schedule, s)
			want := scheduleBoundaries(s, 30)
			require.Equal(t, tc.boundaries, want[1:len(tc.boundaries)+1])

			seg := tc.seg
			if seg == 0 {
				seg = 2
			}
			expr := keyframeExpr(seg)
			for _, fps := range []float64{30, 25, 29.97, 15, 60} {
				got := forcedKeyframes(t, expr, fps, 30)
				require.Len(t, got, len(want), "fps %v: %v", fps, got)
				for i := range want {
					// The first frame at or after each boundary.
					require.GreaterOrEqual(t, got[i], want[i]-1e-9, "fps %v keyframe %d", fps, i)
					require.Less(t, got[i], want[i]+1/fps, "fps %v keyframe %d", fps, i)
				}
			}
		})
	}
}

// scheduleBoundaries lists where a schedule ends segments, starting with 0,
// below limit seconds.
func scheduleBoundaries(s packager.Schedule, limit float64) []float64 {
	out := []float64{0}
	for i := 1; i <= s.StartCount && s.StartSeconds > 0; i++ {
		out = append(out, float64(i)*s.StartSeconds)
	}
	for b := out[len(out)-1] + s.Seconds; b < limit; b += s.Seconds {
		out = append(out, b)
	}
	return out
}

// forcedKeyframes runs a -force_key_frames "expr:" over frames at fps for
// seconds: ffmpeg evaluates it for every frame with t the frame's time, and
// forces a keyframe (and counts it in n_forced) when it is non-zero.
func forcedKeyframes(t *testing.T, expr string, fps float64, seconds float64) []float64 {
	t.Helper()
	body, ok := strings.CutPrefix(expr, "expr:")
	require.True(t, ok, expr)
	vars := map[string]float64{"n_forced": 0, "n": 0, "prev_forced_n": math.NaN(), "prev_forced_t": math.NaN()}
	var out []float64
	for i := 0; float64(i)/fps < seconds; i++ {
		ft := float64(i) / fps
		vars["t"] = ft
		v, err := evalExpr(body, vars)
		require.NoError(t, err, expr)
		if v != 0 {
			out = append(out, ft)
			vars["prev_forced_n"], vars["prev_forced_t"] = vars["n"], ft
			vars["n_forced"]++
			continue
		}
		vars["n"]++
	}
	return out
}

// evalExpr evaluates the subset of ffmpeg's expression language keyframeExpr
// uses: numbers, variables, + - * /, parentheses and the functions gte, gt,
// lte, lt, eq, if, min, max.
func evalExpr(s string, vars map[string]float64) (float64, error) {
	e := &exprParser{s: strings.ReplaceAll(s, " ", ""), vars: vars}
	v, err := e.sum()
	if err == nil && e.pos != len(e.s) {
		err = fmt.Errorf("trailing %q", e.s[e.pos:])
	}
	return v, err
}

type exprParser struct {
	s    string
	pos  int
	vars map[string]float64
}

func (e *exprParser) peek() byte {
	if e.pos < len(e.s) {
		return e.s[e.pos]
	}
	return 0
}

func (e *exprParser) sum() (float64, error) {
	v, err := e.product()
	for err == nil && (e.peek() == '+' || e.peek() == '-') {
		op := e.peek()
		e.pos++
		var r float64
		if r, err = e.product(); op == '+' {
			v += r
		} else {
			v -= r
		}
	}
	return v, err
}

func (e *exprParser) product() (float64, error) {
	v, err := e.unary()
	for err == nil && (e.peek() == '*' || e.peek() == '/') {
		op := e.peek()
		e.pos++
		var r float64
		if r, err = e.unary(); op == '*' {
			v *= r
		} else {
			v /= r
		}
	}
	return v, err
}

func (e *exprParser) unary() (float64, error) {
	if e.peek() == '-' {
		e.pos++
		v, err := e.unary()
		return -v, err
	}
	return e.primary()
}

func (e *exprParser) primary() (float64, error) {
	start := e.pos
	switch c := e.peek(); {
	case c == '(':
		e.pos++
		v, err := e.sum()
		if err != nil {
			return 0, err
		}
		if e.peek() != ')' {
			return 0, fmt.Errorf("missing ) at %d", e.pos)
		}
		e.pos++
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		for e.pos < len(e.s) && (e.s[e.pos] >= '0' && e.s[e.pos] <= '9' || e.s[e.pos] == '.') {
			e.pos++
		}
		return strconv.ParseFloat(e.s[start:e.pos], 64)
	case unicode.IsLetter(rune(c)):
		for e.pos < len(e.s) && (unicode.IsLetter(rune(e.s[e.pos])) || unicode.IsDigit(rune(e.s[e.pos])) || e.s[e.pos] == '_') {
			e.pos++
		}
		name := e.s[start:e.pos]
		if e.peek() != '(' {
			v, ok := e.vars[name]
			if !ok {
				return 0, fmt.Errorf("unknown variable %q", name)
			}
			return v, nil
		}
		e.pos++
		var args []float64
		for {
			v, err := e.sum()
			if err != nil {
				return 0, err
			}
			args = append(args, v)
			if e.peek() == ',' {
				e.pos++
				continue
			}
			if e.peek() != ')' {
				return 0, fmt.Errorf("missing ) after %s( at %d", name, e.pos)
			}
			e.pos++
			break
		}
		return callExpr(name, args)
	}
	return 0, fmt.Errorf("unexpected %q at %d", e.peek(), e.pos)
}

func callExpr(name string, a []float64) (float64, error) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	two := map[string]func(x, y float64) float64{
		"gte": func(x, y float64) float64 { return b(x >= y) },
		"gt":  func(x, y float64) float64 { return b(x > y) },
		"lte": func(x, y float64) float64 { return b(x <= y) },
		"lt":  func(x, y float64) float64 { return b(x < y) },
		"eq":  func(x, y float64) float64 { return b(x == y) },
		"min": math.Min,
		"max": math.Max,
	}
	if f, ok := two[name]; ok {
		if len(a) != 2 {
			return 0, fmt.Errorf("%s takes 2 arguments, got %d", name, len(a))
		}
		return f(a[0], a[1]), nil
	}
	if name == "if" {
		switch len(a) {
		case 2:
			if a[0] != 0 {
				return a[1], nil
			}
			return 0, nil
		case 3:
			if a[0] != 0 {
				return a[1], nil
			}
			return a[2], nil
		}
		return 0, fmt.Errorf("if takes 2 or 3 arguments, got %d", len(a))
	}
	return 0, fmt.Errorf("unknown function %q", name)
}

func TestEvalExpr(t *testing.T) {
	vars := map[string]float64{"t": 2.5, "n_forced": 3}
	for _, tc := range []struct {
		expr string
		want float64
	}{
		{"1+2*3", 7},
		{"(1+2)*3", 9},
		{"-2+t", 0.5},
		{"gte(t,2)", 1},
		{"gte(t,n_forced)", 0},
		{"if(lt(n_forced,4),n_forced*1,3+(n_forced-3)*2)", 3},
		{"if(0,5)", 0},
		{"max(1,t)/5", 0.5},
	} {
		got, err := evalExpr(tc.expr, vars)
		require.NoError(t, err, tc.expr)
		require.InDelta(t, tc.want, got, 1e-12, tc.expr)
	}
	for _, bad := range []string{"foo(1)", "x", "1+", "gte(1", "(1"} {
		_, err := evalExpr(bad, vars)
		require.Error(t, err, bad)
	}
}

func TestFFmpegArgsAudioCopy(t *testing.T) {
	pass := fsm.Rendition{Name: "src", Width: 320, Height: 240, VideoBitrateKbps: 800, AudioBitrateKbps: 96, Passthrough: true}
	enc := ladder3()[0]
	for _, tc := range []struct {
		name     string
		format   string
		rs       []fsm.Rendition
		aac      bool
		rate     int
		copied   []bool // per audio-carrying output: copied, else encoded
		fragRate int    // CMAF: the sample rate the audio fragments are sized for
	}{
		{"passthrough ladder, AAC-LC source: copied", fsm.SegmentFMP4, []fsm.Rendition{pass}, true, 44100, []bool{true}, 44100},
		{"passthrough ladder, other audio: encoded", fsm.SegmentFMP4, []fsm.Rendition{pass}, false, 44100, []bool{false}, 48000},
		{"passthrough ladder, unknown rate: encoded", fsm.SegmentFMP4, []fsm.Rendition{pass}, true, 0, []bool{false}, 48000},
		{"mixed ladder shares encoded audio", fsm.SegmentFMP4, []fsm.Rendition{pass, enc}, true, 48000, []bool{false}, 48000},
		{"encoded ladder", fsm.SegmentFMP4, []fsm.Rendition{enc}, true, 48000, []bool{false}, 48000},
		{"MPEG-TS: each passthrough rendition copies", fsm.SegmentTS, []fsm.Rendition{pass, enc}, true, 48000, []bool{true, false}, 0},
		{"MPEG-TS, other audio: encoded", fsm.SegmentTS, []fsm.Rendition{pass}, false, 48000, []bool{false}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fsm.Profile{SegmentSeconds: 2, SegmentFormat: tc.format, Latency: fsm.LatencyLow, PartMs: 500, Renditions: tc.rs}
			if tc.format == fsm.SegmentTS {
				p.Latency = fsm.LatencyStandard
			}
			args, outs, err := FFmpegArgs(TranscodeSpec{
				SourceURL: "rtsp://127.0.0.1:8554/live/x", Profile: p, HasVideo: true, HasAudio: true,
				SourceAudioAAC: tc.aac, SourceAudioRate: tc.rate,
			})
			require.NoError(t, err)
			_, groups := splitArgs(t, args)
			var audio [][]string
			for i, g := range groups {
				if slices.Contains(g, "-c:a") {
					audio = append(audio, g)
					if tc.format == fsm.SegmentFMP4 {
						require.Equal(t, packager.AudioTrack, outs[i].Track.Name)
					}
				}
			}
			require.Len(t, audio, len(tc.copied))
			for i, g := range audio {
				if tc.copied[i] {
					require.Equal(t, "copy", argAfter(g, "-c:a"), "group %d", i)
					require.NotContains(t, g, "-b:a", "a copy has the source's bitrate")
					require.NotContains(t, g, "-ar")
					if tc.format == fsm.SegmentFMP4 {
						require.Equal(t, "aac_adtstoasc", argAfter(g, "-bsf:a"))
					}
				} else {
					require.Equal(t, "aac", argAfter(g, "-c:a"), "group %d", i)
					require.Equal(t, "48000", argAfter(g, "-ar"))
				}
			}
			if tc.format == fsm.SegmentFMP4 {
				frame := 1024 / float64(tc.fragRate)
				want := strconv.Itoa(int((0.5 - frame) * 1e6))
				require.Equal(t, want, argAfter(audio[0], "-frag_duration"), "fragments of one frame less than the part")
			}
		})
	}
}
