package bench

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
)

const pollEvery = 50 * time.Millisecond

// liveRun is one RTMP publish of a generated file into a new input of one
// node, through a proxy that timestamps the publisher's first byte.
type liveRun struct {
	n     *testcluster.Node
	in    testcluster.Input
	proxy firstSeen
	pub   *publisher
	// FirstByte is when the publisher's first byte reached the RTMP port:
	// frame N of the file leaves the publisher N/SourceFPS s later (-re).
	FirstByte time.Time
	// Playable is FirstByte → the first poll at which the first video
	// variant's playlist and the audio playlist both list a part (low
	// latency) or a segment (standard): what a player needs to start.
	Playable time.Duration
}

// startLive publishes src to a new input of the profile (no reconnect
// window, so that stop ends the stream at once) and polls the node every
// pollEvery, as a player would (`/live/<id>/master.m3u8`, then the first
// variant's and the audio rendition's media playlists) until both list a
// part (lowLatency) or a whole segment. The publisher keeps running: stop
// ends it.
func startLive(ctx context.Context, t *testing.T, n *testcluster.Node, profileID, src string, lowLatency bool) (*liveRun, error) {
	return startLiveOver(ctx, t, n, profileID, src, lowLatency, "rtmp")
}

// startLiveOver is startLive over RTMP, SRT or RTSP (proto "rtmp", "srt",
// "rtsp").
func startLiveOver(ctx context.Context, t *testing.T, n *testcluster.Node, profileID, src string, lowLatency bool, proto string) (*liveRun, error) {
	in := n.CreateInput(t, map[string]any{"name": "bench " + profileID, "profile_id": profileID, "reconnect_window_seconds": 0})
	var proxy firstSeen
	var target string
	var err error
	switch proto {
	case "rtmp", "rtsp":
		// Both are TCP; the stream key is the URL's path.
		var tp *firstByteProxy
		tp, err = newFirstByteProxy(map[string]string{"rtmp": n.Config.RTMPAddr, "rtsp": n.Config.RTSPAddr}[proto])
		proxy = tp
		if err == nil {
			target = proto + "://" + tp.Addr() + "/live/" + in.StreamKey
		}
	case "srt":
		var up *firstDatagramProxy
		up, err = newFirstDatagramProxy(n.Config.SRTAddr)
		proxy = up
		if err == nil {
			target = "srt://" + up.Addr() + "?streamid=publish:live/" + in.StreamKey + "&pkt_size=1316"
		}
	default:
		return nil, fmt.Errorf("publish over %q: not rtmp, srt or rtsp", proto)
	}
	if err != nil {
		return nil, err
	}
	lr := &liveRun{n: n, in: in, proxy: proxy}
	lr.pub, err = startPublisher(src, target, false)
	if err != nil {
		proxy.Close()
		return nil, err
	}
	var playlists []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		polled := time.Now()
		if err := ctx.Err(); err != nil {
			lr.stop()
			return nil, err
		}
		if lr.pub.exited() {
			lr.stop()
			return nil, fmt.Errorf("publisher exited: %s", lr.pub.stderr.String())
		}
		if polled.After(deadline) {
			lr.stop()
			return nil, fmt.Errorf("input %s not playable 30 s after publishing", in.ID)
		}
		if playlists == nil {
			playlists, _ = mediaPlaylists(ctx, n.HTTPURL(), in.ID)
		}
		ready := len(playlists) > 0
		for _, u := range playlists {
			b, _, err := get(ctx, u)
			if err != nil {
				ready = false
				break
			}
			segs, parts := playlistCounts(b)
			if segs == 0 && (!lowLatency || parts == 0) {
				ready = false
				break
			}
		}
		if ready {
			lr.FirstByte = proxy.First()
			lr.Playable = polled.Sub(lr.FirstByte)
			return lr, nil
		}
		if err := sleepCtx(ctx, pollEvery-time.Since(polled)); err != nil {
			lr.stop()
			return nil, err
		}
	}
}

// stop ends the publish and waits (up to 15 s) for the session to end, so
// that the next run starts on an idle node.
func (lr *liveRun) stop() {
	lr.pub.stop()
	lr.proxy.Close()
	deadline := time.Now().Add(15 * time.Second)
	for lr.n.State().Session(lr.in.ID) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// mediaPlaylists reads an input's master playlist through a node and
// returns the absolute URLs of its first variant's media playlist and of
// its audio renditions' (what a player loads first).
func mediaPlaylists(ctx context.Context, nodeURL, inputID string) ([]string, error) {
	b, final, err := get(ctx, nodeURL+"/live/"+inputID+"/"+media.MasterPlaylistName)
	if err != nil {
		return nil, err
	}
	vs, err := media.ParseMasterPlaylist(bytesReader(b))
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("master playlist lists no variant")
	}
	audio, err := media.ParseMasterAudio(bytesReader(b))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, uri := range append([]string{vs[0].URI}, audio...) {
		ref, err := url.Parse(uri)
		if err != nil {
			return nil, err
		}
		out = append(out, final.ResolveReference(ref).String())
	}
	return out, nil
}

