package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

const (
	scaleCap      = 24 // streams in all: what fits the suite's time budget
	scaleStep     = 3
	scaleWindow   = 8 * time.Second
	realtimeFloor = 0.9
)

type scaleStream struct {
	id  string
	pub *publisher
}

// rowScale: passthrough streams a 3-node cluster carries before any falls
// below realtime, and how evenly the ring places them.
func rowScale(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	pid := leader.CreateProfile(t, map[string]any{
		"name": "passthrough", "segment_seconds": 2,
		"renditions": []map[string]any{{"name": "source", "passthrough": true, "video_bitrate_kbps": 3000, "audio_bitrate_kbps": 128}},
	})
	r.Method = fmt.Sprintf("Three in-process nodes, a one-rendition passthrough profile (ffmpeg `-c copy` into 2 s HLS segments). Streams "+
		"of a 720p30 3 Mb/s file are published over RTMP (`-re -stream_loop -1 -c copy`), round-robin over the three nodes' ingest, "+
		"%d at a time up to a cap of %d. After each step every new stream must become playable, then each stream's transcoder "+
		"frame counter (`/v1/inputs/<id>/status`, asked through the leader) is read twice %s apart: frames per second ÷ %d is its "+
		"realtime ratio. A stream below %.2f× (or not playable within 30 s) ends the ramp. Evenness is the max/min of streams "+
		"owned per node at the last step.", scaleStep, scaleCap, scaleWindow, SourceFPS, realtimeFloor)

	var streams []*scaleStream
	defer func() {
		for _, s := range streams {
			s.pub.stop()
		}
	}()
	nodes := c.Nodes()
	carried, limitedBy := 0, fmt.Sprintf("cap of %d streams reached", scaleCap)
	var lastOwners map[string]int
	var lastMinRatio, lastCPU float64
	for len(streams) < scaleCap {
		if ctxLeft(ctx) < scaleWindow+40*time.Second {
			limitedBy = fmt.Sprintf("row time budget (stopped at %d streams)", len(streams))
			break
		}
		var fresh []*scaleStream
		for range scaleStep {
			i := len(streams)
			in := leader.CreateInput(t, map[string]any{"name": fmt.Sprintf("scale %d", i), "profile_id": pid})
			ing := nodes[i%len(nodes)]
			p, err := startPublisher(src, "rtmp://"+ing.Config.RTMPAddr+"/live/"+in.StreamKey, true)
			if err != nil {
				return err
			}
			s := &scaleStream{id: in.ID, pub: p}
			streams = append(streams, s)
			fresh = append(fresh, s)
		}
		for _, s := range fresh {
			if err := pollUntil(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
				ok, _ := playableVia(ctx, leader.HTTPURL(), s.id)
				return ok
			}); err != nil {
				limitedBy = fmt.Sprintf("stream %d not playable within 30 s", len(streams))
				break
			}
		}
		if strings.HasPrefix(limitedBy, "stream") {
			break
		}
		cpu0 := cpuBusy()
		before := map[string]frameSample{}
		for _, s := range streams {
			before[s.id] = frames(ctx, leader.HTTPURL(), s.id)
		}
		if err := sleepCtx(ctx, scaleWindow); err != nil {
			return err
		}
		owners := map[string]int{}
		minRatio := 99.0
		for _, s := range streams {
			a := frames(ctx, leader.HTTPURL(), s.id)
			b := before[s.id]
			ratio := 0.0
			if a.ok && b.ok && a.at.After(b.at) {
				ratio = float64(a.frames-b.frames) / a.at.Sub(b.at).Seconds() / SourceFPS
			}
			minRatio = min(minRatio, ratio)
			owners[a.owner]++
		}
		lastCPU = cpuBusy().since(cpu0)
		t.Logf("scale: %d streams, slowest %.2f× realtime, owners %v, CPU %.0f%%", len(streams), minRatio, owners, lastCPU*100)
		if minRatio < realtimeFloor {
			limitedBy = fmt.Sprintf("at %d streams one fell to %.2f× realtime", len(streams), minRatio)
			break
		}
		carried, lastOwners, lastMinRatio = len(streams), owners, minRatio
	}
	res := r.addValue("passthrough streams carried at ≥ realtime", "streams", float64(carried), 0).headline()
	res.Goal = "cap " + strconv.Itoa(scaleCap)
	r.addValue("slowest stream at that count", "× realtime", lastMinRatio, 2)
	r.addValue("CPU busy at that count (both cores)", "%", lastCPU*100, 0)
	if len(lastOwners) > 0 {
		lo, hi := scaleCap, 0
		for _, n := range nodes {
			k := lastOwners[n.Name()]
			lo, hi = min(lo, k), max(hi, k)
		}
		even := r.addValue("ring spread: max/min streams per node", "×", float64(hi)/float64(max(lo, 1)), 2).headline()
		if lo == 0 {
			even.Value = nil
			r.note("one node owned no stream")
		}
		r.note("streams per node at %d streams: %s", carried, fmtOwners(nodes, lastOwners))
	}
	r.note("ramp ended: %s", limitedBy)
	r.note("The cap keeps the row inside the 20-minute suite; the publishers (%d ffmpeg processes) run on the same 2 cores.", carried)
	return nil
}

type frameSample struct {
	ok     bool
	frames uint64
	owner  string
	at     time.Time
}

func frames(ctx context.Context, nodeURL, id string) frameSample {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodeURL+"/v1/inputs/"+id+"/status", nil)
	resp, err := client.Do(req)
	if err != nil {
		return frameSample{}
	}
	defer resp.Body.Close()
	var st struct {
		Owner      string `json:"owner_node"`
		Transcoder *struct {
			Frames uint64 `json:"frames"`
		} `json:"transcoder"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil || st.Transcoder == nil {
		return frameSample{owner: st.Owner}
	}
	return frameSample{ok: true, frames: st.Transcoder.Frames, owner: st.Owner, at: time.Now()}
}

func fmtOwners(nodes []*testcluster.Node, owners map[string]int) string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s %d", n.Name(), owners[n.Name()]))
	}
	return strings.Join(s, ", ")
}

// cpuTimes is /proc/stat's aggregate line.
type cpuTimes struct{ busy, total float64 }

func cpuBusy() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ct cpuTimes
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		ct.total += x
		if i != 3 && i != 4 { // idle, iowait
			ct.busy += x
		}
	}
	return ct
}

// since is the busy fraction between two readings.
func (c cpuTimes) since(prev cpuTimes) float64 {
	if d := c.total - prev.total; d > 0 {
		return (c.busy - prev.busy) / d
	}
	return 0
}
