package node

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
)

// ingestWatcher turns the co-located mediamtx's ready paths into live
// sessions in the replicated state, and ends the sessions whose publish is
// gone. Polling mediamtx's API (a loopback call every IngestPoll) keeps the
// truth in one place and recovers from anything missed, at the price of at
// most one poll interval of extra start latency.
//
// The first publisher of an input wins: a second one, on another node,
// waits (connected, unrecorded) until the first one's session is no longer
// live, then takes over on the next poll.
type ingestWatcher struct {
	n *Node
	// pending remembers what was proposed recently so a slow raft round trip
	// is not answered with the same proposal on every poll.
	pending map[string]time.Time
	// waiting holds the source ids of publishers that wait for another node's
	// live session, so that each wait is logged once, not on every poll.
	waiting map[string]bool

	mu    sync.Mutex
	bytes map[string]uint64 // input id -> bytes received by mediamtx, last poll
}

func newIngestWatcher(n *Node) *ingestWatcher {
	return &ingestWatcher{n: n, pending: map[string]time.Time{}, waiting: map[string]bool{}, bytes: map[string]uint64{}}
}

func (w *ingestWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.n.cfg.IngestPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		paths, err := w.n.mtx.Paths(pctx)
		cancel()
		if err != nil {
			// mediamtx is (re)starting: its publishers are gone anyway, but
			// wait until it answers before ending sessions.
			continue
		}
		w.sync(ctx, paths)
	}
}

func (w *ingestWatcher) sync(ctx context.Context, paths []media.Path) {
	n := w.n
	now := time.Now()
	for k, at := range w.pending {
		if now.Sub(at) > 5*time.Second {
			delete(w.pending, k)
		}
	}
	ready := map[string]media.Path{}
	for _, p := range paths {
		if p.Ready && strings.HasPrefix(p.Name, "live/") {
			ready[p.Name] = p
		}
	}
	// A reconnecting session of this node has no publisher here any more:
	// it is neither ended again nor counted, and a publish coming back
	// replaces it.
	mine := map[string]*fsm.Session{} // path -> live session this node recorded
	for _, s := range n.state.Sessions() {
		if s.IngestNode == n.cfg.Name && s.Live() {
			mine[s.Path] = s
		}
	}

	waiting := map[string]bool{}
	for name, p := range ready {
		id := sessionID(p)
		if w.kickIfRefused(ctx, p, mine[name]) {
			continue
		}
		if s, ok := mine[name]; ok && s.ID == id {
			continue
		}
		// The key is checked again: the publish was authorised, but the key
		// may have been rotated in between; the session of an already
		// recorded path survives a rotation (it is keyed by path above).
		in := n.inputForPath(name)
		if in == nil {
			continue
		}
		if cur := n.state.Session(in.ID); cur != nil && cur.Live() && cur.ID != id && cur.IngestNode != n.cfg.Name {
			// fsm would refuse the start: save the raft write.
			waiting[id] = true
			if !w.waiting[id] {
				n.log.Info("publisher waiting: input already live on node "+cur.IngestNode, "input", in.ID, "path", pathHint(name))
			}
			continue
		}
		if w.pending["start "+id] != (time.Time{}) {
			continue
		}
		w.pending["start "+id] = now
		started := p.ReadyTime
		if started.IsZero() {
			started = now
		}
		cmd := fsm.Command{Op: fsm.OpStartSession, At: now.UTC(), Session: &fsm.Session{
			InputID: in.ID, ID: id, IngestNode: n.cfg.Name, Path: name,
			Protocol: protocolOf(p.SourceType), Tracks: p.Tracks, StartedAt: started.UTC(),
		}}
		res, err := n.apply(ctx, cmd)
		if err == nil {
			err = res.Err
		}
		switch {
		case fsm.ErrorCode(err) == fsm.CodeConflict:
			// Another node's publish was recorded first, after this poll
			// read the state: wait like any second publisher.
			n.log.Debug("record live session: another publisher was first", "input", in.ID, "err", err)
			delete(w.pending, "start "+id)
		case err != nil:
			n.log.Warn("record live session", "input", in.ID, "err", err)
			delete(w.pending, "start "+id)
		case res.Changed:
			n.log.Info("stream live", "input", in.ID, "protocol", protocolOf(p.SourceType), "tracks", p.Tracks)
		}
	}
	w.waiting = waiting

	bytes := map[string]uint64{}
	for name, s := range mine {
		if p, ok := ready[name]; ok {
			bytes[s.InputID] = p.BytesReceived
		}
	}
	w.mu.Lock()
	w.bytes = bytes
	w.mu.Unlock()

	for name, s := range mine {
		if p, ok := ready[name]; ok && sessionID(p) == s.ID {
			continue
		}
		if w.pending["end "+s.ID] != (time.Time{}) {
			continue
		}
		w.pending["end "+s.ID] = now
		cmd := fsm.Command{Op: fsm.OpEndSession, At: now.UTC(), ID: s.InputID, Node: n.cfg.Name, Session: &fsm.Session{ID: s.ID}}
		if _, err := n.apply(ctx, cmd); err != nil {
			n.log.Warn("end live session", "input", s.InputID, "err", err)
			delete(w.pending, "end "+s.ID)
		} else {
			// fsm decides whether the stream ends now or waits, reconnecting,
			// for the input's window (the leader logs its expiry).
			window := 0
			if in := n.state.Input(s.InputID); in != nil {
				window = in.ReconnectWindowSeconds
			}
			n.log.Info("publisher gone", "input", s.InputID, "reconnect_window_s", window)
		}
	}
}

