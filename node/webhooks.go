package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/webhook"
)

// Webhook delivery, as the leader does it, and where events come from.
//
// Events are proposed into the raft outbox (fsm/webhooks.go) by whichever
// node observes them, with deterministic ids so that repeated proposals
// (retries, a second observer, the leader's catch-up) enqueue one event.
// The leader delivers from the outbox and records every attempt through
// raft, so a new leader resumes exactly the deliveries still pending.
const (
	// hookTick is how often the events loop looks at the state and the
	// outbox; it bounds the delay from enqueue to the first attempt.
	hookTick = 200 * time.Millisecond
	// deliveryTimeout bounds one POST to a receiver.
	deliveryTimeout = 10 * time.Second
	// emitRetryFor bounds how long an observer keeps proposing an event
	// while the cluster has no leader.
	emitRetryFor = 2 * time.Minute
	// expireEvery is how often the leader looks for outbox entries past
	// their 24 h.
	expireEvery = time.Minute
	userAgent   = "Dionysia-Webhooks/1"
)

// hookRunner owns the event proposals of this node and, while it leads,
// the deliveries.
type hookRunner struct {
	n      *Node
	queue  chan fsm.Event
	client *http.Client
	// wake makes the events loop look again at once (a delivery ended, so
	// the webhook's next one may go), without waiting for the tick.
	wake chan struct{}

	// Touched by the events loop only.
	owners     map[string]string       // input id -> owner seen last tick
	sessions   map[string]*fsm.Session // sessions seen last tick, while leading
	downSent   map[string]time.Time    // node -> when node.down was queued
	lastExpire time.Time

	attempts  *prometheus.CounterVec // by result: delivered, failed
	admission *prometheus.CounterVec // by result: accepted, refused

	mu       sync.Mutex
	queued   map[string]time.Time // event id -> when queued, to not queue it twice
	inFlight map[string]bool      // webhook id -> a delivery is being made
}

func newHookRunner(n *Node) *hookRunner {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &hookRunner{
		n:     n,
		queue: make(chan fsm.Event, 256),
		wake:  make(chan struct{}, 1),
		client: &http.Client{
			Transport: tr,
			Timeout:   deliveryTimeout,
			// A redirect is an answer, not a delivery: following it would
			// send a signed body somewhere the operator never configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_webhook_attempts_total", Help: "Webhook deliveries this node attempted (as leader), by result.",
		}, []string{"result"}),
		admission: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_publish_admission_total", Help: "Publishes this node asked an admission URL about, by result.",
		}, []string{"result"}),
		owners:   map[string]string{},
		downSent: map[string]time.Time{},
		queued:   map[string]time.Time{},
		inFlight: map[string]bool{},
	}
}

func (h *hookRunner) registerMetrics(reg prometheus.Registerer) error {
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dionysia_webhook_pending_deliveries", Help: "Webhook deliveries waiting in the raft outbox (the same on every node).",
	}, func() float64 { return float64(len(h.n.state.PendingDeliveries())) })
	for _, c := range []prometheus.Collector{h.attempts, h.admission, pending} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register webhook metrics: %w", err)
		}
	}
	return nil
}

// emit queues an event for proposal without blocking the caller (the
// ingest poll, the leader loop). An event already queued recently, or
// already in the outbox, is skipped.
func (h *hookRunner) emit(ev fsm.Event) {
	// Without subscribers an event reaches nobody: save the raft write.
	if !h.n.state.HasWebhooks() || h.n.state.EventKnown(ev.ID) {
		return
	}
	h.mu.Lock()
	if at, ok := h.queued[ev.ID]; ok && time.Since(at) < emitRetryFor {
		h.mu.Unlock()
		return
	}
	h.queued[ev.ID] = time.Now()
	h.mu.Unlock()
	select {
	case h.queue <- ev:
	default:
		h.n.log.Warn("webhook event dropped: proposal queue full", "event", ev.Type, "input", ev.InputID)
	}
}

