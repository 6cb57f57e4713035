package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// Webhook event types. The names are part of the public API and of the raft
// log: never rename one, only add.
const (
	EventInputLive         = "input.live"
	EventInputReconnecting = "input.reconnecting"
	EventInputIdle         = "input.idle"
	EventInputFailedOver   = "input.failed_over"
	// EventRecordingReady is enqueued by the fsm itself when a recording
	// becomes ready (recordings.go).
	EventRecordingReady = "recording.ready"
	EventNodeDown       = "node.down"
)

// EventTypes lists every event type a webhook may subscribe to.
func EventTypes() []string {
	return []string{EventInputLive, EventInputReconnecting, EventInputIdle, EventInputFailedOver, EventRecordingReady, EventNodeDown}
}

// Webhook delivery schedule. An attempt that fails is retried after
// RetryBackoff(attempts); a delivery still failing WebhookMaxAge after its
// event was enqueued is dropped as failed.
const (
	WebhookFirstRetry  = time.Second
	WebhookMaxBackoff  = 10 * time.Minute
	WebhookMaxAge      = 24 * time.Hour
	MaxWebhookAttempts = 100 // attempts kept per webhook for GET .../deliveries
)

// Outcomes of a delivery attempt.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeFailed    = "failed"
)

// Ops of the webhook outbox (see Op: never rename, only add).
const (
	OpCreateWebhook Op = "create_webhook"
	OpDeleteWebhook Op = "delete_webhook"
	OpEnqueueEvent  Op = "enqueue_event"
	OpRecordAttempt Op = "record_attempt"
	OpExpireOutbox  Op = "expire_outbox"
	OpClearNodeDown Op = "clear_node_down"
)

// RetryBackoff is the wait after the n-th failed attempt (n >= 1): 1 s,
// 2 s, 4 s … capped at WebhookMaxBackoff.
func RetryBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := WebhookFirstRetry
	for i := 1; i < n; i++ {
		d *= 2
		if d >= WebhookMaxBackoff {
			return WebhookMaxBackoff
		}
	}
	return d
}

// KeepsEndedSession reports whether a session of input in whose publisher
// went away at time at stays, reconnecting, for the input's window (rather
// than ending): the rule EndSession and ClearNodeSessions apply, for the
// observers that report what became of the stream.
func KeepsEndedSession(in *Input, at time.Time) bool {
	return in != nil && in.Enabled && in.ReconnectWindowSeconds > 0 && !at.IsZero()
}

// Webhook is a subscriber: events of the listed types (all when Events is
// empty) are POSTed to URL, signed with Secret.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// Clone returns a deep copy.
func (w *Webhook) Clone() *Webhook {
	if w == nil {
		return nil
	}
	c := *w
	c.Events = slices.Clone(w.Events)
	return &c
}

// Wants reports whether the webhook subscribes to an event type.
func (w *Webhook) Wants(typ string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, typ)
}

// Event is something that happened, as receivers get it. ID is chosen
// deterministically by the proposer (EventID) so that every node observing
// the same thing proposes the same id, and the outbox keeps one.
type Event struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	// InputID names the input of input.* events; Node the node of node.down
	// (and the ingest or new owner node of input events).
	InputID string            `json:"input_id,omitempty"`
	Node    string            `json:"node,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// Clone returns a deep copy.
func (e *Event) Clone() *Event {
	if e == nil {
		return nil
	}
	c := *e
	c.Data = maps.Clone(e.Data)
	return &c
}

// EventID is the deterministic id of an event: the same parts give the same
// id on every node. It is a hash, so that parts that must stay private (a
// session id made from a stream key) never reach a receiver.
func EventID(typ string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Attempt is one delivery of an event to a webhook, as proposed by the
// leader that made it (At and DurationMs from its clock) and as listed by
// GET /v1/webhooks/{id}/deliveries.
type Attempt struct {
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	WebhookID string    `json:"webhook_id"`
	At        time.Time `json:"at"`
	// Attempt counts from 1 for each event and webhook.
	Attempt    int    `json:"attempt"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"duration_ms"`
	// Outcome is set by the state machine: delivered, retrying or failed.
	Outcome string `json:"outcome"`
	// NextAttemptAt is when a retrying delivery is tried again.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
}

// Succeeded reports whether the receiver took the event (a 2xx answer).
func (a *Attempt) Succeeded() bool {
	return a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300
}

// Pending is one event still to be delivered to one webhook.
type Pending struct {
	Event   *Event
	Webhook *Webhook
	// Seq orders events as they were enqueued.
	Seq      uint64
	Attempts int
	NextAt   time.Time
}

// outboxEntry is an enqueued event and the webhooks it still has to reach.
type outboxEntry struct {
	Event      *Event             `json:"event"`
	Seq        uint64             `json:"seq"`
	EnqueuedAt time.Time          `json:"enqueued_at"`
	Targets    map[string]*target `json:"targets"`
}

type target struct {
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at"`
}

