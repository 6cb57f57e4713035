package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dionysia/dionysia/node"
)

const (
	// glassSettle is how long after its first picture a player's samples
	// start to count: players start off their target and settle in the
	// first seconds.
	glassSettle = 6 * time.Second
	// glassWindow is how long samples are taken once settled.
	glassWindow = 15 * time.Second
)

// rowLatency: glass-to-glass at real players. The page reads the frame
// number burnt into the picture on screen; the publisher sent that frame
// at T0 + N/fps.
func rowLatency(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	if why := browserReady(e); why != "" {
		return skip(why)
	}
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	n := singleNode(t)
	def := node.DefaultProfile()
	std := standardProfile(t, n, 2)
	std1 := standardProfile(t, n, 1)
	r.Method = fmt.Sprintf("One node; the player plays through it in headless Chromium (the browser testcluster/player uses, on a page of "+
		"the bench's own, bench/glass.js). The source is the 720p30 file whose frames carry their number as a 16-block barcode "+
		"(bench/barcode.go); it is published at its native rate (`ffmpeg -re -c copy`) through a proxy that timestamps the "+
		"publisher's first byte T0, so frame N leaves the publisher at T0 + N/%d, as a live encoder stamps capture time. Every "+
		"%s the page draws the picture on screen onto a canvas in a `requestVideoFrameCallback` (the frame being presented, "+
		"with the time it is on screen), reads its barcode, and latency = that time − (T0 + N/%d). Samples count from %s after the "+
		"first picture (start-up), for %s. Low latency: the default profile (%s, %d ms parts, a keyframe every second); hls.js 1.6 "+
		"with `lowLatencyMode: true` and `maxLiveSyncPlaybackRate: 1.25` (as the dashboard plays it) on `master.m3u8`, dash.js 5 on `manifest.mpd` in its own low-latency mode (it turns it on "+
		"from the MPD's `availabilityTimeComplete=\"false\"` and takes its target from the MPD's ServiceDescription; catch-up "+
		"on). Standard: the same ladder with latency standard and 2 s segments, hls.js with `lowLatencyMode: false` (its "+
		"default start 3 segments behind the live edge). One publish per player, one player at a time.",
		SourceFPS, glassEvery, SourceFPS, glassSettle, glassWindow, ladderText(*def), def.PartMs)

	modes := []struct {
		name, engine, file, profile string
		low                         bool
		catchUp                     float64 // hls.js maxLiveSyncPlaybackRate; 0 = its default (1: none)
		goal                        float64 // 0 = informational
		segment                     float64 // standard: the segment length (hls.js holds back three)
	}{
		{"LL-HLS (hls.js as the dashboard plays it: lowLatencyMode, catch-up ≤ 1.25×)", "hls", "master.m3u8", node.DefaultProfileID, true, 1.25, 2, 0},
		{"LL-DASH (dash.js, low latency)", "dash", "manifest.mpd", node.DefaultProfileID, true, 0, 2, 0},
		{"standard HLS (hls.js, 2 s segments)", "hls", "master.m3u8", std, false, 0, 6, 2},
		{"LL-HLS (hls.js defaults, lowLatencyMode only)", "hls", "master.m3u8", node.DefaultProfileID, true, 0, 0, 0},
		{"standard HLS (hls.js, 1 s segments)", "hls", "master.m3u8", std1, false, 0, 0, 1},
	}
	for _, m := range modes {
		settle := glassSettle
		if ctxLeft(ctx) < settle+glassWindow+25*time.Second {
			r.note("%s skipped: row time budget", m.name)
			continue
		}
		lr, err := startLive(ctx, t, n, m.profile, src, m.low)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		res, err := glassRun(ctx, e, lr, m.engine, n.HTTPURL()+"/live/"+lr.in.ID+"/"+m.file, m.low, m.catchUp, settle)
		lr.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		g := r.add(m.name+": glass-to-glass", "s", res.latency, 2)
		if m.goal > 0 {
			g.headline().goal(fmt.Sprintf("≤ %.1f s", m.goal), median(res.latency) <= m.goal)
		}
		r.addValue(m.name+": glass-to-glass p90", "s", percentile(res.latency, 90), 2)
		if len(res.own) > 0 {
			r.addValue(m.name+": the player's own latency estimate (median)", "s", median(res.own), 2)
		}
		r.addValue(m.name+": page load → first picture", "s", res.startup.Seconds(), 2)
		if !m.low {
			r.addValue(m.name+": beyond hls.js's 3-segment hold-back", "s", median(res.latency)-3*m.segment, 2)
		}
		if res.frozen > 0 {
			r.note("%s: the picture did not change between %d of %d consecutive samples (a stall: the frozen frame's age is "+
				"what the viewer saw, and it is in the figures).", m.name, res.frozen, len(res.latency)-1)
		}
		r.note("%s: %d samples (%d dropped: barcode unclear or implausible; %d from frame callbacks, %d from the fallback timer), "+
			"picture %dp, playback rate %.2f–%.2f, %d non-fatal player errors%s.", m.name, len(res.latency), res.dropped,
			res.rvfc, res.interval, res.height, res.minRate, res.maxRate, res.errors, res.lastError)
	}
	r.note("Players start at an independent part at or before their target (hls.js: PART-HOLD-BACK, 3 parts; dash.js: the " +
		"MPD's ServiceDescription latency, 3 parts): low-latency profiles carry a keyframe every second, so a viewer starts up " +
		"to 1 s past the target, plus what the player's own start-up took. The dashboard lets hls.js play up to 1.25× to reach its target (`maxLiveSyncPlaybackRate`); " +
		"with hls.js's defaults (the last line, no goal) it never catches up. dash.js catches up by itself within the MPD's " +
		"PlaybackRate (0.9–1.1; at 1.25 it stalled once).")
	r.note("Standard HLS: hls.js starts three target durations (6 s) behind the end of the playlist, by design (RFC 8216's " +
		"HOLD-BACK floor is the same), so its glass-to-glass is that plus the time the newest listed segment took to be made " +
		"and listed: the `beyond hls.js's 3-segment hold-back` line is the server's share. With 2 s segments no standard " +
		"player that keeps RFC 8216's hold-back can be under 6 s; a profile with `segment_seconds: 1` (the last line, no goal) " +
		"halves the hold-back, at the cost of more requests and a keyframe every second.")
	r.note("Frame N's send time is taken from the publisher's first byte (the RTMP handshake), a few milliseconds before `-re` starts its clock: every figure includes that much.")
	return nil
}

