package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/webhook"
)

// webhookCycles is how many publishes the row makes: each gives an
// input.live and an input.idle.
const webhookCycles = 12

// hookReceiver is the subscriber's endpoint: it checks every delivery's
// signature and keeps the first arrival of each event id (a receiver
// deduplicates by id; a repeat says nothing about latency).
type hookReceiver struct {
	secret string
	mu     sync.Mutex
	first  map[string]hookArrival
	bad    []string
}

type hookArrival struct {
	Type, Input string
	At, Arrived time.Time
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		ID      string    `json:"id"`
		Type    string    `json:"type"`
		At      time.Time `json:"at"`
		InputID string    `json:"input_id"`
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(h.secret, r.Header.Get(webhook.SignatureHeader), body, arrived, 0); err != nil {
		h.bad = append(h.bad, "signature: "+err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.At.IsZero() {
		h.bad = append(h.bad, fmt.Sprintf("body without id or time: %s", body))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if _, ok := h.first[ev.ID]; !ok {
		h.first[ev.ID] = hookArrival{Type: ev.Type, Input: ev.InputID, At: ev.At, Arrived: arrived}
	}
	w.WriteHeader(http.StatusNoContent)
}

// has reports whether an event of the type about the input arrived after
// since (by its own time).
func (h *hookReceiver) has(typ, input string, since time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.first {
		if a.Type == typ && a.Input == input && !a.At.Before(since) {
			return true
		}
	}
	return false
}

// rowWebhooks: how long after an event its webhook reaches a receiver.
func rowWebhooks(ctx context.Context, t *testing.T, _ *Env, r *Row) error {
	load0 := load1()
	defer func() {
		r.note("Load average (1 min) %.1f at the row's start, %.1f at its end (2 cores, shared).", load0, load1())
	}()
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.WaitMembers(3, 30*time.Second)
	leader := c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	var ingest *testcluster.Node
	for _, n := range c.Nodes() {
		if n.Name() != leader.Name() {
			ingest = n
			break
		}
	}
	rc := &hookReceiver{secret: "whsec_bench_webhooks_secret", first: map[string]hookArrival{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	resp := ingest.MustDo(t, http.MethodPost, "/v1/webhooks", map[string]any{"url": srv.URL + "/hooks", "secret": rc.secret,
		"events": []string{fsm.EventInputLive, fsm.EventInputIdle}})
	if resp.Status != http.StatusCreated {
		return fmt.Errorf("create webhook: %d %s", resp.Status, resp.Body)
	}
	profile := ingest.CreateProfile(t, map[string]any{"name": "webhooks bench", "segment_seconds": 1,
		"renditions": []map[string]any{{"name": "source", "passthrough": true, "video_bitrate_kbps": 300, "audio_bitrate_kbps": 64}}})
	in := ingest.CreateInput(t, map[string]any{"name": "webhooks bench", "profile_id": profile, "reconnect_window_seconds": 0})
	rtmp := ingest.WaitInput(t, in.ID).Ingest.RTMP

	r.Method = fmt.Sprintf("Three in-process nodes on loopback (testcluster defaults, mutual TLS between them). A webhook subscribed "+
		"to input.live and input.idle points at an httptest server in the bench that checks every delivery's `Dionysia-Signature` "+
		"(`webhook.Verify`) and notes when it arrived; a repeat of an event id is ignored. An input (passthrough profile, no "+
		"reconnect window) is published %d times over RTMP to a follower (testcluster's 160×90 test pattern, 4 s each, one at a "+
		"time): each publish is an input.live when the follower's ingest poll (every 100 ms) sees the path ready and an input.idle "+
		"when it sees it gone. Latency = arrival − the event's `at`, which is the observing node's clock at the moment it saw the "+
		"transition (before it proposes the event to the raft outbox; all nodes share the machine's clock), so it covers the "+
		"proposal through raft, the leader's delivery loop (a 200 ms tick, woken early by a finished delivery) and the POST; "+
		"it does not cover the up to 100 ms between the publisher going live and the poll that sees it.", webhookCycles)

	for i := range webhookCycles {
		if ctxLeft(ctx) < 20*time.Second {
			r.note("stopped after %d publishes: row time budget", i)
			break
		}
		start := time.Now()
		pub := testcluster.Publish(t, rtmp, testcluster.PublishOptions{Width: 160, Height: 90, FPS: 15, Duration: 4 * time.Second})
		if _, ok := pub.WaitExit(30 * time.Second); !ok {
			pub.Stop()
			return fmt.Errorf("publish %d: the 4 s publisher did not end", i)
		}
		if err := pollUntil(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
			return rc.has(fsm.EventInputLive, in.ID, start) && rc.has(fsm.EventInputIdle, in.ID, start)
		}); err != nil {
			rc.mu.Lock()
			bad := rc.bad
			rc.mu.Unlock()
			return fmt.Errorf("publish %d: input.live and input.idle not both delivered: %w (refused deliveries: %v)", i, err, bad)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		return fmt.Errorf("%d deliveries failed the receiver's checks, e.g. %s", len(rc.bad), rc.bad[0])
	}
	var all []float64
	byType := map[string][]float64{}
	for _, a := range rc.first {
		if a.Input != in.ID {
			continue
		}
		ms := float64(a.Arrived.Sub(a.At).Microseconds()) / 1000
		all = append(all, ms)
		byType[a.Type] = append(byType[a.Type], ms)
	}
	if len(all) < 2 {
		return fmt.Errorf("only %d events delivered", len(all))
	}
	r.addValue("event → delivered, p50", "ms", percentile(all, 50), 0).headline()
	r.addValue("event → delivered, p99", "ms", percentile(all, 99), 0).headline().goal("≤ 1000 ms", percentile(all, 99) <= 1000)
	r.addValue("events delivered (samples)", "events", float64(len(all)), 0)
	for _, typ := range []string{fsm.EventInputLive, fsm.EventInputIdle} {
		r.add(typ+" → delivered (median)", "ms", byType[typ], 0)
	}
	r.note("p99 of %d samples is their maximum (nearest rank). The issue sets no goal; ≤ 1 s at p99 is what a user of a "+
		"webhook-driven workflow (e.g. a 'you are live' notice or a recording pipeline) would expect from a LAN cluster with a "+
		"reachable receiver: it is a few raft writes and one local POST, and the leader's loop runs every 200 ms.", len(all))
	return nil
}
