package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/node"
	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/webhook"
)

// receiver is a webhook endpoint that keeps every delivery.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []delivery
}

type delivery struct {
	ID, Type, Input, Node string
	Data                  map[string]string
	HeaderID              string
	SigErr                error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		ID      string            `json:"id"`
		Type    string            `json:"type"`
		InputID string            `json:"input_id"`
		Node    string            `json:"node"`
		Data    map[string]string `json:"data"`
	}
	d := delivery{HeaderID: r.Header.Get(webhook.EventIDHeader),
		SigErr: webhook.Verify(rc.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0)}
	if err := json.Unmarshal(body, &ev); err != nil {
		d.SigErr = fmt.Errorf("body is not an event: %w", err)
	}
	d.ID, d.Type, d.Input, d.Node, d.Data = ev.ID, ev.Type, ev.InputID, ev.Node, ev.Data
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// unique lists the distinct event ids of one type (about one input or
// node), in the order they first arrived: what a receiver that
// deduplicates by id sees.
func (rc *receiver) unique(typ, about string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ids []string
	for _, d := range rc.got {
		if d.Type == typ && (d.Input == about || d.Node == about) && !slices.Contains(ids, d.ID) {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

func (rc *receiver) all() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// TestIntegrationWebhooksAcrossLeaderKill: a receiver subscribed to every
// event gets input.live, then (after the raft leader, which owned the
// stream, was killed) input.failed_over and input.idle, each exactly once
// once deduplicated by event id, every delivery signed with the webhook's
// secret; the dead leader is reported as node.down.
func TestIntegrationWebhooksAcrossLeaderKill(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	c := startThree(t, testcluster.Options{})
	rc := &receiver{t: t, secret: "whsec_integration_test_secret"}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	leader := c.WaitLeader(10 * time.Second)
	var ingest *testcluster.Node
	for _, n := range c.Running() {
		if n.Name() != leader.Name() {
			ingest = n
			break
		}
	}
	r := ingest.MustDo(t, http.MethodPost, "/v1/webhooks", map[string]any{"url": srv.URL + "/hooks", "secret": rc.secret})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	var hook struct{ ID string }
	r.JSON(t, &hook)

	profile := ingest.CreateProfile(t, testcluster.SmallProfile("webhooks", 1))
	// An input the leader owns, so that killing the leader is a failover
	// too. No reconnect window: the stream is over as soon as the
	// publisher goes.
	var in testcluster.Input
	for i := 0; ; i++ {
		require.Less(t, i, 30, "no input id landed on the leader")
		in = ingest.CreateInput(t, map[string]any{"name": fmt.Sprintf("webhooks %d", i), "profile_id": profile, "reconnect_window_seconds": 0})
		if m, ok := ingest.ClusterHandle().Owner(in.ID); ok && m.Name == leader.Name() {
			break
		}
	}
	pub := testcluster.Publish(t, ingest.WaitInput(t, in.ID).Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 240})

	testcluster.Eventually(t, 30*time.Second, "input.live delivered", func() error {
		if ids := rc.unique("input.live", in.ID); len(ids) == 0 {
			return fmt.Errorf("deliveries so far: %+v", rc.all())
		}
		return nil
	})

	t.Logf("killing the leader %s; publisher on %s", leader.Name(), ingest.Name())
	c.Kill(leader.Index)
	newLeader := c.WaitLeader(30 * time.Second)
	require.NotEqual(t, leader.Name(), newLeader.Name())
	// The stream's new owner reports the failover while the publisher is
	// still live.
	testcluster.Eventually(t, 30*time.Second, "input.failed_over delivered", func() error {
		if len(rc.unique("input.failed_over", in.ID)) == 0 {
			return fmt.Errorf("deliveries so far: %+v", rc.all())
		}
		return nil
	})
	pub.Stop()

	testcluster.Eventually(t, 40*time.Second, "input.idle and node.down delivered by the new leader", func() error {
		if len(rc.unique("input.idle", in.ID)) == 0 || len(rc.unique("node.down", leader.Name())) == 0 {
			return fmt.Errorf("deliveries so far: %+v", rc.all())
		}
		return nil
	})
	// Whatever is still pending (a delivery in flight when the leader
	// died is made again) has been made once the outbox is empty.
	testcluster.Eventually(t, 20*time.Second, "the outbox to drain", func() error {
		if p := newLeader.State().PendingDeliveries(); len(p) > 0 {
			return fmt.Errorf("%d deliveries pending", len(p))
		}
		return nil
	})

	for _, d := range rc.all() {
		require.NoError(t, d.SigErr, "delivery %s (%s) must carry a valid signature", d.ID, d.Type)
		require.Equal(t, d.ID, d.HeaderID, "Dionysia-Event-Id is the body's id")
	}
	require.Len(t, rc.unique("input.live", in.ID), 1, "input.live exactly once by event id: %+v", rc.all())
	require.Len(t, rc.unique("input.idle", in.ID), 1, "input.idle exactly once by event id: %+v", rc.all())
	require.Len(t, rc.unique("node.down", leader.Name()), 1, "node.down once for the killed leader: %+v", rc.all())
	require.Empty(t, rc.unique("input.reconnecting", in.ID), "no reconnect window, no reconnecting")
	require.Len(t, rc.unique("input.failed_over", in.ID), 1, "one failover: %+v", rc.all())
	for _, d := range rc.all() {
		if d.Type == "input.failed_over" {
			m, ok := ingest.ClusterHandle().Owner(in.ID)
			require.True(t, ok)
			require.Equal(t, map[string]string{"from_node": leader.Name(), "to_node": m.Name}, d.Data)
			require.Equal(t, m.Name, d.Node)
		}
	}
	order := []string{}
	for _, d := range rc.all() {
		if d.Input == in.ID && !slices.Contains(order, d.Type) {
			order = append(order, d.Type)
		}
	}
	require.Equal(t, "input.live", order[0], "live before idle: %v", order)
	require.Equal(t, "input.idle", order[len(order)-1], "live before idle: %v", order)

	// The survivors show the attempts, the secret nowhere.
	r = newLeader.MustDo(t, http.MethodGet, "/v1/webhooks/"+hook.ID+"/deliveries", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var dl struct {
		Deliveries []struct {
			EventType  string `json:"event_type"`
			StatusCode int    `json:"status_code"`
			Outcome    string `json:"outcome"`
		} `json:"deliveries"`
	}
	r.JSON(t, &dl)
	types := map[string]bool{}
	for _, d := range dl.Deliveries {
		if d.Outcome == "delivered" {
			require.Equal(t, http.StatusNoContent, d.StatusCode)
			types[d.EventType] = true
		}
	}
	require.True(t, types["input.idle"] && types["node.down"], "deliveries: %+v", dl.Deliveries)
	r = newLeader.MustDo(t, http.MethodGet, "/v1/webhooks", nil)
	require.NotContains(t, string(r.Body), rc.secret)
}

// TestIntegrationPublishAdmission: mediamtx's auth hook asks the input's
// publish_auth_url before a real publish goes through: a 403 refuses it
// (the encoder is cut off), a 204 lets the same key go live; the request
// names the input and protocol and is signed with the cluster's secret.
func TestIntegrationPublishAdmission(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	const secret = "admission-integration-secret"
	c := testcluster.Start(t, testcluster.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.PublishAuthSecret = secret
	}})
	n := c.Node(0)
	c.WaitReady(30 * time.Second)

	var allow atomic.Bool
	var mu sync.Mutex
	var asked []webhook.AdmissionRequest
	var sigErrs []error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req webhook.AdmissionRequest
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		asked = append(asked, req)
		sigErrs = append(sigErrs, webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0))
		mu.Unlock()
		if allow.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "not on the schedule", http.StatusForbidden)
	}))
	defer srv.Close()

	in := n.CreateInput(t, map[string]any{"name": "gated", "publish_auth_url": srv.URL + "/admit"})
	pub := testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 240, Duration: 30 * time.Second})
	err, exited := pub.WaitExit(15 * time.Second)
	require.True(t, exited, "a publish the admission URL refused must be cut off")
	require.Error(t, err)
	require.Nil(t, n.State().Session(in.ID))

	allow.Store(true)
	testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 320, Height: 240})
	testcluster.Eventually(t, 20*time.Second, "the admitted publish to go live", func() error {
		if s := n.State().Session(in.ID); s == nil || !s.Live() {
			return fmt.Errorf("not live")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(asked), 2)
	for i, req := range asked {
		require.NoError(t, sigErrs[i], "signed with --publish-auth-secret")
		require.Equal(t, in.ID, req.InputID)
		require.Equal(t, "rtmp", req.Protocol)
		require.Equal(t, n.Name(), req.Node)
	}
}
