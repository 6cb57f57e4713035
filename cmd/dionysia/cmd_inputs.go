package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
)

// inputJSON is an input as the API answers it: the stored fields, the
// ingest and playback links, and the state of its stream.
type inputJSON struct {
	fsm.Input
	httpapi.Links
	Live              bool       `json:"live"`
	State             string     `json:"state"`
	ReconnectDeadline *time.Time `json:"reconnect_deadline"`
}

var inputCommands = []subcommand{
	{name: "create", summary: "create an input (prints its stream key and URLs)", run: inputsCreate},
	{name: "list", summary: "list inputs", run: inputsList},
	{name: "get", args: "<id>", summary: "show one input", run: inputsGet},
	{name: "update", args: "<id>", summary: "change an input's name, profile, enabled state, playback policy, reconnect window, hot standby or overload policy", run: inputsUpdate},
	{name: "delete", args: "<id>", summary: "delete an input", run: inputsDelete},
	{name: "rotate-key", args: "<id>", summary: "give an input a new stream key; the old one stops working", run: inputsRotateKey},
}

func runInputs(args []string, stdout, stderr io.Writer) int {
	return runGroup("inputs", "Manage inputs (what encoders publish to).", inputCommands, args, stdout, stderr)
}

func inputsCreate(c *cli, args []string) error {
	name := c.fs.String("name", "", "input name (required)")
	profile := c.fs.String("profile", "", "profile id (default: the cluster's default profile)")
	disabled := c.fs.Bool("disabled", false, "create it disabled: publishes are refused until it is enabled")
	policy := c.fs.String("playback-policy", "", `"public" or "signed" (default public)`)
	window := c.fs.Int("reconnect-window", 0, "seconds the stream waits for a publisher that went away, 0-3600, 0 = off (default 30)")
	standby := c.fs.Bool("hot-standby", false, "a second node transcodes too, so a failover costs only detection time")
	overload := c.fs.String("overload", "", `when the ladder fits on no node: "refuse" the publish (default) or carry it as "passthrough"`)
	if _, err := c.parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("--name is required")
	}
	body := map[string]any{"name": *name}
	if *profile != "" {
		body["profile_id"] = *profile
	}
	if *disabled {
		body["enabled"] = false
	}
	if *policy != "" {
		body["playback_policy"] = *policy
	}
	// Only what was given: the server's default window applies otherwise,
	// and --reconnect-window 0 turns it off.
	if c.isSet("reconnect-window") {
		body["reconnect_window_seconds"] = *window
	}
	if c.isSet("hot-standby") {
		body["hot_standby"] = *standby
	}
	if *overload != "" {
		body["overload"] = *overload
	}
	return c.showInput(http.MethodPost, "/v1/inputs", body)
}

func inputsList(c *cli, args []string) error {
	var out struct {
		Inputs []inputJSON `json:"inputs"`
	}
	if done, err := c.listed(args, "/v1/inputs", &out); done || err != nil {
		return err
	}
	t := newTable(c.stdout, "ID", "NAME", "PROFILE", "ENABLED", "POLICY", "RECONNECT", "STANDBY", "STATE")
	for _, in := range out.Inputs {
		t.row(in.ID, in.Name, profileOrDefault(in.ProfileID), yesNo(in.Enabled), in.PlaybackPolicy,
			reconnectWindow(in.ReconnectWindowSeconds), yesNo(in.HotStandby), in.State)
	}
	return t.flush()
}

func inputsGet(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	return c.showInput(http.MethodGet, "/v1/inputs/"+pathID(pos[0]), nil)
}

func inputsUpdate(c *cli, args []string) error {
	name := c.fs.String("name", "", "new name")
	profile := c.fs.String("profile", "", "new profile id")
	enable := c.fs.Bool("enable", false, "enable the input")
	disable := c.fs.Bool("disable", false, "disable the input: new publishes are refused")
	policy := c.fs.String("playback-policy", "", `"public" or "signed"`)
	window := c.fs.Int("reconnect-window", 0, "seconds the stream waits for a publisher that went away, 0-3600, 0 = off")
	standby := c.fs.Bool("hot-standby", false, "a second node transcodes too (--hot-standby=false turns it off)")
	overload := c.fs.String("overload", "", `when the ladder fits on no node: "refuse" the publish or carry it as "passthrough"`)
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	if c.isSet("enable") && c.isSet("disable") {
		return usagef("--enable and --disable cannot be used together")
	}
	// PATCH: send only what was asked for.
	body := map[string]any{}
	if c.isSet("name") {
		body["name"] = *name
	}
	if c.isSet("profile") {
		body["profile_id"] = *profile
	}
	if c.isSet("enable") {
		body["enabled"] = *enable
	}
	if c.isSet("disable") {
		body["enabled"] = !*disable
	}
	if c.isSet("playback-policy") {
		body["playback_policy"] = *policy
	}
	if c.isSet("reconnect-window") {
		body["reconnect_window_seconds"] = *window
	}
	if c.isSet("hot-standby") {
		body["hot_standby"] = *standby
	}
	if c.isSet("overload") {
		body["overload"] = *overload
	}
	if len(body) == 0 {
		return usagef("nothing to change: give at least one of --name, --profile, --enable, --disable, --playback-policy, --reconnect-window, --hot-standby, --overload")
	}
	return c.showInput(http.MethodPatch, "/v1/inputs/"+pathID(pos[0]), body)
}

func inputsDelete(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	if _, err := c.client.do(c.ctx(), http.MethodDelete, "/v1/inputs/"+pathID(pos[0]), nil); err != nil {
		return err
	}
	if !c.asJSON { // 204: there is no JSON to print
		fmt.Fprintf(c.stdout, "deleted input %s\n", pos[0])
	}
	return nil
}

func inputsRotateKey(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	return c.showInput(http.MethodPost, "/v1/inputs/"+pathID(pos[0])+"/rotate-key", nil)
}

// showInput sends one request that answers an input, and prints it.
func (c *cli) showInput(method, path string, body any) error {
	var in inputJSON
	raw, err := c.client.doJSON(c.ctx(), method, path, body, &in)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	f := newFields(c.stdout)
	f.add("ID", in.ID)
	f.add("Name", in.Name)
	f.add("Profile", profileOrDefault(in.ProfileID))
	f.add("Enabled", yesNo(in.Enabled))
	f.add("Playback policy", in.PlaybackPolicy)
	f.add("Reconnect window", reconnectWindow(in.ReconnectWindowSeconds))
	f.add("Hot standby", yesNo(in.HotStandby))
	f.add("When full", in.Overload)
	f.add("State", in.State)
	if in.ReconnectDeadline != nil {
		f.add("Reconnect until", formatTime(*in.ReconnectDeadline))
	}
	f.add("Stream key", in.StreamKey)
	f.add("Ingest RTMP", in.Ingest.RTMP)
	f.add("Ingest SRT", in.Ingest.SRT)
	f.add("Ingest RTSP", in.Ingest.RTSP)
	f.add("Ingest WHIP", in.Ingest.WHIP)
	f.add("Playback HLS", in.Playback.HLS)
	f.add("Created", formatTime(in.CreatedAt))
	f.add("Updated", formatTime(in.UpdatedAt))
	return f.flush()
}

// reconnectWindow shows a window in seconds, "off" for 0.
func reconnectWindow(seconds int) string {
	if seconds == 0 {
		return "off"
	}
	return itoa(seconds) + "s"
}

func profileOrDefault(id string) string {
	if id == "" {
		return "(default)"
	}
	return id
}
