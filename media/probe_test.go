package media

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func TestFitLadder(t *testing.T) {
	ladder := fsm.Profile{Renditions: []fsm.Rendition{
		{Name: "1080p", Width: 1920, Height: 1080, FPS: 60},
		{Name: "720p", Width: 1280, Height: 720},
		{Name: "360p", Width: 640, Height: 360},
		{Name: "src", Passthrough: true},
	}}
	names := func(p fsm.Profile) []string {
		var out []string
		for _, r := range p.Renditions {
			out = append(out, r.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		src     SourceInfo
		keep    []string
		skipped []string
	}{
		{"unknown source keeps all", SourceInfo{}, []string{"1080p", "720p", "360p", "src"}, nil},
		{"1080p60 keeps all", SourceInfo{Width: 1920, Height: 1080, FPS: 60}, []string{"1080p", "720p", "360p", "src"}, nil},
		{"1080p30 drops the 60 fps rung", SourceInfo{Width: 1920, Height: 1080, FPS: 30}, []string{"720p", "360p", "src"}, []string{"1080p"}},
		{"360p camera", SourceInfo{Width: 640, Height: 360, FPS: 30}, []string{"360p", "src"}, []string{"1080p", "720p"}},
		{"tiny source keeps the smallest", SourceInfo{Width: 320, Height: 180, FPS: 15}, []string{"360p", "src"}, []string{"1080p", "720p"}},
		{"portrait source", SourceInfo{Width: 720, Height: 1280, FPS: 30}, []string{"360p", "src"}, []string{"1080p", "720p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := FitLadder(ladder, tc.src)
			require.Equal(t, tc.keep, names(got))
			var sk []string
			for _, s := range skipped {
				require.NotEmpty(t, s.Reason)
				sk = append(sk, s.Name)
			}
			require.Equal(t, tc.skipped, sk)
		})
	}
	require.Len(t, ladder.Renditions, 4, "the profile itself is untouched")
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"30/1": 30, "30000/1001": 29.97002997002997, "0/0": 0, "25": 25, "x": 0, "90000/1": 0} {
		require.InDelta(t, want, parseRate(in), 1e-9, in)
	}
}

func TestProbeSource(t *testing.T) {
	requireFFmpeg(t)
	src := makeSource(t, 2)
	info, err := ProbeSource(context.Background(), "", src)
	require.NoError(t, err)
	require.Equal(t, 320, info.Width)
	require.Equal(t, 180, info.Height)
	require.InDelta(t, 30, info.FPS, 0.5)
	require.True(t, info.AudioAAC(), "%+v", info)
	require.Equal(t, 48000, info.AudioSampleRate)
	_, err = ProbeSource(context.Background(), "", src+".missing")
	require.Error(t, err)
}

func TestParseProbe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		want    SourceInfo
		aac     bool
		wantErr bool
	}{
		{"video and AAC-LC", `{"streams":[
			{"codec_type":"video","codec_name":"h264","profile":"High","width":640,"height":360,"avg_frame_rate":"30/1"},
			{"codec_type":"audio","codec_name":"aac","profile":"LC","sample_rate":"44100","channels":1}]}`,
			SourceInfo{Width: 640, Height: 360, FPS: 30, AudioCodec: "aac", AudioProfile: "LC", AudioSampleRate: 44100, AudioChannels: 1}, true, false},
		{"audio first, HE-AAC", `{"streams":[
			{"codec_type":"audio","codec_name":"aac","profile":"HE-AAC","sample_rate":"48000","channels":2},
			{"codec_type":"video","width":320,"height":180,"avg_frame_rate":"0/0","r_frame_rate":"25/1"}]}`,
			SourceInfo{Width: 320, Height: 180, FPS: 25, AudioCodec: "aac", AudioProfile: "HE-AAC", AudioSampleRate: 48000, AudioChannels: 2}, false, false},
		{"opus", `{"streams":[{"codec_type":"video","width":320,"height":180},{"codec_type":"audio","codec_name":"opus","sample_rate":"48000","channels":2}]}`,
			SourceInfo{Width: 320, Height: 180, AudioCodec: "opus", AudioSampleRate: 48000, AudioChannels: 2}, false, false},
		{"no audio", `{"streams":[{"codec_type":"video","width":320,"height":180,"avg_frame_rate":"30000/1001"}]}`,
			SourceInfo{Width: 320, Height: 180, FPS: 30000.0 / 1001}, false, false},
		{"no video", `{"streams":[{"codec_type":"audio","codec_name":"aac","profile":"LC","sample_rate":"48000"}]}`, SourceInfo{}, false, true},
		{"garbage", `{`, SourceInfo{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := parseProbe([]byte(tc.json))
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, info)
			require.Equal(t, tc.aac, info.AudioAAC())
		})
	}
}
