package node

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/packager"
	"github.com/dionysia/dionysia/relay"
)

// streamLinger is how long a stream this node no longer produces stays in
// memory: players and CDNs fetching the last playlist (with its ENDLIST) and
// segments, or the next owner continuing from it.
const streamLinger = 2 * time.Minute

// staleAfter: a copy of a stream that has not changed for this long is not
// continued (its numbers may be behind what another node served since); the
// owner starts a new one. A standby's copy stops changing only when its
// owner dies, which is noticed within seconds.
const staleAfter = 15 * time.Second

// handoverTimeout bounds a planned move: if the new owner has not taken
// over by then, the old one stops anyway (the standby copy covers).
const handoverTimeout = 20 * time.Second

// liveStreams are the inputs this node packages: one packager model each,
// fed by a transcoder (or, while the publisher is away, by the slate).
type liveStreams struct {
	n  *Node
	mu sync.Mutex
	// by input id.
	byID   map[string]*liveStream
	starts uint64
	// probes are the sources' sizes by session id.
	probes map[string]media.SourceInfo
	// warm keeps a relay pull open on the standby of every live stream,
	// so the standby's transcoder starts on a cached keyframe when it takes
	// over (failover, drain).
	warm   map[string]warmPull
	slates *slateCache
	// awaiting: since when this node has owned a stream that another node
	// has been producing, without a copy of it (awaitCopy).
	awaiting map[string]time.Time
}

// liveStream is one input's model and whatever feeds it.
type liveStream struct {
	id     string
	stream *packager.Stream
	// cur produces now; next is starting and replaces cur once its first
	// segments are in the playlists (make-before-break).
	cur, next *runningTranscoder
	// hot is a held transcoder on the standby of a hot_standby input.
	hot   *runningTranscoder
	slate *runningSlate
	// forgetAt is set once nothing feeds the stream any more.
	forgetAt time.Time
	// handoverUntil bounds how long this node keeps producing a stream the
	// ring gave to another node, waiting for it to take over.
	handoverUntil time.Time
	// replica is a copy another node's pushes keep up to date; it becomes
	// this node's own stream when this node takes over.
	replica bool
	repl    replication
	// behindSince is set when this node stopped producing a stream another
	// node took over. Both produced for a while (make-before-break), so this
	// copy lacks the new owner's latest segments and holds some of its own
	// that the new owner numbered differently. Should this node own the
	// stream again (an undrain), the copy is neither served nor continued
	// until the producing node's copy has refreshed it, or behindWait has
	// passed.
	behindSince time.Time
	// reclaimAt is when this node, its copy behind, became the owner
	// again: it waits behindWait from then for the producer's copy.
	reclaimAt time.Time
	// failedKey is a source and profile the transcoder refused (no video
	// track, say): not retried until either changes.
	failedKey string
}

type runningTranscoder struct {
	// t is set once the source is probed and the ladder fitted; a
	// producing transcoder (liveStream.cur) always has it.
	t       *media.Transcoder
	skipped []media.Skipped
	source  media.SourceInfo
	key     string // what it transcodes: session, ingest node, profile version
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
	input   string
	session string
	// held: started as a hot standby; released once promoted (both under
	// liveStreams.mu).
	held, released bool
}

func newLiveStreams(n *Node) *liveStreams {
	return &liveStreams{n: n, byID: map[string]*liveStream{}, probes: map[string]media.SourceInfo{}, warm: map[string]warmPull{},
		slates: newSlateCache(n), awaiting: map[string]time.Time{}}
}

// idle: nothing of this node produces the stream.
// behindWait bounds how long a node that owns a stream again waits for the
// producing node's copy before it continues its own (the producer died):
// counted from when it became the owner again, however long it was not.
const behindWait = 5 * time.Second

// behind tells whether this node's copy of a stream is one it handed over
// and that has not been refreshed since: not what viewers must be served.
func (ls *liveStreams) behind(id string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	st := ls.byID[id]
	return st != nil && !st.behindSince.IsZero()
}

func (st *liveStream) idle() bool { return st.cur == nil && st.next == nil && st.slate == nil }

// want is what the replicated state and the ring ask of this node for one
// input.
type want struct {
	owner        bool
	live         bool // a publisher is connected
	reconnecting bool // the publisher went away; its window is open
	key          string
	// handover keeps a transcoder running on a node that no longer owns
	// the stream until the new owner's own segments are in the playlists.
	handover bool
	// hot: this node is the standby of an input that asks for a hot
	// standby, so it transcodes too, held ready for a takeover.
	hot bool
}