type glassResult struct {
	latency, own     []float64
	startup          time.Duration
	dropped          int
	frozen           int // samples showing the same frame as the one before
	rvfc, interval   int
	height           int
	minRate, maxRate float64
	errors           int
	lastError        string
}

// glassRun plays url in a glass player until it has played settle,
// samples for glassWindow, and turns the samples into latencies against the
// publisher's clock.
func glassRun(ctx context.Context, e *Env, lr *liveRun, engine, url string, low bool, catchUp float64, settle time.Duration) (glassResult, error) {
	var res glassResult
	g, err := startGlass(e, engine, url, low, catchUp)
	if err != nil {
		return res, err
	}
	defer g.close()
	// Settled: settle of wall clock since the first picture read.
	var first time.Time
	if err := pollUntil(ctx, 40*time.Second, 250*time.Millisecond, func() bool {
		s, err := g.state()
		if err != nil || len(s.Fatal) > 0 {
			return true
		}
		if len(s.Samples) > 0 {
			first = s.Samples[0].Shown
		}
		return !first.IsZero() && time.Since(first) >= settle
	}); err != nil {
		return res, fmt.Errorf("no picture within 40 s: %w\n%s", err, g.consoleTail())
	}
	s, err := g.state()
	if err != nil {
		return res, err
	}
	if len(s.Fatal) > 0 {
		return res, fmt.Errorf("fatal player error: %q\n%s", s.Fatal, g.consoleTail())
	}
	from := time.Now()
	if err := sleepCtx(ctx, glassWindow); err != nil {
		return res, err
	}
	if s, err = g.state(); err != nil {
		return res, err
	}
	if len(s.Fatal) > 0 {
		return res, fmt.Errorf("fatal player error: %q\n%s", s.Fatal, g.consoleTail())
	}
	if !s.StartedAt.IsZero() {
		res.startup = s.StartedAt.Sub(g.opened)
	}
	res.rvfc, res.interval, res.errors = s.RVFC, s.Interval, s.Errors
	if s.LastError != "" {
		res.lastError = " (last: " + s.LastError + ")"
	}
	res.minRate, res.maxRate = 1, 1
	var heights []float64
	prev := -1
	for _, x := range s.Samples {
		if x.Shown.Before(from) {
			continue
		}
		sent := lr.FirstByte.Add(time.Duration(float64(x.Frame) / SourceFPS * float64(time.Second)))
		lat := x.Shown.Sub(sent).Seconds()
		// Frame 0 is also what a black picture reads as; the source is
		// transcodeSeconds long.
		if x.Unclear > 0 || x.Frame == 0 || x.Frame >= transcodeSeconds*SourceFPS || lat < 0 || lat > 30 {
			res.dropped++
			continue
		}
		if x.Frame == prev {
			res.frozen++
		}
		prev = x.Frame
		res.latency = append(res.latency, lat)
		if x.Own > 0 {
			res.own = append(res.own, x.Own)
		}
		heights = append(heights, float64(x.Height))
		res.minRate, res.maxRate = min(res.minRate, x.Rate), max(res.maxRate, x.Rate)
	}
	if len(res.latency) == 0 {
		return res, fmt.Errorf("no readable frame number in %d samples (%d dropped)\n%s", len(s.Samples), res.dropped, g.consoleTail())
	}
	res.height = int(median(heights))
	return res, nil
}
