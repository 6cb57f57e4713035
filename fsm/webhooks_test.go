package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func hookState(t *testing.T, hooks ...*Webhook) *State {
	t.Helper()
	s := New(nil)
	applyAll(t, s, []Command{initCmd()})
	for _, w := range hooks {
		applyAll(t, s, []Command{{Op: OpCreateWebhook, At: t0, Webhook: w}})
	}
	return s
}

func liveEvent(at time.Time) *Event {
	return &Event{ID: EventID(EventInputLive, "demo", "s1"), Type: EventInputLive, At: at, InputID: "demo", Node: "a"}
}

func enqueue(t *testing.T, s *State, at time.Time, ev *Event) *Result {
	t.Helper()
	r := s.ApplyCommand(Command{Op: OpEnqueueEvent, At: at, Event: ev})
	require.NoError(t, r.Err)
	return r
}

func attempt(t *testing.T, s *State, at time.Time, ev, wh string, status int, errMsg string) {
	t.Helper()
	r := s.ApplyCommand(Command{Op: OpRecordAttempt, At: at, Attempt: &Attempt{EventID: ev, WebhookID: wh, At: at, StatusCode: status, Error: errMsg, DurationMs: 12}})
	require.NoError(t, r.Err)
}

func TestRetryBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for i, w := range want {
		require.Equal(t, w, RetryBackoff(i+1), "after attempt %d", i+1)
	}
	require.Equal(t, 10*time.Minute, RetryBackoff(1000), "no overflow")
	require.Equal(t, time.Second, RetryBackoff(0))
}

func TestEventIDIsDeterministicAndOpaque(t *testing.T) {
	a := EventID(EventInputLive, "in1", "live/sksecret@2026")
	require.Equal(t, a, EventID(EventInputLive, "in1", "live/sksecret@2026"))
	require.NotEqual(t, a, EventID(EventInputIdle, "in1", "live/sksecret@2026"))
	// Parts are separated: ("ab","c") is not ("a","bc").
	require.NotEqual(t, EventID("x", "ab", "c"), EventID("x", "a", "bc"))
	require.NotContains(t, a, "sksecret")
}

func TestEnqueueDeduplicatesByEventID(t *testing.T) {
	s := hookState(t, &Webhook{ID: "all", URL: "http://r/a", Secret: "x"},
		&Webhook{ID: "idle-only", URL: "http://r/b", Secret: "y", Events: []string{EventInputIdle}})
	ev := liveEvent(t0)
	require.True(t, enqueue(t, s, t0, ev).Changed)
	// The same event from another observer, or a retried proposal: no-op.
	require.False(t, enqueue(t, s, t0.Add(time.Second), liveEvent(t0.Add(time.Second))).Changed)

	p := s.PendingDeliveries()
	require.Len(t, p, 1, "only the webhook that wants input.live")
	require.Equal(t, "all", p[0].Webhook.ID)
	require.Equal(t, ev.ID, p[0].Event.ID)
	require.Equal(t, t0, p[0].NextAt, "due at once")

	// Delivered: the entry leaves the outbox, and a late proposal of the
	// same event is still refused.
	attempt(t, s, t0.Add(2*time.Second), ev.ID, "all", 204, "")
	require.Empty(t, s.PendingDeliveries())
	require.True(t, s.EventKnown(ev.ID))
	require.False(t, enqueue(t, s, t0.Add(3*time.Second), liveEvent(t0)).Changed)
	require.Empty(t, s.PendingDeliveries())

	// An event nobody subscribes to is remembered too.
	orphan := &Event{ID: "evt_x", Type: EventNodeDown, Node: "b"}
	s2 := hookState(t)
	require.True(t, enqueue(t, s2, t0, orphan).Changed)
	require.Empty(t, s2.PendingDeliveries())
	require.False(t, enqueue(t, s2, t0, orphan).Changed)

	// Invalid events are refused.
	r := s.ApplyCommand(Command{Op: OpEnqueueEvent, At: t0, Event: &Event{Type: EventInputLive}})
	require.Equal(t, CodeInvalid, ErrorCode(r.Err))
}

func TestNodeDownOncePerFailure(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x"})
	down := func(id string) *Event { return &Event{ID: id, Type: EventNodeDown, Node: "b"} }
	require.True(t, enqueue(t, s, t0, down("evt_1")).Changed)
	// A new leader reports the same failure with its own id: no-op.
	require.False(t, enqueue(t, s, t0.Add(time.Minute), down("evt_2")).Changed)
	require.Equal(t, []string{"b"}, s.NodesDown())
	// Back alive, then down again: a second event.
	require.True(t, s.ApplyCommand(Command{Op: OpClearNodeDown, At: t0.Add(2 * time.Minute), Node: "b"}).Changed)
	require.False(t, s.ApplyCommand(Command{Op: OpClearNodeDown, At: t0.Add(2 * time.Minute), Node: "b"}).Changed)
	require.True(t, enqueue(t, s, t0.Add(3*time.Minute), down("evt_3")).Changed)
	require.Len(t, s.PendingDeliveries(), 2)
}

