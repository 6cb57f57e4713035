package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Roles is who is who when a fault starts.
type Roles struct {
	Leader    int
	Followers []int
	N         int
}

// majority is the smallest quorum of n voters.
func majority(n int) int { return n/2 + 1 }

// Fault is one thing that goes wrong. Victims are the nodes cut off from (or
// lost to) the majority: the checks expect the others to keep working.
type Fault struct {
	Name string
	// What, for the report.
	What string
	// Victims picks the nodes the fault hits.
	Victims func(r Roles) []int
	// Minority: the victims cannot reach the majority, and must refuse
	// writes (503) instead of acknowledging them.
	Minority bool
	// Inject starts the fault; the returned heal ends it.
	Inject func(ctx context.Context, s *Suite, victims []int) (heal func(context.Context) error, err error)
	// NeedsNetem marks faults that need latency: the kernel's sch_netem,
	// or the NFQUEUE delayer (delay.go) where it has none.
	NeedsNetem bool
	// LeaderLost: the old leader cannot lead through the fault, so the
	// majority must elect another.
	LeaderLost bool
	// Duration overrides the run's fault duration.
	Duration time.Duration
}

// Faults is the full suite, in the order it runs.
func Faults() []Fault {
	return []Fault{
		{
			Name: "minority-partition", What: "a minority of followers cut off from the rest (both directions)",
			Victims: func(r Roles) []int { return r.Followers[:r.N-majority(r.N)] }, Minority: true,
			Inject: partition,
		},
		{
			Name: "majority-partition", What: "the leader and followers up to a minority cut off: the majority has no leader and must elect one",
			Victims: func(r Roles) []int {
				return append([]int{r.Leader}, r.Followers[:r.N-majority(r.N)-1]...)
			}, Minority: true, LeaderLost: true,
			Inject: partition,
		},
		isolatedLeader(),
		{
			Name: "one-way-partition", What: "the leader's packets to the other nodes are dropped; theirs still reach it",
			Victims: leaderOnly, Minority: true, LeaderLost: true,
			Inject: oneWay,
		},
		{
			Name: "latency-loss", What: "200 ms more latency (tc netem, or an NFQUEUE delayer without sch_netem) and 5 % packet loss (nftables) on every node's link",
			Victims: func(Roles) []int { return nil }, NeedsNetem: true,
			Inject: latencyLoss,
		},
		frozenLeader(),
		{
			Name: "full-disk", What: "the leader's data dir (a tmpfs) filled to the last byte, for 40 s so that a raft snapshot (every 30 s) falls in it",
			Victims: leaderOnly,
			// bolt reuses the pages its file already has, so a full disk
			// bites only when raft needs new space: a snapshot, or a log
			// that outgrows its free pages.
			Duration: 40 * time.Second,
			Inject: func(ctx context.Context, s *Suite, v []int) (func(context.Context) error, error) {
				p := s.Procs[v[0]]
				if err := p.FillDisk(); err != nil {
					return nil, err
				}
				return func(context.Context) error { return p.FreeDisk() }, nil
			},
		},
	}
}

// ShortFaults is the subset plain `go test` runs.
func ShortFaults() []Fault { return []Fault{isolatedLeader(), frozenLeader()} }

func leaderOnly(r Roles) []int { return []int{r.Leader} }

func isolatedLeader() Fault {
	return Fault{
		Name: "isolated-leader", What: "the leader cut off from every other node (both directions); clients still reach it",
		Victims: leaderOnly, Minority: true, LeaderLost: true, Inject: partition,
	}
}

func frozenLeader() Fault {
	return Fault{
		Name: "frozen-leader", What: "the leader's process stopped (SIGSTOP) and thawed (SIGCONT)",
		Victims: leaderOnly, LeaderLost: true,
		Inject: func(ctx context.Context, s *Suite, v []int) (func(context.Context) error, error) {
			p := s.Procs[v[0]]
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				return nil, err
			}
			return func(context.Context) error { return p.Signal(syscall.SIGCONT) }, nil
		},
	}
}

