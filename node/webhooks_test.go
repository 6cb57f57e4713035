package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/webhook"
)

func TestSessionEvents(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	live := func(in, id string) *fsm.Session { return &fsm.Session{InputID: in, ID: id, IngestNode: "a"} }
	away := func(in, id string) *fsm.Session {
		s := live(in, id)
		s.EndedAt = at.Add(-time.Second)
		return s
	}
	m := func(ss ...*fsm.Session) map[string]*fsm.Session {
		out := map[string]*fsm.Session{}
		for _, s := range ss {
			out[s.InputID] = s
		}
		return out
	}
	type ev struct{ typ, input, session string }
	tests := []struct {
		name      string
		prev, cur map[string]*fsm.Session
		want      []ev
	}{
		{"nothing changed", m(live("i", "s1")), m(live("i", "s1")), nil},
		{"goes live", m(), m(live("i", "s1")), []ev{{fsm.EventInputLive, "i", "s1"}}},
		{"publisher away", m(live("i", "s1")), m(away("i", "s1")), []ev{{fsm.EventInputReconnecting, "i", "s1"}}},
		{"window over", m(away("i", "s1")), m(), []ev{{fsm.EventInputIdle, "i", "s1"}}},
		{"ended at once", m(live("i", "s1")), m(), []ev{{fsm.EventInputIdle, "i", "s1"}}},
		{"back within the window: live again, no idle", m(away("i", "s1")), m(live("i", "s2")), []ev{{fsm.EventInputLive, "i", "s2"}}},
		{"a session never seen live", m(), m(away("i", "s1")), []ev{{fsm.EventInputLive, "i", "s1"}, {fsm.EventInputReconnecting, "i", "s1"}}},
		{"several inputs in order", m(live("b", "s1")), m(live("a", "s2")), []ev{{fsm.EventInputLive, "a", "s2"}, {fsm.EventInputIdle, "b", "s1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []ev
			for _, e := range sessionEvents(tc.prev, tc.cur, at) {
				got = append(got, ev{e.Type, e.InputID, ""})
				// The id is the one an observer computes for the same
				// transition, so both proposals enqueue one event.
				var s *fsm.Session
				if s = tc.cur[e.InputID]; s == nil || e.Type == fsm.EventInputIdle {
					s = tc.prev[e.InputID]
				}
				require.Equal(t, fsm.EventID(e.Type, e.InputID, s.ID), e.ID)
				got[len(got)-1].session = s.ID
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFailovers(t *testing.T) {
	sessions := []*fsm.Session{{InputID: "x", ID: "s"}, {InputID: "y", ID: "s"}, {InputID: "z", ID: "s"}}
	owner := map[string]string{"x": "me", "y": "me", "z": "other"}
	dead := map[string]bool{"gone": true}
	moved, owners := failovers("me", sessions,
		map[string]string{"x": "gone", "y": "drained", "z": "gone"},
		func(id string) string { return owner[id] }, func(n string) bool { return dead[n] })
	require.Equal(t, map[string]string{"x": "gone"}, moved, "only a move from a dead node to this one")
	require.Equal(t, owner, owners)

	// First look: nothing to compare with.
	moved, _ = failovers("me", sessions, map[string]string{}, func(id string) string { return owner[id] }, func(string) bool { return true })
	require.Empty(t, moved)
}

func TestPostSignsDelivery(t *testing.T) {
	type got struct {
		hdr  http.Header
		body []byte
	}
	var mu sync.Mutex
	var reqs []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Header.Clone(), b})
		mu.Unlock()
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	h := newHookRunner(&Node{})
	ev := &fsm.Event{ID: "evt_1", Type: fsm.EventInputLive, InputID: "in", At: time.Now().UTC()}
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	now := time.Now()
	status, err := h.post(context.Background(), &fsm.Webhook{URL: srv.URL + "/hook", Secret: "whsec_abcdefghijklmnop"}, ev, body, now)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, status)

	mu.Lock()
	r := reqs[0]
	mu.Unlock()
	require.Equal(t, body, r.body)
	require.Equal(t, "evt_1", r.hdr.Get(webhook.EventIDHeader))
	require.Equal(t, fsm.EventInputLive, r.hdr.Get(webhook.EventTypeHeader))
	require.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	require.NoError(t, webhook.Verify("whsec_abcdefghijklmnop", r.hdr.Get(webhook.SignatureHeader), r.body, now, 0))
	require.Error(t, webhook.Verify("another-secret-xxxxx", r.hdr.Get(webhook.SignatureHeader), r.body, now, 0))

	// A redirect is not followed: it is the answer (and not a 2xx).
	status, err = h.post(context.Background(), &fsm.Webhook{URL: srv.URL + "/moved", Secret: "x"}, ev, body, now)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, status)
	mu.Lock()
	require.Len(t, reqs, 2)
	mu.Unlock()

	// No answer at all: an error, status 0.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	status, err = h.post(context.Background(), &fsm.Webhook{URL: dead.URL, Secret: "x"}, ev, body, now)
	require.Error(t, err)
	require.Zero(t, status)
}

func TestAdmissionByURL(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	var last webhook.AdmissionRequest
	// sigErr is the last request's signature check: a hex signature can
	// hold any word, so the verdict is kept apart from it.
	var sigErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		_ = json.Unmarshal(b, &last)
		sigErr = webhook.Verify("admission-secret-123", r.Header.Get(webhook.SignatureHeader), b, time.Now(), 0)
		mu.Unlock()
		switch r.URL.Path {
		case "/yes":
			w.WriteHeader(http.StatusNoContent)
		case "/no":
			w.WriteHeader(http.StatusForbidden)
		case "/slow":
			select { // answers after the node gave up
			case <-release:
			case <-r.Context().Done():
			}
		case "/redirect":
			http.Redirect(w, r, "/yes", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()

	n := authTestNode(t, nil)
	reg := prometheus.NewRegistry()
	require.NoError(t, n.hooks.registerMetrics(reg))
	n.cfg.PublishAuthSecret = "admission-secret-123"
	publish := media.AuthRequest{Action: "publish", Path: "live/skon", Protocol: "rtmp", IP: "192.0.2.7", Query: "event=final"}
	setInputURL := func(u string) {
		require.NoError(t, n.state.ApplyCommand(fsm.Command{Op: fsm.OpUpdateInput, At: time.Now().UTC(), ID: "on",
			Patch: &fsm.InputPatch{PublishAuthURL: &u}}).Err)
	}

	// No URL anywhere: the stream key decides alone.
	require.NoError(t, n.authorize(context.Background(), publish))

	// Cluster-wide URL.
	n.cfg.PublishAuthURL = srv.URL + "/yes"
	require.NoError(t, n.authorize(context.Background(), publish))
	mu.Lock()
	require.Equal(t, "on", last.InputID)
	require.Equal(t, "rtmp", last.Protocol)
	require.Equal(t, "192.0.2.7", last.IP)
	require.Equal(t, "a", last.Node)
	require.Equal(t, "event=final", last.Query)
	require.NoError(t, sigErr, "signed with the publish-auth secret")
	mu.Unlock()

	// The input's own URL wins over the cluster-wide one.
	setInputURL(srv.URL + "/no")
	require.ErrorIs(t, n.authorize(context.Background(), publish), errAdmission)
	setInputURL("")
	require.NoError(t, n.authorize(context.Background(), publish))

	// Fail closed: a redirect, a timeout, nobody listening.
	for _, u := range []string{srv.URL + "/redirect", srv.URL + "/slow", "http://127.0.0.1:1/"} {
		n.cfg.PublishAuthURL = u
		start := time.Now()
		require.ErrorIs(t, n.authorize(context.Background(), publish), errAdmission, u)
		require.Less(t, time.Since(start), admissionTimeout+time.Second, "bounded: %s", u)
	}
	require.Equal(t, 4.0, admissions(t, reg, "refused"), "the input's /no, a redirect, a timeout, nobody listening")
	require.Equal(t, 2.0, admissions(t, reg, "accepted"))
	// A refused key is refused before any admission call.
	n.cfg.PublishAuthURL = srv.URL + "/yes"
	require.ErrorIs(t, n.authorize(context.Background(), media.AuthRequest{Action: "publish", Path: "live/skoff"}), errDisabled)
}

func admissions(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "dionysia_publish_admission_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