func TestAttemptsRetryWithBackoffThenFail(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x"})
	ev := liveEvent(t0)
	enqueue(t, s, t0, ev)

	at := t0
	for n := 1; n <= 3; n++ {
		attempt(t, s, at, ev.ID, "w", 500, "")
		p := s.PendingDeliveries()
		require.Len(t, p, 1)
		require.Equal(t, n, p[0].Attempts)
		require.Equal(t, at.Add(RetryBackoff(n)), p[0].NextAt, "attempt %d", n)
		at = p[0].NextAt
	}
	attempt(t, s, at, ev.ID, "w", 0, "dial tcp: connection refused")
	log := s.WebhookAttempts("w")
	require.Len(t, log, 4)
	require.Equal(t, 1, log[0].Attempt)
	require.Equal(t, 500, log[0].StatusCode)
	require.Equal(t, OutcomeRetrying, log[0].Outcome)
	require.Equal(t, EventInputLive, log[0].EventType)
	require.Equal(t, int64(12), log[0].DurationMs)
	require.Equal(t, "dial tcp: connection refused", log[3].Error)

	// An attempt whose next try would fall past 24h after the enqueue
	// fails the delivery for good.
	late := t0.Add(WebhookMaxAge - 10*time.Second) // the 5th attempt would wait 16 s
	attempt(t, s, late, ev.ID, "w", 503, "")
	require.Empty(t, s.PendingDeliveries())
	log = s.WebhookAttempts("w")
	require.Equal(t, OutcomeFailed, log[len(log)-1].Outcome)
	require.True(t, s.EventKnown(ev.ID))

	// A late attempt (another leader's) for a delivery that is gone: no-op.
	r := s.ApplyCommand(Command{Op: OpRecordAttempt, At: late, Attempt: &Attempt{EventID: ev.ID, WebhookID: "w", StatusCode: 200}})
	require.NoError(t, r.Err)
	require.False(t, r.Changed)
	require.Len(t, s.WebhookAttempts("w"), 5)
}

func TestExpireOutboxByEntryTimes(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x"})
	old, young := liveEvent(t0), &Event{ID: "evt_young", Type: EventInputIdle, InputID: "demo"}
	enqueue(t, s, t0, old)
	enqueue(t, s, t0.Add(time.Hour), young)

	now := t0.Add(WebhookMaxAge - time.Second)
	require.False(t, s.OutboxExpired(now))
	require.False(t, s.ApplyCommand(Command{Op: OpExpireOutbox, At: now}).Changed)
	require.Len(t, s.PendingDeliveries(), 2)

	now = t0.Add(WebhookMaxAge)
	require.True(t, s.OutboxExpired(now))
	require.True(t, s.ApplyCommand(Command{Op: OpExpireOutbox, At: now}).Changed)
	p := s.PendingDeliveries()
	require.Len(t, p, 1)
	require.Equal(t, "evt_young", p[0].Event.ID)
	log := s.WebhookAttempts("w")
	require.Len(t, log, 1)
	require.Equal(t, OutcomeFailed, log[0].Outcome)
	require.Equal(t, old.ID, log[0].EventID)
	require.True(t, s.EventKnown(old.ID), "remembered for dedup")

	// Done ids are forgotten 24h after they were done.
	require.True(t, s.ApplyCommand(Command{Op: OpExpireOutbox, At: now.Add(WebhookMaxAge)}).Changed)
	require.False(t, s.EventKnown(old.ID))
	require.Empty(t, s.PendingDeliveries())

	r := s.ApplyCommand(Command{Op: OpExpireOutbox})
	require.Equal(t, CodeInvalid, ErrorCode(r.Err), "expiry needs the proposer's time")
}

func TestWebhookCommands(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x", Events: []string{EventInputLive}})
	require.True(t, s.HasWebhooks())
	require.False(t, New(nil).HasWebhooks())
	w := s.Webhook("w")
	require.Equal(t, t0, w.CreatedAt)
	require.Equal(t, "x", w.Secret)
	w.Events[0] = "mutated"
	require.Equal(t, []string{EventInputLive}, s.Webhook("w").Events, "reads return copies")

	r := s.ApplyCommand(Command{Op: OpCreateWebhook, At: t0, Webhook: &Webhook{ID: "w", URL: "http://r", Secret: "x"}})
	require.Equal(t, CodeConflict, ErrorCode(r.Err))
	r = s.ApplyCommand(Command{Op: OpCreateWebhook, At: t0, Webhook: &Webhook{ID: "v", URL: "http://r"}})
	require.Equal(t, CodeInvalid, ErrorCode(r.Err), "no secret")

	// Deleting a webhook drops its pending deliveries and its log.
	ev := liveEvent(t0)
	enqueue(t, s, t0, ev)
	attempt(t, s, t0, ev.ID, "w", 500, "")
	require.Len(t, s.PendingDeliveries(), 1)
	require.True(t, s.ApplyCommand(Command{Op: OpDeleteWebhook, At: t0, ID: "w"}).Changed)
	require.Empty(t, s.PendingDeliveries())
	require.Empty(t, s.WebhookAttempts("w"))
	require.Empty(t, s.Webhooks())
	require.False(t, s.HasWebhooks())
	require.Equal(t, CodeNotFound, ErrorCode(s.ApplyCommand(Command{Op: OpDeleteWebhook, At: t0, ID: "w"}).Err))
}

