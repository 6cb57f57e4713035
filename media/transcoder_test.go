package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runTranscoder runs tr in the background; the returned func cancels it and
// checks that Run returns nil within its stop timeout plus a second.
func runTranscoder(t *testing.T, tr *Transcoder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
			t.Logf("transcoder stopped in %s", time.Since(start).Round(time.Millisecond))
		case <-time.After(tr.stopTimeout + time.Second):
			t.Fatalf("Run did not return within StopTimeout+1s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// hlsPlaylist is a media playlist of the packager as a test reads it.
type hlsPlaylist struct {
	body          string
	version       int
	target        int
	mediaSequence uint64
	discSequence  uint64
	partTarget    float64
	discs         int       // EXT-X-DISCONTINUITY lines
	segs          []hlsSeg  // complete segments
	parts         []float64 // EXT-X-PART durations
	independent   int       // parts with INDEPENDENT=YES
}

type hlsSeg struct {
	uri  string
	msn  uint64 // from the URI
	dur  float64
	disc bool
	init string
	pdt  time.Time
}

var segmentURI = regexp.MustCompile(`^[0-9a-z]+-(\d+)\.(?:m4s|ts)$`)

func parseHLS(t *testing.T, body []byte) hlsPlaylist {
	t.Helper()
	p := hlsPlaylist{body: string(body)}
	sc := bufio.NewScanner(bytes.NewReader(body))
	require.True(t, sc.Scan())
	require.Equal(t, "#EXTM3U", sc.Text())
	var (
		disc bool
		init string
		pdt  time.Time
		dur  float64
	)
	for sc.Scan() {
		line := sc.Text()
		tag, val, _ := strings.Cut(line, ":")
		var err error
		switch tag {
		case "#EXT-X-VERSION":
			p.version, err = strconv.Atoi(val)
		case "#EXT-X-TARGETDURATION":
			p.target, err = strconv.Atoi(val)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.mediaSequence, err = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-DISCONTINUITY-SEQUENCE":
			p.discSequence, err = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-PART-INF":
			p.partTarget, err = strconv.ParseFloat(parseAttributes(val)["PART-TARGET"], 64)
		case "#EXT-X-DISCONTINUITY":
			p.discs++
			disc = true
		case "#EXT-X-MAP":
			init = parseAttributes(val)["URI"]
		case "#EXT-X-PROGRAM-DATE-TIME":
			pdt, err = time.Parse(time.RFC3339Nano, val)
		case "#EXT-X-PART":
			a := parseAttributes(val)
			var d float64
			d, err = strconv.ParseFloat(a["DURATION"], 64)
			p.parts = append(p.parts, d)
			if a["INDEPENDENT"] == "YES" {
				p.independent++
			}
		case "#EXTINF":
			d, _, _ := strings.Cut(val, ",")
			dur, err = strconv.ParseFloat(d, 64)
		default:
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			m := segmentURI.FindStringSubmatch(line)
			require.NotNil(t, m, "segment URI %q", line)
			msn, err := strconv.ParseUint(m[1], 10, 64)
			require.NoError(t, err)
			p.segs = append(p.segs, hlsSeg{uri: line, msn: msn, dur: dur, disc: disc, init: init, pdt: pdt})
			disc = false
		}
		require.NoError(t, err, "line %q", line)
	}
	return p
}

// seam is the index of the first segment after the discontinuity, -1 if none.
func (p hlsPlaylist) seam() int {
	for i, s := range p.segs {
		if s.disc {
			return i
		}
	}
	return -1
}

// msns lists the numbers of the complete segments.
func (p hlsPlaylist) msns() []uint64 {
	out := make([]uint64, len(p.segs))
	for i, s := range p.segs {
		out[i] = s.msn
	}
	return out
}

// mediaPlaylist fetches a track's media playlist; ok is false while the
// stream does not have it yet.
func mediaPlaylist(t *testing.T, s *packager.Stream, track string) (hlsPlaylist, bool) {
	t.Helper()
	f, err := s.Serve(context.Background(), track+"/"+packager.MediaName, nil)
	if errors.Is(err, packager.ErrNotFound) {
		return hlsPlaylist{}, false
	}
	require.NoError(t, err)
	require.Equal(t, "playlist", f.Kind)
	return parseHLS(t, f.Body), true
}

// serveFile fetches a file of the stream by its name.
func serveFile(t *testing.T, s *packager.Stream, name string) []byte {
	t.Helper()
	f, err := s.Serve(context.Background(), name, nil)
	require.NoError(t, err, name)
	require.NotEmpty(t, f.Body, name)
	return f.Body
}

// probeSegment writes a segment behind its init segment to a file, as a
// player would append them, and returns what ffprobe decodes of its first
// stream: "WxH" for video, "codec rate channels" for audio.
func probeSegment(t *testing.T, s *packager.Stream, track string, seg hlsSeg) string {
	t.Helper()
	require.NotEmpty(t, seg.init, "segment %s has no EXT-X-MAP", seg.uri)
	data := append(serveFile(t, s, track+"/"+seg.init), serveFile(t, s, track+"/"+seg.uri)...)
	path := filepath.Join(t.TempDir(), track+".mp4")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	entries := "stream=width,height"
	if track == packager.AudioTrack {
		entries = "stream=codec_name,sample_rate,channels"
	}
	// -count_frames decodes the whole segment, not just its header.
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", entries+",nb_read_frames",
		"-of", "csv=s=x:p=0", path).CombinedOutput()
	require.NoError(t, err, "ffprobe %s %s: %s", track, seg.uri, out)
	fields := strings.Split(strings.TrimSpace(string(out)), "x")
	require.GreaterOrEqual(t, len(fields), 2, "ffprobe: %s", out)
	frames, err := strconv.Atoi(fields[len(fields)-1])
	require.NoError(t, err, "ffprobe: %s", out)
	require.Positive(t, frames, "%s %s decodes to no frames", track, seg.uri)
	if track == packager.AudioTrack {
		return strings.Join(fields[:len(fields)-1], " ")
	}
	return strings.Join(fields[:len(fields)-1], "x")
}

// testLadder is two small renditions of the 320x180 test source.
func testLadder() []fsm.Rendition {
	return []fsm.Rendition{
		{Name: "180p", Width: 320, Height: 180, VideoBitrateKbps: 300, AudioBitrateKbps: 64},
		{Name: "90p", Width: 160, Height: 90, VideoBitrateKbps: 100, AudioBitrateKbps: 32},
	}
}

// TestTranscoderPackagesLadder runs real ffmpeg on a short file as a live
// source into the packager, through one restart (the file ends, ffmpeg exits,
// the supervisor starts it again).
func TestTranscoderPackagesLadder(t *testing.T) {
	requireFFmpeg(t)
	// Three complete segments need a little over 3 s of the first run; the
	// second run must not end (a second seam) before the checks after the
	// first one.
	const sourceSeconds = 5
	src := makeSource(t, sourceSeconds)
	sizes := map[string]string{"180p": "320x180", "90p": "160x90"}

	for _, tc := range []struct {
		name    string
		latency string
		partMs  int
	}{
		{"low latency", fsm.LatencyLow, 334},
		{"standard", fsm.LatencyStandard, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			profile := fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", SegmentFormat: fsm.SegmentFMP4, Latency: tc.latency, PartMs: tc.partMs, Renditions: testLadder()}
			cfg := packager.Config{TargetDuration: 1, Schedule: Schedule(profile), Window: 30}
			if LowLatency(profile) {
				cfg.PartTarget = PartSeconds(profile)
			}
			stream := packager.New(cfg)
			tr, err := NewTranscoder(TranscoderConfig{
				Spec: TranscodeSpec{
					SourceURL: src, Realtime: true, HasVideo: true, HasAudio: true, Profile: profile,
				},
				Stream: stream, StopTimeout: 2 * time.Second,
			})
			require.NoError(t, err)
			tracks := []string{"180p", "90p", packager.AudioTrack}
			var names []string
			for _, ts := range tr.Tracks() {
				names = append(names, ts.Name)
			}
			require.Equal(t, tracks, names)

			start := time.Now()
			stop := runTranscoder(t, tr)
			select {
			case <-tr.Active():
				t.Logf("active after %s", time.Since(start).Round(time.Millisecond))
			case <-time.After(15 * time.Second):
				t.Fatal("transcoder never became active")
			}
			require.True(t, stream.Live())

			// The first run: three segments of a second in every track.
			pls := map[string]hlsPlaylist{}
			waitFor(t, 10*time.Second, "three segments per track and progress", func() (bool, string) {
				var state []string
				for _, name := range tracks {
					pl, ok := mediaPlaylist(t, stream, name)
					if !ok || len(pl.segs) < 3 {
						state = append(state, fmt.Sprintf("%s: %d segments", name, len(pl.segs)))
						continue
					}
					pls[name] = pl
				}
				st := tr.Stats()
				return len(state) == 0 && st.Running && st.Frame > 0, fmt.Sprintf("%v stats=%+v", state, st)
			})
			require.Zero(t, tr.Restarts(), "the source is longer than this")
			first := pls["180p"].segs[0].msn
			require.InDelta(t, float64(time.Now().Unix()), float64(first), 60, "numbering starts at the unix time")
			for _, name := range tracks {
				pl := pls[name]
				t.Logf("%s, first run:\n%s", name, pl.body)
				require.Equal(t, 1, pl.target, name)
				require.Zero(t, pl.discs, name)
				require.Equal(t, first, pl.mediaSequence, "%s: renditions are numbered alike", name)
				// Video cuts exactly on the forced keyframes; audio at the first
				// of its fragments (about a part long, not aligned to the
				// schedule) that starts within the cut tolerance of a boundary
				// or later, so its segments are off by up to a fragment.
				tolerance := 0.1
				if name == packager.AudioTrack {
					tolerance = 0.35
				}
				for i, sg := range pl.segs[:3] {
					require.Equal(t, first+uint64(i), sg.msn, "%s segment %d", name, i)
					require.Equal(t, pl.mediaSequence+uint64(i), sg.msn, "%s: URI and MEDIA-SEQUENCE agree", name)
					require.InDelta(t, 1.0, sg.dur, tolerance, "%s segment %d", name, i)
				}
				if LowLatency(profile) {
					require.Equal(t, 9, pl.version, name)
					require.InDelta(t, 0.334, pl.partTarget, 1e-9, name)
					require.NotEmpty(t, pl.parts, "%s: low latency lists parts", name)
					for _, d := range pl.parts {
						require.LessOrEqual(t, d, pl.partTarget, "%s: part longer than PART-TARGET", name)
					}
					require.Contains(t, pl.body, "#EXT-X-PRELOAD-HINT:TYPE=PART", name)
					if name != packager.AudioTrack {
						require.Positive(t, pl.independent, "%s: keyframe parts are INDEPENDENT", name)
					}
				} else {
					require.Equal(t, 6, pl.version, name)
					require.NotContains(t, pl.body, "#EXT-X-PART", "%s: standard latency has no parts", name)
					require.NotContains(t, pl.body, "PRELOAD-HINT", name)
				}
				want := "aac 48000 2"
				if size, ok := sizes[name]; ok {
					want = size
				}
				require.Equal(t, want, probeSegment(t, stream, name, pl.segs[1]), name)
			}
			// Both video renditions cut at the same instants.
			for i := range 3 {
				require.InDelta(t, pls["180p"].segs[i].dur, pls["90p"].segs[i].dur, 0.001, "segment %d", i)
			}

			mv := string(serveFile(t, stream, packager.MultivariantName))
			t.Logf("multivariant:\n%s", mv)
			variants, err := ParseMasterPlaylist(strings.NewReader(mv))
			require.NoError(t, err)
			require.Len(t, variants, 2)
			for i, name := range []string{"180p", "90p"} {
				v := variants[i]
				require.Equal(t, name+"/"+packager.MediaName, v.URI)
				require.Regexp(t, `^avc1\.[0-9a-fA-F]{6},mp4a\.40\.2$`, v.Codecs, name)
				require.Equal(t, sizes[name], v.Resolution, name)
				require.Positive(t, v.Bandwidth, name)
			}
			require.Regexp(t, `(?m)^#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",.*URI="audio/index\.m3u8"$`, mv)
			require.Equal(t, 2, strings.Count(mv, `AUDIO="audio"`), "every variant names the audio group")

			// The file ends, ffmpeg exits and runs again: a new generation
			// behind one discontinuity, numbered on from the first.
			waitFor(t, 15*time.Second, "a restart and a segment after the seam", func() (bool, string) {
				if tr.Restarts() < 1 {
					return false, "no restart yet"
				}
				var state []string
				for _, name := range tracks {
					pl, _ := mediaPlaylist(t, stream, name)
					if pl.seam() < 0 {
						state = append(state, fmt.Sprintf("%s: no complete segment after a seam in %d", name, len(pl.segs)))
						continue
					}
					pls[name] = pl
				}
				return len(state) == 0, strings.Join(state, "; ")
			})
			t.Logf("restarted after %s", time.Since(start).Round(time.Millisecond))
			var seamMSN uint64
			for _, name := range tracks {
				pl := pls[name]
				t.Logf("%s, after the restart:\n%s", name, pl.body)
				require.Equal(t, 1, pl.discs, "%s: exactly one discontinuity", name)
				require.Equal(t, 1, pl.target, "%s: target duration unchanged", name)
				require.Zero(t, pl.discSequence, name)
				require.Equal(t, first, pl.mediaSequence, name)
				i := pl.seam()
				before, after := pl.segs[i-1], pl.segs[i]
				// Not fatal, so that one broken track still lets the others
				// (and the checks below) report.
				assert.Equal(t, before.msn+1, after.msn, "%s: MSN continues across the seam", name)
				for i, sg := range pl.segs {
					if !assert.Equal(t, pl.mediaSequence+uint64(i), sg.msn,
						"%s: segment %d: the URI's number and MEDIA-SEQUENCE + position disagree", name, i) {
						break
					}
				}
				require.NotEqual(t, before.init, after.init, "%s: the new run has its own init segment", name)
				require.False(t, after.pdt.Before(before.pdt.Add(time.Duration(before.dur*float64(time.Second))).Add(-time.Millisecond)),
					"%s: program date time never goes back (%s + %.3f > %s)", name, before.pdt, before.dur, after.pdt)
				// Each track continues its own numbering; the old run may
				// have left one track a (tiny) segment short of another,
				// never more.
				if seamMSN == 0 {
					seamMSN = after.msn
				}
				require.InDelta(t, float64(seamMSN), float64(after.msn), 1, "%s: the tracks restart within one number of each other", name)
				if name != packager.AudioTrack {
					require.InDelta(t, 1.0, after.dur, 0.1, "%s: first segment after the seam", name)
					require.Equal(t, sizes[name], probeSegment(t, stream, name, after), name)
				} else {
					require.Equal(t, "aac 48000 2", probeSegment(t, stream, name, after))
				}
			}

			stop()
			require.False(t, tr.Stats().Running)
			require.False(t, stream.Live(), "the last generation closed")
			require.False(t, stream.Ended(), "the transcoder never ends the stream")
			require.GreaterOrEqual(t, tr.Restarts(), 1)
		})
	}
}