// others is every node not in set.
func others(n int, set []int) []int {
	in := map[int]bool{}
	for _, i := range set {
		in[i] = true
	}
	var out []int
	for i := range n {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

// partition drops every packet between the victims and the other nodes, in
// both directions, on both sides. The client's address is never blocked.
func partition(ctx context.Context, s *Suite, victims []int) (func(context.Context) error, error) {
	rest := others(len(s.Procs), victims)
	rules := map[int][]string{}
	for _, v := range victims {
		for _, o := range rest {
			rules[v] = append(rules[v], dropBoth(nodeIP(o))...)
			rules[o] = append(rules[o], dropBoth(nodeIP(v))...)
		}
	}
	return s.nftRules(ctx, rules)
}

// oneWay drops what the victims send to the other nodes, on both ends:
// whatever the others send still arrives.
func oneWay(ctx context.Context, s *Suite, victims []int) (func(context.Context) error, error) {
	rest := others(len(s.Procs), victims)
	rules := map[int][]string{}
	for _, v := range victims {
		for _, o := range rest {
			rules[v] = append(rules[v], "add rule inet "+nftTable+" out ip daddr "+nodeIP(o)+" drop")
			rules[o] = append(rules[o], "add rule inet "+nftTable+" in ip saddr "+nodeIP(v)+" drop")
		}
	}
	return s.nftRules(ctx, rules)
}

func dropBoth(ip string) []string {
	return []string{
		"add rule inet " + nftTable + " in ip saddr " + ip + " drop",
		"add rule inet " + nftTable + " out ip daddr " + ip + " drop",
	}
}

// latency is what latencyLoss adds to every packet a node sends.
const latency = 200 * time.Millisecond

// latencyLoss delays every packet a node sends by 200 ms (netem on eth0,
// or the NFQUEUE delayer on a kernel without sch_netem) and drops 5 % of
// what it sends and receives (nftables numgen), on every node: node to node
// that is 400 ms more round trip and about 10 % loss per round trip.
func latencyLoss(ctx context.Context, s *Suite, _ []int) (func(context.Context) error, error) {
	rules := map[int][]string{}
	for i := range s.Procs {
		rules[i] = []string{
			"add rule inet " + nftTable + " in iifname eth0 numgen random mod 100 < 5 drop",
			"add rule inet " + nftTable + " out oifname eth0 numgen random mod 100 < 5 drop",
		}
	}
	healNft, err := s.nftRules(ctx, rules)
	if err != nil {
		return nil, err
	}
	if s.netemErr != nil {
		if s.delayErr != nil {
			// Loss only: the caller has said so in the report (and failed
			// the test where the suite is required).
			return healNft, nil
		}
		var nss []string
		for _, p := range s.Procs {
			nss = append(nss, p.NS)
		}
		dl, err := StartDelay(ctx, nss, latency)
		if err != nil {
			_ = healNft(ctx)
			return nil, err
		}
		return func(ctx context.Context) error {
			err := dl.Stop(ctx)
			s.delayHeld.Store(dl.Held())
			return errors.Join(err, healNft(ctx))
		}, nil
	}
	for _, p := range s.Procs {
		if err := runIn(ctx, p.NS, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", latency.String()); err != nil {
			_ = healNft(ctx)
			s.clearQdiscs(ctx)
			return nil, err
		}
	}
	return func(ctx context.Context) error {
		s.clearQdiscs(ctx)
		return healNft(ctx)
	}, nil
}

func (s *Suite) clearQdiscs(ctx context.Context) {
	for _, p := range s.Procs {
		_ = runIn(ctx, p.NS, "tc", "qdisc", "del", "dev", "eth0", "root")
	}
}

// nftRules loads a table with an input and an output chain and the given
// rules into each node's namespace, in one nft transaction per node; heal
// deletes the tables.
func (s *Suite) nftRules(ctx context.Context, rules map[int][]string) (func(context.Context) error, error) {
	heal := func(ctx context.Context) error {
		var errs []string
		for i := range rules {
			if err := runIn(ctx, s.Procs[i].NS, "nft", "delete", "table", "inet", nftTable); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("heal: %s", strings.Join(errs, "; "))
		}
		return nil
	}
	for i, rs := range rules {
		script := strings.Join(append([]string{
			"add table inet " + nftTable,
			"add chain inet " + nftTable + " in { type filter hook input priority 0; policy accept; }",
			"add chain inet " + nftTable + " out { type filter hook output priority 0; policy accept; }",
		}, rs...), "\n") + "\n"
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", s.Procs[i].NS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = heal(ctx)
			return nil, fmt.Errorf("nft in %s: %w: %s\n%s", s.Procs[i].NS, err, out, script)
		}
	}
	return heal, nil
}

// netemAvailable reports whether the kernel has sch_netem: some (minimal VM
// kernels) do not, and tc then says "Specified qdisc kind is unknown".
func netemAvailable(ctx context.Context, ns string) error {
	if err := runIn(ctx, ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"); err != nil {
		return err
	}
	return runIn(ctx, ns, "tc", "qdisc", "del", "dev", "lo", "root")
}