// have is what runs here for one input.
type have struct {
	stream, ended bool
	// stale: a copy nobody has updated for a while (this node produced it
	// once, or copied it); continuing it could number backwards.
	stale     bool
	cur, next string // keys of the running transcoders
	hot       string // key of the held hot-standby transcoder
	slate     bool
}

type action int

const (
	actNewStream action = iota + 1 // a fresh model (also after an ended one)
	actStartNext                   // start a transcoder for want.key
	actStopNext
	actStopCur
	actStartSlate
	actStopSlate
	actEnd    // the show is over: ENDLIST
	actLinger // nothing feeds the stream; forget it later
	actStartHot
	actStopHot
	actPromoteHot // the hot standby's held output becomes the stream
)

// plan decides, for one input, what to do to turn have into want. It is
// pure so that every case can be table-tested.
func plan(w want, h have) []action {
	var acts []action
	stopAll := func() {
		if h.hot != "" && (w.owner || !w.hot) {
			acts = append(acts, actStopHot)
			h.hot = ""
		}
		if h.next != "" {
			acts = append(acts, actStopNext)
		}
		if h.cur != "" {
			acts = append(acts, actStopCur)
		}
		if h.slate {
			acts = append(acts, actStopSlate)
		}
	}
	switch {
	case !w.owner && w.handover:
		// Make-before-break across nodes: keep producing (and copying to
		// the new owner) until it has taken over.
		return nil
	case !w.owner:
		// Another node produces it now; this copy only lingers, with a hot
		// transcoder when the input asks for one.
		stopAll()
		switch {
		case w.hot && h.stream && h.hot != w.key:
			if h.hot != "" {
				acts = append(acts, actStopHot)
			}
			acts = append(acts, actStartHot)
		case !w.hot && h.hot != "":
			acts = append(acts, actStopHot)
		}
		if h.stream {
			acts = append(acts, actLinger)
		}
		return acts
	case !w.live && !w.reconnecting:
		stopAll()
		if h.stream && !h.ended {
			acts = append(acts, actEnd)
		}
		if h.stream {
			acts = append(acts, actLinger)
		}
		return acts
	}
	if !h.stream || h.ended || h.stale {
		acts = append(acts, actNewStream)
		if h.hot != "" {
			acts = append(acts, actStopHot) // it feeds the old model
		}
		h = have{stream: true, cur: h.cur, next: h.next}
	}
	if w.reconnecting {
		if h.hot != "" {
			acts = append(acts, actStopHot)
		}
		if h.next != "" {
			acts = append(acts, actStopNext)
		}
		if h.cur != "" {
			acts = append(acts, actStopCur)
		}
		if !h.slate {
			acts = append(acts, actStartSlate)
		}
		return acts
	}
	if h.hot != "" && h.hot != w.key {
		acts = append(acts, actStopHot)
		h.hot = ""
	}
	switch {
	case h.cur == w.key:
		if h.next != "" {
			acts = append(acts, actStopNext)
		}
	case h.next == w.key:
		// Starting; it replaces cur (and the slate) once it produces.
	case h.hot == w.key:
		// This node was the hot standby: its output is ready now.
		if h.next != "" {
			acts = append(acts, actStopNext)
		}
		acts = append(acts, actPromoteHot)
	default:
		if h.next != "" {
			acts = append(acts, actStopNext)
		}
		acts = append(acts, actStartNext)
	}
	return acts
}

// desired is what should happen here for each input that has a session or
// a stream on this node.
type desired struct {
	want    want
	session *fsm.Session
	input   *fsm.Input
	profile *fsm.Profile
	source  string
}