// probeTSSegment fetches a TS segment as a player would (no init segment)
// and returns what ffprobe decodes of it: "WxH" of its video, then "codec
// rate channels" of its audio, if any.
func probeTSSegment(t *testing.T, s *packager.Stream, track string, seg hlsSeg) []string {
	t.Helper()
	require.Empty(t, seg.init, "segment %s has an EXT-X-MAP", seg.uri)
	f, err := s.Serve(context.Background(), track+"/"+seg.uri, nil)
	require.NoError(t, err, seg.uri)
	require.Equal(t, "video/mp2t", f.ContentType, seg.uri)
	require.NotEmpty(t, f.Body, seg.uri)
	path := filepath.Join(t.TempDir(), track+".ts")
	require.NoError(t, os.WriteFile(path, f.Body, 0o644))
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,width,height,codec_name,sample_rate,channels,nb_read_frames", "-of", "json", path).Output()
	require.NoError(t, err, "ffprobe %s %s: %s", track, seg.uri, out)
	var probe struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			SampleRate   string `json:"sample_rate"`
			Channels     int    `json:"channels"`
			NbReadFrames string `json:"nb_read_frames"`
		}
	}
	require.NoError(t, json.Unmarshal(out, &probe), "%s", out)
	var got []string
	for _, st := range probe.Streams {
		frames, err := strconv.Atoi(st.NbReadFrames)
		require.NoError(t, err, "ffprobe: %s", out)
		require.Positive(t, frames, "%s %s: its %s decodes to no frames", track, seg.uri, st.CodecType)
		switch st.CodecType {
		case "video":
			got = append(got, fmt.Sprintf("%dx%d", st.Width, st.Height))
		case "audio":
			got = append(got, fmt.Sprintf("%s %s %d", st.CodecName, st.SampleRate, st.Channels))
		}
	}
	return got
}

