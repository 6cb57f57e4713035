package chaos

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// These tests need no root: they check the checkers on made-up histories.

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestRegisterModelFindsAStaleRead(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: OpWrite, Key: "a", Value: "x", Call: ms(0), Return: ms(10), Result: OK},
		// Read entirely after the acked write, yet it sees the old value.
		{Client: 1, Kind: OpRead, Key: "a", Read: "init", Call: ms(20), Return: ms(30), Result: OK},
	}
	res, err := checkLinearizable(ops, 5*time.Second, "")
	require.NoError(t, err)
	require.Equal(t, porcupine.Illegal, res)
}

func TestRegisterModelAcceptsConcurrentAndUnknownWrites(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: OpWrite, Key: "a", Value: "x", Call: ms(0), Return: ms(50), Result: OK},
		// Concurrent with the write: either value is fine.
		{Client: 1, Kind: OpRead, Key: "a", Read: "init", Call: ms(10), Return: ms(20), Result: OK},
		// A write whose outcome is unknown may land any time after its call...
		{Client: 2, Kind: OpWrite, Key: "a", Value: "y", Call: ms(60), Return: ms(70), Result: Unknown},
		{Client: 1, Kind: OpRead, Key: "a", Read: "x", Call: ms(80), Return: ms(90), Result: OK},
		{Client: 1, Kind: OpRead, Key: "a", Read: "y", Call: ms(100), Return: ms(110), Result: OK},
		// ...and a failed one never.
		{Client: 3, Kind: OpWrite, Key: "b", Value: "z", Call: ms(0), Return: ms(5), Result: Failed},
		{Client: 3, Kind: OpRead, Key: "b", Read: "init", Call: ms(10), Return: ms(15), Result: OK},
	}
	res, err := checkLinearizable(ops, 5*time.Second, "")
	require.NoError(t, err)
	require.Equal(t, porcupine.Ok, res)

	// Once y was read, x cannot come back: no write of x follows.
	ops = append(ops, Op{Client: 1, Kind: OpRead, Key: "a", Read: "x", Call: ms(120), Return: ms(130), Result: OK})
	res, err = checkLinearizable(ops, 5*time.Second, "")
	require.NoError(t, err)
	require.Equal(t, porcupine.Illegal, res)
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		err    error
		want   Outcome
	}{
		{"ok", http.StatusOK, "{}", nil, OK},
		{"created", http.StatusCreated, "{}", nil, OK},
		{"refused connection never carried the request", 0, "", errors.New("dial tcp 10.77.0.11:8080: connect: connection refused"), Failed},
		{"validation", http.StatusBadRequest, `{"error":"bad"}`, nil, Failed},
		{"no leader known: nothing was forwarded", 503, `{"error":"unavailable: the cluster has no leader right now"}`, nil, Failed},
		{"forward failed: may have applied", 503, `{"error":"unavailable: forward to n0: context deadline exceeded"}`, nil, Unknown},
		{"client timeout", 0, "", errors.New("context deadline exceeded"), Unknown},
		{"internal error", 500, "{}", nil, Unknown},
	} {
		require.Equal(t, c.want, classify(c.status, []byte(c.body), c.err), c.name)
	}
}

func TestLostAndDoubled(t *testing.T) {
	ops := []Op{
		{Kind: OpCreate, Value: "chaos-f-c0-1", Result: OK},
		{Kind: OpCreate, Value: "chaos-f-c0-2", Result: OK},
		{Kind: OpCreate, Value: "chaos-f-c0-3", Result: Unknown}, // may be missing
	}
	listed := map[string][]string{"chaos-f-c0-1": {"id1", "id9"}, "init": {"r1", "r2"}}
	lost, doubled := lostAndDoubled(ops, listed)
	require.Equal(t, []string{"chaos-f-c0-2"}, lost)
	require.Equal(t, []string{"chaos-f-c0-1"}, doubled, "registers all named init are not doubles")
}

func TestLeadersPerTerm(t *testing.T) {
	claims := map[uint64]map[string]bool{2: {"n0": true}, 3: {"n1": true, "n2": true}}
	require.Equal(t, []string{"term 3: n1, n2"}, leadersPerTerm(claims))
}

