package httpapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

// The profile rules under the names these tests (and the fuzz tests) use;
// fsm owns them. renditionName is written out again on purpose: the tests
// state the rule, not the code.
const (
	minSegmentSeconds = fsm.MinSegmentSeconds
	maxSegmentSeconds = fsm.MaxSegmentSeconds
	maxRenditions     = fsm.MaxRenditions
	minDimension      = fsm.MinDimension
	maxWidth          = fsm.MaxWidth
	maxHeight         = fsm.MaxHeight
	minVideoKbps      = fsm.MinVideoKbps
	maxVideoKbps      = fsm.MaxVideoKbps
	minAudioKbps      = fsm.MinAudioKbps
	maxAudioKbps      = fsm.MaxAudioKbps
	maxFPS            = fsm.MaxFPS
	maxNameLen        = fsm.MaxNameLen
)

var renditionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// validProfile is a body every test starts from and breaks in one place.
func validProfile() profileBody {
	return profileBody{
		Name: "Ladder",
		Renditions: []renditionBody{
			{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 3000, AudioBitrateKbps: 128, FPS: 30},
			{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 800},
		},
	}
}

func renditions(n int) []renditionBody {
	out := make([]renditionBody, n)
	for i := range out {
		out[i] = renditionBody{Name: "r" + string(rune('a'+i)), Width: 640, Height: 360, VideoBitrateKbps: 800}
	}
	return out
}

