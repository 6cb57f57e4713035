package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/dionysia/dionysia/fsm"
)

var profileCommands = []subcommand{
	{name: "create", summary: "create a profile from flags or --file", run: profilesCreate},
	{name: "list", summary: "list profiles (* marks the default)", run: profilesList},
	{name: "get", args: "<id>", summary: "show one profile and its renditions", run: profilesGet},
	{name: "update", args: "<id>", summary: "change a profile: the given flags (or --file) over its current values", run: profilesUpdate},
	{name: "delete", args: "<id>", summary: "delete a profile (refused while inputs use it)", run: profilesDelete},
}

func runProfiles(args []string, stdout, stderr io.Writer) int {
	return runGroup("profiles", "Manage transcoding profiles (the ABR ladder an input is encoded into).", profileCommands, args, stdout, stderr)
}

// profileWrite is the body of POST and PUT /v1/profiles: the writable fields
// only (the server refuses unknown fields).
type profileWrite struct {
	ID             string          `json:"id,omitempty"`
	Name           string          `json:"name"`
	SegmentSeconds int             `json:"segment_seconds,omitempty"`
	VideoPreset    string          `json:"video_preset,omitempty"`
	SegmentFormat  string          `json:"segment_format,omitempty"`
	Latency        string          `json:"latency,omitempty"`
	PartMs         int             `json:"part_ms,omitempty"`
	Renditions     []fsm.Rendition `json:"renditions"`
}

// profileFlags are the flags that describe a profile, shared by create and
// update.
type profileFlags struct {
	id, name, preset, format, latency, file string
	segment, partMs                         int
	renditions                              renditionsFlag
}

func (p *profileFlags) register(c *cli, withID bool) {
	if withID {
		c.fs.StringVar(&p.id, "id", "", "profile id (default: a generated one)")
	}
	c.fs.StringVar(&p.name, "name", "", "profile name")
	c.fs.IntVar(&p.segment, "segment-seconds", 0, "segment duration in seconds, 1-10 (default 2)")
	c.fs.StringVar(&p.preset, "preset", "", "x264 preset, e.g. ultrafast, veryfast (default veryfast)")
	c.fs.StringVar(&p.format, "segment-format", "", `segment format: "fmp4" (CMAF) or "ts" (default fmp4)`)
	// --format was the flag's first name; scripts may still use it.
	c.fs.StringVar(&p.format, "format", "", "same as --segment-format")
	c.fs.StringVar(&p.latency, "latency", "", `"low" (LL-HLS parts, needs fmp4) or "standard" (default low; standard with ts)`)
	c.fs.IntVar(&p.partMs, "part-ms", 0, "LL-HLS part target in milliseconds, 100-1000 (default 334)")
	c.fs.Var(&p.renditions, "rendition", "a rendition, repeatable, in ladder order:\n"+
		"name=720p,width=1280,height=720,video_kbps=2800,audio_kbps=128[,fps=30][,passthrough]")
	c.fs.StringVar(&p.file, "file", "", "read the profile from a JSON file (the API's body; flags given too override it)")
}

// apply overlays the flags that were given on base.
func (p *profileFlags) apply(c *cli, base *profileWrite) {
	if c.isSet("id") {
		base.ID = p.id
	}
	if c.isSet("name") {
		base.Name = p.name
	}
	if c.isSet("segment-seconds") {
		base.SegmentSeconds = p.segment
	}
	if c.isSet("preset") {
		base.VideoPreset = p.preset
	}
	if c.isSet("segment-format") || c.isSet("format") {
		base.SegmentFormat = p.format
	}
	if c.isSet("latency") {
		base.Latency = p.latency
	}
	if c.isSet("part-ms") {
		base.PartMs = p.partMs
	}
	if c.isSet("rendition") {
		base.Renditions = p.renditions
	}
}

