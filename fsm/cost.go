package fsm

import "math"

// Cost units. One unit is one million pixels per second encoded with x264
// at the veryfast preset, about a hundredth of a core on the machines this
// was measured on (the default 720/480/360 ladder, 48 units, takes about
// half a core). Nodes advertise their capacity in the same units
// (CostUnitsPerCore per core unless an operator says otherwise), so
// placement compares a stream's cost with what a node has left without
// knowing how fast its cores are.
const (
	CostUnitsPerCore = 100
	// streamBaseCost is what any stream costs besides encoding: demuxing,
	// audio, packaging, copying to the standby. It is all a passthrough
	// stream costs.
	streamBaseCost = 1
	// sourceFPS stands in for a rendition that keeps the source's rate
	// (FPS 0): what most encoders send.
	sourceFPS = 30
)

// PassthroughCost is what a stream carried as passthrough costs.
const PassthroughCost = streamBaseCost

// presetFactor is x264's CPU per pixel at each preset relative to
// veryfast (rounded from x264's own preset benchmarks: each step slower
// costs roughly 1.5-2x). Unknown presets cost as much as veryslow, so a
// typo never makes a stream look cheap.
var presetFactor = map[string]float64{
	"ultrafast": 0.4,
	"superfast": 0.6,
	"veryfast":  1,
	"faster":    1.5,
	"fast":      2,
	"medium":    2.5,
	"slow":      4,
	"slower":    8,
	"veryslow":  16,
}

// Cost estimates what transcoding a live stream with profile p costs, in
// cost units: pixels per second of every encoded rendition scaled by the
// preset, plus the base cost of any stream. Passthrough renditions encode
// nothing. A model rather than a measurement: it is known before the
// stream starts, the same on every node, and deterministic, so the raft
// state machine can place with it.
func (p *Profile) Cost() int {
	if p == nil {
		return streamBaseCost
	}
	preset := p.VideoPreset
	if preset == "" {
		preset = DefaultVideoPreset
	}
	f, ok := presetFactor[preset]
	if !ok {
		f = presetFactor["veryslow"]
	}
	px := 0.0
	for _, r := range p.Renditions {
		if r.Passthrough {
			continue
		}
		fps := r.FPS
		if fps <= 0 {
			fps = sourceFPS
		}
		px += float64(r.Width) * float64(r.Height) * float64(fps)
	}
	return streamBaseCost + int(math.Ceil(px*f/1e6))
}