// profileCases are bodies that must be refused, each with the field the error
// must name.
var profileCases = []struct {
	name  string
	mut   func(*profileBody)
	field string
}{
	{"missing name", func(b *profileBody) { b.Name = "" }, "name"},
	{"blank name", func(b *profileBody) { b.Name = " \t " }, "name"},
	{"name too long", func(b *profileBody) { b.Name = strings.Repeat("é", maxNameLen+1) }, "name"},
	{"name with control character", func(b *profileBody) { b.Name = "a\x01b" }, "name"},
	{"name with DEL", func(b *profileBody) { b.Name = "a\x7fb" }, "name"},
	{"name with newline", func(b *profileBody) { b.Name = "a\nb" }, "name"},
	{"segment_seconds 11", func(b *profileBody) { b.SegmentSeconds = 11 }, "segment_seconds"},
	{"segment_seconds negative", func(b *profileBody) { b.SegmentSeconds = -1 }, "segment_seconds"},
	{"unknown preset", func(b *profileBody) { b.VideoPreset = "turbo" }, "video_preset"},
	{"preset is case sensitive", func(b *profileBody) { b.VideoPreset = "VeryFast" }, "video_preset"},
	{"bad segment_format", func(b *profileBody) { b.SegmentFormat = "mp4" }, "segment_format"},
	{"segment_format is case sensitive", func(b *profileBody) { b.SegmentFormat = "TS" }, "segment_format"},
	{"bad latency", func(b *profileBody) { b.Latency = "ultra" }, "latency"},
	{"latency is case sensitive", func(b *profileBody) { b.Latency = "Low" }, "latency"},
	{"low latency with ts", func(b *profileBody) { b.Latency, b.SegmentFormat = "low", "ts" }, "latency"},
	{"part_ms too short", func(b *profileBody) { b.PartMs = 99 }, "part_ms"},
	{"part_ms too long", func(b *profileBody) { b.PartMs = 1001 }, "part_ms"},
	{"negative part_ms", func(b *profileBody) { b.PartMs = -1 }, "part_ms"},
	{"rendition named audio", func(b *profileBody) { b.Renditions[1].Name = "audio" }, "renditions[1].name"},
	{"no renditions", func(b *profileBody) { b.Renditions = []renditionBody{} }, "renditions"},
	{"null renditions", func(b *profileBody) { b.Renditions = nil }, "renditions"},
	{"9 renditions", func(b *profileBody) { b.Renditions = renditions(maxRenditions + 1) }, "renditions"},
	{"duplicate rendition names", func(b *profileBody) { b.Renditions[1].Name = "720p" }, "renditions[1].name"},
	{"uppercase rendition name", func(b *profileBody) { b.Renditions[0].Name = "720P" }, "renditions[0].name"},
	{"traversal rendition name", func(b *profileBody) { b.Renditions[1].Name = "../x" }, "renditions[1].name"},
	{"empty rendition name", func(b *profileBody) { b.Renditions[0].Name = "" }, "renditions[0].name"},
	{"rendition name with slash", func(b *profileBody) { b.Renditions[0].Name = "a/b" }, "renditions[0].name"},
	{"rendition name with dot", func(b *profileBody) { b.Renditions[0].Name = "." }, "renditions[0].name"},
	{"rendition name starting with dash", func(b *profileBody) { b.Renditions[0].Name = "-a" }, "renditions[0].name"},
	{"rendition name with space", func(b *profileBody) { b.Renditions[0].Name = "a b" }, "renditions[0].name"},
	{"rendition name with trailing newline", func(b *profileBody) { b.Renditions[0].Name = "a\n" }, "renditions[0].name"},
	{"rendition name too long", func(b *profileBody) { b.Renditions[0].Name = strings.Repeat("a", 33) }, "renditions[0].name"},
	{"odd width", func(b *profileBody) { b.Renditions[0].Width = 1281 }, "renditions[0].width"},
	{"odd height", func(b *profileBody) { b.Renditions[1].Height = 361 }, "renditions[1].height"},
	{"width too small", func(b *profileBody) { b.Renditions[0].Width = minDimension - 2 }, "renditions[0].width"},
	{"width too large", func(b *profileBody) { b.Renditions[0].Width = maxWidth + 2 }, "renditions[0].width"},
	{"negative width", func(b *profileBody) { b.Renditions[0].Width = -1280 }, "renditions[0].width"},
	{"missing width", func(b *profileBody) { b.Renditions[1].Width = 0 }, "renditions[1].width"},
	{"height too small", func(b *profileBody) { b.Renditions[1].Height = 2 }, "renditions[1].height"},
	{"height too large", func(b *profileBody) { b.Renditions[1].Height = maxHeight + 2 }, "renditions[1].height"},
	{"missing height", func(b *profileBody) { b.Renditions[1].Height = 0 }, "renditions[1].height"},
	{"video bitrate too low", func(b *profileBody) { b.Renditions[0].VideoBitrateKbps = minVideoKbps - 1 }, "renditions[0].video_bitrate_kbps"},
	{"video bitrate in bps", func(b *profileBody) { b.Renditions[0].VideoBitrateKbps = 3_000_000 }, "renditions[0].video_bitrate_kbps"},
	{"missing video bitrate", func(b *profileBody) { b.Renditions[1].VideoBitrateKbps = 0 }, "renditions[1].video_bitrate_kbps"},
	{"audio bitrate too low", func(b *profileBody) { b.Renditions[1].AudioBitrateKbps = minAudioKbps - 1 }, "renditions[1].audio_bitrate_kbps"},
	{"audio bitrate too high", func(b *profileBody) { b.Renditions[1].AudioBitrateKbps = maxAudioKbps + 1 }, "renditions[1].audio_bitrate_kbps"},
	{"negative audio bitrate", func(b *profileBody) { b.Renditions[1].AudioBitrateKbps = -128 }, "renditions[1].audio_bitrate_kbps"},
	{"fps too high", func(b *profileBody) { b.Renditions[0].FPS = maxFPS + 1 }, "renditions[0].fps"},
	{"negative fps", func(b *profileBody) { b.Renditions[1].FPS = -30 }, "renditions[1].fps"},
	{"passthrough with odd width", func(b *profileBody) {
		b.Renditions[0] = renditionBody{Name: "src", Passthrough: true, Width: 1281, Height: 720}
	}, "renditions[0].width"},
	{"passthrough with too small height", func(b *profileBody) {
		b.Renditions[0] = renditionBody{Name: "src", Passthrough: true, Height: 8}
	}, "renditions[0].height"},
	{"passthrough with bitrate in bps", func(b *profileBody) {
		b.Renditions[0] = renditionBody{Name: "src", Passthrough: true, VideoBitrateKbps: 6_000_000}
	}, "renditions[0].video_bitrate_kbps"},
}

