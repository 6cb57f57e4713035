package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
)

// DefaultProfileID is the id of the profile a new cluster is seeded with.
const DefaultProfileID = "default"

// DemoInputID is the id of the demo input a new cluster is seeded with, so
// that the first playback URL is easy to type.
const DemoInputID = "demo"

// DefaultProfile is the ladder a new cluster starts with: 720p, 480p and
// 360p at 2 s CMAF segments, low latency (LL-HLS parts).
func DefaultProfile() *fsm.Profile {
	return &fsm.Profile{
		ID:             DefaultProfileID,
		Name:           "Default 720p ladder",
		SegmentSeconds: fsm.DefaultSegmentSeconds,
		VideoPreset:    fsm.DefaultVideoPreset,
		SegmentFormat:  fsm.SegmentFMP4,
		Latency:        fsm.LatencyLow,
		PartMs:         fsm.DefaultPartMs,
		Renditions: []fsm.Rendition{
			{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 2800, AudioBitrateKbps: 128},
			{Name: "480p", Width: 854, Height: 480, VideoBitrateKbps: 1200, AudioBitrateKbps: 96},
			{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 700, AudioBitrateKbps: 96},
		},
	}
}

// initCommand seeds a brand-new cluster. fsm applies only the first one, so
// a leader may propose it whenever it finds the state empty.
func (n *Node) initCommand() fsm.Command {
	init := &fsm.Init{Secret: httpapi.NewSecret(), DefaultProfile: DefaultProfile()}
	if !n.cfg.NoDemo {
		init.DemoInput = &fsm.Input{
			ID: DemoInputID, Name: "Demo stream", StreamKey: httpapi.NewStreamKey(),
			Enabled: true, PlaybackPolicy: fsm.PlaybackPublic,
			ReconnectWindowSeconds: fsm.DefaultReconnectWindowSeconds,
		}
	}
	return fsm.Command{Op: fsm.OpInit, At: time.Now().UTC(), Init: init}
}

// printBanner tells a newcomer where to publish and where to watch, once the
// state is there.
func (n *Node) printBanner(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Wait until the node is ready (leader, seeded state, mediamtx up),
		// but not forever: after a while, print what is known and say why
		// the node is not ready yet.
		notReady := n.Ready()
		if !n.state.Initialized() || (notReady != nil && time.Since(n.started) < 15*time.Second) {
			continue
		}
		base := n.HTTPURL()
		var b strings.Builder
		fmt.Fprintf(&b, "\n  Dionysia node %q is up.\n", n.cfg.Name)
		fmt.Fprintf(&b, "  API:        %s/v1/inputs\n", base)
		if demo := n.state.Input(DemoInputID); demo != nil {
			l := n.Links(demo)
			fmt.Fprintf(&b, "  Stream key: %s   (input %q)\n", demo.StreamKey, demo.ID)
			fmt.Fprintf(&b, "  Publish:    %s\n", l.Ingest.RTMP)
			fmt.Fprintf(&b, "              %s\n", l.Ingest.SRT)
			fmt.Fprintf(&b, "              %s\n", l.Ingest.RTSP)
			fmt.Fprintf(&b, "              %s   (WebRTC: WHIP, browsers)\n", l.Ingest.WHIP)
			fmt.Fprintf(&b, "  OBS:        Server %s   Stream Key %s\n", strings.TrimSuffix(l.Ingest.RTMP, "/"+demo.StreamKey), demo.StreamKey)
			fmt.Fprintf(&b, "              or Service WHIP, Server %s   Bearer Token %s\n", strings.Replace(l.Ingest.WHIP, "/"+demo.StreamKey+"/", "/"+demo.ID+"/", 1), demo.StreamKey)
			fmt.Fprintf(&b, "  Watch:      %s   (VLC, Safari, ffplay, hls.js)\n", l.Playback.HLS)
			fmt.Fprintf(&b, "              %s  (dash.js, Shaka)\n", l.Playback.DASH)
			fmt.Fprintf(&b, "  Try:        ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -preset veryfast -g 60 -c:a aac -f flv %s\n", l.Ingest.RTMP)
		}
		fmt.Fprintf(&b, "  Dashboard:  %s/\n", base)
		if n.cfg.Banner != nil {
			fmt.Fprintln(n.cfg.Banner, b.String())
		}
		if notReady != nil {
			n.log.Warn("node not ready yet", "reason", notReady)
		} else {
			n.log.Info("node ready", "http", base)
		}
		return
	}
}