func TestMinorityAnswers(t *testing.T) {
	victims := map[int]bool{0: true}
	ops := []Op{
		{Node: 0, Kind: OpWrite, Call: ms(100), Return: ms(200), Status: 503, Body: `{"error":"the cluster has no leader right now"}`, Result: Failed},
		{Node: 0, Kind: OpWrite, Call: ms(300), Return: ms(400), Status: 503, Body: `forward to n2: Post "http://10.77.0.13:8080/internal/apply"`, Result: Unknown},
		{Node: 0, Kind: OpWrite, Call: ms(500), Return: ms(600), Status: 0, Body: "context deadline exceeded", Result: Unknown},
		{Node: 0, Kind: OpCreate, Call: ms(500), Return: ms(700), Status: 504, Body: `{"error":"the write may or may not have been applied (no answer from the raft leader in time); ..."}`, Result: Unknown},
		{Node: 0, Kind: OpWrite, Call: ms(700), Return: ms(800), Status: 504, Body: `{"error":"gateway timeout"}`}, // bad: says nothing
		{Node: 1, Kind: OpWrite, Call: ms(500), Return: ms(600), Status: 200, Result: OK},                          // majority side
		{Node: 0, Kind: OpWrite, Call: ms(900), Return: ms(1500), Status: 200, Result: OK},                         // ended after the heal
		{Node: 0, Kind: OpRead, Call: ms(700), Return: ms(800), Status: 200, Body: `{"name":"x"}`, Result: OK},     // bad
		{Node: 0, Kind: OpWrite, Call: ms(700), Return: ms(800), Status: 503, Body: `{"error":"boom"}`},            // bad
		{Node: 0, Kind: OpWrite, Call: ms(700), Return: ms(800), Status: 500, Body: `{"error":"internal"}`},        // bad
		{Node: 0, Kind: OpWrite, Call: ms(50), Return: ms(60), Status: 200, Result: OK},                            // before the fault
	}
	bad := minorityAnswers(ops, victims, ms(80), ms(1000), []string{"n2", "10.77.0.13"})
	require.Len(t, bad, 4, "%q", bad)
}

func TestJudgeStream(t *testing.T) {
	s := func(at, seq int) StreamSample {
		return StreamSample{At: time.Duration(at) * time.Second, Seq: uint64(seq)}
	}
	// Stalls from 2 s to 7 s, then plays on.
	p := judgeStream([]StreamSample{s(0, 10), s(1, 11), s(2, 12), s(4, 0), s(7, 13), s(8, 14), s(9, 15), s(10, 16)}, 0, 10*time.Second, 4*time.Second)
	require.True(t, p.Playable)
	require.Equal(t, 5*time.Second, p.LongestStall)
	// Stops for good.
	p = judgeStream([]StreamSample{s(0, 10), s(1, 11), s(2, 12), s(5, 12), s(9, 12)}, 0, 10*time.Second, 4*time.Second)
	require.False(t, p.Playable)
	require.Equal(t, 8*time.Second, p.LongestStall)
}

func TestLeaderTimes(t *testing.T) {
	procs := []*Proc{{Name: "n0"}, {Name: "n1"}, {Name: "n2"}}
	v := func(at, node int, leader string, term uint64) clusterView {
		return clusterView{At: ms(at), Node: node, Leader: leader, Term: term}
	}
	views := []clusterView{
		v(0, 1, "n0", 2), v(0, 2, "n0", 2),
		v(1000, 1, "", 2), v(1200, 2, "", 3),
		v(2500, 1, "n2", 3), v(2600, 2, "n2", 3),
	}
	d, name, terms := leaderTimes(views, procs, []int{1, 2}, 0, true, 0)
	require.Equal(t, ms(2600), d)
	require.Equal(t, "n2", name)
	require.Equal(t, 2, terms)

	// The leader stays: not a new leader.
	d, name, _ = leaderTimes(views[:2], procs, []int{1, 2}, 0, false, 0)
	require.Equal(t, time.Duration(0), d)
	require.Equal(t, "n0", name)
}

