package fsm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// validLadder is a normalized profile every case breaks in one place.
func validLadder() Profile {
	return Profile{
		Name: "Ladder", SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: SegmentFMP4, Latency: LatencyLow, PartMs: 334,
		Renditions: []Rendition{
			{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 3000, AudioBitrateKbps: 128, FPS: 30},
			{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 800, AudioBitrateKbps: 96},
		},
	}
}

func TestProfileNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   Profile
		want Profile
	}{
		{"empty gets every default", Profile{Name: " Ladder\n", Renditions: []Rendition{{Name: "a"}}},
			Profile{Name: "Ladder", SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: SegmentFMP4, Latency: LatencyLow, PartMs: 334,
				Renditions: []Rendition{{Name: "a", AudioBitrateKbps: 128}}}},
		{"ts defaults to standard latency", Profile{SegmentFormat: SegmentTS},
			Profile{SegmentSeconds: 2, VideoPreset: "veryfast", SegmentFormat: SegmentTS, Latency: LatencyStandard, PartMs: 334}},
		{"given values are kept", Profile{SegmentSeconds: 4, VideoPreset: "ultrafast", SegmentFormat: SegmentTS, Latency: LatencyLow, PartMs: 200,
			Renditions: []Rendition{{Name: "a", AudioBitrateKbps: 64}}},
			Profile{SegmentSeconds: 4, VideoPreset: "ultrafast", SegmentFormat: SegmentTS, Latency: LatencyLow, PartMs: 200,
				Renditions: []Rendition{{Name: "a", AudioBitrateKbps: 64}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in
			p.Normalize()
			require.Equal(t, tc.want, p)
		})
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(*Profile)
		field string // "" = valid
	}{
		{"valid", func(p *Profile) {}, ""},
		{"stored before latency and part_ms", func(p *Profile) { p.Latency, p.PartMs, p.SegmentFormat = "", 0, SegmentTS }, ""},
		{"stored before segment_format was filled", func(p *Profile) { p.Latency, p.SegmentFormat = "", "" }, ""},
		{"standard latency with ts", func(p *Profile) { p.Latency, p.SegmentFormat = LatencyStandard, SegmentTS }, ""},
		{"shortest part", func(p *Profile) { p.PartMs = MinPartMs }, ""},
		{"longest part", func(p *Profile) { p.PartMs = MaxPartMs }, ""},
		{"passthrough without size", func(p *Profile) {
			p.Renditions[1] = Rendition{Name: "src", Passthrough: true, VideoBitrateKbps: 3000, AudioBitrateKbps: 128}
		}, ""},

		{"missing name", func(p *Profile) { p.Name = "" }, "name"},
		{"name with control character", func(p *Profile) { p.Name = "a\x01" }, "name"},
		{"name too long", func(p *Profile) { p.Name = strings.Repeat("é", MaxNameLen+1) }, "name"},
		{"segment_seconds 0", func(p *Profile) { p.SegmentSeconds = 0 }, "segment_seconds"},
		{"segment_seconds 11", func(p *Profile) { p.SegmentSeconds = 11 }, "segment_seconds"},
		{"unknown preset", func(p *Profile) { p.VideoPreset = "turbo" }, "video_preset"},
		{"empty preset", func(p *Profile) { p.VideoPreset = "" }, "video_preset"},
		{"unknown segment_format", func(p *Profile) { p.SegmentFormat = "mp4" }, "segment_format"},
		{"unknown latency", func(p *Profile) { p.Latency = "ultra" }, "latency"},
		{"low latency with ts", func(p *Profile) { p.SegmentFormat = SegmentTS }, "latency"},
		{"low latency with a stored empty segment_format (ts)", func(p *Profile) { p.SegmentFormat = "" }, "latency"},
		{"part_ms too short", func(p *Profile) { p.PartMs = MinPartMs - 1 }, "part_ms"},
		{"part_ms too long", func(p *Profile) { p.PartMs = MaxPartMs + 1 }, "part_ms"},
		{"negative part_ms", func(p *Profile) { p.PartMs = -334 }, "part_ms"},
		{"no renditions", func(p *Profile) { p.Renditions = nil }, "renditions"},
		{"too many renditions", func(p *Profile) {
			for i := range MaxRenditions {
				p.Renditions = append(p.Renditions, Rendition{Name: "r" + string(rune('a'+i)), Width: 640, Height: 360, VideoBitrateKbps: 800, AudioBitrateKbps: 96})
			}
		}, "renditions"},
		{"rendition named audio", func(p *Profile) { p.Renditions[1].Name = ReservedRenditionName }, "renditions[1].name"},
		{"duplicate rendition names", func(p *Profile) { p.Renditions[1].Name = "720p" }, "renditions[1].name"},
		{"uppercase rendition name", func(p *Profile) { p.Renditions[0].Name = "HD" }, "renditions[0].name"},
		{"rendition name with a path", func(p *Profile) { p.Renditions[0].Name = "../x" }, "renditions[0].name"},
		{"odd height", func(p *Profile) { p.Renditions[1].Height = 361 }, "renditions[1].height"},
		{"missing width", func(p *Profile) { p.Renditions[1].Width = 0 }, "renditions[1].width"},
		{"passthrough with odd width", func(p *Profile) { p.Renditions[0].Passthrough, p.Renditions[0].Width = true, 1281 }, "renditions[0].width"},
		{"missing video bitrate", func(p *Profile) { p.Renditions[0].VideoBitrateKbps = 0 }, "renditions[0].video_bitrate_kbps"},
		{"passthrough without bitrate", func(p *Profile) { p.Renditions[0].Passthrough, p.Renditions[0].VideoBitrateKbps = true, 0 }, "renditions[0].video_bitrate_kbps"},
		{"audio bitrate not normalized", func(p *Profile) { p.Renditions[1].AudioBitrateKbps = 0 }, "renditions[1].audio_bitrate_kbps"},
		{"negative fps", func(p *Profile) { p.Renditions[1].FPS = -1 }, "renditions[1].fps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validLadder()
			tc.mut(&p)
			err := p.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, CodeInvalid, fe.Code)
			require.Equal(t, tc.field, fe.Field, fe.Message)
		})
	}
}

func TestLowLatencyNeedsFMP4Message(t *testing.T) {
	p := validLadder()
	p.SegmentFormat = SegmentTS
	require.EqualError(t, p.Validate(), "low latency needs segment_format fmp4")
}
