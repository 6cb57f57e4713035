package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// rowFunc measures one row into r. It returns a skipError to skip.
type rowFunc func(ctx context.Context, t *testing.T, e *Env, r *Row) error

type rowDef struct {
	name   string
	title  string
	budget time.Duration // the row's own deadline
	run    rowFunc
}

// Rows in the order; `make bench ROW=<name>[,<name>]` picks some.
var rowDefs = []rowDef{
	{"transcode", "transcode cost versus hand-written ffmpeg", 5 * time.Minute, rowTranscode},
	{"publish", "RTMP publish → first playable, low latency and standard", 90 * time.Second, rowPublish},
	{"latency", "glass-to-glass at real players: LL-HLS, LL-DASH, standard HLS", 4 * time.Minute, rowLatency},
	{"failover", "owner killed → playable through a survivor", 150 * time.Second, rowFailover},
	{"continuity", "what a player sees through reconnects, kills, drains and profile changes", 8 * time.Minute, rowContinuity},
	{"routing", "segments and redirects versus nginx", 210 * time.Second, rowRouting},
	{"api", "API writes and reads on a 3-node cluster", 90 * time.Second, rowAPI},
	{"tls", "cost of mutual TLS between nodes: forwarded writes and redirects", 150 * time.Second, rowTLS},
	{"scale", "passthrough streams on a 3-node cluster, then a 4th node joins", 8 * time.Minute, rowScale},
	{"sim", "placement simulated: 100 nodes, 10 000 streams, joins, deaths, churn", 3 * time.Minute, rowSim},
	{"memory", "RSS of an idle node and per live stream", 2 * time.Minute, rowMemory},
	{"recording", "recording cost: CPU versus live only, disk per hour per rendition", 5 * time.Minute, rowRecording},
	{"webhooks", "webhook delivery latency, event → receiver", 3 * time.Minute, rowWebhooks},
	{"whip", "WHIP publish from a browser → first playable on another node", 3 * time.Minute, rowWHIP},
}

type skipError struct{ reason string }

func (s skipError) Error() string { return s.reason }

func skip(reason string) error { return skipError{reason} }

// selectRows parses ROW ("" or "all" = every row).
func selectRows(spec string) ([]rowDef, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "all" {
		return rowDefs, nil
	}
	var out []rowDef
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, d := range rowDefs {
			if d.name == name {
				out, found = append(out, d), true
			}
		}
		if !found {
			var names []string
			for _, d := range rowDefs {
				names = append(names, d.name)
			}
			return nil, fmt.Errorf("unknown row %q (rows: %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// runRow runs one row as a subtest and always leaves r with a status.
func runRow(t *testing.T, e *Env, d rowDef, r *Row) {
	if left := e.Left(); left < d.budget/2 {
		r.Status, r.Reason = "skipped", fmt.Sprintf("suite time budget: %s left, the row needs up to %s", left.Round(time.Second), d.budget)
		return
	}
	t.Run(d.name, func(t *testing.T) {
		start := time.Now()
		defer func() {
			r.Seconds = round(time.Since(start).Seconds(), 1)
			if r.Status == "" {
				// t.Fatal inside a testcluster helper ends the subtest here.
				r.Status, r.Reason = "failed", "aborted by a test helper (see the test log)"
			}
		}()
		budget := min(d.budget, e.Left())
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		err := d.run(ctx, t, e, r)
		var s skipError
		switch {
		case errors.As(err, &s):
			r.Status, r.Reason = "skipped", s.reason
		case err != nil:
			r.Status, r.Reason = "failed", err.Error()
			t.Errorf("row %s: %v", d.name, err)
		default:
			r.Status = "ok"
		}
	})
}
