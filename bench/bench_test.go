package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/testcluster"
)

// TestBench runs the benchmark suite. It only runs with DIONYSIA_BENCH=1
// (`make bench` sets it), so `go test ./...` stays fast. ROW selects rows
// (comma-separated; empty = all), BENCH_OUT the results dir (default
// results/), BENCH_BUDGET the suite's time budget (default 20m).
func TestBench(t *testing.T) {
	if os.Getenv("DIONYSIA_BENCH") != "1" {
		t.Skip("benchmark suite: run `make bench` (or DIONYSIA_BENCH=1 go test ./bench -run TestBench -timeout 25m)")
	}
	testcluster.Media(t)
	rows, err := selectRows(os.Getenv("ROW"))
	if err != nil {
		t.Fatal(err)
	}
	budget := 20 * time.Minute
	if s := os.Getenv("BENCH_BUDGET"); s != "" {
		if budget, err = time.ParseDuration(s); err != nil {
			t.Fatalf("BENCH_BUDGET: %v", err)
		}
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = "results"
	}
	work, err := os.MkdirTemp("", "dionysia-bench-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)

	started := time.Now()
	e := &Env{Work: work, Root: repoRoot(), Deadline: started.Add(budget)}
	rep := &Report{
		Date:    started.Format("2006-01-02"),
		Started: started.UTC().Truncate(time.Second),
		Machine: Machine{
			CPUs: runtime.NumCPU(), Kernel: firstLine("uname", "-sr"), GoVersion: runtime.Version(),
			FFmpeg: firstFields(firstLine("ffmpeg", "-version"), 3),
			Wrk:    firstLine("wrk", "--version"), Nginx: strings.TrimPrefix(firstLine("nginx", "-v"), "nginx version: "),
			LoadStart: load1(),
			Note:      "The machine is shared with other engineers' test runs: absolute figures are noisy, ratios of interleaved runs less so.",
		},
	}
	rep.Machine.Wrk = firstFields(rep.Machine.Wrk, 2)
	for _, d := range rows {
		rep.Selected = append(rep.Selected, d.name)
		r := &Row{Name: d.name, Title: d.title}
		rep.Rows = append(rep.Rows, r)
		runRow(t, e, d, r)
		t.Logf("row %s: %s %s (%.0f s)", r.Name, r.Status, r.Reason, r.Seconds)
	}
	rep.Seconds = round(time.Since(started).Seconds(), 0)
	rep.Machine.LoadEnd = load1()

	name := rep.Date
	if len(rows) != len(rowDefs) {
		name += "-" + strings.Join(rep.Selected, "-")
	}
	md, err := rep.Write(out, name)
	if err != nil {
		t.Fatalf("write report: %v", err)
	}
	abs, _ := filepath.Abs(md)
	t.Logf("report: %s", abs)
}

func firstFields(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}
