package node

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

	// pollErrs says when a failed poll is logged; pollErrors counts them
	// for /metrics. A broken mediamtx API means publishes that never go
	// live, so no failure may pass unsaid, and none may flood the log.
	pollErrs   failureLog
	pollErrors atomic.Uint64

	mu    sync.Mutex
	bytes map[string]uint64 // input id -> bytes received by mediamtx, last poll
}

// pollErrorLogEvery is the most often a failing poll is logged after the
// first failure.
const pollErrorLogEvery = 30 * time.Second

func newIngestWatcher(n *Node) *ingestWatcher {
	return &ingestWatcher{n: n, pending: map[string]time.Time{}, waiting: map[string]bool{}, bytes: map[string]uint64{},
		pollErrs: failureLog{every: pollErrorLogEvery}}
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
			if ctx.Err() != nil {
				return
			}
			// mediamtx may be (re)starting: its publishers are gone anyway,
			// but wait until it answers before ending sessions.
			w.pollErrors.Add(1)
			if ok, n := w.pollErrs.failed(time.Now()); ok {
				w.n.log.Warn("poll mediamtx API: publishes cannot go live or end until it answers", "err", err, "failures", n)
			}
			continue
		}
		if n := w.pollErrs.succeeded(); n > 0 {
			w.n.log.Info("poll mediamtx API: answering again", "failures", n)
		}
		w.sync(ctx, paths)
	}
}

// sessionState is what planSessions reads of the replicated state;
// *fsm.State has it.
type sessionState interface {
	Input(id string) *fsm.Input
	InputByKey(key string) *fsm.Input
	Session(inputID string) *fsm.Session
	Sessions() []*fsm.Session
}

type sessionActionKind int

const (
	// sessionKick disconnects a publisher whose input was disabled or
	// deleted while it was live (or before its session was recorded): the
	// auth hook only sees the start of a publish. A key rotation alone does
	// not cut a running publish; the old key is refused from the next
	// publish on.
	sessionKick sessionActionKind = iota
	// sessionWait: a second publisher of an input already live on another
	// node waits, connected and unrecorded (fsm would refuse its start).
	sessionWait
	// sessionStart records a live session.
	sessionStart
	// sessionEnd ends a session this node recorded whose publish is gone;
	// fsm decides whether it ends now or waits, reconnecting, for the
	// input's window.
	sessionEnd
)

// sessionAction is one step of turning mediamtx's ready paths into sessions.
type sessionAction struct {
	kind sessionActionKind
	path media.Path
	// input is the input of a start or a wait, and of a kick when it still
	// exists (disabled).
	input *fsm.Input
	// session is the one to start or to end, or, for a wait, the live one
	// on the other node.
	session *fsm.Session
}

// pending keys of what was proposed recently, so that a slow raft round
// trip is not answered with the same proposal on every poll.
func kickKey(p media.Path) string  { return "kick " + p.SourceID }
func startKey(id string) string    { return "start " + id }
func endKey(s *fsm.Session) string { return "end " + s.ID }
func isPending(pending map[string]time.Time, key string) bool {
	return !pending[key].IsZero()
}

