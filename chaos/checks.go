package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// regInput and regOutput are a register operation for porcupine.
type regInput struct {
	Key   string
	Write bool
	Value string
}

type regOutput struct {
	Value   string
	Unknown bool // a write whose outcome the client does not know
}

// registerModel is a set of registers, one per input, partitioned by key.
// Every register starts as "init" (the name it was created with, before the
// history begins).
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(regInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "init" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(regInput), output.(regOutput)
		if in.Write {
			return true, in.Value
		}
		return out.Value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch {
		case in.Write && out.Unknown:
			return fmt.Sprintf("write(%s, %s) -> ?", in.Key[:min(6, len(in.Key))], in.Value)
		case in.Write:
			return fmt.Sprintf("write(%s, %s)", in.Key[:min(6, len(in.Key))], in.Value)
		}
		return fmt.Sprintf("read(%s) -> %s", in.Key[:min(6, len(in.Key))], out.Value)
	},
}

// porcupineHistory turns the register operations of a history into
// porcupine's form. Writes that certainly failed are left out; writes of
// unknown outcome may take effect at any time after their call, so they
// return "at infinity"; reads that did not answer tell nothing and are left
// out.
func porcupineHistory(ops []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		switch {
		case op.Kind == OpWrite && op.Result == OK:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: regInput{op.Key, true, op.Value},
				Call: int64(op.Call), Output: regOutput{}, Return: int64(op.Return)})
		case op.Kind == OpWrite && op.Result == Unknown:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: regInput{op.Key, true, op.Value},
				Call: int64(op.Call), Output: regOutput{Unknown: true}, Return: math.MaxInt64})
		case op.Kind == OpRead && op.Result == OK:
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: regInput{Key: op.Key},
				Call: int64(op.Call), Output: regOutput{Value: op.Read}, Return: int64(op.Return)})
		}
	}
	return out
}

// checkLinearizable runs porcupine; on a violation it writes porcupine's
// visualization to vizPath.
func checkLinearizable(ops []Op, timeout time.Duration, vizPath string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(registerModel, porcupineHistory(ops), timeout)
	if res == porcupine.Illegal && vizPath != "" {
		if err := porcupine.VisualizePath(registerModel, info, vizPath); err != nil {
			return res, err
		}
	}
	return res, nil
}

// writeCounts sums a history's writes (register writes and creates).
type writeCounts struct {
	Attempted, Acked, Failed, Unknown int
}

func countWrites(ops []Op) writeCounts {
	var c writeCounts
	for _, op := range ops {
		if op.Kind == OpRead {
			continue
		}
		c.Attempted++
		switch op.Result {
		case OK:
			c.Acked++
		case Failed:
			c.Failed++
		default:
			c.Unknown++
		}
	}
	return c
}

// countCreates is how many creates of a history were acked.
func countCreates(ops []Op) int {
	n := 0
	for _, op := range ops {
		if op.Kind == OpCreate && op.Result == OK {
			n++
		}
	}
	return n
}

// lostAndDoubled compares the acked creates with the inputs a node lists:
// an acked create missing is lost; a name listed twice was applied twice.
func lostAndDoubled(ops []Op, listed map[string][]string) (lost, doubled []string) {
	for _, op := range ops {
		if op.Kind == OpCreate && op.Result == OK && len(listed[op.Value]) == 0 {
			lost = append(lost, op.Value)
		}
	}
	for name, ids := range listed {
		if strings.HasPrefix(name, "chaos-") && len(ids) > 1 {
			doubled = append(doubled, name)
		}
	}
	sort.Strings(lost)
	sort.Strings(doubled)
	return lost, doubled
}

// electionsFromLog reads raft's "election won" lines (JSON logs) of one node:
// the terms it became leader in.
func electionsFromLog(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var terms []uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"election won"`) {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			Term any    `json:"term"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Msg != "election won" {
			continue
		}
		var t uint64
		if _, err := fmt.Sscan(fmt.Sprint(rec.Term), &t); err == nil {
			terms = append(terms, t)
		}
	}
	return terms, sc.Err()
}

