package node

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/packager"
)

// slateText is what viewers read while the publisher is away.
const slateText = "Back in a moment"

// slateCache makes the slate of each profile once (ffmpeg, a second or so
// per rendition) and keeps it: every stream of that profile shows it.
type slateCache struct {
	n  *Node
	mu sync.Mutex
	// by profile version and audio presence.
	sets map[string]*slateSet
}

// slateSet is one profile's slate: per track, an init segment and one
// segment's worth of fragments.
type slateSet struct {
	ready  chan struct{}
	err    error
	tracks []slateTrack
	// seconds is the slate segment's length.
	seconds float64
}

type slateTrack struct {
	spec  packager.TrackSpec
	init  []byte
	frags []slateFragment
	// length of the whole slate segment in the track's timescale
	length uint64
}

type slateFragment struct {
	data []byte
	info packager.FragmentInfo
	// end is where the fragment ends, in seconds from the segment start.
	end float64
}

func newSlateCache(n *Node) *slateCache { return &slateCache{n: n, sets: map[string]*slateSet{}} }

func slateKey(p *fsm.Profile, audio bool) string {
	return fmt.Sprintf("%s|%s|%v", p.ID, p.UpdatedAt.UTC().Format(time.RFC3339Nano), audio)
}

// prepare starts making the slate of a profile in the background, so it is
// there when a publisher drops.
func (c *slateCache) prepare(p *fsm.Profile, s *fsm.Session) *slateSet {
	if media.TSSegments(*p) {
		return nil // see start
	}
	_, audio := media.TracksHave(s.Tracks)
	key := slateKey(p, audio)
	c.mu.Lock()
	defer c.mu.Unlock()
	if set, ok := c.sets[key]; ok {
		return set
	}
	set := &slateSet{ready: make(chan struct{}), seconds: float64(p.SegmentSeconds)}
	c.sets[key] = set
	prof := p.Clone()
	go func() {
		defer close(set.ready)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		set.tracks, set.err = c.make(ctx, prof, audio)
		if set.err != nil {
			c.n.log.Warn("cannot make the slate; reconnecting streams will pause instead", "profile", prof.ID, "err", set.err)
		}
	}()
	return set
}

