package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProfileCost(t *testing.T) {
	ladder := []Rendition{
		{Name: "720p", Width: 1280, Height: 720},
		{Name: "480p", Width: 854, Height: 480},
		{Name: "360p", Width: 640, Height: 360},
	}
	for _, tc := range []struct {
		name string
		p    *Profile
		want int
	}{
		// 1280x720x30 + 854x480x30 + 640x360x30 = 46.86 Mpx/s, rounded up.
		{"default ladder, veryfast", &Profile{VideoPreset: "veryfast", Renditions: ladder}, 1 + 47},
		{"empty preset is veryfast", &Profile{Renditions: ladder}, 1 + 47},
		{"medium costs 2.5x", &Profile{VideoPreset: "medium", Renditions: ladder}, 1 + 118},
		{"ultrafast", &Profile{VideoPreset: "ultrafast", Renditions: ladder}, 1 + 19},
		{"unknown preset costs like veryslow", &Profile{VideoPreset: "placebo", Renditions: ladder}, 1 + 750},
		{"fps cap halves a rendition", &Profile{VideoPreset: "veryfast", Renditions: []Rendition{{Width: 1280, Height: 720, FPS: 15}}}, 1 + 14},
		{"passthrough only is the base cost", &Profile{Renditions: []Rendition{{Name: "src", Passthrough: true, Width: 1920, Height: 1080}}}, PassthroughCost},
		{"passthrough rendition beside an encoded one", &Profile{VideoPreset: "veryfast", Renditions: []Rendition{
			{Passthrough: true, Width: 1920, Height: 1080}, {Width: 640, Height: 360, FPS: 30}}}, 1 + 7},
		{"tiny test ladder", &Profile{VideoPreset: "ultrafast", Renditions: []Rendition{{Width: 320, Height: 180, FPS: 15}}}, 2},
		{"nil profile", nil, PassthroughCost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.p.Cost())
		})
	}
	// The README promises about half a core per default ladder and four of
	// them on a 2-core node, not five.
	c := (&Profile{Renditions: ladder}).Cost()
	require.Equal(t, 4, 2*CostUnitsPerCore/c)
}
