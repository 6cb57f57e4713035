package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/hashicorp/raft"

	"github.com/dionysia/dionysia/peer"
)

// ErrNoLeader is returned (wrapped) when no raft leader is known in time.
var ErrNoLeader = errors.New("no raft leader")

const (
	// ApplyPath is where forwarded writes go on every node's cluster port.
	ApplyPath = "/internal/apply"

	defaultApplyTimeout = 5 * time.Second
	leaderWait          = 2 * time.Second
	maxApplyBody        = 1 << 20
)

// errLeaderMoved means the node we sent a write to is not (or no longer) the
// leader; the write was not applied and may be retried.
var errLeaderMoved = errors.New("leader moved")

// errNotApplied marks a failed write that certainly did not apply: the
// leader said so, or the command never reached raft.
var errNotApplied = errors.New("not applied")

// errRefused marks a forwarded write the leader refused before applying
// (authentication, a malformed command): trying again would not help.
var errRefused = errors.New("refused by the leader")

// ErrOutcomeUnknown is returned (wrapped) when a write may or may not have
// been applied, and asking again under its idempotency key found no answer
// before the context ended.
var ErrOutcomeUnknown = errors.New("write outcome unknown")

// maxApplyAttempts bounds how often Apply sends one command.
const maxApplyAttempts = 5

// Apply proposes cmd to the raft log and returns what the FSM returned. On
// the leader it applies directly; on a follower it forwards to the leader's
// Handler. It waits up to about 2s for a leader (bounded by ctx).
//
// Every command goes out tagged with an idempotency key (one of its own when
// cmd has none), which makes it apply at most once however often it is
// sent. So a try whose fate is unknown (the connection broke after the
// leader got the command, leadership was lost during the apply) is sent
// again, to the same or a new leader, which answers with the result of the
// copy that applied; a try that certainly did not apply (no leader, a
// refused connection, a node that is not leader) goes to the next leader.
// An error wrapping ErrNoLeader means nothing was applied; one wrapping
// ErrOutcomeUnknown means Apply could not find out before ctx ended.
//
// A refused command comes back as a Result whose Err is the FSM's *fsm.Error;
// the error return is for failures to apply at all.
func (c *Cluster) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	if cmd.Idempotency == nil {
		cmd.Idempotency = &fsm.Idempotency{Key: "cluster/" + c.cfg.Name + "/" + rand.Text()}
	}
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	exclude := ""
	var unknown error // the last try whose fate is unknown
	for attempt := 1; ; attempt++ {
		leader, err := c.waitForLeader(ctx, exclude)
		if err != nil {
			if unknown != nil {
				return nil, fmt.Errorf("apply %s: %w: %w (then: %w)", cmd.Op, ErrOutcomeUnknown, unknown, err)
			}
			return nil, fmt.Errorf("apply %s: %w", cmd.Op, err)
		}
		var res *fsm.Result
		if leader == c.cfg.Name {
			res, err = c.applyLocal(ctx, data)
		} else {
			res, err = c.forward(ctx, leader, data)
		}
		if err == nil {
			return res, nil
		}
		exclude = ""
		switch {
		case notApplied(err):
			if unknown != nil {
				// An earlier try may still have applied: keep its fate.
				err = fmt.Errorf("%w: %w (then: %w)", ErrOutcomeUnknown, unknown, err)
			}
			if errors.Is(err, errRefused) || attempt >= maxApplyAttempts || ctx.Err() != nil {
				return nil, fmt.Errorf("apply %s: %w", cmd.Op, err)
			}
			exclude = leader
			c.log.Debug("apply: not applied, trying the next leader", "op", cmd.Op, "leader", leader, "err", err)
		default:
			unknown = err
			if attempt >= maxApplyAttempts || ctx.Err() != nil {
				return nil, fmt.Errorf("apply %s: %w: %w", cmd.Op, ErrOutcomeUnknown, err)
			}
			c.log.Info("apply: outcome unknown, asking again under the same idempotency key", "op", cmd.Op, "leader", leader, "attempt", attempt, "err", err)
			if !sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
				return nil, fmt.Errorf("apply %s: %w: %w", cmd.Op, ErrOutcomeUnknown, err)
			}
		}
	}
}