// leadersPerTerm merges who claimed leadership in which term, from the logs
// and the sampled /v1/cluster answers, and returns the terms with more than
// one leader.
func leadersPerTerm(claims map[uint64]map[string]bool) []string {
	var bad []string
	for term, nodes := range claims {
		if len(nodes) > 1 {
			var names []string
			for n := range nodes {
				names = append(names, n)
			}
			sort.Strings(names)
			bad = append(bad, fmt.Sprintf("term %d: %s", term, strings.Join(names, ", ")))
		}
	}
	sort.Strings(bad)
	return bad
}

// minorityAnswers checks what the victims of a partition answered while cut
// off: nothing acknowledged, and every refusal a 503 that says there is no
// leader (no quorum) or names the leader it could not reach. Only operations
// that began and ended while the fault lasted count: one still waiting for a
// leader when the network heals may rightly succeed. Timeouts are allowed: a
// node that forwards to an unreachable leader may outlast the client. So is
// the node's own way of saying so (ADR 0006): a 504 "may or may not have been
// applied", when a try went to a leader (itself, before it learned it was
// cut off, or the one it could not reach) and no answer came back.
func minorityAnswers(ops []Op, victims map[int]bool, from, to time.Duration, leaderHosts []string) []string {
	var bad []string
	for _, op := range ops {
		if !victims[op.Node] || op.Call < from || op.Return > to {
			continue
		}
		switch {
		case op.Result == OK:
			bad = append(bad, fmt.Sprintf("%s through cut-off n%d acknowledged (called %s, returned %s, fault %s–%s): %s",
				op.Kind, op.Node, op.Call.Round(time.Millisecond), op.Return.Round(time.Millisecond), from.Round(time.Millisecond), to.Round(time.Millisecond), firstLine(op.Body)))
		case op.Status == 0:
			// a client timeout: allowed
		case op.Status == http.StatusGatewayTimeout && strings.Contains(op.Body, outcomeUnknown):
			// the node's timeout: allowed
		case op.Status != 503:
			bad = append(bad, fmt.Sprintf("%s through cut-off n%d answered %d: %s", op.Kind, op.Node, op.Status, firstLine(op.Body)))
		default:
			ok := strings.Contains(op.Body, "no leader") || strings.Contains(op.Body, "no quorum")
			for _, h := range leaderHosts {
				ok = ok || strings.Contains(op.Body, h)
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s through cut-off n%d: 503 without the leader or 'no quorum': %s", op.Kind, op.Node, firstLine(op.Body)))
			}
		}
	}
	return bad
}

// outcomeUnknown is what a node's 504 says when it cannot tell whether a
// write it sent applied (httpapi's answer to cluster.ErrOutcomeUnknown).
const outcomeUnknown = "may or may not have been applied"

// firstLine shortens an answer for a violation message.
func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// countLines counts the lines of a file that contain s.
func countLines(path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(strings.ToLower(string(b)), strings.ToLower(s))
}

// sampleRefusals is one of each kind of 503 the victims answered during the
// fault (the message up to its first colon-separated detail), for the report.
func sampleRefusals(ops []Op, victims map[int]bool, from, to time.Duration) []string {
	return sampleFailures(ops, func(n int) bool { return victims[n] }, from, to)
}

// sampleFailures is one of each kind of failure (up to three) of the
// operations through the nodes pick selects that ran inside [from, to].
func sampleFailures(ops []Op, pick func(node int) bool, from, to time.Duration) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range ops {
		if !pick(op.Node) || op.Call < from || op.Return > to || op.Result == OK {
			continue
		}
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(op.Body), &body) != nil || body.Error == "" {
			body.Error = fmt.Sprintf("%d %s", op.Status, op.Body)
		}
		kind := body.Error
		if i := strings.Index(kind, "apply "); i > 0 {
			kind = kind[:i]
		}
		if !seen[kind] && len(out) < 3 {
			seen[kind] = true
			out = append(out, firstLine(body.Error))
		}
	}
	return out
}