func profilesCreate(c *cli, args []string) error {
	var pf profileFlags
	pf.register(c, true)
	if _, err := c.parse(args); err != nil {
		return err
	}
	var body profileWrite
	if pf.file != "" {
		fromFile, err := readProfileFile(pf.file)
		if err != nil {
			return err
		}
		body = *fromFile
	}
	pf.apply(c, &body)
	if strings.TrimSpace(body.Name) == "" {
		return usagef("--name is required (or a name in --file)")
	}
	if len(body.Renditions) == 0 {
		return usagef("at least one --rendition is required (or renditions in --file)")
	}
	return c.showProfile(http.MethodPost, "/v1/profiles", body)
}

func profilesUpdate(c *cli, args []string) error {
	var pf profileFlags
	pf.register(c, false)
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	id := pos[0]
	if pf.file == "" && countSet(c, "name", "segment-seconds", "preset", "segment-format", "format", "latency", "part-ms", "rendition") == 0 {
		return usagef("nothing to change: give --file or at least one of --name, --segment-seconds, --preset, --segment-format, --latency, --part-ms, --rendition")
	}
	var body profileWrite
	if pf.file != "" {
		fromFile, err := readProfileFile(pf.file)
		if err != nil {
			return err
		}
		if fromFile.ID != "" && fromFile.ID != id {
			return usagef("--file is profile %q, not %q", fromFile.ID, id)
		}
		body = *fromFile
	} else {
		// PUT replaces the whole profile: start from what it is now, so
		// that `--segment-seconds 4` changes only that. The effective
		// values, so that a profile stored before latency existed stays
		// standard instead of getting the create default.
		var cur fsm.Profile
		if _, err := c.client.getJSON(c.ctx(), "/v1/profiles/"+pathID(id), &cur); err != nil {
			return err
		}
		body = profileWrite{Name: cur.Name, SegmentSeconds: cur.SegmentSeconds, VideoPreset: cur.VideoPreset,
			SegmentFormat: cur.EffectiveSegmentFormat(), Latency: cur.EffectiveLatency(), PartMs: cur.EffectivePartMs(),
			Renditions: cur.Renditions}
	}
	pf.apply(c, &body)
	body.ID = ""
	return c.showProfile(http.MethodPut, "/v1/profiles/"+pathID(id), body)
}

// countSet counts how many of the named flags were given.
func countSet(c *cli, names ...string) int {
	n := 0
	for _, name := range names {
		if c.isSet(name) {
			n++
		}
	}
	return n
}

func profilesList(c *cli, args []string) error {
	var out struct {
		Profiles  []fsm.Profile `json:"profiles"`
		DefaultID string        `json:"default_profile_id"`
	}
	if done, err := c.listed(args, "/v1/profiles", &out); done || err != nil {
		return err
	}
	t := newTable(c.stdout, "ID", "NAME", "SEGMENT", "PRESET", "FORMAT", "LATENCY", "RENDITIONS", "DEFAULT")
	for _, p := range out.Profiles {
		names := make([]string, 0, len(p.Renditions))
		for _, r := range p.Renditions {
			names = append(names, r.Name)
		}
		def := ""
		if p.ID == out.DefaultID {
			def = "*"
		}
		t.row(p.ID, p.Name, itoa(p.SegmentSeconds)+"s", p.VideoPreset, p.EffectiveSegmentFormat(), p.EffectiveLatency(), strings.Join(names, ","), def)
	}
	return t.flush()
}

func profilesGet(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	return c.showProfile(http.MethodGet, "/v1/profiles/"+pathID(pos[0]), nil)
}

func profilesDelete(c *cli, args []string) error {
	pos, err := c.parse(args, "<id>")
	if err != nil {
		return err
	}
	if _, err := c.client.do(c.ctx(), http.MethodDelete, "/v1/profiles/"+pathID(pos[0]), nil); err != nil {
		return err
	}
	if !c.asJSON {
		fmt.Fprintf(c.stdout, "deleted profile %s\n", pos[0])
	}
	return nil
}