// kickIfRefused disconnects a publisher whose input was disabled or deleted
// while it was live (or before its session was recorded): the auth hook only
// sees the start of a publish. A key rotation alone does not cut a running
// publish; the old key is refused from the next publish on.
func (w *ingestWatcher) kickIfRefused(ctx context.Context, p media.Path, s *fsm.Session) bool {
	n := w.n
	var in *fsm.Input
	if s != nil {
		in = n.state.Input(s.InputID)
	} else {
		in = n.inputForPath(p.Name)
	}
	if in != nil && in.Enabled {
		return false
	}
	if w.pending["kick "+p.SourceID] != (time.Time{}) {
		return true
	}
	w.pending["kick "+p.SourceID] = time.Now()
	reason := "input deleted"
	if in != nil {
		reason = "input disabled"
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := n.mtx.Kick(kctx, p.SourceType, p.SourceID); err != nil {
		n.log.Warn("disconnect publisher", "path", pathHint(p.Name), "reason", reason, "err", err)
		return true
	}
	n.log.Info("publisher disconnected", "path", pathHint(p.Name), "reason", reason)
	return true
}

// bytesByInput is what mediamtx received from each publisher on this node.
func (w *ingestWatcher) bytesByInput() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]uint64, len(w.bytes))
	for k, v := range w.bytes {
		out[k] = v
	}
	return out
}

// sessionID tells publishes apart: mediamtx gives every connection an id.
func sessionID(p media.Path) string {
	if p.SourceID != "" {
		return p.SourceID
	}
	return p.Name + "@" + p.ReadyTime.UTC().Format(time.RFC3339Nano)
}

func protocolOf(sourceType string) string {
	// mediamtx says rtmpConn, rtspSession, srtConn, webRTCSession, ...
	sourceType = strings.ToLower(sourceType)
	switch {
	case strings.HasPrefix(sourceType, "rtmp"):
		return "rtmp"
	case strings.HasPrefix(sourceType, "rtsp"):
		return "rtsp"
	case strings.HasPrefix(sourceType, "srt"):
		return "srt"
	case strings.HasPrefix(sourceType, "webrtc"):
		return "webrtc"
	default:
		return sourceType
	}
}