func (n *Node) desiredStreams() map[string]desired {
	out := map[string]desired{}
	members := map[string]string{} // name -> advertised RTSP(S) addr
	for _, m := range n.clu.Members() {
		if m.State == "alive" || m.State == "suspect" {
			members[m.Name] = m.Meta.RTSPAddr
			if n.peer.TLS() {
				members[m.Name] = m.Meta.RTSPSAddr
			}
		}
	}
	sessions := n.state.Sessions()
	n.rememberOwners(sessions)
	for _, s := range sessions {
		owner, ok := n.clu.OwnerOf(s.InputID, s.Owner)
		in := n.state.Input(s.InputID)
		if in == nil {
			continue
		}
		p := n.state.Profile(in.ProfileID)
		if p == nil {
			continue
		}
		variant := ""
		if s.Passthrough {
			// No node had room for the ladder: the input asked for the
			// source as is rather than a refusal.
			p, variant = passthroughOf(p), "|passthrough"
		}
		d := desired{session: s, input: in, profile: p}
		d.want.owner = ok && owner.Name == n.cfg.Name
		if s.Live() {
			rtsp := members[s.IngestNode]
			if s.IngestNode == n.cfg.Name {
				rtsp = loopback(n.cfg.RTSPAddr)
				if n.peer.TLS() {
					rtsp = loopback(n.cfg.RTSPSAddr)
				}
			}
			if rtsp != "" {
				d.want.live = true
				d.source = n.sourceURL(rtsp, s.Path)
				d.want.key = s.ID + "|" + s.IngestNode + "|" + p.ID + "|" + p.UpdatedAt.UTC().Format(time.RFC3339Nano) + variant
				if sb, ok := n.clu.StandbyOf(s.InputID, s.Owner); ok && in.HotStandby && !d.want.owner && sb.Name == n.cfg.Name {
					d.want.hot = true
				}
			} else {
				// The ingest node is gone: the leader turns the session
				// into a reconnecting one; show the slate meanwhile.
				d.want.reconnecting = true
			}
		} else {
			d.want.reconnecting = true
		}
		out[s.InputID] = d
	}
	return out
}

// sourceURL is where the relay reads a live path: the ingest node's
// mediamtx with the media read password, over RTSPS in TLS mode (even on
// loopback: a local user sniffing lo must not read it either). It never
// reaches a command line: children read the relay.
func (n *Node) sourceURL(rtspAddr, path string) string {
	scheme := "rtsp"
	if n.peer.TLS() {
		scheme = "rtsps"
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(internalUser, n.mediaSecret()), Host: rtspAddr, Path: "/" + path}
	return u.String()
}

// freshSession: a stream placed less than this long ago (and never moved)
// has had no producer yet, so its owner starts a new stream at once. One
// placed earlier, or moved, has been produced somewhere: see awaitCopy.
const freshSession = 10 * time.Second

// awaitCopy tells reconcile to leave an input alone for now: this node
// became the owner of a stream another node has been producing (a
// rebalance move, an owner back from a restart) and has no copy of it
// yet. The producing node hands over make-before-break and its first push
// brings the copy, within a replication period; continuing that copy keeps
// the media sequence going. A new stream is started only if no copy comes
// within behindWait (the producer died too), or at once when the node the
// stream was moved from is gone (see handoverPossible).
func (ls *liveStreams) awaitCopy(id string, d desired, h have, st *liveStream, now time.Time) bool {
	noCopy := st == nil || (st.idle() && st.hot == nil && (h.ended || h.stale))
	alive := func(name string) bool { return ls.n.clu.PeerAddr(name) != "" }
	if !d.want.owner || !d.want.live || d.session == nil || !noCopy || !handoverPossible(d.session, now, alive) {
		if _, waited := ls.awaiting[id]; waited && d.session != nil && d.session.MovedFrom != "" && !alive(d.session.MovedFrom) {
			ls.n.log.Info("the node the stream was moved from is gone: starting a new one", "input", id, "from", d.session.MovedFrom)
		}
		delete(ls.awaiting, id)
		return false
	}
	since, ok := ls.awaiting[id]
	if !ok {
		ls.awaiting[id] = now
		ls.n.log.Info("owner of a running stream: waiting for the producing node's copy", "input", id)
		return true
	}
	if now.Sub(since) < behindWait {
		return true
	}
	ls.n.log.Warn("no copy of the stream came: starting a new one", "input", id, "waited", now.Sub(since).Round(time.Millisecond))
	return false
}

// producedElsewhere tells whether another node may be producing a
// session's stream: it was moved, or placed a while ago (its owner is back
// from a restart, say). A publish placed just now — even one that waited
// long as a backup encoder — has no producer yet.
func producedElsewhere(s *fsm.Session, now time.Time) bool {
	placed := s.PlacedAt
	if placed.IsZero() {
		placed = s.StartedAt // recorded before placement existed
	}
	return s.MovedFrom != "" || now.Sub(placed) >= freshSession
}

