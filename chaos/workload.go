package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Outcome of one operation, as a client can know it.
type Outcome string

const (
	OK Outcome = "ok"
	// Failed: certainly not applied (refused before it was sent, or a 503
	// that says no leader was known, so nothing was forwarded).
	Failed Outcome = "failed"
	// Unknown: may or may not have been applied (timeouts, 5xx after the
	// write may have reached a leader).
	Unknown Outcome = "unknown"
)

// Kind of operation.
type Kind string

const (
	// OpWrite sets a register: PATCH an input's name.
	OpWrite Kind = "write"
	// OpRead reads a register through the raft log: PATCH enabled=true
	// (always true already) goes through the leader's log like a write and
	// answers the input as of that point. Plain GETs are local reads, stale
	// on a follower by design, so they cannot be checked for
	// linearizability.
	OpRead Kind = "read"
	// OpCreate adds an input: the set every acked create must stay in.
	OpCreate Kind = "create"
)

// Op is one recorded operation.
type Op struct {
	Client int
	Node   int // the node the request was sent to
	Kind   Kind
	Key    string // register (input id); for creates the new input's id once known
	Value  string // written value, or name created
	Read   string // value read (OpRead, OK)
	Call   time.Duration
	Return time.Duration
	Status int
	Body   string
	Result Outcome
}

// History is every operation of one fault, safe for concurrent appends.
type History struct {
	mu  sync.Mutex
	ops []Op
}

func (h *History) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// opTimeout is longer than a node's own apply timeouts (2 s for a leader,
// 5 s to apply, plus forwarding), so that the client mostly sees the node's
// answer instead of its own timeout.
const opTimeout = 10 * time.Second

// do sends one API request through the client namespace.
func (s *Suite) do(ctx context.Context, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// The list of inputs runs to megabytes after a few faults.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, b, err
}

// classify turns an answer into an outcome. A refused connection never
// carried the request; a 503 saying that no leader was known comes from
// before the node forwarded anything. Every other failure may hide an
// applied write.
func classify(status int, body []byte, err error) Outcome {
	switch {
	case err == nil && status >= 200 && status < 300:
		return OK
	case err != nil && strings.Contains(err.Error(), "connection refused"):
		return Failed
	case err == nil && status >= 400 && status < 500:
		return Failed
	case err == nil && status == http.StatusServiceUnavailable && bytes.Contains(body, []byte("has no leader")):
		return Failed
	}
	return Unknown
}

// Workload drives one client per node until ctx ends: writes and log reads
// of shared registers (so that clients race on them) and creates.
type Workload struct {
	s     *Suite
	keys  []string
	hist  *History
	start time.Time
	// tag makes the names this workload creates unique across the run
	// (the doubled-write check looks for names listed twice).
	tag string
}

func (w *Workload) since() time.Duration { return time.Since(w.start) }

// run is client c's loop, sending every request to node n.
func (w *Workload) run(ctx context.Context, c, n int) {
	rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
	base := w.s.Procs[n].HTTP()
	for seq := 0; ctx.Err() == nil; seq++ {
		op := Op{Client: c, Node: n}
		var (
			method, url string
			body        any
		)
		// Mostly the registers porcupine checks; a few creates for the
		// lost-write check (each one grows every node's input list).
		switch r := rng.IntN(10); {
		case r < 5:
			op.Kind, op.Key, op.Value = OpWrite, w.keys[rng.IntN(len(w.keys))], fmt.Sprintf("c%d-%d", c, seq)
			method, url, body = http.MethodPatch, base+"/v1/inputs/"+op.Key, map[string]any{"name": op.Value}
		case r < 9:
			op.Kind, op.Key = OpRead, w.keys[rng.IntN(len(w.keys))]
			method, url, body = http.MethodPatch, base+"/v1/inputs/"+op.Key, map[string]any{"enabled": true}
		default:
			op.Kind, op.Value = OpCreate, fmt.Sprintf("chaos-%s-c%d-%d", w.tag, c, seq)
			method, url, body = http.MethodPost, base+"/v1/inputs", map[string]any{"name": op.Value}
		}
		// The operation's own deadline, not ctx's: an operation in flight
		// when the workload stops still gets its answer.
		octx, cancel := context.WithTimeout(context.Background(), opTimeout)
		op.Call = w.since()
		status, b, err := w.s.do(octx, method, url, body)
		op.Return = w.since()
		cancel()
		op.Status, op.Result = status, classify(status, b, err)
		if err != nil {
			op.Body = err.Error()
		} else {
			op.Body = string(b)
		}
		if op.Result == OK {
			var in struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			}
			if err := json.Unmarshal(b, &in); err != nil {
				op.Result, op.Body = Unknown, "undecodable answer: "+string(b)
			} else if op.Kind == OpRead {
				op.Read = in.Name
			} else if op.Kind == OpCreate {
				op.Key = in.ID
			}
		}
		w.hist.add(op)
		// Failures come back fast (no leader: 2 s at most); do not spin on
		// a node that refuses at once.
		if op.Result != OK {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// createRegisters makes k inputs named "init" through any node, trying
// each in turn until ctx ends (which the caller must bound): the registers
// of one fault.
func (s *Suite) createRegisters(ctx context.Context, k int) ([]string, error) {
	var keys []string
	var lastErr error
	for len(keys) < k {
		if lastErr != nil {
			// Every node refused the last one: do not spin on nodes that
			// refuse at once.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		for _, p := range s.Procs {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("create registers: %w (last: %v)", ctx.Err(), lastErr)
			}
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			status, b, err := s.do(octx, http.MethodPost, p.HTTP()+"/v1/inputs", map[string]any{"name": "init"})
			cancel()
			if err != nil || status != http.StatusCreated {
				lastErr = errors.Join(err, fmt.Errorf("%s: %d %s", p.Name, status, b))
				continue
			}
			var in struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(b, &in); err != nil {
				return nil, err
			}
			keys, lastErr = append(keys, in.ID), nil
			break
		}
	}
	return keys, nil
}
