package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// Suite is one chaos run: the namespaces, the node processes, the client,
// the live stream, and what the observers saw.
type Suite struct {
	t     testing.TB
	Net   *Net
	Procs []*Proc
	// procMu guards Procs while Setup appends to it (cleanupOnSignal reads
	// it from another goroutine).
	procMu sync.Mutex
	HTTP   *http.Client
	// Plain: the nodes run without a cluster key (DIONYSIA_CHAOS_PLAIN=1);
	// by default they run in TLS mode, as a cluster of several nodes should.
	Plain      bool
	clusterKey string
	base       string
	start      time.Time

	obsMu  sync.Mutex
	claims map[uint64]map[string]bool // term -> nodes seen as leader in it
	views  []clusterView

	// netemErr is why tc netem cannot be used here (nil: it can).
	netemErr error
	// delayErr is why the NFQUEUE delayer cannot stand in for netem (nil:
	// it can); looked at only when netemErr is set.
	delayErr error
	// delayHeld is how many packets the last NFQUEUE delay held, for the
	// report: evidence that the latency was there.
	delayHeld atomic.Uint64

	// the live stream
	input     string
	streamKey string
	pub       *testcluster.Publisher
	ingest    int
	watcher   *Watcher
}

// clusterView is one node's answer to /v1/cluster at a time.
type clusterView struct {
	At     time.Duration
	Node   int
	Leader string
	State  string
	Term   uint64
}

// Requirements skips the test (or fails it in CI) when the machine cannot
// run the suite: root, ip, nft, tc, mediamtx and ffmpeg.
func Requirements(t testing.TB) {
	t.Helper()
	strict := os.Getenv("CI") != "" || os.Getenv("DIONYSIA_REQUIRE_CHAOS") != ""
	missing := func(what string) {
		t.Helper()
		if strict {
			t.Fatalf("chaos suite: %s (required: CI or DIONYSIA_REQUIRE_CHAOS is set; scripts/deps.sh --test installs the tools)", what)
		}
		t.Skipf("chaos suite skipped: %s", what)
	}
	if os.Geteuid() != 0 {
		missing("needs root for network namespaces, nftables and tmpfs mounts")
	}
	for _, tool := range []string{"ip", "nft", "tc", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(tool + " not found")
		}
	}
	if _, err := os.Stat("/var/run/netns"); err != nil {
		// ip creates it on the first `netns add`; only its parent must exist.
		if _, err := os.Stat("/var/run"); err != nil {
			missing("no /var/run for network namespaces")
		}
	}
	testcluster.MediaMTX(t)
}

