package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// webhookJSON is a webhook as the API answers it; Secret only on create.
type webhookJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

var webhookCommands = []subcommand{
	{name: "add", summary: "subscribe a URL to events (prints the signing secret, once)", run: webhooksAdd},
	{name: "list", summary: "list webhooks", run: webhooksList},
	{name: "rm", args: "<id>", summary: "delete a webhook and its pending deliveries", run: webhooksRm},
	{name: "deliveries", args: "<id>", summary: "a webhook's last delivery attempts, newest first", run: webhooksDeliveries},
}

func runWebhooks(args []string, stdout, stderr io.Writer) int {
	return runGroup("webhooks", "Manage webhooks (signed event notifications).", webhookCommands, args, stdout, stderr)
}

func webhooksAdd(c *cli, args []string) error {
	url := c.fs.String("url", "", "http(s) URL the events are POSTed to (required)")
	events := c.fs.String("events", "", "comma-separated event types (default: all): "+strings.Join(fsm.EventTypes(), ", "))
	secret := c.fs.String("secret", "", "signing secret, 16-256 characters (default: a generated one)")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*url) == "" {
		return usagef("--url is required")
	}
	body := map[string]any{"url": *url}
	if ev := splitComma(*events); len(ev) > 0 {
		body["events"] = ev
	}
	if *secret != "" {
		body["secret"] = *secret
	}
	var w webhookJSON
	raw, err := c.client.doJSON(c.ctx(), http.MethodPost, "/v1/webhooks", body, &w)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	f := newFields(c.stdout)
	f.add("ID", w.ID)
	f.add("URL", w.URL)
	f.add("Events", eventsOrAll(w.Events))
	f.add("Secret", w.Secret+"   (shown once: verify Dionysia-Signature with it)")
	return f.flush()
}

func webhooksList(c *cli, args []string) error {
	var out struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	if done, err := c.listed(args, "/v1/webhooks", &out); done || err != nil {
		return err
	}
	t := newTable(c.stdout, "ID", "URL", "EVENTS", "CREATED")
	for _, w := range out.Webhooks {
		t.row(w.ID, w.URL, eventsOrAll(w.Events), w.CreatedAt.Local().Format(time.DateTime))
	}
	return t.flush()
}

func webhooksRm(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	if _, err := c.client.do(c.ctx(), http.MethodDelete, "/v1/webhooks/"+pathID(pos[0]), nil); err != nil {
		return err
	}
	if !c.asJSON {
		fmt.Fprintf(c.stdout, "deleted webhook %s\n", pos[0])
	}
	return nil
}

func webhooksDeliveries(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	var out struct {
		Deliveries []fsm.Attempt `json:"deliveries"`
	}
	raw, err := c.client.getJSON(c.ctx(), "/v1/webhooks/"+pathID(pos[0])+"/deliveries", &out)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	t := newTable(c.stdout, "AT", "EVENT", "EVENT ID", "ATTEMPT", "STATUS", "MS", "OUTCOME", "ERROR")
	for _, d := range out.Deliveries {
		t.row(d.At.Local().Format(time.DateTime), d.EventType, d.EventID, itoa(d.Attempt), intOrDash(d.StatusCode),
			itoa(int(d.DurationMs)), d.Outcome, d.Error)
	}
	return t.flush()
}

func eventsOrAll(ev []string) string {
	if len(ev) == 0 {
		return "all"
	}
	return strings.Join(ev, ",")
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
