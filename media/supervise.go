package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Restart backoff of supervised children. A child that crashes at once is
// retried quickly at first (a transient failure such as a source that is not
// ready yet), then ever more slowly so that a broken config does not burn CPU;
// a child that ran long enough is considered healthy again.
const (
	backoffMin   = 250 * time.Millisecond
	backoffMax   = 10 * time.Second
	backoffReset = 30 * time.Second
)

// backoff computes the delay before the next restart of a child.
type backoff struct {
	min, max, reset time.Duration
	cur             time.Duration
}

func newBackoff() *backoff {
	return &backoff{min: backoffMin, max: backoffMax, reset: backoffReset}
}

// next returns the delay to wait after a child that ran for ran exited.
func (b *backoff) next(ran time.Duration) time.Duration {
	if ran >= b.reset || b.cur == 0 {
		b.cur = b.min
		return b.cur
	}
	b.cur *= 2
	if b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

// supervisor restarts a child until its context ends.
type supervisor struct {
	backoff *backoff
	// runOnce runs one instance of the child to completion. It must return
	// soon after ctx ends.
	runOnce func(ctx context.Context) error
	// onExit is called when the child exited while ctx was still alive,
	// with the delay before it is started again.
	onExit func(err error, ran, delay time.Duration)
	// onRestart is called just before a replacement child starts.
	onRestart func()
}

// run starts the child and restarts it with backoff until ctx ends.
func (s *supervisor) run(ctx context.Context) {
	if s.backoff == nil {
		s.backoff = newBackoff()
	}
	for first := true; ; first = false {
		if !first && s.onRestart != nil {
			s.onRestart()
		}
		start := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		ran := time.Since(start)
		delay := s.backoff.next(ran)
		if s.onExit != nil {
			s.onExit(err, ran, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// childCmd builds a command that is stopped with stopSig when ctx ends and
// killed (SIGKILL) if it has not exited stopTimeout later. Go's exec package
// does both for us through Cancel and WaitDelay; WaitDelay also bounds the
// copying of its output, so a grandchild holding the pipes cannot hang Wait.
func childCmd(ctx context.Context, stopSig os.Signal, stopTimeout time.Duration, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error {
		return cmd.Process.Signal(stopSig)
	}
	cmd.WaitDelay = stopTimeout
	cmd.SysProcAttr = childSysProcAttr()
	return cmd
}

// exitError describes how a child ended, for logs.
func exitError(err error) error {
	if err == nil {
		return errors.New("exited with status 0")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("exited: %s", ee.ProcessState.String())
	}
	return err
}