// Setup sweeps leftovers of killed runs, makes the namespaces, starts n
// nodes and waits until they form one cluster with n voters. Everything is
// torn down when the test ends, whether it passed or not.
func Setup(t testing.TB, n int, binary string) *Suite {
	t.Helper()
	if swept := Sweep(); len(swept) > 0 {
		t.Logf("swept leftovers of earlier runs: %s", strings.Join(swept, ", "))
	}
	base, err := baseDir()
	require.NoError(t, err)
	t.Cleanup(func() {
		// The logs of a failed run stay for a post-mortem; a run's sweep
		// removes them once they are keepLogs old.
		if t.Failed() {
			t.Logf("node logs kept in %s", base)
			return
		}
		_ = os.RemoveAll(base)
	})
	s := &Suite{t: t, base: base, start: time.Now(), claims: map[uint64]map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	nt, err := NewNet(ctx, n)
	t.Cleanup(func() {
		if err := nt.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	require.NoError(t, err, "make namespaces")
	s.Net = nt
	s.cleanupOnSignal()
	s.HTTP = &http.Client{Transport: &http.Transport{
		DialContext:         nt.DialContext,
		Proxy:               nil,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}}
	t.Cleanup(s.stopAll)

	if s.Plain = os.Getenv("DIONYSIA_CHAOS_PLAIN") == "1"; !s.Plain {
		s.clusterKey = newClusterKey()
	}
	for i := range n {
		spec := NodeSpec{Index: i, NS: nt.Nodes[i], Base: base, Binary: binary, MediaMTX: testcluster.MediaMTXPath(),
			ClusterKey: s.clusterKey}
		if i > 0 {
			spec.Join = []string{s.Procs[0].Gossip()}
		}
		p, err := startNode(spec)
		require.NoError(t, err)
		s.procMu.Lock()
		s.Procs = append(s.Procs, p)
		s.procMu.Unlock()
		if i == 0 {
			// The others join it: it must listen first.
			require.NoError(t, s.waitFor(30*time.Second, "n0 ready", func() error { return s.ready(ctx, 0) }))
		}
	}
	require.NoError(t, s.waitConverged(60*time.Second))
	return s
}

// cleanupOnSignal tears the run down when the test process is told to
// stop (Ctrl-C, SIGTERM): go test's cleanups do not run then, and the nodes,
// namespaces and mounts would stay until the next run's sweep.
func (s *Suite) cleanupOnSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case got := <-sig:
			fmt.Fprintf(os.Stderr, "chaos: %v: stopping the nodes and removing namespaces and mounts (logs stay in %s)\n", got, s.base)
			s.procMu.Lock()
			for _, p := range s.Procs {
				_ = p.Stop()
			}
			s.procMu.Unlock()
			_ = s.Net.Close()
			os.Exit(2)
		case <-done:
		}
	}()
	s.t.Cleanup(func() {
		signal.Stop(sig)
		close(done)
	})
}

// newClusterKey is a fresh 32-byte cluster key, base64, for one run.
func newClusterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b)
}

// Mode says how the nodes authenticate each other, for the report.
func (s *Suite) Mode() string {
	if s.Plain {
		return "plain mode (no cluster key: DIONYSIA_CHAOS_PLAIN=1)"
	}
	return "TLS mode (a cluster key made for the run: mutual TLS on the cluster port, RTSPS between nodes, encrypted gossip)"
}

// stopAll kills every node and shows the end of their logs when the test
// failed.
func (s *Suite) stopAll() {
	for _, p := range s.Procs {
		if err := p.Stop(); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	}
	if s.t.Failed() {
		for _, p := range s.Procs {
			s.t.Logf("---- last lines of %s's log (%s)\n%s", p.Name, p.LogPath, tailFile(p.LogPath, 40))
		}
	}
}

