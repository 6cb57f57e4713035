package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

type webhookJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

func TestWebhookLifecycle(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/webhooks", `{"url":"https://hooks.example/in","events":["input.live","input.idle"]}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	created := decodeBody[webhookJSON](t, rec)
	require.NotEmpty(t, created.ID)
	require.Equal(t, "/v1/webhooks/"+created.ID, rec.Header().Get("Location"))
	require.True(t, strings.HasPrefix(created.Secret, "whsec_"), "a generated secret, shown once: %q", created.Secret)
	require.GreaterOrEqual(t, len(created.Secret), 32)
	require.Equal(t, []string{"input.live", "input.idle"}, created.Events)
	require.True(t, e.b.State().Webhook(created.ID).CreatedAt.Equal(created.CreatedAt), "the answer's created_at is the stored one")
	require.Equal(t, created.Secret, e.b.State().Webhook(created.ID).Secret, "stored for signing")

	// Neither the list nor a get shows the secret.
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/" + created.ID} {
		rec = e.do(http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), created.Secret, path)
		require.NotContains(t, rec.Body.String(), `"secret"`, path)
	}
	list := decodeBody[struct{ Webhooks []webhookJSON }](t, e.do(http.MethodGet, "/v1/webhooks", nil))
	require.Len(t, list.Webhooks, 1)
	require.Equal(t, created.URL, list.Webhooks[0].URL)

	// A chosen secret is kept; no events means all.
	rec = e.do(http.MethodPost, "/v1/webhooks", `{"url":"http://10.0.0.9:9000/hook","secret":"my-own-secret-1234"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	own := decodeBody[webhookJSON](t, rec)
	require.Equal(t, "my-own-secret-1234", own.Secret)
	require.Equal(t, []string{}, own.Events)

	// Deliveries: newest first, from the state.
	ev := &fsm.Event{ID: "evt_1", Type: fsm.EventInputLive}
	require.NoError(t, e.b.state.ApplyCommand(fsm.Command{Op: fsm.OpEnqueueEvent, At: time.Now().UTC(), Event: ev}).Err)
	for _, code := range []int{500, 200} {
		require.NoError(t, e.b.state.ApplyCommand(fsm.Command{Op: fsm.OpRecordAttempt, At: time.Now().UTC(),
			Attempt: &fsm.Attempt{EventID: "evt_1", WebhookID: created.ID, At: time.Now().UTC(), StatusCode: code, DurationMs: 3}}).Err)
	}
	rec = e.do(http.MethodGet, "/v1/webhooks/"+created.ID+"/deliveries", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	d := decodeBody[struct{ Deliveries []fsm.Attempt }](t, rec)
	require.Len(t, d.Deliveries, 2)
	require.Equal(t, fsm.OutcomeDelivered, d.Deliveries[0].Outcome)
	require.Equal(t, 2, d.Deliveries[0].Attempt)
	require.Equal(t, 500, d.Deliveries[1].StatusCode)
	require.Equal(t, fsm.OutcomeRetrying, d.Deliveries[1].Outcome)

	rec = e.do(http.MethodDelete, "/v1/webhooks/"+created.ID, nil)
	require.Equal(t, http.StatusNoContent, rec.Code)
	requireAPIError(t, e.do(http.MethodGet, "/v1/webhooks/"+created.ID, nil), http.StatusNotFound, "id")
	requireAPIError(t, e.do(http.MethodGet, "/v1/webhooks/"+created.ID+"/deliveries", nil), http.StatusNotFound, "id")
	requireAPIError(t, e.do(http.MethodDelete, "/v1/webhooks/"+created.ID, nil), http.StatusNotFound, "id")
}

func TestWebhookRefusals(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"no url", `{"events":["input.live"]}`, "url"},
		{"ftp url", `{"url":"ftp://hooks.example/in"}`, "url"},
		{"relative url", `{"url":"/hook"}`, "url"},
		{"no host", `{"url":"http:///hook"}`, "url"},
		{"not a url", `{"url":"http://[::1"}`, "url"},
		{"fragment", `{"url":"https://h.example/x#y"}`, "url"},
		{"url not a string", `{"url":42}`, "url"},
		{"unknown event", `{"url":"https://h.example","events":["input.live","stream.started"]}`, "events[1]"},
		{"event twice", `{"url":"https://h.example","events":["node.down","node.down"]}`, "events[1]"},
		{"events not a list", `{"url":"https://h.example","events":"input.live"}`, "events"},
		{"short secret", `{"url":"https://h.example","secret":"short"}`, "secret"},
		{"secret with space", `{"url":"https://h.example","secret":"has a space in it ok"}`, "secret"},
		{"unknown field", `{"url":"https://h.example","retries":3}`, "retries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			requireAPIError(t, e.do(http.MethodPost, "/v1/webhooks", tc.body), http.StatusBadRequest, tc.field)
			require.Empty(t, e.b.State().Webhooks())
		})
	}
}

func TestInputPublishAuthURL(t *testing.T) {
	e := newEnv(t)
	in := e.createInput(map[string]any{"name": "gated", "publish_auth_url": "https://auth.example/publish"})
	require.Equal(t, "https://auth.example/publish", e.b.State().Input(in.ID).PublishAuthURL)
	rec := e.do(http.MethodGet, "/v1/inputs/"+in.ID, nil)
	require.Contains(t, rec.Body.String(), `"publish_auth_url": "https://auth.example/publish"`)

	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs", `{"name":"x","publish_auth_url":"auth.example"}`), http.StatusBadRequest, "publish_auth_url")
	requireAPIError(t, e.do(http.MethodPatch, "/v1/inputs/"+in.ID, `{"publish_auth_url":"gopher://x"}`), http.StatusBadRequest, "publish_auth_url")

	rec = e.do(http.MethodPatch, "/v1/inputs/"+in.ID, `{"publish_auth_url":""}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Empty(t, e.b.State().Input(in.ID).PublishAuthURL)
	require.NotContains(t, rec.Body.String(), "publish_auth_url")
}