// TestTranscoderPackagesTS runs real ffmpeg with a ts profile: one MPEG-TS
// output per rendition, audio muxed in, cut by the packager into .ts
// segments without init segments, through one restart.
func TestTranscoderPackagesTS(t *testing.T) {
	requireFFmpeg(t)
	t.Parallel()
	// A TS chunk goes out when the next keyframe has been read, and a
	// segment is complete when the next one starts: three complete
	// segments need about five seconds of the first run.
	const sourceSeconds = 6
	src := makeSource(t, sourceSeconds)
	sizes := map[string]string{"180p": "320x180", "90p": "160x90"}
	tracks := []string{"180p", "90p"}

	profile := fsm.Profile{SegmentSeconds: 1, VideoPreset: "ultrafast", SegmentFormat: fsm.SegmentTS,
		Latency: fsm.LatencyStandard, Renditions: testLadder()}
	stream := packager.New(packager.Config{TargetDuration: 1, Schedule: Schedule(profile), Window: 30})
	tr, err := NewTranscoder(TranscoderConfig{
		Spec:   TranscodeSpec{SourceURL: src, Realtime: true, HasVideo: true, HasAudio: true, Profile: profile},
		Stream: stream, StopTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	require.Equal(t, []packager.TrackSpec{
		{Name: "180p", Kind: packager.Video, Bandwidth: (300 + 64) * 1100},
		{Name: "90p", Kind: packager.Video, Bandwidth: (100 + 32) * 1100},
	}, tr.Tracks(), "no audio track: every variant carries its own")

	start := time.Now()
	stop := runTranscoder(t, tr)
	select {
	case <-tr.Active():
		t.Logf("active after %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("transcoder never became active")
	}

	pls := map[string]hlsPlaylist{}
	waitFor(t, 15*time.Second, "three segments per track", func() (bool, string) {
		var state []string
		for _, name := range tracks {
			pl, ok := mediaPlaylist(t, stream, name)
			if !ok || len(pl.segs) < 3 {
				state = append(state, fmt.Sprintf("%s: %d segments", name, len(pl.segs)))
				continue
			}
			pls[name] = pl
		}
		return len(state) == 0, strings.Join(state, "; ")
	})
	t.Logf("three segments after %s", time.Since(start).Round(time.Millisecond))
	require.Zero(t, tr.Restarts(), "the source is longer than this")
	first := pls["180p"].segs[0].msn
	for _, name := range tracks {
		pl := pls[name]
		t.Logf("%s, first run:\n%s", name, pl.body)
		require.Equal(t, 6, pl.version, name)
		require.Equal(t, 1, pl.target, name)
		require.Zero(t, pl.discs, name)
		require.NotContains(t, pl.body, "#EXT-X-MAP", "%s: TS segments have no init segment", name)
		require.NotContains(t, pl.body, "#EXT-X-PART", name)
		require.Equal(t, first, pl.mediaSequence, "%s: renditions are numbered alike", name)
		for i, sg := range pl.segs[:3] {
			require.True(t, strings.HasSuffix(sg.uri, ".ts"), sg.uri)
			require.Equal(t, first+uint64(i), sg.msn, "%s segment %d", name, i)
			require.InDelta(t, 1.0, sg.dur, 0.05, "%s segment %d: cut on the schedule", name, i)
		}
		require.Equal(t, []string{sizes[name], "aac 48000 2"}, probeTSSegment(t, stream, name, pl.segs[1]), name)
	}

	mv := string(serveFile(t, stream, packager.MultivariantName))
	t.Logf("multivariant:\n%s", mv)
	variants, err := ParseMasterPlaylist(strings.NewReader(mv))
	require.NoError(t, err)
	require.Len(t, variants, 2)
	for i, name := range tracks {
		v := variants[i]
		require.Equal(t, name+"/"+packager.MediaName, v.URI)
		require.Regexp(t, `^avc1\.[0-9a-f]{6},mp4a\.40\.2$`, v.Codecs, name)
		require.Equal(t, sizes[name], v.Resolution, name)
		require.Equal(t, tr.Tracks()[i].Bandwidth, v.Bandwidth, name)
	}
	require.NotContains(t, mv, "#EXT-X-MEDIA", "audio is muxed in, not an alternate rendition")
	require.NotContains(t, mv, "AUDIO=")

	// The file ends, ffmpeg exits and runs again: one discontinuity, the
	// numbering goes on.
	waitFor(t, 20*time.Second, "a restart and a segment after the seam", func() (bool, string) {
		if tr.Restarts() < 1 {
			return false, "no restart yet"
		}
		var state []string
		for _, name := range tracks {
			pl, _ := mediaPlaylist(t, stream, name)
			if pl.seam() < 0 {
				state = append(state, fmt.Sprintf("%s: no complete segment after a seam in %d", name, len(pl.segs)))
				continue
			}
			pls[name] = pl
		}
		return len(state) == 0, strings.Join(state, "; ")
	})
	t.Logf("restarted after %s", time.Since(start).Round(time.Millisecond))
	for _, name := range tracks {
		pl := pls[name]
		t.Logf("%s, after the restart:\n%s", name, pl.body)
		require.Equal(t, 1, pl.discs, "%s: exactly one discontinuity", name)
		require.Equal(t, first, pl.mediaSequence, name)
		require.NotContains(t, pl.body, "#EXT-X-MAP", name)
		i := pl.seam()
		before, after := pl.segs[i-1], pl.segs[i]
		require.Equal(t, before.msn+1, after.msn, "%s: MSN continues across the seam", name)
		for k, sg := range pl.segs {
			require.Equal(t, pl.mediaSequence+uint64(k), sg.msn, "%s: segment %d", name, k)
		}
		require.False(t, after.pdt.Before(before.pdt.Add(time.Duration(before.dur*float64(time.Second))).Add(-time.Millisecond)),
			"%s: program date time never goes back", name)
		require.InDelta(t, 1.0, after.dur, 0.05, "%s: first segment after the seam", name)
		require.Equal(t, []string{sizes[name], "aac 48000 2"}, probeTSSegment(t, stream, name, after), name)
	}

	stop()
	require.False(t, stream.Live(), "the last generation closed")
	require.False(t, stream.Ended(), "the transcoder never ends the stream")
}

// fakeFFmpeg writes an executable shell script standing in for ffmpeg.
func fakeFFmpeg(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755))
	return p
}

func fakeConfig(bin string) TranscoderConfig {
	return TranscoderConfig{
		Spec: TranscodeSpec{
			FFmpeg: bin, SourceURL: "rtsp://127.0.0.1:1/live/x", HasVideo: true, HasAudio: true,
			Profile: fsm.Profile{SegmentFormat: fsm.SegmentFMP4, Renditions: []fsm.Rendition{{Name: "hi", Width: 320, Height: 240, VideoBitrateKbps: 300}}},
		},
		Stream: packager.New(packager.Config{Schedule: packager.Schedule{Seconds: 2}}),
	}
}

func TestTranscoderKillsStuckFFmpeg(t *testing.T) {
	// Ignores SIGINT like a wedged ffmpeg, holding its output pipes open: it
	// must be killed after StopTimeout and Run must still return.
	cfg := fakeConfig(fakeFFmpeg(t, "trap '' INT\nexec sleep 30\n"))
	cfg.StopTimeout = 300 * time.Millisecond
	tr, err := NewTranscoder(cfg)
	require.NoError(t, err)
	stop := runTranscoder(t, tr)
	waitFor(t, 5*time.Second, "fake ffmpeg running", func() (bool, string) {
		return tr.Stats().Running, fmt.Sprintf("%+v", tr.Stats())
	})
	stop()
	require.False(t, tr.Stats().Running)
	require.Zero(t, tr.Restarts())
	require.False(t, cfg.Stream.Live())
}

func TestTranscoderRestartsCrashingFFmpeg(t *testing.T) {
	// Writes garbage to its first output and dies.
	cfg := fakeConfig(fakeFFmpeg(t, "echo boom >&2\necho garbage >&3\nexit 1\n"))
	tr, err := NewTranscoder(cfg)
	require.NoError(t, err)
	stop := runTranscoder(t, tr)
	// Backoff 250ms then 500ms: two restarts well within 3s.
	waitFor(t, 3*time.Second, "two restarts", func() (bool, string) {
		return tr.Restarts() >= 2, fmt.Sprint(tr.Restarts())
	})
	stop()
	select {
	case <-tr.Active():
		t.Fatal("a transcoder that never produced is not active")
	default:
	}
	_, err = cfg.Stream.Serve(context.Background(), packager.MultivariantName, nil)
	require.ErrorIs(t, err, packager.ErrNotFound)
}

func TestTranscoderRunsOnce(t *testing.T) {
	tr, err := NewTranscoder(fakeConfig(fakeFFmpeg(t, "exec sleep 30\n")))
	require.NoError(t, err)
	runTranscoder(t, tr)
	waitFor(t, 5*time.Second, "running", func() (bool, string) { return tr.Stats().Running, "" })
	require.ErrorContains(t, tr.Run(context.Background()), "twice")
}

func TestNewTranscoder(t *testing.T) {
	ok := fakeConfig("")
	tr, err := NewTranscoder(ok)
	require.NoError(t, err)
	require.Equal(t, "ffmpeg", tr.bin, "default binary")
	require.Equal(t, defaultStopTimeout, tr.stopTimeout)
	require.Equal(t, []packager.TrackSpec{
		{Name: "hi", Kind: packager.Video, Bandwidth: 330_000},
		{Name: packager.AudioTrack, Kind: packager.Audio, Bandwidth: 128_000},
	}, tr.Tracks())

	for _, tc := range []struct {
		name   string
		mutate func(*TranscoderConfig)
		err    string
	}{
		{"bad spec", func(c *TranscoderConfig) { c.Spec.Profile.Renditions = nil }, "renditions must list"},
		{"no stream", func(c *TranscoderConfig) { c.Stream = nil }, "no stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeConfig("")
			tc.mutate(&c)
			_, err := NewTranscoder(c)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// TestTranscoderCopiesPassthroughAudio runs a passthrough ladder on a
// source with AAC-LC audio at 44.1 kHz mono: copied, the audio track keeps
// the source's rate, channels and bitrate; encoded (the probe said nothing
// about the audio), it is 48 kHz stereo at the ladder's bitrate.
func TestTranscoderCopiesPassthroughAudio(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes a stream through ffmpeg")
	}
	requireFFmpeg(t)
	src := filepath.Join(t.TempDir(), "source.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "48k", "-ac", "1", "-shortest", src).CombinedOutput()
	require.NoError(t, err, "make test source: %s", out)
	info, err := ProbeSource(ctx, "", src)
	require.NoError(t, err)
	require.True(t, info.AudioAAC(), "%+v", info)

	for _, tc := range []struct {
		name     string
		aac      bool
		want     string // ffprobe's codec, rate and channels of an audio segment
		kbpsFrom int    // the audio bitrate is near this
	}{
		{"copied", true, "aac 44100 1", 48},
		{"encoded", false, "aac 48000 2", 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			profile := fsm.Profile{SegmentSeconds: 1, SegmentFormat: fsm.SegmentFMP4, Latency: fsm.LatencyStandard,
				Renditions: []fsm.Rendition{{Name: "src", Width: 320, Height: 180, VideoBitrateKbps: 500, AudioBitrateKbps: 128, Passthrough: true}}}
			stream := packager.New(packager.Config{TargetDuration: 1, Schedule: Schedule(profile), Window: 30})
			spec := TranscodeSpec{SourceURL: src, Realtime: true, HasVideo: true, HasAudio: true, Profile: profile}
			if tc.aac {
				spec.SourceAudioAAC, spec.SourceAudioRate = info.AudioAAC(), info.AudioSampleRate
			}
			tr, err := NewTranscoder(TranscoderConfig{Spec: spec, Stream: stream, StopTimeout: 2 * time.Second})
			require.NoError(t, err)
			stop := runTranscoder(t, tr)
			var pl hlsPlaylist
			waitFor(t, 15*time.Second, "two audio segments", func() (bool, string) {
				var ok bool
				pl, ok = mediaPlaylist(t, stream, packager.AudioTrack)
				return ok && len(pl.segs) >= 2, pl.body
			})
			stop()
			require.Equal(t, tc.want, probeSegment(t, stream, packager.AudioTrack, pl.segs[1]))
			seg := serveFile(t, stream, packager.AudioTrack+"/"+pl.segs[1].uri)
			kbps := float64(len(seg)*8) / pl.segs[1].dur / 1000
			require.InDelta(t, tc.kbpsFrom, kbps, float64(tc.kbpsFrom)*0.5, "audio bitrate %.1f kb/s", kbps)
		})
	}
}