func TestProfileValidationRefuses(t *testing.T) {
	for _, tc := range profileCases {
		t.Run(tc.name, func(t *testing.T) {
			body := validProfile()
			tc.mut(&body)

			// The validator alone.
			_, err := body.toProfile()
			require.Error(t, err)
			ae := asAPIError(err)
			require.Equal(t, http.StatusBadRequest, ae.Status)
			require.Equal(t, tc.field, ae.Field, ae.Message)

			// And through HTTP, for both create and replace: 400, the
			// field named, nothing proposed.
			e := newEnv(t)
			requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", body), http.StatusBadRequest, tc.field)
			requireAPIError(t, e.do(http.MethodPut, "/v1/profiles/default", body), http.StatusBadRequest, tc.field)
			require.Empty(t, e.b.commands(), "an invalid body must never reach Apply")
		})
	}
}

func TestProfileValidationAccepts(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(*profileBody)
		check func(t *testing.T, p *fsm.Profile)
	}{
		{"defaults are filled", func(b *profileBody) {}, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, "Ladder", p.Name)
			require.Equal(t, 2, p.SegmentSeconds, "segment_seconds 0 means the default, 2")
			require.Equal(t, "veryfast", p.VideoPreset)
			require.Equal(t, fsm.SegmentFMP4, p.SegmentFormat, "CMAF by default")
			require.Equal(t, fsm.LatencyLow, p.Latency)
			require.Equal(t, 334, p.PartMs)
			require.Len(t, p.Renditions, 2)
			require.Equal(t, 128, p.Renditions[1].AudioBitrateKbps, "audio bitrate defaults to 128")
			require.Equal(t, 0, p.Renditions[1].FPS, "fps 0 keeps the source rate")
			require.Empty(t, p.ID, "toProfile does not choose the id")
		}},
		{"name is trimmed", func(b *profileBody) { b.Name = "  Ladder \n" }, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, "Ladder", p.Name)
		}},
		{"name of 128 characters", func(b *profileBody) { b.Name = strings.Repeat("é", maxNameLen) }, nil},
		{"unicode name", func(b *profileBody) { b.Name = "Haupt-Bühne 🎥" }, nil},
		{"segment_seconds 1", func(b *profileBody) { b.SegmentSeconds = 1 }, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, 1, p.SegmentSeconds)
		}},
		{"segment_seconds 10", func(b *profileBody) { b.SegmentSeconds = 10 }, nil},
		{"every x264 preset", func(b *profileBody) { b.VideoPreset = "veryslow" }, nil},
		{"ts alone is standard latency", func(b *profileBody) { b.SegmentFormat = "ts" }, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, fsm.SegmentTS, p.SegmentFormat)
			require.Equal(t, fsm.LatencyStandard, p.Latency)
		}},
		{"ts with standard latency", func(b *profileBody) { b.SegmentFormat, b.Latency = "ts", "standard" }, nil},
		{"fmp4 with standard latency", func(b *profileBody) { b.SegmentFormat, b.Latency = "fmp4", "standard" }, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, fsm.SegmentFMP4, p.SegmentFormat)
			require.Equal(t, fsm.LatencyStandard, p.Latency)
		}},
		{"part_ms at the bounds", func(b *profileBody) { b.PartMs = 100 }, func(t *testing.T, p *fsm.Profile) {
			require.Equal(t, 100, p.PartMs, "stored as given")
		}},
		{"longest part", func(b *profileBody) { b.PartMs = 1000 }, nil},
		{"8 renditions", func(b *profileBody) { b.Renditions = renditions(maxRenditions) }, func(t *testing.T, p *fsm.Profile) {
			require.Len(t, p.Renditions, maxRenditions)
		}},
		{"one rendition", func(b *profileBody) { b.Renditions = b.Renditions[:1] }, nil},
		{"passthrough rendition without size", func(b *profileBody) {
			b.Renditions = []renditionBody{{Name: "source", Passthrough: true, VideoBitrateKbps: 3000}}
		}, func(t *testing.T, p *fsm.Profile) {
			r := p.Renditions[0]
			require.True(t, r.Passthrough)
			require.Zero(t, r.Width)
			require.Zero(t, r.Height)
			require.Equal(t, 3000, r.VideoBitrateKbps)
			require.Equal(t, 128, r.AudioBitrateKbps)
		}},
		{"passthrough rendition with advertised size", func(b *profileBody) {
			b.Renditions = append(b.Renditions, renditionBody{Name: "src", Passthrough: true, Width: 1920, Height: 1080, VideoBitrateKbps: 6000})
		}, nil},
		{"rendition names at the edges", func(b *profileBody) {
			b.Renditions[0].Name = "0"
			b.Renditions[1].Name = "a" + strings.Repeat("_-9", 10) + "z"
		}, nil},
		{"sizes at the bounds", func(b *profileBody) {
			b.Renditions[0].Width, b.Renditions[0].Height = maxWidth, maxHeight
			b.Renditions[1].Width, b.Renditions[1].Height = minDimension, minDimension
		}, nil},
		{"bitrates and fps at the bounds", func(b *profileBody) {
			b.Renditions[0].VideoBitrateKbps, b.Renditions[0].AudioBitrateKbps, b.Renditions[0].FPS = maxVideoKbps, maxAudioKbps, maxFPS
			b.Renditions[1].VideoBitrateKbps, b.Renditions[1].AudioBitrateKbps, b.Renditions[1].FPS = minVideoKbps, minAudioKbps, 1
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := validProfile()
			tc.mut(&body)
			p, err := body.toProfile()
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, p)
			}

			e := newEnv(t)
			rec := e.do(http.MethodPost, "/v1/profiles", body)
			require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			got := decodeBody[fsm.Profile](t, rec)
			require.Equal(t, p.Renditions, got.Renditions)
			require.Equal(t, p.SegmentSeconds, got.SegmentSeconds)
			require.Equal(t, p.Latency, got.Latency)
			require.Equal(t, p.PartMs, got.PartMs)
		})
	}
}