// hooks is the webhook part of the replicated state. It is a pointer in
// data so that snapshots from before webhooks restore unchanged.
type hooks struct {
	Webhooks map[string]*Webhook     `json:"webhooks"`
	Outbox   map[string]*outboxEntry `json:"outbox"`
	Attempts map[string][]*Attempt   `json:"attempts"`
	// Done remembers the ids of events that left the outbox (delivered,
	// failed, or wanted by nobody) for WebhookMaxAge, so that a late or
	// repeated proposal of the same event is not delivered again.
	Done map[string]time.Time `json:"done"`
	// Down holds the nodes a node.down was enqueued for, until they are
	// alive again: one event per failure, whoever leads meanwhile.
	Down map[string]time.Time `json:"down"`
	Seq  uint64               `json:"seq"`
}

func (h *hooks) fill() *hooks {
	if h == nil {
		h = &hooks{}
	}
	if h.Webhooks == nil {
		h.Webhooks = map[string]*Webhook{}
	}
	if h.Outbox == nil {
		h.Outbox = map[string]*outboxEntry{}
	}
	if h.Attempts == nil {
		h.Attempts = map[string][]*Attempt{}
	}
	if h.Done == nil {
		h.Done = map[string]time.Time{}
	}
	if h.Down == nil {
		h.Down = map[string]time.Time{}
	}
	return h
}

// hooksLocked returns the webhook state, creating it on first use. Callers
// hold s.mu for writing.
func (s *State) hooksLocked() *hooks {
	s.d.Hooks = s.d.Hooks.fill()
	return s.d.Hooks
}

func (s *State) applyHooks(c Command) *Result {
	h := s.hooksLocked()
	switch c.Op {
	case OpCreateWebhook:
		return h.create(c)
	case OpDeleteWebhook:
		return h.delete(c)
	case OpEnqueueEvent:
		return h.enqueue(c)
	case OpRecordAttempt:
		return h.record(c)
	case OpExpireOutbox:
		return h.expire(c)
	case OpClearNodeDown:
		if _, ok := h.Down[c.Node]; !ok {
			return &Result{}
		}
		delete(h.Down, c.Node)
		return &Result{Changed: true}
	}
	return &Result{Err: invalid("op", "unknown command %q", c.Op)}
}

func (h *hooks) create(c Command) *Result {
	w := c.Webhook.Clone()
	if w == nil || w.ID == "" || w.URL == "" || w.Secret == "" {
		return &Result{Err: invalid("webhook", "webhook needs id, url and secret")}
	}
	if _, ok := h.Webhooks[w.ID]; ok {
		return &Result{Err: conflict("id", "webhook %q already exists", w.ID)}
	}
	w.CreatedAt = c.At
	h.Webhooks[w.ID] = w
	return &Result{Changed: true}
}

func (h *hooks) delete(c Command) *Result {
	if _, ok := h.Webhooks[c.ID]; !ok {
		return &Result{Err: notFound("id", "webhook %q not found", c.ID)}
	}
	delete(h.Webhooks, c.ID)
	delete(h.Attempts, c.ID)
	for id, e := range h.Outbox {
		delete(e.Targets, c.ID)
		h.dropIfDone(id, e, c.At)
	}
	return &Result{Changed: true}
}

