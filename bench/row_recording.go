package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// recordingWindow is how long each measured stretch of a stream lasts.
const recordingWindow = 30 * time.Second

// rowRecording: what recording a show costs. One node process, one small
// ladder; the same source is published in turn to an input that records
// and to one that does not, and the CPU of the node's whole process tree
// (the node, mediamtx, the stream's ffmpeg) is measured over a steady
// stretch of each. Disk is what the recording wrote per track.
func rowRecording(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 640, 360, transcodeSeconds)
	if err != nil {
		return err
	}
	np, err := spawnNode(ctx, e, "recording")
	if err != nil {
		return err
	}
	defer np.stop()
	r.Method = fmt.Sprintf("One `bin/dionysia node` process on loopback; a 640×360 %d fps H.264/AAC file published over RTMP "+
		"(`-re -c copy`, looped) into a two-rung ladder (360p 600 kbps, 180p 200 kbps, 1 s segments, ultrafast, standard latency). "+
		"The same source goes in turn to an input with `record: true` and to one without (order live, rec, rec, live, live, rec), each for "+
		"%s once it plays; CPU is user+sys of the node and every process below it (/proc) over that stretch, divided by the media "+
		"time made in it (the live edge's program date time moved), so a transcoder slowed by a loaded box compares like for like. "+
		"Disk is the bytes the recording wrote per track divided by the recorded duration. A one-node cluster writes one copy; "+
		"a cluster writes two (the owner's and its standby's), each on its own node.", SourceFPS, recordingWindow)

	do := func(method, path string, body any, want int) (map[string]any, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, method, np.base+path, bytesReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %s %v", method, path, resp.Status, out)
		}
		return out, nil
	}
	prof, err := do(http.MethodPost, "/v1/profiles", map[string]any{"name": "recording bench", "segment_seconds": 1,
		"video_preset": "ultrafast", "latency": "standard",
		"renditions": []map[string]any{
			{"name": "360p", "width": 640, "height": 360, "video_bitrate_kbps": 600, "audio_bitrate_kbps": 64},
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 200, "audio_bitrate_kbps": 64},
		}}, http.StatusCreated)
	if err != nil {
		return err
	}
	inputs := map[bool]map[string]any{}
	for _, rec := range []bool{false, true} {
		in, err := do(http.MethodPost, "/v1/inputs", map[string]any{"name": fmt.Sprintf("record=%v", rec), "profile_id": prof["id"],
			"record": rec, "reconnect_window_seconds": 0}, http.StatusCreated)
		if err != nil {
			return err
		}
		inputs[rec] = in
	}
	// treeCPU is the CPU so far of the node and each process below it, by
	// pid. A stretch counts the processes alive at both ends; one that
	// ended in between (the previous show's ffmpeg, still stopping at the
	// start) is left out, and a stretch in which a process started (a
	// transcoder restarted: its first run's CPU went with it) is not
	// counted at all.
	treeCPU := func() map[int]float64 {
		out := map[int]float64{}
		for _, p := range append(descendants(procTable(), np.cmd.Process.Pid), procInfo{PID: np.cmd.Process.Pid, Comm: "dionysia"}) {
			if c, ok := procCPUSeconds(p.PID); ok {
				out[p.PID] = c
			}
		}
		return out
	}
	used := func(c0, c1 map[int]float64) (float64, bool) {
		var sum float64
		for pid, a := range c0 {
			if b, ok := c1[pid]; ok {
				sum += b - a
			}
		}
		for pid := range c1 {
			if _, ok := c0[pid]; !ok {
				return 0, false
			}
		}
		return sum, true
	}
	discarded := 0
	stretch := func(rec bool) (float64, error) {
		in := inputs[rec]
		id, _ := in["id"].(string)
		key, _ := in["stream_key"].(string)
		p, err := startPublisher(src, "rtmp://"+np.addr(3)+"/live/"+key, true)
		if err != nil {
			return 0, err
		}
		defer p.stop()
		if err := pollUntil(ctx, 60*time.Second, 200*time.Millisecond, func() bool {
			v, err := firstVariant(ctx, np.base, id)
			if err != nil {
				return false
			}
			mp, _, err := mediaPlaylist(ctx, v)
			return err == nil && len(mp.Segments) >= 4
		}); err != nil {
			return 0, fmt.Errorf("record=%v: not playable: %w", rec, err)
		}
		// CPU per second of media made: on a loaded box the transcoder may
		// fall behind realtime, and CPU per wall second would then compare
		// different amounts of work.
		v, err := firstVariant(ctx, np.base, id)
		if err != nil {
			return 0, err
		}
		edge := func() (time.Time, error) {
			mp, _, err := mediaPlaylist(ctx, v)
			if err != nil || len(mp.Segments) == 0 {
				return time.Time{}, fmt.Errorf("record=%v: media playlist: %v", rec, err)
			}
			last := mp.Segments[len(mp.Segments)-1]
			return last.ProgramDateTime.Add(time.Duration(last.Duration * float64(time.Second))), nil
		}
		e0, err := edge()
		if err != nil {
			return 0, err
		}
		c0 := treeCPU()
		if err := sleepCtx(ctx, recordingWindow); err != nil {
			return 0, err
		}
		c1 := treeCPU()
		e1, err := edge()
		if err != nil {
			return 0, err
		}
		made := e1.Sub(e0).Seconds()
		if made <= 0 {
			return 0, fmt.Errorf("record=%v: no media made in %s", rec, recordingWindow)
		}
		cpu, ok := used(c0, c1)
		p.stop()
		// The show ends (no reconnect window) before the next stretch.
		_ = pollUntil(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
			st, err := do(http.MethodGet, "/v1/inputs/"+id, nil, http.StatusOK)
			return err == nil && st["state"] == "idle"
		})
		if !ok {
			discarded++
			return -1, nil
		}
		return cpu / made, nil
	}
	var live, rec []float64
	for _, recording := range []bool{false, true, true, false, false, true} {
		v, err := stretch(recording)
		if err != nil {
			return err
		}
		switch {
		case v < 0:
		case recording:
			rec = append(rec, v)
		default:
			live = append(live, v)
		}
	}
	if discarded > 0 {
		r.note("%d stretches not counted: a process of the node's tree started during them (its CPU before the stretch is unknown).", discarded)
	}
	if len(rec) == 0 || len(live) == 0 {
		return fmt.Errorf("no stretch of each kind could be measured (%d discarded)", discarded)
	}
	res := r.compare("CPU per second of media, recording versus live only", "CPU s/s", rec, live, "live only", 3).headline()
	if b := median(live); b > 0 {
		res.goal("≤ 1.02×", median(rec)/b <= 1.02)
	}

	// Disk per track: the recorded files over the recorded duration.
	var list struct {
		Recordings []struct {
			ID              string  `json:"id"`
			Status          string  `json:"status"`
			DurationSeconds float64 `json:"duration_seconds"`
		} `json:"recordings"`
	}
	if err := pollUntil(ctx, 30*time.Second, 500*time.Millisecond, func() bool {
		out, err := do(http.MethodGet, "/v1/inputs/"+inputs[true]["id"].(string)+"/recordings", nil, http.StatusOK)
		if err != nil {
			return false
		}
		b, _ := json.Marshal(out)
		if json.Unmarshal(b, &list) != nil || len(list.Recordings) < 2 {
			return false
		}
		for _, x := range list.Recordings {
			if x.Status != "ready" {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("recordings not ready: %w", err)
	}
	perTrack := map[string][]float64{}
	for _, x := range list.Recordings {
		dir := filepath.Join(np.dir, "data", "recordings", x.ID)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			var bytes int64
			_ = filepath.Walk(filepath.Join(dir, e.Name()), func(_ string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					bytes += fi.Size()
				}
				return nil
			})
			perTrack[e.Name()] = append(perTrack[e.Name()], float64(bytes)/1e6/x.DurationSeconds*3600)
		}
	}
	for _, track := range []string{"360p", "180p", "audio"} {
		if v := perTrack[track]; len(v) > 0 {
			res := r.add("disk per hour, "+track, "MB/h", v, 0)
			if track == "360p" {
				res.headline()
			}
		}
	}
	r.note("The files are the live stream's CMAF segments as they are, so a track costs its bit rate: 360p at 600 kbps video is about 270 MB/h plus the container.")
	return nil
}