// handoverPossible tells whether another node may still hand a session's
// stream over to its owner: it was produced elsewhere (producedElsewhere),
// and when it was moved, the node it was moved from is alive. A stream
// moved off a dead owner (its stand-in took it, or the stand-in was cut
// off too and the next node did) has nobody left to hand it over: waiting
// behindWait for a copy would only add to the failover (chaos suite,
// minority partition cutting off owner and standby: 5 s of a 13 s stall).
func handoverPossible(s *fsm.Session, now time.Time, alive func(node string) bool) bool {
	return producedElsewhere(s, now) && (s.MovedFrom == "" || alive(s.MovedFrom))
}

// waitingForCopy reports whether awaitCopy holds an input.
func (ls *liveStreams) waitingForCopy(id string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	_, ok := ls.awaiting[id]
	return ok
}

// reconcile makes what runs here match what is desired.
func (ls *liveStreams) reconcile(ctx context.Context) {
	want := ls.n.desiredStreams()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ctx.Err() != nil {
		// The node is stopping: stopAll has taken (or will take) every
		// transcoder.
		return
	}
	ids := map[string]bool{}
	liveSessions := map[string]bool{}
	for id, d := range want {
		ids[id] = true
		liveSessions[d.session.ID] = true
	}
	for id := range ls.byID {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	now := time.Now()
	for _, id := range sorted {
		d, ok := want[id]
		if !ok {
			// No session any more: the show is over, and its owner (only)
			// ends the playlists.
			owner, known := ls.n.owner(id)
			d.want.owner = known && owner.Name == ls.n.cfg.Name
		}
		st := ls.byID[id]
		var h have
		if st != nil {
			h = have{stream: true, ended: st.stream.Ended(), slate: st.slate != nil,
				stale: st.idle() && now.Sub(st.stream.ChangedAt()) > staleAfter}
			if st.cur != nil {
				h.cur = st.cur.key
			}
			if st.next != nil {
				h.next = st.next.key
			}
			if st.hot != nil {
				h.hot = st.hot.key
			}
		}
		if st != nil && !d.want.owner && st.cur != nil && d.want.live && !st.repl.takenOver {
			if st.handoverUntil.IsZero() {
				st.handoverUntil = now.Add(handoverTimeout)
				ls.n.log.Info("handing stream over", "input", id)
			}
			d.want.handover = now.Before(st.handoverUntil)
		}
		if ls.awaitCopy(id, d, h, st, now) {
			continue
		}
		if st != nil && !st.behindSince.IsZero() {
			switch {
			case !d.want.owner:
				st.reclaimAt = time.Time{}
			case st.reclaimAt.IsZero() || now.Sub(st.reclaimAt) < behindWait:
				// Owner again, with a copy that is behind: the node that
				// produces the stream keeps doing so and sends its copy.
				if st.reclaimAt.IsZero() {
					st.reclaimAt = now
				}
				continue
			default:
				st.behindSince, st.reclaimAt = time.Time{}, time.Time{}
			}
		}
		for _, a := range plan(d.want, h) {
			st = ls.act(ctx, id, a, d, st)
		}
		if st != nil && !st.forgetAt.IsZero() && now.After(st.forgetAt) && st.idle() && st.hot == nil {
			delete(ls.byID, id)
		}
	}
	for session := range ls.probes {
		if !liveSessions[session] {
			delete(ls.probes, session)
		}
	}
	ls.warmLocked(ctx, want)
	ls.n.clu.SetLoad(ls.countLocked())
	cost := 0
	for _, d := range want {
		if d.want.owner {
			cost += d.session.Cost
		}
	}
	ls.n.clu.SetCost(cost)
}

func (ls *liveStreams) act(ctx context.Context, id string, a action, d desired, st *liveStream) *liveStream {
	n := ls.n
	switch a {
	case actNewStream:
		st = &liveStream{id: id, stream: n.newStream(d.profile)}
		ls.byID[id] = st
		ls.slates.prepare(d.profile, d.session)
	case actStartNext:
		st.forgetAt, st.replica = time.Time{}, false
		st.handoverUntil, st.repl.takenOver = time.Time{}, false
		st.next = ls.startLocked(ctx, st, d)
	case actStopNext:
		stopTranscoder(st.next)
		st.next = nil
	case actStopCur:
		stopTranscoder(st.cur)
		st.cur = nil
		if !d.want.owner {
			st.behindSince = time.Now()
		}
	case actStartSlate:
		st.forgetAt, st.replica = time.Time{}, false
		st.slate = ls.slates.start(ctx, st, d.profile, d.session)
		n.log.Info("publisher away: slate on", "input", id, "deadline", d.session.ReconnectDeadline(d.input))
	case actStopSlate:
		st.slate.stop()
		st.slate = nil
	case actEnd:
		st.stream.End()
		n.log.Info("stream ended", "input", id)
	case actStartHot:
		st.hot = ls.startLocked(ctx, st, d)
		if st.hot != nil {
			st.hot.held = true
			n.log.Info("hot standby transcoding", "input", id)
		}
	case actStopHot:
		stopTranscoder(st.hot)
		st.hot = nil
	case actPromoteHot:
		r := st.hot
		st.hot = nil
		st.forgetAt, st.replica = time.Time{}, false
		st.handoverUntil, st.repl.takenOver = time.Time{}, false
		r.released = true
		st.next = r
		if r.t != nil {
			if err := r.t.Release(); err != nil {
				n.log.Warn("release hot standby", "input", id, "err", err)
			}
		}
		n.log.Info("hot standby takes over", "input", id)
	case actLinger:
		if st.forgetAt.IsZero() {
			st.forgetAt = time.Now().Add(streamLinger)
		}
	}
	return st
}

// newStream makes the packager model of a new show of an input.
func (n *Node) newStream(p *fsm.Profile) *packager.Stream {
	cfg := packager.Config{
		TargetDuration: p.SegmentSeconds,
		Schedule:       media.Schedule(*p),
		Window:         n.cfg.HLSListSize,
	}
	if media.LowLatency(*p) {
		cfg.PartTarget = media.PartSeconds(*p)
	}
	return packager.New(cfg)
}

func (ls *liveStreams) startLocked(ctx context.Context, st *liveStream, d desired) *runningTranscoder {
	if st.failedKey == d.want.key {
		return nil // this source and profile cannot be transcoded; said so once
	}
	tctx, cancel := context.WithCancel(ctx)
	r := &runningTranscoder{key: d.want.key, cancel: cancel, done: make(chan struct{}), started: time.Now(),
		input: d.input.ID, session: d.session.ID}
	ls.starts++
	ls.n.log.Info("starting transcoder", "input", d.input.ID, "profile", d.profile.ID, "ingest_node", d.session.IngestNode,
		"replacing", st.cur != nil || st.slate != nil)
	go ls.runTranscoder(tctx, st, d, r)
	return r
}

// runTranscoder fits the ladder to the source, runs the transcoder, and
// makes it the stream's producer once its first segments are in:
// whatever produced the stream before (an older transcoder, the slate)
// stops only then (make-before-break).
func (ls *liveStreams) runTranscoder(ctx context.Context, st *liveStream, d desired, r *runningTranscoder) {
	n := ls.n
	defer func() {
		close(r.done)
		ls.mu.Lock()
		if st.next == r {
			st.next = nil
		}
		ls.mu.Unlock()
		n.poke()
	}()
	log := n.log.With("input", d.input.ID)
	// ffmpeg and ffprobe read through the relay, never mediamtx: the read
	// password (and, across nodes, TLS) stays in this process, and a
	// child's command line holds only a loopback URL with a token good for
	// this pull. The relay starts every run on the newest keyframe. A
	// ladder that copies the source's video (a passthrough rendition)
	// reads a copying pull, which starts a few frames earlier: ffmpeg 5.1
	// cannot copy a stream with B-frames that starts on its keyframe
	// (relay.PullCopy).
	pull := n.relay.Pull
	for _, rd := range d.profile.Renditions {
		if rd.Passthrough {
			pull = n.relay.PullCopy
		}
	}
	source, release, err := pull(ctx, d.source)
	if err != nil {
		log.Error("cannot read the source through the relay", "err", err)
		return
	}
	defer release()
	src, err := ls.probe(ctx, d.session.ID, d.source)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn("cannot probe the source; transcoding the whole ladder", "err", err)
	}
	profile, skipped := media.FitLadder(*d.profile, src)
	for _, sk := range skipped {
		log.Info("rendition left out", "rendition", sk.Name, "reason", sk.Reason)
	}
	hasVideo, hasAudio := media.TracksHave(d.session.Tracks)
	ls.mu.Lock()
	held := r.held && !r.released
	ls.mu.Unlock()
	t, err := media.NewTranscoder(media.TranscoderConfig{Spec: media.TranscodeSpec{
		FFmpeg: n.cfg.FFmpeg, SourceURL: source, Profile: profile, HasVideo: hasVideo, HasAudio: hasAudio,
		SourceAudioAAC: src.AudioAAC(), SourceAudioRate: src.AudioSampleRate,
		// One JPEG every few seconds from the lowest rung: the poster and
		// the dashboard's picture (a held standby's are dropped until it
		// takes over).
		Thumbnails: true,
	}, Stream: st.stream, Logger: log, Held: held})
	if err != nil {
		log.Error("cannot transcode input", "err", err)
		ls.mu.Lock()
		st.failedKey = r.key
		ls.mu.Unlock()
		return
	}
	ls.mu.Lock()
	r.t, r.skipped, r.source = t, skipped, src
	if held && r.released {
		// Promoted while it was being built.
		_ = t.Release()
	}
	ls.mu.Unlock()
	go func() {
		select {
		case <-t.Active():
		case <-r.done:
			return
		}
		ls.mu.Lock()
		if st.next == r {
			if st.cur != nil {
				stopTranscoder(st.cur)
				log.Info("transcoder handed over", "after", time.Since(r.started).Round(time.Millisecond))
			}
			if st.slate != nil {
				st.slate.stop()
				st.slate = nil
			}
			st.cur, st.next = r, nil
		}
		ls.mu.Unlock()
		n.poke()
	}()
	if err := t.Run(ctx); err != nil {
		log.Error("transcoder stopped", "err", err)
	}
}