// planSessions decides what this node does about the sessions of its
// publishers: it compares the ready live/ paths of its mediamtx with the
// replicated state and lists kicks, waits and starts (in path order), then
// ends. It reads nothing but its arguments. A reconnecting session of this
// node has no publisher here any more: it is neither ended again nor
// counted, and a publish coming back replaces it.
func planSessions(node string, paths []media.Path, st sessionState, pending map[string]time.Time, now time.Time) []sessionAction {
	ready := readyPaths(paths)
	mine := liveSessionsOf(node, st)
	var acts []sessionAction
	for _, p := range ready {
		id := sessionID(p)
		own := mine[p.Name]
		var in *fsm.Input
		if own != nil {
			in = st.Input(own.InputID)
		} else {
			in = inputForPath(st, p.Name)
		}
		if in == nil || !in.Enabled {
			if !isPending(pending, kickKey(p)) {
				acts = append(acts, sessionAction{kind: sessionKick, path: p, input: in})
			}
			continue
		}
		if own != nil && own.ID == id {
			continue
		}
		// The key is checked again: the publish was authorised, but the key
		// may have been rotated in between; the session of an already
		// recorded path survives a rotation (it is keyed by path above).
		in = inputForPath(st, p.Name)
		if in == nil {
			continue
		}
		if cur := st.Session(in.ID); cur != nil && cur.Live() && cur.ID != id && cur.IngestNode != node {
			acts = append(acts, sessionAction{kind: sessionWait, path: p, input: in, session: cur})
			continue
		}
		if isPending(pending, startKey(id)) {
			continue
		}
		started := p.ReadyTime
		if started.IsZero() {
			started = now
		}
		acts = append(acts, sessionAction{kind: sessionStart, path: p, input: in, session: &fsm.Session{
			InputID: in.ID, ID: id, IngestNode: node, Path: p.Name,
			Protocol: protocolOf(p.SourceType), Tracks: p.Tracks, StartedAt: started.UTC(),
		}})
	}
	readyByName := map[string]media.Path{}
	for _, p := range ready {
		readyByName[p.Name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(mine)) {
		s := mine[name]
		if p, ok := readyByName[name]; ok && sessionID(p) == s.ID {
			continue
		}
		if isPending(pending, endKey(s)) {
			continue
		}
		acts = append(acts, sessionAction{kind: sessionEnd, session: s})
	}
	return acts
}

// readyPaths are the paths with a publisher under live/, by name.
func readyPaths(paths []media.Path) []media.Path {
	var out []media.Path
	for _, p := range paths {
		if p.Ready && strings.HasPrefix(p.Name, "live/") {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b media.Path) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// liveSessionsOf maps path to the live sessions node recorded.
func liveSessionsOf(node string, st sessionState) map[string]*fsm.Session {
	mine := map[string]*fsm.Session{}
	for _, s := range st.Sessions() {
		if s.IngestNode == node && s.Live() {
			mine[s.Path] = s
		}
	}
	return mine
}

// sync carries out planSessions' actions for one poll.
func (w *ingestWatcher) sync(ctx context.Context, paths []media.Path) {
	n := w.n
	now := time.Now()
	for k, at := range w.pending {
		if now.Sub(at) > 5*time.Second {
			delete(w.pending, k)
		}
	}
	waiting := map[string]bool{}
	for _, a := range planSessions(n.cfg.Name, paths, n.state, w.pending, now) {
		switch a.kind {
		case sessionKick:
			w.kick(ctx, a)
		case sessionWait:
			id := sessionID(a.path)
			waiting[id] = true
			if !w.waiting[id] {
				n.log.Info("publisher waiting: input already live on node "+a.session.IngestNode, "input", a.input.ID, "path", pathHint(a.path.Name))
			}
		case sessionStart:
			w.start(ctx, a, now)
		case sessionEnd:
			w.end(ctx, a.session, now)
		}
	}
	w.waiting = waiting

	bytes := map[string]uint64{}
	mine := liveSessionsOf(n.cfg.Name, n.state)
	for _, p := range readyPaths(paths) {
		if s, ok := mine[p.Name]; ok {
			bytes[s.InputID] = p.BytesReceived
		}
	}
	w.mu.Lock()
	w.bytes = bytes
	w.mu.Unlock()
}

func (w *ingestWatcher) start(ctx context.Context, a sessionAction, now time.Time) {
	n := w.n
	key := startKey(a.session.ID)
	w.pending[key] = now
	// The state machine places the stream (fsm.Place) on what this node
	// knows: the serving members in the ring's order for the input, their
	// capacity, and the stream's cost.
	cmd := fsm.Command{Op: fsm.OpStartSession, At: now.UTC(), Session: a.session,
		Placement: &fsm.Placement{Candidates: candidates(n.clu.Ring(), a.input.ID), Cost: n.streamCost(a.input)}}
	res, err := n.apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	var ferr *fsm.Error
	switch {
	case errors.As(err, &ferr) && ferr.Field == fsm.FieldCapacity:
		// Admitted by the auth hook, but other streams took the room
		// meanwhile: the publisher is told the same way as at the hook.
		n.refused.add(a.input.ID, "capacity", ferr.Message)
		n.log.Warn("publish refused: "+ferr.Message, "input", a.input.ID, "protocol", a.session.Protocol)
		kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := n.mtx.Kick(kctx, a.path.SourceType, a.path.SourceID); err != nil {
			n.log.Warn("disconnect publisher", "input", a.input.ID, "err", err)
		}
		cancel()
	case fsm.ErrorCode(err) == fsm.CodeConflict:
		// Another node's publish was recorded first, after this poll
		// read the state: wait like any second publisher.
		n.log.Debug("record live session: another publisher was first", "input", a.input.ID, "err", err)
		delete(w.pending, key)
	case err != nil:
		n.log.Warn("record live session", "input", a.input.ID, "err", err)
		delete(w.pending, key)
	case res.Changed:
		n.log.Info("stream live", "input", a.input.ID, "protocol", a.session.Protocol, "tracks", a.session.Tracks)
		if res.Session != nil {
			n.hooks.emit(sessionEvent(fsm.EventInputLive, res.Session, now, n.cfg.Name))
		}
	}
}

func (w *ingestWatcher) end(ctx context.Context, s *fsm.Session, now time.Time) {
	n := w.n
	key := endKey(s)
	w.pending[key] = now
	cmd := fsm.Command{Op: fsm.OpEndSession, At: now.UTC(), ID: s.InputID, Node: n.cfg.Name, Session: &fsm.Session{ID: s.ID}}
	res, err := n.apply(ctx, cmd)
	if err != nil {
		n.log.Warn("end live session", "input", s.InputID, "err", err)
		delete(w.pending, key)
		return
	}
	if res.Changed {
		n.hooks.emitEnded(s, now)
	}
	window := 0
	if in := n.state.Input(s.InputID); in != nil {
		window = in.ReconnectWindowSeconds
	}
	n.log.Info("publisher gone", "input", s.InputID, "reconnect_window_s", window)
}

func (w *ingestWatcher) kick(ctx context.Context, a sessionAction) {
	n := w.n
	w.pending[kickKey(a.path)] = time.Now()
	reason := "input deleted"
	if a.input != nil {
		reason = "input disabled"
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := n.mtx.Kick(kctx, a.path.SourceType, a.path.SourceID); err != nil {
		n.log.Warn("disconnect publisher", "path", pathHint(a.path.Name), "reason", reason, "err", err)
		return
	}
	n.log.Info("publisher disconnected", "path", pathHint(a.path.Name), "reason", reason)
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

// failureLog rate-limits the log lines of a failure that repeats: the
// first failure is logged at once, later ones at most once per every, each
// line with how many failures it stands for.
type failureLog struct {
	every  time.Duration
	last   time.Time // of the last line; zero while nothing is failing
	unsaid int       // failures since that line
	run    int       // failures since the last success
}

// failed records a failure at now; log says whether to write a line now,
// for count failures (this one and those not logged before it).
func (f *failureLog) failed(now time.Time) (log bool, count int) {
	f.unsaid++
	f.run++
	if !f.last.IsZero() && now.Sub(f.last) < f.every {
		return false, 0
	}
	count, f.unsaid, f.last = f.unsaid, 0, now
	return true, count
}

// succeeded ends a run of failures and returns its length (0 when there
// was none), so that the recovery can be logged too.
func (f *failureLog) succeeded() int {
	n := f.run
	f.last, f.unsaid, f.run = time.Time{}, 0, 0
	return n
}