func (c *slateCache) make(ctx context.Context, p *fsm.Profile, audio bool) ([]slateTrack, error) {
	seg := float64(p.SegmentSeconds)
	part := media.PartSeconds(*p)
	var out []slateTrack
	for _, r := range p.Renditions {
		w, h, fps := r.Width, r.Height, r.FPS
		if r.Passthrough || w == 0 || h == 0 {
			w, h = 1280, 720
		}
		if fps == 0 {
			fps = 30
		}
		preset := p.VideoPreset
		if preset == "" {
			preset = "veryfast"
		}
		b, err := media.MakeVideoSlate(ctx, media.SlateSpec{FFmpeg: c.n.cfg.FFmpeg, Width: w, Height: h, FPS: fps,
			SegmentSeconds: seg, PartSeconds: part, Text: slateText, Preset: preset, LowLatency: media.LowLatency(*p)})
		if err != nil {
			return nil, fmt.Errorf("rendition %s: %w", r.Name, err)
		}
		t, err := splitSlate(b, packager.TrackSpec{Name: r.Name, Kind: packager.Video, Bandwidth: r.VideoBitrateKbps * 1100, FrameRate: float64(fps)})
		if err != nil {
			return nil, fmt.Errorf("rendition %s: %w", r.Name, err)
		}
		out = append(out, t)
	}
	if audio {
		b, err := media.MakeAudioSlate(ctx, c.n.cfg.FFmpeg, seg, part)
		if err != nil {
			return nil, fmt.Errorf("audio: %w", err)
		}
		t, err := splitSlate(b, packager.TrackSpec{Name: packager.AudioTrack, Kind: packager.Audio, Bandwidth: 64_000})
		if err != nil {
			return nil, fmt.Errorf("audio: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

func splitSlate(b []byte, spec packager.TrackSpec) (slateTrack, error) {
	t := slateTrack{spec: spec}
	var info packager.InitInfo
	var first uint64
	err := packager.Split(bytes.NewReader(b), func(init []byte) error {
		var err error
		info, err = packager.ParseInit(init)
		t.init = init
		return err
	}, func(frag []byte) error {
		fi, err := packager.ParseFragment(frag, info)
		if err != nil {
			return err
		}
		if len(t.frags) == 0 {
			first = fi.BaseTime
		}
		end := fi.BaseTime - first + fi.Duration
		t.frags = append(t.frags, slateFragment{data: frag, info: fi, end: float64(end) / float64(info.Timescale)})
		t.length = end
		return nil
	})
	if err != nil {
		return t, err
	}
	if len(t.frags) == 0 {
		return t, fmt.Errorf("slate of %s has no fragments", spec.Name)
	}
	return t, nil
}

// runningSlate feeds one stream with the slate, segment after segment,
// each fragment when its time has come, until stopped or replaced.
type runningSlate struct {
	cancel context.CancelFunc
}

func (r *runningSlate) stop() {
	if r != nil {
		r.cancel()
	}
}

func (c *slateCache) start(ctx context.Context, st *liveStream, p *fsm.Profile, s *fsm.Session) *runningSlate {
	sctx, cancel := context.WithCancel(ctx)
	if media.TSSegments(*p) {
		// The slate is CMAF; old devices that need MPEG-TS could not play
		// it. Their playlists just wait for the publisher to come back.
		return &runningSlate{cancel: cancel}
	}
	set := c.prepare(p, s)
	log := c.n.log.With("input", st.id)
	go func() {
		select {
		case <-set.ready:
		case <-sctx.Done():
			return
		}
		if set.err != nil {
			return
		}
		if err := runSlate(sctx, st.stream, set); err != nil {
			log.Warn("slate", "err", err)
		}
	}()
	return &runningSlate{cancel: cancel}
}

func runSlate(ctx context.Context, stream *packager.Stream, set *slateSet) error {
	// The slate stands in for the renditions the stream has now (a ladder
	// fitted to a small source has fewer than its profile).
	var tracks []slateTrack
	if names := stream.TrackNames(); len(names) > 0 {
		for _, t := range set.tracks {
			if slices.Contains(names, t.spec.Name) {
				tracks = append(tracks, t)
			}
		}
	}
	if len(tracks) == 0 {
		tracks = set.tracks
	}
	set = &slateSet{tracks: tracks, seconds: set.seconds}
	specs := make([]packager.TrackSpec, len(set.tracks))
	for i, t := range set.tracks {
		specs[i] = t.spec
	}
	gen := stream.BeginWith(specs, packager.Schedule{Seconds: set.seconds})
	defer gen.Close()
	for _, t := range set.tracks {
		if err := gen.Init(t.spec.Name, t.init); err != nil {
			return err
		}
	}
	start := time.Now()
	next := make([]int, len(set.tracks)) // next fragment per track, counted over repetitions
	for {
		// The fragment due soonest across tracks goes next.
		best, bestAt := -1, time.Duration(0)
		for i, t := range set.tracks {
			rep, k := next[i]/len(t.frags), next[i]%len(t.frags)
			at := time.Duration((float64(rep)*set.seconds + t.frags[k].end) * float64(time.Second))
			if best < 0 || at < bestAt {
				best, bestAt = i, at
			}
		}
		timer := time.NewTimer(time.Until(start.Add(bestAt)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		if gen.Retired() {
			return nil
		}
		t := set.tracks[best]
		rep, k := next[best]/len(t.frags), next[best]%len(t.frags)
		f := t.frags[k]
		data := append([]byte(nil), f.data...)
		first := t.frags[0].info.BaseTime
		packager.SetBaseTime(data, f.info, uint64(rep)*t.length+f.info.BaseTime-first)
		if err := gen.Fragment(t.spec.Name, data); err != nil {
			return err
		}
		next[best]++
	}
}