// prewarmFor is how long a pull made at publish time is kept without a
// transcoder: the session goes through raft and the transcoder starts
// well within it; a transcoder's own pull of the source shares it.
const prewarmFor = 10 * time.Second

// prewarm starts the relay reading a publish this node accepted and will
// likely transcode, before mediamtx has the path ready, so that the relay
// is attached when the publisher's first keyframe arrives and the
// transcoder, started a moment later, begins with it instead of waiting a
// whole GOP (mediamtx keeps none). Over RTMP mediamtx itself drops the
// first two seconds (it reads them to find the tracks), so the gain is for
// SRT, RTSP and WebRTC publishes.
func (n *Node) prewarm(inputID, path string) {
	if n.clu == nil || n.relay == nil {
		return // a node under unit test, without cluster or relay
	}
	// Where the state machine will place it, unless the loads change
	// before the session is recorded (then a pull is wasted for 10 s).
	if n.expectedOwner(inputID) != n.cfg.Name {
		return
	}
	addr := loopback(n.cfg.RTSPAddr)
	if n.peer.TLS() {
		addr = loopback(n.cfg.RTSPSAddr)
	}
	_, release, err := n.relay.Pull(context.Background(), n.sourceURL(addr, path))
	if err != nil {
		n.log.Debug("relay prewarm", "input", inputID, "err", err)
		return
	}
	time.AfterFunc(prewarmFor, release)
}