func TestProfileIDValidation(t *testing.T) {
	for _, id := range []string{"Low", "../x", "a/b", "-low", "_low", "low id", strings.Repeat("a", 65), "é"} {
		t.Run(id, func(t *testing.T) {
			e := newEnv(t)
			body := validProfile()
			body.ID = id
			requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", body), http.StatusBadRequest, "id")
			require.Empty(t, e.b.commands())
		})
	}
	for _, id := range []string{"low", "0", "low-latency_2", strings.Repeat("a", 64)} {
		t.Run(id, func(t *testing.T) {
			e := newEnv(t)
			body := validProfile()
			body.ID = id
			rec := e.do(http.MethodPost, "/v1/profiles", body)
			require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			require.Equal(t, "/v1/profiles/"+id, rec.Header().Get("Location"))
		})
	}
}

func TestInputBodyValidation(t *testing.T) {
	yes, no := true, false
	n := func(v int) *int { return &v }
	tests := []struct {
		name  string
		body  inputBody
		field string // "" = accepted
		want  fsm.Input
	}{
		{"defaults", inputBody{Name: "Main"}, "", fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackPublic, ReconnectWindowSeconds: 30, Overload: fsm.OverloadRefuse}},
		{"disabled", inputBody{Name: "Main", Enabled: &no}, "", fsm.Input{Name: "Main", PlaybackPolicy: fsm.PlaybackPublic, ReconnectWindowSeconds: 30, Overload: fsm.OverloadRefuse}},
		{"enabled", inputBody{Name: "Main", Enabled: &yes}, "", fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackPublic, ReconnectWindowSeconds: 30, Overload: fsm.OverloadRefuse}},
		{"signed", inputBody{Name: " Main ", PlaybackPolicy: "signed", ProfileID: "p"}, "",
			fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackSigned, ProfileID: "p", ReconnectWindowSeconds: 30, Overload: fsm.OverloadRefuse}},
		{"reconnect window off", inputBody{Name: "Main", ReconnectWindowSeconds: n(0)}, "", fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackPublic, Overload: fsm.OverloadRefuse}},
		{"longest reconnect window and hot standby", inputBody{Name: "Main", ReconnectWindowSeconds: n(3600), HotStandby: true}, "",
			fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackPublic, ReconnectWindowSeconds: 3600, HotStandby: true, Overload: fsm.OverloadRefuse}},
		{"passthrough on overload", inputBody{Name: "Main", Overload: "passthrough"}, "",
			fsm.Input{Name: "Main", Enabled: true, PlaybackPolicy: fsm.PlaybackPublic, ReconnectWindowSeconds: 30, Overload: fsm.OverloadPassthrough}},
		{"bad overload", inputBody{Name: "Main", Overload: "drop"}, "overload", fsm.Input{}},
		{"missing name", inputBody{}, "name", fsm.Input{}},
		{"blank name", inputBody{Name: "   "}, "name", fsm.Input{}},
		{"control character", inputBody{Name: "a\tb"}, "name", fsm.Input{}},
		{"long name", inputBody{Name: strings.Repeat("x", maxNameLen+1)}, "name", fsm.Input{}},
		{"bad policy", inputBody{Name: "Main", PlaybackPolicy: "private"}, "playback_policy", fsm.Input{}},
		{"negative reconnect window", inputBody{Name: "Main", ReconnectWindowSeconds: n(-1)}, "reconnect_window_seconds", fsm.Input{}},
		{"reconnect window over an hour", inputBody{Name: "Main", ReconnectWindowSeconds: n(3601)}, "reconnect_window_seconds", fsm.Input{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := tc.body.toInput()
			if tc.field != "" {
				require.Error(t, err)
				ae := asAPIError(err)
				require.Equal(t, http.StatusBadRequest, ae.Status)
				require.Equal(t, tc.field, ae.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, &tc.want, in)
		})
	}
}

