package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// FaultResult is one row of the chaos report.
type FaultResult struct {
	Name      string   `json:"name"`
	What      string   `json:"what"`
	Nodes     int      `json:"nodes"`
	Victims   []string `json:"victims"`
	OldLeader string   `json:"old_leader"`

	Attempted int `json:"writes_attempted"`
	Acked     int `json:"writes_acked"`
	Failed    int `json:"writes_failed"`
	Unknown   int `json:"writes_unknown"`
	Lost      int `json:"writes_lost"`
	Doubled   int `json:"writes_doubled"`

	Linearizable string `json:"linearizable"` // porcupine: Ok, Illegal, Unknown
	// NewLeader: from the fault's start until every majority node follows
	// one leader on the majority side; 0 = the leader stayed; -1 = never.
	NewLeader     time.Duration `json:"new_leader_ns"`
	NewLeaderName string        `json:"new_leader_name"`
	Terms         int           `json:"terms_seen"`
	// WritesBack: the longest time majority-side writes kept failing (a
	// failed write's call to the next acked one's); 0 = they never failed;
	// -1 = not back during the run.
	WritesBack    time.Duration `json:"writes_back_ns"`
	StreamChecked bool          `json:"stream_checked"`
	Stream        Playability   `json:"stream"`
	// Recovered: after the heal and the workload's end, until every node
	// was back and listed every acked write. CheckTime: porcupine's run.
	Recovered time.Duration `json:"recovered_ns"`
	CheckTime time.Duration `json:"check_ns"`
	Skipped   string        `json:"skipped,omitempty"`
	Note      string        `json:"note,omitempty"`
	// MinorityAnswers samples what cut-off nodes answered (503 bodies).
	MinorityAnswers []string `json:"minority_answers,omitempty"`
	// MajorityFailures samples why writes through the majority side failed.
	MajorityFailures []string `json:"majority_failures,omitempty"`
	Violations       []string `json:"violations,omitempty"`
	// Health is every node's raft progress and disk once the checks ended.
	Health []NodeHealth `json:"health,omitempty"`
}

func (r *FaultResult) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func secs(d time.Duration, zero, never string) string {
	switch {
	case d < 0:
		return never
	case d == 0:
		return zero
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// Markdown renders the report.
func Markdown(results []*FaultResult, nodes int, took time.Duration, note string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos report — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d nodes, each a `dionysia node` process in its own network namespace; %d CPUs, %s; whole run %.0f s. "+
		"One client per node writes through that node (register writes, register reads through the raft log, creates) during each fault. "+
		"Lost = acked creates missing after the heal; linearizable = porcupine over the register history (writes of unknown outcome may take effect any time after their call). "+
		"New leader = fault start until every majority node follows one leader on the majority side; writes back = the longest time majority-side writes kept failing, from a failed write's call to the next acked one's. "+
		"Stream = the playlist of a live stream, read through a majority node, still advances at the end of the fault.\n\n",
		nodes, runtime.NumCPU(), runtime.Version(), took.Seconds())
	if note != "" {
		b.WriteString(note + "\n\n")
	}
	b.WriteString("| fault | attempted | acked | failed | unknown | lost | doubled | linearizable | new leader | writes back | stream playable (longest stall) | terms |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |||||||||||\n", r.Name, r.Skipped)
			continue
		}
		lin := r.Linearizable
		if lin == "Ok" {
			lin = "yes"
		} else {
			lin = "**" + lin + "**"
		}
		kept := "kept (" + r.OldLeader + ")"
		if r.Terms > 1 {
			// It lost leadership and won it back.
			kept = fmt.Sprintf("%s, re-elected %d×", r.OldLeader, r.Terms-1)
		}
		leader := secs(r.NewLeader, kept, "**never**")
		if r.NewLeader > 0 {
			leader += " (" + r.NewLeaderName + ")"
		}
		stream := "not checked"
		if r.StreamChecked {
			stream = fmt.Sprintf("%s (%.1f s)", yesNo(r.Stream.Playable), r.Stream.LongestStall.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %d |\n",
			r.Name, r.Attempted, r.Acked, r.Failed, r.Unknown, r.Lost, r.Doubled, lin, leader,
			secs(r.WritesBack, "never failed", "**not back**"), stream, r.Terms)
	}
	b.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(&b, "- **%s**: %s", r.Name, r.What)
		if len(r.Victims) > 0 {
			fmt.Fprintf(&b, " (hit: %s; leader before: %s)", strings.Join(r.Victims, ", "), r.OldLeader)
		}
		b.WriteString(".")
		if r.Note != "" {
			b.WriteString(" " + strings.TrimSuffix(r.Note, ".") + ".")
		}
		if len(r.Health) > 0 {
			b.WriteString(" After the checks: " + summarize(r.Health) + ".")
		}
		for _, a := range r.MinorityAnswers {
			fmt.Fprintf(&b, "\n  - a cut-off node answered 503 `%s`", a)
		}
		for _, a := range r.MajorityFailures {
			fmt.Fprintf(&b, "\n  - a majority-side operation failed: `%s`", a)
		}
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "\n  - violation: %s", v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// WriteReport writes the report as dir/chaos-<date>.md and .json, or
// chaos-<date>b, c, ... when that day has a report already: a rerun keeps
// the reports it is compared with.
func WriteReport(dir string, results []*FaultResult, nodes int, took time.Duration, note string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stem := reportStem(dir, "chaos-"+time.Now().UTC().Format("2006-01-02"))
	md := stem + ".md"
	if err := os.WriteFile(md, []byte(Markdown(results, nodes, took, note)), 0o644); err != nil {
		return "", err
	}
	j, err := json.MarshalIndent(map[string]any{"nodes": nodes, "seconds": took.Seconds(), "faults": results}, "", "  ")
	if err != nil {
		return "", err
	}
	return md, os.WriteFile(stem+".json", j, 0o644)
}

// reportStem is dir/name, or dir/name followed by the first letter from b
// on that no .md or .json file has yet.
func reportStem(dir, name string) string {
	taken := func(stem string) bool {
		for _, ext := range []string{".md", ".json"} {
			if _, err := os.Stat(stem + ext); err == nil {
				return true
			}
		}
		return false
	}
	stem := filepath.Join(dir, name)
	for c := 'b'; taken(stem) && c <= 'z'; c++ {
		stem = filepath.Join(dir, name+string(c))
	}
	return stem
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