// warmHandover is how long a standby's warm pull outlives the standby
// role: long enough for the transcoder of a node that just became the
// owner to join the same relay read.
const warmHandover = 5 * time.Second

type warmPull struct {
	source  string
	release func()
}

// warmLocked opens (and closes) the standby's relay pulls.
func (ls *liveStreams) warmLocked(ctx context.Context, want map[string]desired) {
	n := ls.n
	keep := map[string]string{}
	for id, d := range want {
		if d.want.owner || !d.want.live {
			continue
		}
		if sb, ok := n.clu.StandbyOf(id, d.session.Owner); ok && sb.Name == n.cfg.Name {
			keep[id] = d.source
		}
	}
	for id, w := range ls.warm {
		if keep[id] != w.source {
			// Not at once: the usual reason is that this node has just
			// become the owner, and its transcoder, started a moment ago
			// in its own goroutine, pulls the same source. Released first,
			// the relay's read of it closed and the transcoder's pull
			// opened another without the cached GOP, so a takeover waited
			// for the publisher's next keyframe (up to a GOP) after all.
			time.AfterFunc(warmHandover, w.release)
			delete(ls.warm, id)
		}
	}
	for id, source := range keep {
		if _, ok := ls.warm[id]; ok {
			continue
		}
		if _, release, err := n.relay.Pull(ctx, source); err == nil {
			ls.warm[id] = warmPull{source: source, release: release}
		}
	}
}