func TestWebhookAttemptsBounded(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x"})
	for i := range MaxWebhookAttempts + 20 {
		ev := &Event{ID: EventID(EventInputLive, "demo", string(rune('a'+i%26)), time.Duration(i).String()), Type: EventInputLive}
		enqueue(t, s, t0, ev)
		attempt(t, s, t0.Add(time.Duration(i)*time.Second), ev.ID, "w", 200, "")
	}
	log := s.WebhookAttempts("w")
	require.Len(t, log, MaxWebhookAttempts)
	require.Equal(t, t0.Add(time.Duration(MaxWebhookAttempts+19)*time.Second), log[len(log)-1].At, "the newest are kept")
	require.Equal(t, t0.Add(20*time.Second), log[0].At)
}

func TestPendingDeliveriesInEnqueueOrder(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x"})
	ids := []string{"evt_z", "evt_a", "evt_m"}
	for i, id := range ids {
		enqueue(t, s, t0.Add(time.Duration(i)*time.Second), &Event{ID: id, Type: EventInputLive})
	}
	var got []string
	for _, p := range s.PendingDeliveries() {
		got = append(got, p.Event.ID)
	}
	require.Equal(t, ids, got)
}

func TestWebhookSnapshotRoundTrip(t *testing.T) {
	s := hookState(t, &Webhook{ID: "w", URL: "http://r", Secret: "x", Events: []string{EventInputLive, EventNodeDown}})
	ev := liveEvent(t0)
	enqueue(t, s, t0, ev)
	attempt(t, s, t0.Add(time.Second), ev.ID, "w", 502, "")
	enqueue(t, s, t0, &Event{ID: "evt_down", Type: EventNodeDown, Node: "c"})
	attempt(t, s, t0.Add(time.Second), "evt_down", "w", 200, "")

	b := snapshotBytes(t, s)
	r := New(nil)
	require.NoError(t, r.Restore(bytes.NewReader(b)))
	require.Equal(t, b, snapshotBytes(t, r))
	require.Equal(t, s.PendingDeliveries(), r.PendingDeliveries())
	require.Equal(t, s.WebhookAttempts("w"), r.WebhookAttempts("w"))
	require.Equal(t, []string{"c"}, r.NodesDown())
	require.True(t, r.EventKnown("evt_down"))
	// The restored state goes on exactly like the original.
	for _, st := range []*State{s, r} {
		attempt(t, st, t0.Add(3*time.Second), ev.ID, "w", 200, "")
		require.False(t, enqueue(t, st, t0, &Event{ID: "evt_down2", Type: EventNodeDown, Node: "c"}).Changed)
	}
	require.Equal(t, snapshotBytes(t, s), snapshotBytes(t, r))
}

func TestSnapshotWithoutWebhooksRestores(t *testing.T) {
	s := New(nil)
	applyAll(t, s, seedLog())
	b := snapshotBytes(t, s)
	require.NotContains(t, string(b), `"hooks"`, "a cluster without webhooks writes the snapshot it always wrote")
	r := New(nil)
	require.NoError(t, r.Restore(bytes.NewReader(b)))
	require.Empty(t, r.Webhooks())
	require.Empty(t, r.PendingDeliveries())
	// Webhook commands work on a state restored without them.
	applyAll(t, r, []Command{{Op: OpCreateWebhook, At: t0, Webhook: &Webhook{ID: "w", URL: "http://r", Secret: "x"}}})
	require.Len(t, r.Webhooks(), 1)
}

func TestPublishAuthURLPatch(t *testing.T) {
	s := New(nil)
	applyAll(t, s, []Command{initCmd()})
	u := "https://auth.example/check"
	applyAll(t, s, []Command{{Op: OpUpdateInput, At: t0, ID: "demo", Patch: &InputPatch{PublishAuthURL: &u}}})
	require.Equal(t, u, s.Input("demo").PublishAuthURL)
	empty := ""
	applyAll(t, s, []Command{{Op: OpUpdateInput, At: t0, ID: "demo", Patch: &InputPatch{PublishAuthURL: &empty}}})
	require.Empty(t, s.Input("demo").PublishAuthURL)
}
