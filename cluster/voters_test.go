package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestPlanVoters(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	reap := 30 * time.Second
	voter := func(id string) raft.Server {
		return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":7947")}
	}
	nonvoter := func(id string) raft.Server {
		return raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":7947")}
	}
	member := func(name, state string, ago time.Duration) memberInfo {
		return memberInfo{Name: name, State: state, Since: now.Add(-ago), Meta: Meta{RaftAddr: name + ":7947"}}
	}
	alive := func(name string) memberInfo { return member(name, StateAlive, time.Minute) }
	addV := func(id string) voterAction { return voterAction{Op: opAddVoter, ID: id, Address: id + ":7947"} }
	addN := func(id string) voterAction { return voterAction{Op: opAddNonvoter, ID: id, Address: id + ":7947"} }
	rm := func(id string) voterAction { return voterAction{Op: opRemove, ID: id} }

	for _, tc := range []struct {
		name    string
		max     int
		servers []raft.Server
		members []memberInfo
		want    []voterAction
	}{
		{
			name:    "steady state does nothing",
			servers: []raft.Server{voter("a"), voter("b"), voter("c")},
			members: []memberInfo{alive("a"), alive("b"), alive("c")},
		},
		{
			name:    "new alive members become voters in name order",
			servers: []raft.Server{voter("a")},
			members: []memberInfo{alive("a"), alive("c"), alive("b")},
			want:    []voterAction{addV("b"), addV("c")},
		},
		{
			name:    "beyond max voters new members are non-voters",
			max:     3,
			servers: []raft.Server{voter("a"), voter("b")},
			members: []memberInfo{alive("a"), alive("b"), alive("c"), alive("d"), alive("e")},
			want:    []voterAction{addV("c"), addN("d"), addN("e")},
		},
		{
			name:    "member without raft address is not added",
			servers: []raft.Server{voter("a")},
			members: []memberInfo{alive("a"), {Name: "b", State: StateAlive}},
		},
		{
			name:    "left member is kept until the reap timeout (a whole-cluster stop must not shrink the configuration)",
			servers: []raft.Server{voter("a"), voter("b"), voter("c")},
			members: []memberInfo{alive("a"), member("b", StateLeft, reap-time.Second), alive("c")},
		},
		{
			name:    "left member past the reap timeout is removed",
			servers: []raft.Server{voter("a"), voter("b"), voter("c")},
			members: []memberInfo{alive("a"), member("b", StateLeft, reap), alive("c")},
			want:    []voterAction{rm("b")},
		},
		{
			name:    "dead member is kept until the reap timeout",
			servers: []raft.Server{voter("a"), voter("b"), voter("c")},
			members: []memberInfo{alive("a"), member("b", StateDead, reap-time.Second), alive("c")},
		},
		{
			name:    "dead member past the reap timeout is removed",
			servers: []raft.Server{voter("a"), voter("b"), voter("c")},
			members: []memberInfo{alive("a"), member("b", StateDead, reap), alive("c")},
			want:    []voterAction{rm("b")},
		},
		{
			name:    "self is never removed",
			servers: []raft.Server{voter("a"), voter("b")},
			members: []memberInfo{member("a", StateLeft, time.Hour), alive("b")},
		},
		{
			name:    "removed voter frees a slot: alive non-voter is promoted",
			max:     3,
			servers: []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d"), nonvoter("e")},
			members: []memberInfo{alive("a"), member("b", StateDead, time.Hour), alive("c"), alive("d"), alive("e")},
			want:    []voterAction{rm("b"), {Op: opAddVoter, ID: "d", Address: "d:7947"}},
		},
		{
			name:    "dead voter still counts until reaped: no promotion yet",
			max:     3,
			servers: []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d")},
			members: []memberInfo{alive("a"), member("b", StateDead, time.Second), alive("c"), alive("d")},
		},
		{
			name:    "dead non-voter is not promoted",
			max:     3,
			servers: []raft.Server{voter("a"), voter("b"), nonvoter("d")},
			members: []memberInfo{alive("a"), alive("b"), member("d", StateDead, time.Second)},
		},
		{
			name:    "server unknown to gossip is left alone (the caller reaps it as dead)",
			servers: []raft.Server{voter("a"), voter("ghost")},
			members: []memberInfo{alive("a")},
		},
		{
			name:    "changed raft address is re-added with the same suffrage",
			max:     2,
			servers: []raft.Server{voter("a"), voter("b"), nonvoter("c")},
			members: []memberInfo{alive("a"),
				{Name: "b", State: StateAlive, Meta: Meta{RaftAddr: "b:9999"}},
				{Name: "c", State: StateAlive, Meta: Meta{RaftAddr: "c:9999"}}},
			want: []voterAction{{Op: opAddVoter, ID: "b", Address: "b:9999"}, {Op: opAddNonvoter, ID: "c", Address: "c:9999"}},
		},
		{
			name:    "rejoined member after removal is added again",
			servers: []raft.Server{voter("a"), voter("c")},
			members: []memberInfo{alive("a"), alive("b"), alive("c")},
			want:    []voterAction{addV("b")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 5
			}
			got := planVoters("a", tc.servers, tc.members, now, max, reap)
			for i := range got {
				got[i].Reason = "" // reasons are for logs
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPlanVotersKeepsOneVoter(t *testing.T) {
	// Called with a configuration that does not contain self (cannot happen on
	// a leader), removing every voter would leave none: one is kept.
	now := time.Now()
	servers := []raft.Server{{Suffrage: raft.Voter, ID: "b", Address: "b:1"}}
	members := []memberInfo{{Name: "b", State: StateLeft, Since: now}}
	require.Empty(t, planVoters("a", servers, members, now, 5, time.Second))
}

func TestIntegrationNonvoterPromotedWhenVoterReaped(t *testing.T) {
	opts := func(join ...*testNode) []nodeOpt {
		return []nodeOpt{withReap(2 * time.Second), func(c *Config) { c.MaxVoters = 3 }, withJoin(join...)}
	}
	n1 := startNode(t, "v1", opts()...)
	waitLeader(t, 10*time.Second, n1)
	startNode(t, "v2", opts(n1)...)
	n3 := startNode(t, "v3", opts(n1)...)
	waitVoters(t, 10*time.Second, n1, "v1", "v2", "v3")
	n4 := startNode(t, "v4", opts(n1)...)
	waitFor(t, 10*time.Second, "v4 a non-voter", func() (bool, string) {
		for _, m := range n1.c.Members() {
			if m.Name == "v4" {
				return m.RaftRole == "nonvoter", m.RaftRole
			}
		}
		return false, "v4 unknown"
	})
	// The non-voter replicates the log too.
	_, err := n4.c.Apply(applyCtx(t), profileCmd("p"))
	require.NoError(t, err)
	waitFor(t, 5*time.Second, "v4 applied", func() (bool, string) { return n4.state.Profile("p") != nil, "" })

	n3.kill()
	waitVoters(t, 20*time.Second, n1, "v1", "v2", "v4")
}
