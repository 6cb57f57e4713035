package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/peer"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }

func requireFSMError(t *testing.T, err error) {
	t.Helper()
	var fe *fsm.Error
	require.True(t, errors.As(err, &fe), "want *fsm.Error, got %T %v", err, err)
	require.Equal(t, fsm.CodeConflict, fe.Code)
	require.NotEmpty(t, fe.Message)
}

func newUnstarted(t *testing.T) *Cluster {
	c, err := New(Config{
		Name: "u", DataDir: t.TempDir(), GossipAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		FSM: fsm.FSM{State: fsm.New(nil)}, Peer: testPeer(t, nil),
	})
	require.NoError(t, err)
	return c
}

func TestHandlerRefuses(t *testing.T) {
	c := newUnstarted(t)
	cmd, err := profileCmd("p").Encode()
	require.NoError(t, err)
	same := testPeer(t, nil)
	other, err := peer.New(peer.Config{Secret: func() string { return "another cluster's secret" }})
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		method string
		from   *peer.Peer // nil: a request without any credential
		body   []byte
		want   int
	}{
		{"get", http.MethodGet, same, nil, http.StatusMethodNotAllowed},
		{"no secret", http.MethodPost, nil, cmd, http.StatusForbidden},
		{"wrong secret", http.MethodPost, other, cmd, http.StatusForbidden},
		{"too large", http.MethodPost, same, bytes.Repeat([]byte("x"), maxApplyBody+1), http.StatusRequestEntityTooLarge},
		{"garbage", http.MethodPost, same, []byte("{"), http.StatusBadRequest},
		{"not leader", http.MethodPost, same, cmd, http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, ApplyPath, bytes.NewReader(tc.body))
			if tc.from != nil {
				pr, err := tc.from.NewRequest(context.Background(), tc.method, "x", ApplyPath, bytes.NewReader(tc.body))
				require.NoError(t, err)
				r.Header = pr.Header
			}
			w := httptest.NewRecorder()
			c.Handler().ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
		})
	}
}

func TestHandlerRefusesWhenSecretEmpty(t *testing.T) {
	c := newUnstarted(t)
	p, err := peer.New(peer.Config{})
	require.NoError(t, err)
	c.cfg.Peer = p
	r, err := p.NewRequest(context.Background(), http.MethodPost, "x", ApplyPath, strings.NewReader("{}"))
	require.NoError(t, err)
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, httptest.NewRequest(r.Method, ApplyPath, strings.NewReader("{}")))
	require.Equal(t, http.StatusForbidden, w.Code)
	r2 := httptest.NewRequest(http.MethodPost, ApplyPath, strings.NewReader("{}"))
	r2.Header = r.Header // an empty token must not match an empty secret
	w = httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r2)
	require.Equal(t, http.StatusForbidden, w.Code)
}

func TestIntegrationApplyWithoutLeaderFails(t *testing.T) {
	n1 := startNode(t, "l1")
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "l2", withJoin(n1))
	waitVoters(t, 10*time.Second, n1, "l1", "l2")
	waitLeader(t, 10*time.Second, n1, n2)

	n1.kill() // the only other voter: l2 alone has no quorum
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := n2.c.Apply(ctx, profileCmd("p"))
	took := time.Since(start)
	t.Logf("Apply without leader failed after %s: %v", took.Round(time.Millisecond), err)
	require.ErrorIs(t, err, ErrNoLeader)
	require.Less(t, took, 6*time.Second)

	// Once l2 itself knows there is no leader, the answer comes within ~2s.
	waitFor(t, 10*time.Second, "l2 has no leader", func() (bool, string) {
		name, ok := n2.c.Leader()
		return !ok, name
	})
	start = time.Now()
	_, err = n2.c.Apply(ctx, profileCmd("p"))
	require.ErrorIs(t, err, ErrNoLeader)
	require.Less(t, time.Since(start), 3*time.Second)

	// A context that ends earlier wins.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	_, err = n2.c.Apply(short, profileCmd("p"))
	require.ErrorIs(t, err, ErrNoLeader)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNotApplied(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"not leader", fmt.Errorf("raft apply: %w", raft.ErrNotLeader), true},
		{"transfer", raft.ErrLeadershipTransferInProgress, true},
		{"enqueue timeout", raft.ErrEnqueueTimeout, true},
		{"leader moved (421)", fmt.Errorf("forward: %w", errLeaderMoved), true},
		{"leader said not applied", fmt.Errorf("forward: %w: 503", errNotApplied), true},
		{"refused by the leader", fmt.Errorf("forward: %w: 403", errRefused), true},
		{"dial refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"leadership lost during the apply", raft.ErrLeadershipLost, false},
		{"raft shut down while waiting", raft.ErrRaftShutdown, false},
		{"connection reset after the request was sent", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, false},
		{"answer lost", io.ErrUnexpectedEOF, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, notApplied(tc.err))
		})
	}
}

// dropFirstAnswers makes a node apply forwarded commands but cut the
// connection instead of answering the first n of them, like a network that
// fails after the request went through.
func dropFirstAnswers(n int, dropped *atomic.Int32) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if dropped.Load() < int32(n) {
			dropped.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

// TestIntegrationForwardedWriteAppliesOnceWhenAnswerLost: the leader applies
// a follower's write but the answer never arrives; the follower cannot tell
// whether it applied, sends it again under the same idempotency key and gets
// the first result, where a plain resend would be refused as a duplicate.
func TestIntegrationForwardedWriteAppliesOnceWhenAnswerLost(t *testing.T) {
	n1 := startNode(t, "d1")
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "d2", withJoin(n1))
	waitVoters(t, 10*time.Second, n1, "d1", "d2")
	leader := waitLeader(t, 10*time.Second, n1, n2)
	follower := n2
	if leader == n2 {
		follower = n1
	}
	var dropped atomic.Int32
	f := dropFirstAnswers(2, &dropped)
	leader.intercept.Store(&f)

	res, err := follower.c.Apply(applyCtx(t), profileCmd("p"))
	require.NoError(t, err)
	require.NoError(t, res.Err, "a resend must get the first copy's result, not a conflict")
	require.Equal(t, "p", res.Profile.ID)
	require.True(t, res.Changed)
	require.Equal(t, int32(2), dropped.Load(), "both first answers were lost")
	require.Len(t, leader.state.Profiles(), 1)

	// Without a key of its own, the same command is a new write: refused.
	res, err = follower.c.Apply(applyCtx(t), profileCmd("p"))
	require.NoError(t, err)
	requireFSMError(t, res.Err)
}

// TestIntegrationForwardedWriteOutcomeUnknown: when every answer is lost,
// the follower says it does not know (not "no leader", which promises that
// nothing applied), and the write applied once.
func TestIntegrationForwardedWriteOutcomeUnknown(t *testing.T) {
	n1 := startNode(t, "u1")
	waitLeader(t, 10*time.Second, n1)
	n2 := startNode(t, "u2", withJoin(n1))
	waitVoters(t, 10*time.Second, n1, "u1", "u2")
	leader := waitLeader(t, 10*time.Second, n1, n2)
	follower := n2
	if leader == n2 {
		follower = n1
	}
	var dropped atomic.Int32
	f := dropFirstAnswers(1000, &dropped)
	leader.intercept.Store(&f)

	_, err := follower.c.Apply(applyCtx(t), profileCmd("p"))
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.NotErrorIs(t, err, ErrNoLeader)
	require.Equal(t, int32(maxApplyAttempts), dropped.Load())
	require.Len(t, leader.state.Profiles(), 1)
}