func (c *cli) showProfile(method, path string, body any) error {
	var p fsm.Profile
	raw, err := c.client.doJSON(c.ctx(), method, path, body, &p)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	f := newFields(c.stdout)
	f.add("ID", p.ID)
	f.add("Name", p.Name)
	f.add("Segment seconds", itoa(p.SegmentSeconds))
	f.add("Video preset", p.VideoPreset)
	f.add("Segment format", p.EffectiveSegmentFormat())
	f.add("Latency", p.EffectiveLatency())
	if p.EffectiveLatency() == fsm.LatencyLow {
		f.add("Part ms", itoa(p.EffectivePartMs()))
	}
	f.add("Created", formatTime(p.CreatedAt))
	f.add("Updated", formatTime(p.UpdatedAt))
	if err := f.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	t := newTable(c.stdout, "RENDITION", "WIDTH", "HEIGHT", "VIDEO KBPS", "AUDIO KBPS", "FPS", "PASSTHROUGH")
	for _, r := range p.Renditions {
		t.row(r.Name, intOrDash(r.Width), intOrDash(r.Height), intOrDash(r.VideoBitrateKbps), intOrDash(r.AudioBitrateKbps),
			intOrDash(r.FPS), yesNo(r.Passthrough))
	}
	return t.flush()
}

// readProfileFile reads a profile body from a JSON file. It accepts what
// `profiles get --json` prints (the read-only timestamps are dropped) and
// refuses unknown fields before anything is sent.
func readProfileFile(path string) (*profileWrite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--file: %v", err)
	}
	var in struct {
		profileWrite
		CreatedAt json.RawMessage `json:"created_at"`
		UpdatedAt json.RawMessage `json:"updated_at"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, usagef("--file %s: %v", path, err)
	}
	return &in.profileWrite, nil
}

// renditionsFlag collects repeated --rendition flags.
type renditionsFlag []fsm.Rendition

func (f *renditionsFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, 0, len(*f))
	for _, r := range *f {
		parts = append(parts, r.Name)
	}
	return strings.Join(parts, " ")
}

func (f *renditionsFlag) Set(s string) error {
	r, err := parseRendition(s)
	if err != nil {
		return err
	}
	*f = append(*f, r)
	return nil
}

// parseRendition reads name=720p,width=1280,height=720,video_kbps=2800,
// audio_kbps=128[,fps=30][,passthrough]. Ranges are the server's business;
// only the syntax is checked here.
func parseRendition(s string) (fsm.Rendition, error) {
	var r fsm.Rendition
	ints := map[string]*int{
		"width": &r.Width, "height": &r.Height,
		"video_kbps": &r.VideoBitrateKbps, "video_bitrate_kbps": &r.VideoBitrateKbps,
		"audio_kbps": &r.AudioBitrateKbps, "audio_bitrate_kbps": &r.AudioBitrateKbps,
		"fps": &r.FPS,
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, hasVal := strings.Cut(part, "=")
		key = strings.TrimSpace(key)
		val = strings.TrimSpace(val)
		if seen[key] {
			return r, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		switch {
		case key == "name":
			if val == "" {
				return r, fmt.Errorf("name is empty")
			}
			r.Name = val
		case key == "passthrough":
			if !hasVal {
				r.Passthrough = true
				break
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return r, fmt.Errorf("passthrough=%q: want true or false", val)
			}
			r.Passthrough = b
		case ints[key] != nil:
			n, err := strconv.Atoi(val)
			if err != nil || !hasVal {
				return r, fmt.Errorf("%s=%q: want a whole number", key, val)
			}
			*ints[key] = n
		default:
			return r, fmt.Errorf("unknown key %q (want name, width, height, video_kbps, audio_kbps, fps, passthrough)", key)
		}
	}
	if r.Name == "" {
		return r, fmt.Errorf("name=... is required")
	}
	return r, nil
}
