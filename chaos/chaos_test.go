package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestChaosShort is the subset `make test` runs: three nodes, an isolated
// leader and a frozen leader, about a minute of wall time.
func TestChaosShort(t *testing.T) {
	if os.Getenv("DIONYSIA_CHAOS") == "1" {
		t.Skip("DIONYSIA_CHAOS=1: TestChaos runs every fault instead")
	}
	if testing.Short() {
		t.Skip("chaos suite: starts real nodes and a stream; skipped with -short")
	}
	Requirements(t)
	runSuite(t, 3, ShortFaults(), Timing{
		Warm: 1 * time.Second, Fault: 8 * time.Second, Recover: 3 * time.Second,
		Checker: 20 * time.Second, Converge: 30 * time.Second,
	}, "")
}

// TestChaos is the full suite (make chaos): five nodes, every fault. With
// DIONYSIA_CHAOS_REPORT set it writes the report there.
func TestChaos(t *testing.T) {
	if os.Getenv("DIONYSIA_CHAOS") != "1" {
		t.Skip("the full chaos suite runs with DIONYSIA_CHAOS=1 (make chaos)")
	}
	Requirements(t)
	faults := Faults()
	if only := os.Getenv("DIONYSIA_CHAOS_FAULTS"); only != "" {
		// A comma-separated subset, to rerun one fault while working on it.
		faults = slices.DeleteFunc(faults, func(f Fault) bool { return !slices.Contains(strings.Split(only, ","), f.Name) })
	}
	runSuite(t, 5, faults, Timing{
		Warm: 2 * time.Second, Fault: 12 * time.Second, Recover: 4 * time.Second,
		Checker: 60 * time.Second, Converge: 60 * time.Second,
	}, os.Getenv("DIONYSIA_CHAOS_REPORT"))
}

func runSuite(t *testing.T, nodes int, faults []Fault, tm Timing, reportDir string) {
	began := time.Now()
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := Setup(t, nodes, bin)
	t.Logf("cluster of %d up after %s, %s", nodes, time.Since(began).Round(100*time.Millisecond), s.Mode())

	ctx, stopObserving := context.WithCancel(context.Background())
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		s.observe(ctx)
	}()
	t.Cleanup(func() { stopObserving(); <-observed })

	// Publish for longer than the run can last: a leaked publisher still
	// ends by itself.
	publishFor := time.Duration(len(faults)+2) * (tm.Warm + tm.Fault + tm.Recover + time.Minute)
	s.StartStream(ctx, 0, nodes-1, publishFor)
	t.Logf("stream playing after %s", time.Since(began).Round(100*time.Millisecond))

	if s.netemErr = netemAvailable(ctx, s.Net.Client); s.netemErr != nil {
		s.delayErr = delayAvailable(ctx, s.Net.Client)
	}
	var results []*FaultResult
	for i, f := range faults {
		// Every wait of a fault is bounded; stop before a fault that might
		// outlast go test's -timeout, whose panic would skip the cleanup
		// (namespaces, mounts, node processes) and the report.
		if dl, ok := t.Deadline(); ok && time.Until(dl) < tm.WorstCase(f)+30*time.Second {
			t.Errorf("%s and %d more faults not run: %s left before the test's -timeout, and one fault may take up to %s",
				f.Name, len(faults)-i-1, time.Until(dl).Round(time.Second), tm.WorstCase(f))
			for _, g := range faults[i:] {
				results = append(results, &FaultResult{Name: g.Name, What: g.What, Skipped: "out of time (go test -timeout)"})
			}
			break
		}
		var res *FaultResult
		t.Run(f.Name, func(t *testing.T) {
			defer func() {
				if res == nil { // a require failed: the row says so
					res = &FaultResult{Name: f.Name, What: f.What, Skipped: "aborted, see the test log"}
				}
			}()
			note := ""
			switch {
			case !f.NeedsNetem || s.netemErr == nil:
			case s.delayErr == nil:
				note = "200 ms latency via NFQUEUE (no sch_netem)"
				t.Log(note)
			default:
				if os.Getenv("CI") != "" || os.Getenv("DIONYSIA_REQUIRE_CHAOS") != "" {
					t.Errorf("%s needs tc netem or the NFQUEUE delayer for its latency (running it with loss only): %v; %v", f.Name, s.netemErr, s.delayErr)
				}
				note = "loss only: this kernel has no sch_netem and the NFQUEUE delayer is unavailable, so the 200 ms latency was not applied"
				t.Log(note)
			}
			started := time.Now()
			s.delayHeld.Store(0)
			res = s.RunFault(t, f, tm, publishFor)
			if n := s.delayHeld.Load(); n > 0 {
				note += fmt.Sprintf(" (%d packets held)", n)
			}
			res.Note = strings.TrimSpace(note + " " + res.Note)
			t.Logf("%s: %d writes, %d acked, %d failed, %d unknown, %d lost; linearizable %s; new leader %s; writes back %s; stream %v (stall %.1fs); converged in %s, porcupine %s; %s",
				f.Name, res.Attempted, res.Acked, res.Failed, res.Unknown, res.Lost, res.Linearizable,
				secs(res.NewLeader, "kept", "never"), secs(res.WritesBack, "never failed", "not back"),
				res.Stream.Playable, res.Stream.LongestStall.Seconds(), res.Recovered.Round(100*time.Millisecond), res.CheckTime.Round(time.Millisecond), time.Since(started).Round(100*time.Millisecond))
			for _, h := range res.Health {
				t.Logf("%s after the checks: %s", f.Name, h)
			}
			for _, v := range res.Violations {
				t.Errorf("%s: %s", f.Name, v)
			}
		})
		if res != nil {
			results = append(results, res)
		}
	}
	took := time.Since(began)
	runNote := "Nodes in " + s.Mode() + "."
	t.Logf("chaos report:\n%s", Markdown(results, nodes, took, runNote))
	if reportDir != "" {
		path, err := WriteReport(reportDir, results, nodes, took, runNote)
		if err != nil {
			t.Error(err)
		} else {
			t.Logf("report written to %s", path)
		}
	}
}
