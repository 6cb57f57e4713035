package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dionysia/dionysia/media"
)

// streamProfile is the cheapest ladder that still runs the whole path
// (ingest, relay to the owner, transcoder, packager, standby copies): one
// passthrough rendition, so the 2-core box spends its time on the nodes.
func streamProfile() map[string]any {
	return map[string]any{
		"name": "chaos passthrough", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{
			{"name": "src", "passthrough": true, "width": 320, "height": 180, "video_bitrate_kbps": 400, "audio_bitrate_kbps": 64},
		},
	}
}

// StreamSample is one look at the stream's newest segment through a node.
type StreamSample struct {
	At  time.Duration
	Seq uint64 // media sequence of the newest segment; 0 = could not tell
	Err string
}

// Watcher polls one media playlist of a stream through a chosen node and
// records the newest segment's sequence number.
type Watcher struct {
	s     *Suite
	input string
	start time.Time
	mu    sync.Mutex
	node  int
	samp  []StreamSample
}

// SetNode makes the watcher read through node i from now on.
func (w *Watcher) SetNode(i int) {
	w.mu.Lock()
	w.node = i
	w.mu.Unlock()
}

// run polls every 500 ms until ctx ends.
func (w *Watcher) run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		w.mu.Lock()
		n := w.node
		w.mu.Unlock()
		seq, err := w.newest(ctx, n)
		s := StreamSample{At: time.Since(w.start), Seq: seq}
		if err != nil {
			s.Err = err.Error()
		}
		w.mu.Lock()
		w.samp = append(w.samp, s)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Samples between from and to (times since the watcher's start).
func (w *Watcher) Samples(from, to time.Duration) []StreamSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []StreamSample
	for _, s := range w.samp {
		if s.At >= from && s.At <= to {
			out = append(out, s)
		}
	}
	return out
}

func (w *Watcher) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, nil
}

// newest reads the master playlist and the first variant's media playlist
// through node n and returns the newest segment's sequence number.
func (w *Watcher) newest(ctx context.Context, n int) (uint64, error) {
	master := w.s.Procs[n].HTTP() + "/live/" + w.input + "/master.m3u8"
	b, err := w.get(ctx, master)
	if err != nil {
		return 0, err
	}
	vs, err := media.ParseMasterPlaylist(bytes.NewReader(b))
	if err != nil || len(vs) == 0 {
		return 0, fmt.Errorf("master playlist: %d variants, %v", len(vs), err)
	}
	base, _ := url.Parse(master)
	ref, err := url.Parse(vs[0].URI)
	if err != nil {
		return 0, err
	}
	b, err = w.get(ctx, base.ResolveReference(ref).String())
	if err != nil {
		return 0, err
	}
	mp, err := media.ParseMediaPlaylist(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if len(mp.Segments) == 0 {
		return 0, fmt.Errorf("media playlist lists no segment")
	}
	return mp.MediaSequence + uint64(len(mp.Segments)) - 1, nil
}

// Playability is what the watcher saw during one fault.
type Playability struct {
	Playable bool
	// LongestStall is the longest time the newest segment did not change.
	LongestStall time.Duration
	First, Last  uint64
	Why          string
}

// judgeStream says whether the stream played through the fault: its newest
// segment advanced during the last `tail` of the window (it plays at the end
// of the fault, from the majority side), and how long it stood still.
func judgeStream(samples []StreamSample, from, to, tail time.Duration) Playability {
	var p Playability
	var lastSeq uint64
	lastChange := from
	advancedInTail := false
	for _, s := range samples {
		if s.Seq == 0 {
			continue
		}
		if p.First == 0 {
			p.First = s.Seq
		}
		if s.Seq > lastSeq {
			if lastSeq != 0 {
				p.LongestStall = max(p.LongestStall, s.At-lastChange)
				if s.At >= to-tail {
					advancedInTail = true
				}
			}
			lastSeq, lastChange = s.Seq, s.At
		}
	}
	p.LongestStall = max(p.LongestStall, to-lastChange)
	p.Last = lastSeq
	p.Playable = advancedInTail
	if !p.Playable {
		last := "no sample"
		if len(samples) > 0 {
			last = fmt.Sprintf("seq %d, %s", samples[len(samples)-1].Seq, samples[len(samples)-1].Err)
		}
		p.Why = fmt.Sprintf("newest segment did not advance in the last %s of the fault (first %d, last %d; last sample: %s)", tail, p.First, p.Last, last)
	}
	return p
}