// enqueue adds an event for every webhook that wants it. An event id seen
// before (pending or done) is a no-op, and so is a node.down for a node
// already reported down: observers may propose the same event more than
// once (retries, several observers, a new leader catching up).
func (h *hooks) enqueue(c Command) *Result {
	ev := c.Event.Clone()
	if ev == nil || ev.ID == "" || ev.Type == "" {
		return &Result{Err: invalid("event", "event needs id and type")}
	}
	if _, ok := h.Outbox[ev.ID]; ok {
		return &Result{}
	}
	if _, ok := h.Done[ev.ID]; ok {
		return &Result{}
	}
	if ev.Type == EventNodeDown {
		if _, ok := h.Down[ev.Node]; ok {
			return &Result{}
		}
		h.Down[ev.Node] = c.At
	}
	if ev.At.IsZero() {
		ev.At = c.At
	}
	h.Seq++
	e := &outboxEntry{Event: ev, Seq: h.Seq, EnqueuedAt: c.At, Targets: map[string]*target{}}
	for id, w := range h.Webhooks {
		if w.Wants(ev.Type) {
			e.Targets[id] = &target{NextAt: c.At}
		}
	}
	if len(e.Targets) == 0 {
		h.Done[ev.ID] = c.At
		return &Result{Changed: true}
	}
	h.Outbox[ev.ID] = e
	return &Result{Changed: true}
}

// record applies the outcome of one delivery attempt: delivered (the
// delivery leaves the outbox), or retrying after RetryBackoff, or failed
// once the next try would fall past WebhookMaxAge from the enqueue time.
// An attempt for a delivery no longer pending (another leader's attempt
// landed first, the webhook was deleted) changes nothing.
func (h *hooks) record(c Command) *Result {
	a := c.Attempt
	if a == nil || a.EventID == "" || a.WebhookID == "" {
		return &Result{Err: invalid("attempt", "attempt needs event_id and webhook_id")}
	}
	e, ok := h.Outbox[a.EventID]
	if !ok {
		return &Result{}
	}
	tg, ok := e.Targets[a.WebhookID]
	if !ok {
		return &Result{}
	}
	rec := *a
	if rec.At.IsZero() {
		rec.At = c.At
	}
	tg.Attempts++
	rec.Attempt, rec.EventType = tg.Attempts, e.Event.Type
	switch next := rec.At.Add(RetryBackoff(tg.Attempts)); {
	case rec.Succeeded():
		rec.Outcome = OutcomeDelivered
		delete(e.Targets, a.WebhookID)
	case next.After(e.EnqueuedAt.Add(WebhookMaxAge)):
		rec.Outcome = OutcomeFailed
		delete(e.Targets, a.WebhookID)
	default:
		rec.Outcome = OutcomeRetrying
		rec.NextAttemptAt = next
		tg.NextAt = next
	}
	h.log(&rec)
	h.dropIfDone(a.EventID, e, c.At)
	return &Result{Changed: true}
}

// expire drops deliveries whose event was enqueued WebhookMaxAge or more
// before the command's time (no attempt could be made: no leader, a leader
// that could not reach the receiver), and forgets done event ids and down
// nodes as old. Times come from the command and the entries only.
func (h *hooks) expire(c Command) *Result {
	if c.At.IsZero() {
		return &Result{Err: invalid("at", "expire needs a time")}
	}
	changed := false
	for _, id := range slices.Sorted(maps.Keys(h.Outbox)) {
		e := h.Outbox[id]
		if c.At.Before(e.EnqueuedAt.Add(WebhookMaxAge)) {
			continue
		}
		for _, wid := range slices.Sorted(maps.Keys(e.Targets)) {
			h.log(&Attempt{EventID: id, EventType: e.Event.Type, WebhookID: wid, At: c.At, Attempt: e.Targets[wid].Attempts,
				Error: "expired: not delivered within 24h", Outcome: OutcomeFailed})
		}
		e.Targets = nil
		h.dropIfDone(id, e, c.At)
		changed = true
	}
	for id, at := range h.Done {
		if !c.At.Before(at.Add(WebhookMaxAge)) {
			delete(h.Done, id)
			changed = true
		}
	}
	for node, at := range h.Down {
		if !c.At.Before(at.Add(WebhookMaxAge)) {
			delete(h.Down, node)
			changed = true
		}
	}
	return &Result{Changed: changed}
}

