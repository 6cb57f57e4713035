package cluster

import (
	"bytes"
	"context"
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

// Apply proposes cmd to the raft log and returns what the FSM returned. On
// the leader it applies directly; on a follower it forwards to the leader's
// Handler. It waits up to about 2s for a leader (bounded by ctx), and retries
// once when leadership moved between lookup and apply.
//
// A refused command comes back as a Result whose Err is the FSM's *fsm.Error;
// the error return is for failures to apply at all.
func (c *Cluster) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	exclude := ""
	for attempt := 0; ; attempt++ {
		leader, err := c.waitForLeader(ctx, exclude)
		if err != nil {
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
		if attempt == 0 && retryable(err) {
			c.log.Debug("apply: leader moved, retrying", "op", cmd.Op, "leader", leader, "err", err)
			exclude = leader
			continue
		}
		return nil, fmt.Errorf("apply %s: %w", cmd.Op, err)
	}
}

// retryable reports whether a failed apply certainly did not happen and may
// be sent to a new leader.
func retryable(err error) bool {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, errLeaderMoved) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
		return nil, err
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

// wireResult is fsm.Result on the wire between follower and leader.
type wireResult struct {
	Err     *wireError   `json:"err,omitempty"`
	Profile *fsm.Profile `json:"profile,omitempty"`
	Input   *fsm.Input   `json:"input,omitempty"`
	Session *fsm.Session `json:"session,omitempty"`
	Changed bool         `json:"changed"`
}

// wireError is a refused command (Code set) or any other error.
type wireError struct {
	Code    fsm.Code `json:"code,omitempty"`
	Field   string   `json:"field,omitempty"`
	Message string   `json:"message"`
}

func toWire(r *fsm.Result) wireResult {
	w := wireResult{Profile: r.Profile, Input: r.Input, Session: r.Session, Changed: r.Changed}
	if r.Err != nil {
		var fe *fsm.Error
		if errors.As(r.Err, &fe) {
			w.Err = &wireError{Code: fe.Code, Field: fe.Field, Message: fe.Message}
		} else {
			w.Err = &wireError{Message: r.Err.Error()}
		}
	}
	return w
}

func (w wireResult) result() *fsm.Result {
	r := &fsm.Result{Profile: w.Profile, Input: w.Input, Session: w.Session, Changed: w.Changed}
	if w.Err != nil {
		if w.Err.Code != "" {
			r.Err = &fsm.Error{Code: w.Err.Code, Field: w.Err.Field, Message: w.Err.Message}
		} else {
			r.Err = errors.New(w.Err.Message)
		}
	}
	return r
}

// errorBody is the JSON body of a failed /internal/apply.
type errorBody struct {
	Error  string `json:"error"`
	Leader string `json:"leader,omitempty"`
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
		var w wireResult
		if err := json.Unmarshal(body, &w); err != nil {
			return nil, fmt.Errorf("forward to %s: decode answer: %w", leader, err)
		}
		return w.result(), nil
	case http.StatusMisdirectedRequest:
		return nil, fmt.Errorf("forward to %s: %w", leader, errLeaderMoved)
	default:
		var eb errorBody
		msg := string(body)
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
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
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, toWire(res))
	case errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress):
		leader, _ := c.Leader()
		writeJSON(w, http.StatusMisdirectedRequest, errorBody{Error: err.Error(), Leader: leader})
	default:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
