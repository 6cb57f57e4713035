package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/peer"
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

func TestWireResultRoundTrip(t *testing.T) {
	in := &fsm.Result{
		Err:     &fsm.Error{Code: fsm.CodeNotFound, Field: "profile_id", Message: "no such profile"},
		Profile: &fsm.Profile{ID: "p", Name: "n"},
		Changed: true,
	}
	b, err := json.Marshal(toWire(in))
	require.NoError(t, err)
	var w wireResult
	require.NoError(t, json.Unmarshal(b, &w))
	out := w.result()
	require.Equal(t, in.Err, out.Err)
	require.Equal(t, in.Profile, out.Profile)
	require.True(t, out.Changed)

	b, err = json.Marshal(toWire(&fsm.Result{Err: errors.New("plain")}))
	require.NoError(t, err)
	var w2 wireResult
	require.NoError(t, json.Unmarshal(b, &w2))
	err = w2.result().Err
	require.EqualError(t, err, "plain")
	require.Empty(t, fsm.ErrorCode(err))
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