func (h *hooks) dropIfDone(id string, e *outboxEntry, at time.Time) {
	if len(e.Targets) > 0 {
		return
	}
	delete(h.Outbox, id)
	h.Done[id] = at
}

// log keeps the last MaxWebhookAttempts attempts of a webhook.
func (h *hooks) log(a *Attempt) {
	if _, ok := h.Webhooks[a.WebhookID]; !ok {
		return
	}
	l := append(h.Attempts[a.WebhookID], a)
	if len(l) > MaxWebhookAttempts {
		l = slices.Clone(l[len(l)-MaxWebhookAttempts:])
	}
	h.Attempts[a.WebhookID] = l
}

// Webhook returns a copy of a webhook (secret included), or nil.
func (s *State) Webhook(id string) *Webhook {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.d.Hooks == nil {
		return nil
	}
	return s.d.Hooks.Webhooks[id].Clone()
}

// HasWebhooks reports whether any webhook exists, without copying.
func (s *State) HasWebhooks() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Hooks != nil && len(s.d.Hooks.Webhooks) > 0
}

// Webhooks returns copies of every webhook (secrets included), by id.
func (s *State) Webhooks() []*Webhook {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.d.Hooks == nil {
		return []*Webhook{}
	}
	return sortedClones(s.d.Hooks.Webhooks, (*Webhook).Clone)
}

// WebhookAttempts returns the last attempts of a webhook, newest last.
func (s *State) WebhookAttempts(id string) []Attempt {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Attempt{}
	if s.d.Hooks == nil {
		return out
	}
	for _, a := range s.d.Hooks.Attempts[id] {
		out = append(out, *a)
	}
	return out
}

// PendingDeliveries lists every delivery still to make, oldest event first
// (and by webhook id within an event).
func (s *State) PendingDeliveries() []Pending {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Pending
	if s.d.Hooks == nil {
		return out
	}
	h := s.d.Hooks
	for _, e := range h.Outbox {
		for _, wid := range slices.Sorted(maps.Keys(e.Targets)) {
			tg := e.Targets[wid]
			out = append(out, Pending{Event: e.Event.Clone(), Webhook: h.Webhooks[wid].Clone(), Seq: e.Seq, Attempts: tg.Attempts, NextAt: tg.NextAt})
		}
	}
	slices.SortStableFunc(out, func(a, b Pending) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out
}

// EventKnown reports whether an event id is in the outbox or was recently
// delivered, failed or dropped.
func (s *State) EventKnown(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.d.Hooks == nil {
		return false
	}
	_, pending := s.d.Hooks.Outbox[id]
	_, done := s.d.Hooks.Done[id]
	return pending || done
}

// NodesDown lists the nodes a node.down was enqueued for that have not been
// seen alive since.
func (s *State) NodesDown() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.d.Hooks == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.d.Hooks.Down))
}

// OutboxExpired reports whether an expire command at now would change
// anything, so the leader proposes one only then.
func (s *State) OutboxExpired(now time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.d.Hooks
	if h == nil {
		return false
	}
	for _, e := range h.Outbox {
		if !now.Before(e.EnqueuedAt.Add(WebhookMaxAge)) {
			return true
		}
	}
	for _, at := range h.Done {
		if !now.Before(at.Add(WebhookMaxAge)) {
			return true
		}
	}
	for _, at := range h.Down {
		if !now.Before(at.Add(WebhookMaxAge)) {
			return true
		}
	}
	return false
}