// notApplied reports whether a failed try certainly did not apply.
func notApplied(err error) bool {
	if errors.Is(err, errNotApplied) || errors.Is(err, errLeaderMoved) || errors.Is(err, errRefused) ||
		errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitForLeader returns the leader's name once one other than exclude is
// known and reachable (for a follower: its HTTP address is gossiped). It waits
// up to leaderWait, less if ctx ends first.
func (c *Cluster) waitForLeader(ctx context.Context, exclude string) (string, error) {
	deadline := time.Now().Add(leaderWait)
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		if name, ok := c.Leader(); ok && name != exclude {
			if name == c.cfg.Name || c.PeerAddr(name) != "" {
				return name, nil
			}
		}
		if time.Now().After(deadline) {
			return "", ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-t.C:
		}
	}
}

// PeerAddr is the cluster port (raft and internal HTTP) of a live member,
// "" when name is not one.
func (c *Cluster) PeerAddr(name string) string {
	c.memMu.Lock()
	defer c.memMu.Unlock()
	if m, ok := c.members[name]; ok && m.State != StateDead && m.State != StateLeft {
		return m.Meta.RaftAddr
	}
	return ""
}

// timeoutFrom is the time left before ctx's deadline, or def.
func timeoutFrom(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return def
}

// applyLocal applies an encoded command on this node, which must be leader.
func (c *Cluster) applyLocal(ctx context.Context, data []byte) (*fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotApplied, err)
	}
	f := c.raft.Apply(data, timeoutFrom(ctx, defaultApplyTimeout))
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft apply: %w", err)
	}
	switch v := f.Response().(type) {
	case *fsm.Result:
		return v, nil
	case nil:
		return &fsm.Result{}, nil
	case error:
		return nil, fmt.Errorf("fsm: %w", v)
	default:
		return nil, fmt.Errorf("fsm returned %T, want *fsm.Result", v)
	}
}

// errorBody is the JSON body of a failed /internal/apply. NotApplied tells
// the follower that the command certainly did not apply; without it, it
// may have.
type errorBody struct {
	Error      string `json:"error"`
	Leader     string `json:"leader,omitempty"`
	NotApplied bool   `json:"not_applied,omitempty"`
}

// forward sends an encoded command to the leader's Handler.
func (c *Cluster) forward(ctx context.Context, leader string, data []byte) (*fsm.Result, error) {
	addr := c.PeerAddr(leader)
	if addr == "" {
		return nil, fmt.Errorf("forward to %s: no cluster address: %w", leader, errLeaderMoved)
	}
	if !c.cfg.Peer.TLS() && c.cfg.Peer.Key(peer.InternalToken) == nil {
		return nil, fmt.Errorf("forward to %s: no internal secret yet", leader)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultApplyTimeout+time.Second)
		defer cancel()
	}
	req, err := c.cfg.Peer.NewRequest(ctx, http.MethodPost, addr, ApplyPath, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", leader, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.Peer.Client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", leader, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxApplyBody))
	if err != nil {
		return nil, fmt.Errorf("forward to %s: read answer: %w", leader, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		res, err := fsm.DecodeResult(body)
		if err != nil {
			return nil, fmt.Errorf("forward to %s: %w", leader, err)
		}
		return res, nil
	case http.StatusMisdirectedRequest:
		return nil, fmt.Errorf("forward to %s: %w", leader, errLeaderMoved)
	}
	var eb errorBody
	msg := string(body)
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, fmt.Errorf("forward to %s: %w: %s: %s", leader, errRefused, resp.Status, msg)
	case eb.NotApplied:
		return nil, fmt.Errorf("forward to %s: %w: %s: %s", leader, errNotApplied, resp.Status, msg)
	default:
		return nil, fmt.Errorf("forward to %s: %s: %s", leader, resp.Status, msg)
	}
}

// Handler serves POST /internal/apply: a follower's forwarded command,
// authenticated by Peer. Other nodes than the leader answer 421 Misdirected
// Request. The cluster port serves it already; Handler is for tests.
func (c *Cluster) Handler() http.Handler {
	return c.cfg.Peer.Authenticate(http.HandlerFunc(c.serveApply))
}

func (c *Cluster) serveApply(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxApplyBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "command too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "read command: " + err.Error()})
		return
	}
	if _, err := fsm.DecodeCommand(data); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	if !c.IsLeader() {
		leader, _ := c.Leader()
		writeJSON(w, http.StatusMisdirectedRequest, errorBody{Error: "not the raft leader", Leader: leader})
		return
	}
	res, err := c.applyLocal(r.Context(), data)
	if err == nil {
		var b []byte
		if b, err = fsm.EncodeResult(res); err == nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
	}
	switch {
	case errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress):
		leader, _ := c.Leader()
		writeJSON(w, http.StatusMisdirectedRequest, errorBody{Error: err.Error(), Leader: leader})
	default:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error(), NotApplied: notApplied(err)})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
