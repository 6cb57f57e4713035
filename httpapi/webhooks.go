package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/dionysia/dionysia/fsm"
)

// webhookBody is the JSON for creating a webhook.
type webhookBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Secret is generated when empty.
	Secret string `json:"secret"`
}

// webhookView is a webhook as GET shows it: never its secret.
type webhookView struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

// webhookCreated is the answer to a create: the only time the secret is
// shown, like a stream key.
type webhookCreated struct {
	webhookView
	Secret string `json:"secret"`
}

func viewWebhook(w *fsm.Webhook) webhookView {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	return webhookView{ID: w.ID, URL: w.URL, Events: events, CreatedAt: w.CreatedAt}
}

// Secrets a client chooses must be long enough to resist guessing and fit
// in a header comfortably.
const (
	minSecretLen = 16
	maxSecretLen = 256
	maxURLLen    = 2048
)

// CheckHookURL validates a URL the cluster will POST to (webhooks,
// publish admission): absolute http or https with a host, no fragment.
func CheckHookURL(field, raw string) error {
	if raw == "" {
		return badRequest(field, field+" is required")
	}
	if len(raw) > maxURLLen {
		return badRequest(field, fmt.Sprintf("%s is longer than %d characters", field, maxURLLen))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return badRequest(field, field+" is not a URL: "+err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return badRequest(field, field+` must be an http:// or https:// URL`)
	}
	if u.Host == "" || u.Hostname() == "" {
		return badRequest(field, field+" has no host")
	}
	if u.Fragment != "" {
		return badRequest(field, field+" must not have a #fragment")
	}
	return nil
}

func (b webhookBody) toWebhook() (*fsm.Webhook, error) {
	w := &fsm.Webhook{URL: strings.TrimSpace(b.URL), Secret: b.Secret}
	if err := CheckHookURL("url", w.URL); err != nil {
		return nil, err
	}
	known := fsm.EventTypes()
	for i, e := range b.Events {
		field := fmt.Sprintf("events[%d]", i)
		if !slices.Contains(known, e) {
			return nil, badRequest(field, fmt.Sprintf("%s: unknown event %q (known: %s)", field, e, strings.Join(known, ", ")))
		}
		if slices.Contains(w.Events, e) {
			return nil, badRequest(field, fmt.Sprintf("%s: event %q is listed twice", field, e))
		}
		w.Events = append(w.Events, e)
	}
	switch n := len(w.Secret); {
	case n == 0:
		w.Secret = NewWebhookSecret()
	case n < minSecretLen || n > maxSecretLen:
		return nil, badRequest("secret", fmt.Sprintf("secret must be %d to %d characters (or left out to get a generated one)", minSecretLen, maxSecretLen))
	case strings.ContainsFunc(w.Secret, func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return nil, badRequest("secret", "secret must be printable ASCII without spaces")
	}
	return w, nil
}

// NewWebhookSecret returns a signing secret (160 random bits).
func NewWebhookSecret() string { return "whsec_" + randomString(20) }

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	var body webhookBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	wh, err := body.toWebhook()
	if err != nil {
		writeError(w, err)
		return
	}
	wh.ID = NewID()
	// The state machine stamps CreatedAt with the command's time: choose
	// it here, so the answer is right even before this node (a follower)
	// has applied the write.
	at := time.Now().UTC()
	res, err := a.b.Apply(r.Context(), fsm.Command{Op: fsm.OpCreateWebhook, At: at, Webhook: wh})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeError(w, err)
		return
	}
	wh.CreatedAt = at
	w.Header().Set("Location", "/v1/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, webhookCreated{webhookView: viewWebhook(wh), Secret: wh.Secret})
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	hooks := a.b.State().Webhooks()
	out := make([]webhookView, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, viewWebhook(h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

func (a *API) webhook(w http.ResponseWriter, r *http.Request) (*fsm.Webhook, bool) {
	id := mux.Vars(r)["id"]
	wh := a.b.State().Webhook(id)
	if wh == nil {
		writeError(w, notFoundErr("id", "webhook "+quote(id)+" not found"))
		return nil, false
	}
	return wh, true
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request) {
	if wh, ok := a.webhook(w, r); ok {
		writeJSON(w, http.StatusOK, viewWebhook(wh))
	}
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if _, err := a.apply(r, fsm.Command{Op: fsm.OpDeleteWebhook, ID: mux.Vars(r)["id"]}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookDeliveries lists a webhook's last attempts, newest first.
func (a *API) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	wh, ok := a.webhook(w, r)
	if !ok {
		return
	}
	l := a.b.State().WebhookAttempts(wh.ID)
	slices.Reverse(l)
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": l})
}