// proposeLoop proposes queued events one at a time, in order, retrying
// while there is no leader.
func (h *hookRunner) proposeLoop(ctx context.Context) {
	for {
		var ev fsm.Event
		select {
		case <-ctx.Done():
			return
		case ev = <-h.queue:
		}
		deadline := time.Now().Add(emitRetryFor)
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			res, err := h.n.apply(ctx, fsm.Command{Op: fsm.OpEnqueueEvent, At: time.Now().UTC(), Event: &ev})
			if err == nil && res.Err != nil {
				// Refused by the state machine: retrying cannot help.
				h.n.log.Warn("webhook event refused", "event", ev.Type, "input", ev.InputID, "err", res.Err)
				break
			}
			if err == nil {
				if res.Changed {
					h.n.log.Info("webhook event", "event", ev.Type, "id", ev.ID, "input", ev.InputID, "about_node", ev.Node)
				}
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				h.n.log.Warn("webhook event not recorded", "event", ev.Type, "input", ev.InputID, "err", err)
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// sessionEvent is an input event about one session, with the id every
// observer of the same transition computes.
func sessionEvent(typ string, s *fsm.Session, at time.Time, node string) fsm.Event {
	data := map[string]string{"protocol": s.Protocol, "ingest_node": s.IngestNode}
	if !s.StartedAt.IsZero() {
		data["started_at"] = s.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	return fsm.Event{ID: fsm.EventID(typ, s.InputID, s.ID), Type: typ, At: at.UTC(), InputID: s.InputID, Node: node, Data: data}
}

// emitEnded is called by the node that ended a session: the input's window
// decides whether the stream is reconnecting or over.
func (h *hookRunner) emitEnded(s *fsm.Session, at time.Time) {
	if fsm.KeepsEndedSession(h.n.state.Input(s.InputID), at) {
		h.emit(sessionEvent(fsm.EventInputReconnecting, s, at, s.IngestNode))
		return
	}
	h.emit(sessionEvent(fsm.EventInputIdle, s, at, s.IngestNode))
}

// sessionEvents is what changed between two views of the sessions (by
// input id), as events: the leader's catch-up for transitions no observer
// reported (an input disabled or deleted through the API, an expiry, a
// dead ingest node, an observer that died before proposing). Repeats of
// what observers proposed are harmless: same ids.
func sessionEvents(prev, cur map[string]*fsm.Session, at time.Time) []fsm.Event {
	var out []fsm.Event
	for id, c := range cur {
		p := prev[id]
		if p == nil || p.ID != c.ID {
			out = append(out, sessionEvent(fsm.EventInputLive, c, at, c.IngestNode))
			if !c.Live() {
				out = append(out, sessionEvent(fsm.EventInputReconnecting, c, c.EndedAt, c.IngestNode))
			}
			continue
		}
		if p.Live() && !c.Live() {
			out = append(out, sessionEvent(fsm.EventInputReconnecting, c, c.EndedAt, c.IngestNode))
		}
	}
	for id, p := range prev {
		if cur[id] == nil {
			out = append(out, sessionEvent(fsm.EventInputIdle, p, at, p.IngestNode))
		}
	}
	sortEvents(out)
	return out
}

// sortEvents orders events by input, then live before reconnecting before
// idle, so that proposals come in the order things happened.
func sortEvents(evs []fsm.Event) {
	rank := map[string]int{fsm.EventInputLive: 0, fsm.EventInputReconnecting: 1, fsm.EventInputIdle: 2}
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0; j-- {
			a, b := evs[j-1], evs[j]
			if a.InputID < b.InputID || (a.InputID == b.InputID && rank[a.Type] <= rank[b.Type]) {
				break
			}
			evs[j-1], evs[j] = b, a
		}
	}
}

// failovers names the inputs this node took over from a node that died:
// owners maps each input with a session to its owner at the last look.
// A move away from a node that is alive (a drain, a graceful stop, a
// node joining) is not a failover.
func failovers(self string, sessions []*fsm.Session, lastOwner map[string]string, owner func(string) string, dead func(string) bool) (moved map[string]string, owners map[string]string) {
	moved = map[string]string{}
	owners = map[string]string{}
	for _, s := range sessions {
		now := owner(s.InputID)
		owners[s.InputID] = now
		prev := lastOwner[s.InputID]
		if prev != "" && now == self && prev != self && dead(prev) {
			moved[s.InputID] = prev
		}
	}
	return moved, owners
}

// loop is the events loop: every node watches the ring for failovers it
// takes; the leader also catches up on session events, reports dead
// nodes, delivers, and expires old deliveries.
func (h *hookRunner) loop(ctx context.Context) {
	t := time.NewTicker(hookTick)
	defer t.Stop()
	// term bounds the deliveries of one stretch of leadership: losing it
	// cancels them (the new leader makes them again).
	var term *leaderTerm
	defer func() { term.end() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
		h.forgetQueued()
		// Without webhooks there is nothing to tell anyone: skip the
		// member and ring reads, and start from a fresh view once a
		// webhook exists.
		hooked := h.n.state.HasWebhooks()
		if hooked {
			h.watchOwners()
		} else {
			h.owners = map[string]string{}
		}
		if !h.n.clu.IsLeader() || !h.n.state.Initialized() {
			if term != nil {
				term.end()
				term = nil
			}
			h.sessions = nil
			continue
		}
		if term == nil {
			term = newLeaderTerm(ctx)
		}
		if hooked {
			h.catchUp()
			h.nodesDown()
			h.deliver(term.ctx)
		} else {
			h.sessions = nil
		}
		h.expire(term.ctx)
	}
}

type leaderTerm struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newLeaderTerm(parent context.Context) *leaderTerm {
	ctx, cancel := context.WithCancel(parent)
	return &leaderTerm{ctx: ctx, cancel: cancel}
}

func (t *leaderTerm) end() {
	if t != nil {
		t.cancel()
	}
}

func (h *hookRunner) watchOwners() {
	n := h.n
	states := map[string]string{}
	for _, m := range n.clu.Members() {
		states[m.Name] = m.State
	}
	moved, owners := failovers(n.cfg.Name, n.state.Sessions(), h.owners,
		func(id string) string {
			m, ok := n.clu.Owner(id)
			if !ok {
				return ""
			}
			return m.Name
		},
		func(name string) bool { return states[name] == "dead" })
	h.owners = owners
	for id, from := range moved {
		s := n.state.Session(id)
		if s == nil {
			continue
		}
		ev := fsm.Event{ID: fsm.EventID(fsm.EventInputFailedOver, id, s.ID, from), Type: fsm.EventInputFailedOver,
			At: time.Now().UTC(), InputID: id, Node: n.cfg.Name, Data: map[string]string{"from_node": from, "to_node": n.cfg.Name}}
		n.log.Info("stream failed over to this node", "input", id, "from", from)
		h.emit(ev)
	}
}

func (h *hookRunner) catchUp() {
	cur := map[string]*fsm.Session{}
	for _, s := range h.n.state.Sessions() {
		cur[s.InputID] = s
	}
	if h.sessions != nil {
		for _, ev := range sessionEvents(h.sessions, cur, time.Now()) {
			h.emit(ev)
		}
	}
	h.sessions = cur
}

// nodesDown reports members memberlist declared dead (once per failure:
// the outbox remembers the node until it is alive again), and clears the
// nodes that came back.
func (h *hookRunner) nodesDown() {
	n := h.n
	down := map[string]bool{}
	for _, name := range n.state.NodesDown() {
		down[name] = true
	}
	now := time.Now()
	for _, m := range n.clu.Members() {
		switch {
		case m.State == "dead" && !down[m.Name]:
			if at, ok := h.downSent[m.Name]; ok && now.Sub(at) < emitRetryFor {
				continue
			}
			h.downSent[m.Name] = now
			h.emit(fsm.Event{ID: fsm.EventID(fsm.EventNodeDown, m.Name, strconv.FormatInt(now.UnixNano(), 10)),
				Type: fsm.EventNodeDown, At: now.UTC(), Node: m.Name})
		case m.State == "alive" && down[m.Name]:
			delete(h.downSent, m.Name)
			// Best effort: the next tick asks again if this fails.
			go func(name string) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, _ = n.apply(ctx, fsm.Command{Op: fsm.OpClearNodeDown, At: time.Now().UTC(), Node: name})
			}(m.Name)
		}
	}
}

// forgetQueued drops the ids of events proposed long enough ago that
// their proposal has either landed (the outbox knows them) or given up.
func (h *hookRunner) forgetQueued() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, at := range h.queued {
		if time.Since(at) > emitRetryFor {
			delete(h.queued, id)
		}
	}
}

// deliver starts the deliveries that are due, oldest event first, one at
// a time per webhook (so a receiver sees events in order while it keeps
// up, and is never flooded).
func (h *hookRunner) deliver(ctx context.Context) {
	now := time.Now()
	for _, p := range h.n.state.PendingDeliveries() {
		if p.Webhook == nil || p.NextAt.After(now) {
			continue
		}
		h.mu.Lock()
		busy := h.inFlight[p.Webhook.ID]
		if !busy {
			h.inFlight[p.Webhook.ID] = true
		}
		h.mu.Unlock()
		if busy {
			continue
		}
		go func(p fsm.Pending) {
			defer func() {
				h.mu.Lock()
				delete(h.inFlight, p.Webhook.ID)
				h.mu.Unlock()
				select {
				case h.wake <- struct{}{}:
				default:
				}
			}()
			h.deliverOne(ctx, p)
		}(p)
	}
}

// deliverOne POSTs one event to one webhook and records the attempt. The
// webhook is marked busy until the attempt is in the state, so the next
// tick never sends the same delivery again meanwhile.
func (h *hookRunner) deliverOne(ctx context.Context, p fsm.Pending) {
	n := h.n
	body, err := json.Marshal(p.Event)
	if err != nil {
		n.log.Error("encode webhook event", "event", p.Event.ID, "err", err)
		return
	}
	start := time.Now()
	status, derr := h.post(ctx, p.Webhook, p.Event, body, start)
	if ctx.Err() != nil {
		// Leadership moved: the new leader makes this attempt again.
		return
	}
	a := &fsm.Attempt{EventID: p.Event.ID, WebhookID: p.Webhook.ID, At: start.UTC(), StatusCode: status,
		DurationMs: time.Since(start).Milliseconds()}
	if derr != nil {
		a.Error = derr.Error()
	}
	log := n.log.With("webhook", p.Webhook.ID, "event", p.Event.Type, "id", p.Event.ID, "attempt", p.Attempts+1)
	if a.Succeeded() {
		h.attempts.WithLabelValues("delivered").Inc()
		log.Info("webhook delivered", "status", status, "duration_ms", a.DurationMs)
	} else {
		h.attempts.WithLabelValues("failed").Inc()
		log.Warn("webhook delivery failed", "status", status, "err", a.Error, "retry_in", fsm.RetryBackoff(p.Attempts+1))
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.apply(actx, fsm.Command{Op: fsm.OpRecordAttempt, At: time.Now().UTC(), Attempt: a}); err != nil {
		log.Warn("record webhook attempt", "err", err)
	}
}

// post makes the request; status is 0 when there was no answer.
func (h *hookRunner) post(ctx context.Context, w *fsm.Webhook, ev *fsm.Event, body []byte, at time.Time) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(webhook.EventIDHeader, ev.ID)
	req.Header.Set(webhook.EventTypeHeader, ev.Type)
	req.Header.Set(webhook.SignatureHeader, webhook.Header(w.Secret, at, body))
	resp, err := h.client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, fmt.Errorf("no answer within %s", deliveryTimeout)
		}
		// *url.Error repeats the URL, which the log line has already.
		if inner := errors.Unwrap(err); inner != nil {
			return 0, inner
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (h *hookRunner) expire(ctx context.Context) {
	now := time.Now()
	if now.Sub(h.lastExpire) < expireEvery {
		return
	}
	h.lastExpire = now
	if !h.n.state.OutboxExpired(now) {
		return
	}
	go func() {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := h.n.apply(actx, fsm.Command{Op: fsm.OpExpireOutbox, At: now.UTC()}); err != nil {
			h.n.log.Warn("expire webhook outbox", "err", err)
		}
	}()
}