// playlistCounts counts the whole segments and the parts (EXT-X-PART) a
// media playlist lists.
func playlistCounts(b []byte) (segments, parts int) {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			parts++
		case !strings.HasPrefix(line, "#"):
			segments++
		}
	}
	return segments, parts
}

// singleNode starts one ready node for a row.
func singleNode(t *testing.T) *testcluster.Node {
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitReady(30 * time.Second)
	return c.Node(0)
}

// standardProfile creates the default ladder with standard latency (CMAF
// segments, no parts) and segment_seconds, and returns its id.
func standardProfile(t *testing.T, n *testcluster.Node, seg int) string {
	def := node.DefaultProfile()
	return n.CreateProfile(t, map[string]any{"name": fmt.Sprintf("bench standard %d s", seg), "segment_seconds": seg,
		"video_preset": def.VideoPreset, "latency": fsm.LatencyStandard, "segment_format": fsm.SegmentFMP4,
		"renditions": renditionsBody(def)})
}

// rowPublish: RTMP first packet -> first playable, low latency (a part)
// and standard (a segment).
func rowPublish(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	n := singleNode(t)
	def := node.DefaultProfile()
	std := standardProfile(t, n, def.SegmentSeconds)
	r.Method = fmt.Sprintf("One node. A 720p30 file (1 s GOP) is published over RTMP (three more low-latency runs over SRT, "+
		"through a UDP proxy that timestamps the first datagram, and three over RTSP) at its native rate (`ffmpeg -re -c copy`) through a "+
		"loopback TCP proxy that timestamps the publisher's first byte, into a new input of the default profile (%s, latency low, "+
		"%d ms parts) or of the same ladder with latency standard (CMAF, no parts). The clock stops at the first poll (every %s "+
		"through the node: `master.m3u8`, then the first variant's and the audio rendition's media playlists) at which both list "+
		"a part (low latency) or a whole segment (standard): what a player needs to start. Runs alternate L,S,S,L,L,S; each "+
		"uses a new input.", ladderText(*def), def.PartMs, pollEvery)
	samples := map[bool][]float64{}
	other := map[string][]float64{}
	for i := 0; i < 6; i++ {
		if ctxLeft(ctx) < 40*time.Second {
			break
		}
		proto := []string{"srt", "rtsp"}[i%2]
		lr, err := startLiveOver(ctx, t, n, node.DefaultProfileID, src, true, proto)
		if err != nil {
			return err
		}
		lr.stop()
		other[proto] = append(other[proto], lr.Playable.Seconds())
	}
	for i, low := range []bool{true, false, false, true, true, false} {
		if i > 0 && ctxLeft(ctx) < 20*time.Second {
			r.note("stopped after %d runs: row time budget", i)
			break
		}
		pid := std
		if low {
			pid = node.DefaultProfileID
		}
		lr, err := startLive(ctx, t, n, pid, src, low)
		if err != nil {
			return err
		}
		lr.stop()
		samples[low] = append(samples[low], lr.Playable.Seconds())
	}
	const goal = 1.5
	res := r.add("publish → first part listed (low latency)", "s", samples[true], 2).headline()
	res.goal(fmt.Sprintf("≤ %.1f s", goal), median(samples[true]) <= goal)
	for _, proto := range []string{"srt", "rtsp"} {
		if len(other[proto]) > 0 {
			res = r.add("publish over "+strings.ToUpper(proto)+" → first part listed (low latency)", "s", other[proto], 2).headline()
			res.goal(fmt.Sprintf("≤ %.1f s", goal), median(other[proto]) <= goal)
		}
	}
	res = r.add("publish → first segment listed (standard latency)", "s", samples[false], 2).headline()
	res.goal(fmt.Sprintf("≤ %.1f s", goal), median(samples[false]) <= goal)
	r.note("The first transcodable keyframe is the publisher's first one that reaches a reader attached after mediamtx made " +
		"the path ready: over RTMP mediamtx reads (and drops) the first 2 s to find the tracks, so that is the keyframe at 3 s " +
		"of a 1 s-GOP source; over SRT the path is ready after ≈0.5 s (mediamtx reads the first MPEG-TS packets to find the " +
		"tracks, and replays them before any reader can attach) and it is the one at 1 s; over RTSP the path is ready at " +
		"RECORD (the SDP names the tracks), yet the publisher sends its first keyframe with RECORD's answer, before a " +
		"reader can attach, so it is the one at 1 s as well. The node attaches its relay " +
		"within ~25 ms of ready (it starts at the publish's authorisation) and takes the source's size from its SPS: ADR 0007.")
	r.note("Polling every %s adds up to %s to each sample. A stream starts with three 1 s segments, then the profile's %d s "+
		"(the first segment is the first 1 s one).", pollEvery, pollEvery, def.SegmentSeconds)
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