func TestWritesBack(t *testing.T) {
	ops := []Op{
		{Node: 1, Kind: OpWrite, Call: ms(1000), Result: Unknown},
		{Node: 1, Kind: OpWrite, Call: ms(2500), Result: Failed},
		{Node: 2, Kind: OpCreate, Call: ms(4000), Result: OK},
		{Node: 2, Kind: OpWrite, Call: ms(3000), Result: OK},
		{Node: 0, Kind: OpWrite, Call: ms(5000), Result: Failed}, // the victim's failures do not count
	}
	require.Equal(t, ms(2000), writesBack(ops, map[int]bool{0: true}, ms(1000), ms(9000)))
	require.Equal(t, time.Duration(0), writesBack(ops[2:4], nil, 0, ms(9000)))

	// Two short outages far apart are two outages, not one long one.
	ops = []Op{
		{Node: 1, Kind: OpWrite, Call: ms(1000), Result: Failed},
		{Node: 1, Kind: OpWrite, Call: ms(1500), Result: OK},
		{Node: 2, Kind: OpWrite, Call: ms(20000), Result: Unknown},
		{Node: 2, Kind: OpWrite, Call: ms(20100), Result: Failed},
		{Node: 1, Kind: OpWrite, Call: ms(20800), Result: OK},
	}
	require.Equal(t, ms(800), writesBack(ops, nil, 0, ms(30000)))
	require.Equal(t, time.Duration(-1), writesBack(ops[:4], nil, 0, ms(30000)), "not back")
}

func TestCheckDisks(t *testing.T) {
	ok := NodeHealth{Node: "n0", DiskUsed: 40 << 20, DiskSize: 256 << 20}
	full := NodeHealth{Node: "n1", State: "follower", LastLog: 40012, Commit: 40012, Applied: 40012, DiskUsed: 47 << 20, DiskSize: 48 << 20}
	require.NoError(t, checkDisks([]NodeHealth{ok, {Node: "n2"}}))
	err := checkDisks([]NodeHealth{ok, full})
	require.ErrorContains(t, err, "n1 follower term 0, log 40012, commit 40012, applied 40012")
	require.ErrorContains(t, err, "disk 47.0 MB of 48.0 MB")
	require.NotContains(t, err.Error(), "n0")
}

func TestAbbreviate(t *testing.T) {
	require.Equal(t, "a b", abbreviate([]string{"a", "b"}, 2))
	require.Equal(t, "a b … and 2 more", abbreviate([]string{"a", "b", "c", "d"}, 2))
}

func TestSummarize(t *testing.T) {
	hs := []NodeHealth{
		{Node: "n0", State: "leader", LastLog: 9, Commit: 9, Applied: 9, DiskUsed: 10 << 20, DiskSize: 256 << 20},
		{Node: "n1", State: "follower", LastLog: 9, Commit: 9, Applied: 9, DiskUsed: 20 << 20, DiskSize: 256 << 20},
	}
	require.Equal(t, "every node stored, committed and applied raft index 9; data dirs 10.0 MB–20.0 MB used of 256.0 MB", summarize(hs))
	hs[1].LastLog, hs[1].Commit, hs[1].Applied = 12, 11, 11 // still replicating
	require.Equal(t, "every node had stored, committed and applied raft indexes 9–12; data dirs 10.0 MB–20.0 MB used of 256.0 MB", summarize(hs))
	hs[1].LastLog, hs[1].Commit, hs[1].Applied = 5000, 5000, 4000 // far behind
	require.Contains(t, summarize(hs), "n1 follower term 0, log 5000, commit 5000, applied 4000")
}

func TestReportStemKeepsEarlierReports(t *testing.T) {
	dir := t.TempDir()
	require.Equal(t, filepath.Join(dir, "chaos-d"), reportStem(dir, "chaos-d"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chaos-d.md"), nil, 0o644))
	require.Equal(t, filepath.Join(dir, "chaos-db"), reportStem(dir, "chaos-d"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chaos-db.json"), nil, 0o644))
	require.Equal(t, filepath.Join(dir, "chaos-dc"), reportStem(dir, "chaos-d"))
}