func TestInputPatchValidation(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int) *int { return &v }
	off := false
	tests := []struct {
		name  string
		body  inputPatchBody
		field string
		ok    bool
	}{
		{"nothing", inputPatchBody{}, "", false},
		{"blank name", inputPatchBody{Name: s("  ")}, "name", false},
		{"control character", inputPatchBody{Name: s("a\x00")}, "name", false},
		{"bad policy", inputPatchBody{PlaybackPolicy: s("nope")}, "playback_policy", false},
		{"negative reconnect window", inputPatchBody{ReconnectWindowSeconds: n(-5)}, "reconnect_window_seconds", false},
		{"reconnect window too long", inputPatchBody{ReconnectWindowSeconds: n(3601)}, "reconnect_window_seconds", false},
		{"reconnect window off", inputPatchBody{ReconnectWindowSeconds: n(0)}, "", true},
		{"hot standby off", inputPatchBody{HotStandby: &off}, "", true},
		{"name only", inputPatchBody{Name: s(" New ")}, "", true},
		{"empty profile id means default", inputPatchBody{ProfileID: s("")}, "", true},
		{"enabled only", inputPatchBody{Enabled: &off}, "", true},
		{"policy only", inputPatchBody{PlaybackPolicy: s("signed")}, "", true},
		{"overload passthrough", inputPatchBody{Overload: s("passthrough")}, "", true},
		{"overload refuse", inputPatchBody{Overload: s("refuse")}, "", true},
		{"bad overload", inputPatchBody{Overload: s("")}, "overload", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.body.toPatch()
			if !tc.ok {
				require.Error(t, err)
				ae := asAPIError(err)
				require.Equal(t, http.StatusBadRequest, ae.Status)
				require.Equal(t, tc.field, ae.Field)
				return
			}
			require.NoError(t, err)
			if tc.body.Name != nil {
				require.Equal(t, "New", *p.Name, "names are trimmed")
			}
		})
	}
}

func TestIsID(t *testing.T) {
	for _, id := range []string{NewID(), "demo", "a", "in-1_x", strings.Repeat("a", 64)} {
		require.True(t, isID(id), id)
	}
	for _, id := range []string{"", "A", "..", ".", "a/b", "a.b", "a b", `a\b`, "a%2f", strings.Repeat("a", 65), "é"} {
		require.False(t, isID(id), id)
	}
}

func TestNewIDsAndKeys(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, key, secret := NewID(), NewStreamKey(), NewSecret()
		require.Len(t, id, 16)
		require.True(t, isID(id))
		require.True(t, strings.HasPrefix(key, "sk"))
		require.GreaterOrEqual(t, len(key), 32)
		require.True(t, isID(key), "a stream key must be safe in a URL path: %q", key)
		require.GreaterOrEqual(t, len(secret), 50)
		for _, v := range []string{id, key, secret} {
			require.False(t, seen[v], "duplicate %q", v)
			seen[v] = true
		}
	}
}
