package node

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFailureLog(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	type event struct {
		at      time.Duration // since t0; -1 = a success
		log     bool
		count   int // failures the line stands for
		success int // for a success: the run it ends
	}
	for _, tc := range []struct {
		name   string
		events []event
	}{
		{"the first failure is logged at once", []event{{at: 0, log: true, count: 1}}},
		{"then at most one line per 30 s, with a count", []event{
			{at: 0, log: true, count: 1},
			{at: 100 * time.Millisecond},
			{at: 10 * time.Second},
			{at: 29 * time.Second},
			{at: 30 * time.Second, log: true, count: 4},
			{at: 31 * time.Second},
			{at: 61 * time.Second, log: true, count: 2},
		}},
		{"a success ends the run: the next failure is logged at once", []event{
			{at: 0, log: true, count: 1},
			{at: time.Second},
			{at: -1, success: 2},
			{at: 2 * time.Second, log: true, count: 1},
			{at: -1, success: 1},
			{at: -1, success: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := failureLog{every: pollErrorLogEvery}
			for i, e := range tc.events {
				if e.at < 0 {
					require.Equal(t, e.success, f.succeeded(), "event %d", i)
					continue
				}
				log, count := f.failed(t0.Add(e.at))
				require.Equal(t, e.log, log, "event %d", i)
				require.Equal(t, e.count, count, "event %d", i)
			}
		})
	}
}