// waitFor polls cond until it returns nil or the timeout passes.
func (s *Suite) waitFor(timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		for _, p := range s.Procs {
			if gone, err := p.Exited(); gone {
				return fmt.Errorf("waiting for %s: %s exited: %v\n%s", what, p.Name, err, tailFile(p.LogPath, 30))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: last saw: %w", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Suite) getJSON(ctx context.Context, i int, path string, v any) error {
	// Generous: the list of inputs grows by hundreds per fault.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, b, err := s.do(ctx, http.MethodGet, s.Procs[i].HTTP()+path, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", s.Procs[i].Name, path, status, b)
	}
	return json.Unmarshal(b, v)
}

func (s *Suite) ready(ctx context.Context, i int) error {
	var v map[string]any
	return s.getJSON(ctx, i, "/readyz", &v)
}

// clusterInfo is the part of /v1/cluster the suite reads.
type clusterInfo struct {
	Leader string `json:"leader"`
	Raft   struct {
		State string `json:"state"`
		Term  uint64 `json:"term"`
	} `json:"raft"`
	Members []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"members"`
	Servers []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
	} `json:"raft_servers"`
}

func (s *Suite) cluster(ctx context.Context, i int) (clusterInfo, error) {
	var ci clusterInfo
	err := s.getJSON(ctx, i, "/v1/cluster", &ci)
	return ci, err
}

// waitConverged waits until every node is ready, sees every member alive,
// and agrees on one leader whose configuration has every node as a voter.
func (s *Suite) waitConverged(timeout time.Duration) error {
	ctx := context.Background()
	return s.waitFor(timeout, "a converged cluster", func() error {
		leader := ""
		for i, p := range s.Procs {
			if err := s.ready(ctx, i); err != nil {
				return err
			}
			ci, err := s.cluster(ctx, i)
			if err != nil {
				return err
			}
			alive := 0
			for _, m := range ci.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != len(s.Procs) {
				return fmt.Errorf("%s sees %d alive members", p.Name, alive)
			}
			if ci.Leader == "" || (leader != "" && ci.Leader != leader) {
				return fmt.Errorf("%s says the leader is %q (others: %q)", p.Name, ci.Leader, leader)
			}
			leader = ci.Leader
			if ci.Raft.State == "leader" {
				voters := 0
				for _, sv := range ci.Servers {
					if sv.Suffrage == "voter" {
						voters++
					}
				}
				if voters != len(s.Procs) {
					return fmt.Errorf("leader %s has %d voters", p.Name, voters)
				}
			}
		}
		return nil
	})
}

// leaderIndex is the node every node agrees leads, or an error.
func (s *Suite) leaderIndex(ctx context.Context) (int, error) {
	name := ""
	for i := range s.Procs {
		ci, err := s.cluster(ctx, i)
		if err != nil {
			return -1, err
		}
		if ci.Leader == "" || (name != "" && ci.Leader != name) {
			return -1, fmt.Errorf("no agreed leader (%q vs %q)", name, ci.Leader)
		}
		name = ci.Leader
	}
	for i, p := range s.Procs {
		if p.Name == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("leader %q is not a node", name)
}

// observe polls every node's /v1/cluster until ctx ends: who says it leads
// in which term, and whom each node follows.
func (s *Suite) observe(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.Procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				if ci, err := s.cluster(ctx, i); err == nil {
					s.record(clusterView{At: time.Since(s.start), Node: i, Leader: ci.Leader, State: ci.Raft.State, Term: ci.Raft.Term})
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (s *Suite) record(v clusterView) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.views = append(s.views, v)
	if v.State == "leader" {
		s.claim(v.Term, s.Procs[v.Node].Name)
	}
}

func (s *Suite) claim(term uint64, node string) {
	if s.claims[term] == nil {
		s.claims[term] = map[string]bool{}
	}
	s.claims[term][node] = true
}

// viewsBetween returns the observations between two times since the start.
func (s *Suite) viewsBetween(from, to time.Duration) []clusterView {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	var out []clusterView
	for _, v := range s.views {
		if v.At >= from && v.At <= to {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// doubleLeaders reads every node's raft log lines and the observations, and
// returns the terms that had more than one leader.
func (s *Suite) doubleLeaders() ([]string, error) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	for _, p := range s.Procs {
		terms, err := electionsFromLog(p.LogPath)
		if err != nil {
			return nil, err
		}
		for _, t := range terms {
			s.claim(t, p.Name)
		}
	}
	return leadersPerTerm(s.claims), nil
}

// listInputs is the names of the inputs node i lists, with their ids.
func (s *Suite) listInputs(ctx context.Context, i int) (map[string][]string, error) {
	var body struct {
		Inputs []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"inputs"`
	}
	if err := s.getJSON(ctx, i, "/v1/inputs", &body); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, in := range body.Inputs {
		out[in.Name] = append(out[in.Name], in.ID)
	}
	return out, nil
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var all []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		// Access logs and mediamtx's connection chatter drown what matters.
		if !strings.Contains(l, `"msg":"request"`) && !strings.Contains(l, `"component":"mediamtx"`) {
			all = append(all, l)
		}
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// buildBinary builds bin/dionysia into dir, unless DIONYSIA_BIN names one.
func buildBinary(dir string) (string, error) {
	if p := os.Getenv("DIONYSIA_BIN"); p != "" {
		return filepath.Abs(p)
	}
	out := filepath.Join(dir, "dionysia")
	cmd := exec.Command("go", "build", "-o", out, "github.com/dionysia/dionysia/cmd/dionysia")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
}