// probe learns a session's source size and rate once; transcoder restarts
// and profile changes of the same session reuse it.
func (ls *liveStreams) probe(ctx context.Context, session, source string) (media.SourceInfo, error) {
	ls.mu.Lock()
	info, ok := ls.probes[session]
	ls.mu.Unlock()
	if ok {
		return info, nil
	}
	// A pull of its own, released once the source is known (a transcoder
	// restart reuses the answer). The SPS the source announced answers at
	// once; ffprobe through the relay is the fallback.
	u, release, err := ls.n.relay.Pull(ctx, source)
	if err != nil {
		return media.SourceInfo{}, err
	}
	defer release()
	info, err = ls.sourceFromRelay(ctx, u)
	if errors.Is(err, relay.ErrNoVideo) {
		return media.SourceInfo{}, nil // audio only: nothing to fit
	}
	if err != nil {
		info, err = media.ProbeSource(ctx, ls.n.cfg.FFmpeg, u)
	}
	if err != nil {
		return media.SourceInfo{}, err
	}
	ls.mu.Lock()
	ls.probes[session] = info
	ls.mu.Unlock()
	return info, nil
}

// sourceFromRelay reads the source's size and rate from its SPS, and its
// audio from its description, waiting a little for the relay's upstream
// session.
func (ls *liveStreams) sourceFromRelay(ctx context.Context, pullURL string) (media.SourceInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// One description for both: asking twice could find the second ask's
	// time up on a loaded node, and a passthrough ladder then encoded the
	// audio it should copy.
	v, a, err := ls.n.relay.Tracks(ctx, pullURL)
	if err != nil {
		return media.SourceInfo{}, err
	}
	info := media.SourceInfo{Width: v.Width, Height: v.Height, FPS: v.FPS}
	// In ffprobe's names, as SourceInfo has them: a passthrough ladder
	// copies AAC-LC audio instead of encoding it again.
	if a.Codec == "MPEG-4 Audio" {
		info.AudioCodec, info.AudioSampleRate, info.AudioChannels = "aac", a.SampleRate, a.Channels
		if a.AACLC {
			info.AudioProfile = "LC"
		}
	}
	return info, nil
}

func stopTranscoder(r *runningTranscoder) {
	if r != nil {
		r.cancel()
	}
}

// stopAll stops every transcoder and slate and waits for the transcoders.
func (ls *liveStreams) stopAll() {
	ls.mu.Lock()
	for id, w := range ls.warm {
		w.release()
		delete(ls.warm, id)
	}
	var waits []chan struct{}
	for _, st := range ls.byID {
		for _, r := range []*runningTranscoder{st.cur, st.next, st.hot} {
			if r != nil {
				r.cancel()
				waits = append(waits, r.done)
			}
		}
		if st.slate != nil {
			st.slate.stop()
		}
		st.cur, st.next, st.hot, st.slate = nil, nil, nil, nil
	}
	ls.mu.Unlock()
	for _, ch := range waits {
		<-ch
	}
}

// get returns an input's stream and its producing transcoder, if any.
func (ls *liveStreams) get(id string) (*packager.Stream, *runningTranscoder) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	st := ls.byID[id]
	if st == nil {
		return nil, nil
	}
	return st.stream, st.cur
}

func (ls *liveStreams) countLocked() int {
	c := 0
	for _, st := range ls.byID {
		if st.cur != nil || st.next != nil || st.hot != nil {
			c++
		}
	}
	return c
}

func (ls *liveStreams) count() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.countLocked()
}

// running lists the producing transcoders by input, for metrics.
func (ls *liveStreams) running() map[string]*runningTranscoder {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := map[string]*runningTranscoder{}
	for id, st := range ls.byID {
		if st.cur != nil {
			out[id] = st.cur
		}
	}
	return out
}

// reconcileLoop runs reconcile on every state change, every cluster change
// and once a second (a missed signal must not leave a stream unserved).
func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n.streams.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-n.clu.Changes():
		case <-t.C:
		}
	}
}

// snapshot lists the streams this node holds (produced or copied), by
// input.
func (ls *liveStreams) snapshot() map[string]*packager.Stream {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make(map[string]*packager.Stream, len(ls.byID))
	for id, st := range ls.byID {
		out[id] = st.stream
	}
	return out
}
