package node

import (
	"context"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
)

// transcoders are the ffmpeg processes this node runs, one per live input it
// owns.
type transcoders struct {
	n  *Node
	mu sync.Mutex
	// running by input id.
	running map[string]*runningTranscoder
	// stopping holds inputs whose old ffmpeg has not exited yet: a new one
	// for the same input waits, since both would write the same folder.
	stopping map[string]chan struct{}
	starts   uint64
}

type runningTranscoder struct {
	t         *media.Transcoder
	cancel    context.CancelFunc
	done      chan struct{}
	sessionID string
	ingest    string
	profileAt time.Time
	profileID string
	started   time.Time
}

func newTranscoders(n *Node) *transcoders {
	return &transcoders{n: n, running: map[string]*runningTranscoder{}, stopping: map[string]chan struct{}{}}
}

// desired is what should run here: the live sessions whose input this node
// owns on the ring.
type desiredTranscode struct {
	session *fsm.Session
	input   *fsm.Input
	profile *fsm.Profile
	source  string
}

func (n *Node) desiredTranscodes() map[string]desiredTranscode {
	out := map[string]desiredTranscode{}
	members := map[string]string{} // name -> advertised RTSP addr
	for _, m := range n.clu.Members() {
		if m.State == "alive" || m.State == "suspect" {
			members[m.Name] = m.Meta.RTSPAddr
		}
	}
	for _, s := range n.state.Sessions() {
		owner, ok := n.clu.Owner(s.InputID)
		if !ok || owner.Name != n.cfg.Name {
			continue
		}
		in := n.state.Input(s.InputID)
		if in == nil {
			continue
		}
		p := n.state.Profile(in.ProfileID)
		if p == nil {
			continue
		}
		rtsp := members[s.IngestNode]
		if s.IngestNode == n.cfg.Name {
			rtsp = loopback(n.cfg.RTSPAddr)
		}
		if rtsp == "" {
			// The ingest node is gone; the leader will clear its sessions.
			continue
		}
		out[s.InputID] = desiredTranscode{session: s, input: in, profile: p, source: n.sourceURL(rtsp, s.Path)}
	}
	return out
}

// sourceURL is where ffmpeg reads a live path: the ingest node's mediamtx,
// with the cluster-internal read credentials (mediaSecret, never the
// internal secret itself: the URL is on ffmpeg's command line).
func (n *Node) sourceURL(rtspAddr, path string) string {
	u := url.URL{Scheme: "rtsp", User: url.UserPassword(internalUser, n.mediaSecret()), Host: rtspAddr, Path: "/" + path}
	return u.String()
}

// reconcile starts and stops transcoders until what runs is what is desired.
func (ts *transcoders) reconcile(ctx context.Context) {
	want := ts.n.desiredTranscodes()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ctx.Err() != nil {
		// The node is stopping: stopAll has taken (or will take) every
		// transcoder. Starting one now would clear the output folder the
		// stopped one is ending and outlive Close.
		return
	}
	for id, r := range ts.running {
		d, ok := want[id]
		if ok && d.session.ID == r.sessionID && d.session.IngestNode == r.ingest &&
			d.profile.ID == r.profileID && d.profile.UpdatedAt.Equal(r.profileAt) {
			continue
		}
		reason := "stream ended"
		switch {
		case ok && d.session.ID != r.sessionID:
			reason = "publisher reconnected"
		case ok:
			reason = "profile changed"
		case ts.n.state.Session(id) != nil:
			reason = "owner moved"
		}
		ts.n.log.Info("stopping transcoder", "input", id, "reason", reason)
		ts.stopLocked(id)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, ok := ts.running[id]; ok {
			continue
		}
		if _, ok := ts.stopping[id]; ok {
			continue
		}
		ts.startLocked(ctx, want[id])
	}
	ts.n.clu.SetLoad(len(ts.running))
}

func (ts *transcoders) startLocked(ctx context.Context, d desiredTranscode) {
	n := ts.n
	hasVideo, hasAudio := media.TracksHave(d.session.Tracks)
	spec := media.TranscodeSpec{
		FFmpeg:    n.cfg.FFmpeg,
		SourceURL: d.source,
		Profile:   *d.profile,
		OutputDir: n.OutputDir(d.input.ID),
		HasVideo:  hasVideo,
		HasAudio:  hasAudio,
		ListSize:  n.cfg.HLSListSize,
	}
	t, err := media.NewTranscoder(media.TranscoderConfig{Spec: spec, Logger: n.log.With("input", d.input.ID)})
	if err != nil {
		n.log.Error("cannot transcode input", "input", d.input.ID, "err", err)
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	r := &runningTranscoder{
		t: t, cancel: cancel, done: make(chan struct{}), sessionID: d.session.ID, ingest: d.session.IngestNode,
		profileID: d.profile.ID, profileAt: d.profile.UpdatedAt, started: time.Now(),
	}
	ts.running[d.input.ID] = r
	ts.starts++
	n.log.Info("starting transcoder", "input", d.input.ID, "profile", d.profile.ID, "ingest_node", d.session.IngestNode,
		"renditions", len(d.profile.Renditions))
	go func() {
		defer close(r.done)
		if err := t.Run(tctx); err != nil {
			n.log.Error("transcoder stopped", "input", d.input.ID, "err", err)
		}
		ts.mu.Lock()
		if ts.running[d.input.ID] == r {
			delete(ts.running, d.input.ID)
		}
		ts.mu.Unlock()
		n.poke()
	}()
}

func (ts *transcoders) stopLocked(id string) {
	r, ok := ts.running[id]
	if !ok {
		return
	}
	delete(ts.running, id)
	r.cancel()
	ts.stopping[id] = r.done
	go func() {
		<-r.done
		ts.mu.Lock()
		if ts.stopping[id] == r.done {
			delete(ts.stopping, id)
		}
		ts.mu.Unlock()
		ts.n.poke()
	}()
}

// stopAll stops every transcoder and waits for them to end their playlists.
func (ts *transcoders) stopAll() {
	ts.mu.Lock()
	var waits []chan struct{}
	for id, r := range ts.running {
		r.cancel()
		waits = append(waits, r.done)
		delete(ts.running, id)
	}
	for _, ch := range ts.stopping {
		waits = append(waits, ch)
	}
	ts.mu.Unlock()
	for _, ch := range waits {
		<-ch
	}
}

func (ts *transcoders) get(id string) *runningTranscoder {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.running[id]
}

func (ts *transcoders) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.running)
}

// reconcileLoop runs reconcile on every state change, every cluster change
// and once a second (a missed signal must not leave a stream unserved).
func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n.trans.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-n.clu.Changes():
		case <-t.C:
		}
	}
}
