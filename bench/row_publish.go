package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

// segSeen is one segment as a player could first have fetched it.
type segSeen struct {
	URI      string
	Listed   time.Time // first poll whose playlist listed it
	Duration float64   // its EXTINF
	File     string    // downloaded copy
}

// publishRun is one RTMP publish into node n measured from the outside.
type publishRun struct {
	FirstByte     time.Time     // publisher's first byte at the RTMP port
	FirstPlayable time.Duration // first byte -> first variant lists a segment
	Segments      []segSeen
}

const pollEvery = 50 * time.Millisecond

// publishAndWatch publishes src to a new input of the given profile through
// a first-byte proxy, polls the first variant every 50 ms through the node
// (as a player would: master via /live, redirects followed), and, for
// window after the first segment, downloads every new segment.
func publishAndWatch(ctx context.Context, t *testing.T, e *Env, n *testcluster.Node, profileID, src string, window time.Duration) (publishRun, error) {
	var pr publishRun
	in := n.CreateInput(t, map[string]any{"name": "bench " + profileID, "profile_id": profileID})
	proxy, err := newFirstByteProxy(n.Config.RTMPAddr)
	if err != nil {
		return pr, err
	}
	defer proxy.Close()
	pub, err := startPublisher(src, "rtmp://"+proxy.Addr()+"/live/"+in.StreamKey, false)
	if err != nil {
		return pr, err
	}
	defer func() {
		pub.stop()
		// Let the session end so the next run starts on an idle node.
		deadline := time.Now().Add(15 * time.Second)
		for n.State().Session(in.ID) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}()

	dir := filepath.Join(e.Work, "segments-"+in.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pr, err
	}
	seen := map[string]bool{}
	variant := ""
	var firstSeg time.Time
	playableBy := time.Now().Add(30 * time.Second)
	for {
		if err := ctx.Err(); err != nil {
			return pr, err
		}
		if pub.exited() {
			return pr, fmt.Errorf("publisher exited: %s", pub.stderr.String())
		}
		now := time.Now()
		if firstSeg.IsZero() && now.After(playableBy) {
			return pr, fmt.Errorf("input %s not playable 30 s after publishing", in.ID)
		}
		if !firstSeg.IsZero() && now.Sub(firstSeg) >= window {
			break
		}
		if variant == "" {
			variant, _ = firstVariant(ctx, n.HTTPURL(), in.ID)
		}
		if variant != "" {
			if mp, _, err := mediaPlaylist(ctx, variant); err == nil {
				polled := time.Now()
				for _, s := range mp.Segments {
					if seen[s.URI] {
						continue
					}
					seen[s.URI] = true
					if firstSeg.IsZero() {
						firstSeg = polled
						pr.FirstByte = proxy.First()
						pr.FirstPlayable = polled.Sub(pr.FirstByte)
					}
					if window == 0 {
						continue
					}
					u, _ := resolve(variant, s.URI)
					b, _, err := get(ctx, u)
					if err != nil {
						continue // deleted already: not a sample
					}
					f := filepath.Join(dir, fmt.Sprintf("%03d.ts", len(pr.Segments)))
					if err := os.WriteFile(f, b, 0o644); err != nil {
						return pr, err
					}
					pr.Segments = append(pr.Segments, segSeen{URI: s.URI, Listed: polled, Duration: s.Duration, File: f})
				}
			}
		}
		if err := sleepCtx(ctx, pollEvery-time.Since(now)); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// singleNode starts one ready node for a row.
func singleNode(t *testing.T) *testcluster.Node {
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitReady(30 * time.Second)
	return c.Node(0)
}

// rowPublish: RTMP first packet -> a variant playlist that lists a segment.
func rowPublish(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	n := singleNode(t)
	seg := node.DefaultProfile().SegmentSeconds
	r.Method = fmt.Sprintf("One node, the default profile (%s). A 720p30 file is published over RTMP at its native rate (`ffmpeg -re -c copy`) "+
		"through a loopback TCP proxy that timestamps the publisher's first byte. The clock stops at the first poll (every %s, through "+
		"`GET /live/<id>/master.m3u8` on the node, redirects followed) whose first variant playlist lists a segment. Each run uses a new input.",
		ladderText(*node.DefaultProfile()), pollEvery)
	var samples []float64
	for i := range 3 {
		if i > 0 && ctxLeft(ctx) < 25*time.Second {
			r.note("stopped after %d runs: row time budget", i)
			break
		}
		pr, err := publishAndWatch(ctx, t, e, n, node.DefaultProfileID, src, 0)
		if err != nil {
			return err
		}
		samples = append(samples, pr.FirstPlayable.Seconds())
	}
	goal := float64(seg) + 1
	res := r.add("publish → first playable", "s", samples, 2).headline()
	res.goal(fmt.Sprintf("≤ %.0f s (segment + 1 s)", goal), median(samples) <= goal)
	r.note("Polling every %s adds up to %s to each sample.", pollEvery, pollEvery)
	return nil
}

// rowLatency: a frame's send time (its burnt-in frame number on the
// publisher's clock) versus the time its segment becomes downloadable.
func rowLatency(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	n := singleNode(t)
	def := node.DefaultProfile()
	r.Method = fmt.Sprintf("One node, the default ladder at 1, 2 and 4 s segments. The source carries its frame number as a 16-block "+
		"binary barcode burnt into the top of every frame (no OCR: blocks are averaged and thresholded). The publisher sends frame N "+
		"N/%d s after its first byte (`-re`, timestamped by a proxy in front of the RTMP port), so T0 + N/%d is the wall clock of that "+
		"frame as a live encoder would stamp it. The variant playlist is polled every %s through the node; each new segment is "+
		"downloaded at once, its first frame's barcode read, and latency = time first listed − (T0 + N/%d). That is the latency of "+
		"the oldest frame in the segment; the newest frame's is one segment shorter.",
		SourceFPS, SourceFPS, pollEvery, SourceFPS)
	for _, seg := range []int{1, 2, 4} {
		if ctxLeft(ctx) < 40*time.Second {
			r.note("%d s segments skipped: row time budget", seg)
			continue
		}
		body := map[string]any{"name": fmt.Sprintf("bench %d s", seg), "segment_seconds": seg, "video_preset": def.VideoPreset,
			"renditions": renditionsBody(def)}
		pid := n.CreateProfile(t, body)
		window := time.Duration(max(14, 7*seg)) * time.Second
		pr, err := publishAndWatch(ctx, t, e, n, pid, src, window)
		if err != nil {
			return fmt.Errorf("%d s segments: %w", seg, err)
		}
		var oldest, newest []float64
		bad := 0
		// The first segment starts wherever the transcoder joined the live
		// stream and is cut short: it is the startup figure (publish → first
		// playable), not the steady state measured here.
		for i, s := range pr.Segments {
			if i == 0 {
				continue
			}
			num, err := readFrameNumber(ctx, s.File)
			if err != nil {
				bad++
				continue
			}
			sent := pr.FirstByte.Add(time.Duration(float64(num) / SourceFPS * float64(time.Second)))
			lat := s.Listed.Sub(sent).Seconds()
			if lat < 0 || lat > 60 {
				bad++ // an unreadable barcode decodes as nonsense
				continue
			}
			oldest = append(oldest, lat)
			newest = append(newest, lat-s.Duration)
		}
		if len(oldest) == 0 {
			return fmt.Errorf("%d s segments: no segment's frame number could be read", seg)
		}
		res := r.add(fmt.Sprintf("%d s segments: latency of a segment's first frame", seg), "s", oldest, 2)
		if seg == 2 {
			res.headline()
		}
		r.add(fmt.Sprintf("%d s segments: latency of a segment's last frame", seg), "s", newest, 2)
		r.addValue(fmt.Sprintf("%d s segments: publish → first playable", seg), "s", pr.FirstPlayable.Seconds(), 2)
		if bad > 0 {
			r.note("%d s segments: %d of %d segments dropped (barcode unreadable or implausible).", seg, bad, len(pr.Segments))
		}
	}
	r.note("The first segment of each run is left out: the transcoder joins the live stream mid-way and cuts it short; its timing is the publish → first playable figure.")
	r.note("A player adds its own buffer (usually 3 segments for HLS) on top of these figures; they are what the origin offers.")
	return nil
}

// renditionsBody is a profile's ladder as the API takes it.
func renditionsBody(p *fsm.Profile) []map[string]any {
	var out []map[string]any
	for _, rd := range p.Renditions {
		out = append(out, map[string]any{"name": rd.Name, "width": rd.Width, "height": rd.Height,
			"video_bitrate_kbps": rd.VideoBitrateKbps, "audio_bitrate_kbps": rd.AudioBitrateKbps, "fps": rd.FPS,
			"passthrough": rd.Passthrough})
	}
	return out
}

// resolve makes ref absolute against base.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}
