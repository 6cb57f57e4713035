package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoff(t *testing.T) {
	b := newBackoff()
	var got []time.Duration
	for range 8 {
		got = append(got, b.next(time.Second))
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	require.Equal(t, 250*ms, b.next(30*time.Second), "a child that ran 30s resets the backoff")
	require.Equal(t, 500*ms, b.next(0))
}

func TestSupervisorRestartsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs, restarts := 0, 0
	var exits []error
	s := supervisor{
		backoff: &backoff{min: time.Millisecond, max: 4 * time.Millisecond, reset: time.Hour},
		runOnce: func(ctx context.Context) error {
			runs++
			if runs == 3 {
				cancel()
				<-ctx.Done()
				return ctx.Err()
			}
			return fmt.Errorf("crash %d", runs)
		},
		onRestart: func() { restarts++ },
		onExit:    func(err error, _, _ time.Duration) { exits = append(exits, err) },
	}
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("supervisor did not stop")
	}
	require.Equal(t, 3, runs)
	require.Equal(t, 2, restarts)
	require.Len(t, exits, 2, "the exit caused by cancellation is not a crash")
}

func TestChildCmdStopsAndKills(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, tc := range []struct {
		name    string
		script  string
		wantSig syscall.Signal
	}{
		{"stops on signal", "echo ready; exec sleep 30", syscall.SIGTERM},
		{"killed when it ignores the signal", "trap '' TERM; echo ready; exec sleep 30", syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cmd := childCmd(ctx, syscall.SIGTERM, 300*time.Millisecond, "sh", "-c", tc.script)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			// Signal only once the shell has set its trap.
			_, err = bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err)
			cancel()
			start := time.Now()
			err = cmd.Wait()
			require.Less(t, time.Since(start), 2*time.Second)
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "%v", err)
			ws := ee.Sys().(syscall.WaitStatus)
			require.True(t, ws.Signaled())
			require.Equal(t, tc.wantSig, ws.Signal())
		})
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := newLineWriter(func(l string) { lines = append(lines, l) })
	fmt.Fprint(w, "a\r\nb")
	fmt.Fprint(w, "c\n\nd")
	require.Equal(t, []string{"a", "bc"}, lines)
	w.Flush()
	require.Equal(t, []string{"a", "bc", "d"}, lines)
	fmt.Fprint(w, strings.Repeat("x", maxLine+10))
	require.Len(t, lines, 4, "an endless line is cut")

	tl := tailLines{n: 2}
	for _, l := range []string{"1", "2", "3"} {
		tl.add(l)
	}
	require.Equal(t, []string{"2", "3"}, tl.take())
	require.Empty(t, tl.take())
}
