package cluster

import (
	"fmt"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

func ringOf(names ...string) *Ring {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n, State: StateAlive}
	}
	return NewRing(ms)
}

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("input-%03d", i)
	}
	return keys
}

func owners(r *Ring, keys []string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		m, ok := r.locate(k)
		if ok {
			out[k] = m.Name
		}
	}
	return out
}

func TestRingEmpty(t *testing.T) {
	_, ok := NewRing(nil).locate("x")
	require.False(t, ok)
}

func TestRingDeterministic(t *testing.T) {
	keys := testKeys(200)
	a := owners(ringOf("n1", "n2", "n3"), keys)
	b := owners(ringOf("n3", "n1", "n2"), keys) // order of discovery does not matter
	require.Equal(t, a, b)
}

func TestRingMatchesConsistentLocateKey(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	r := ringOf(names...)
	cm := []consistent.Member{ringMember("a"), ringMember("b"), ringMember("c"), ringMember("d")}
	c := consistent.New(cm, consistent.Config{PartitionCount: ringPartitions, ReplicationFactor: ringReplication, Load: ringLoad, Hasher: xxHasher{}})
	for _, k := range testKeys(500) {
		m, _ := r.locate(k)
		require.Equal(t, c.LocateKey([]byte(k)).String(), m.Name, k)
	}
}

func TestRingSpreadsKeys(t *testing.T) {
	keys := testKeys(30)
	count := map[string]int{}
	for _, o := range owners(ringOf("n1", "n2", "n3"), keys) {
		count[o]++
	}
	t.Logf("30 keys over 3 members: %v", count)
	require.Len(t, count, 3, "every member owns some keys")
}

func TestRingAddMovesPart(t *testing.T) {
	keys := testKeys(30)
	before := owners(ringOf("n1", "n2", "n3"), keys)
	after := owners(ringOf("n1", "n2", "n3", "n4"), keys)
	moved := 0
	for _, k := range keys {
		if before[k] != after[k] {
			moved++
		}
	}
	t.Logf("adding a 4th member moved %d/%d keys", moved, len(keys))
	require.Positive(t, moved)
	require.Less(t, moved, len(keys)/2)
}

func TestRingRemoveMovesThatMembersKeys(t *testing.T) {
	keys := testKeys(300)
	before := owners(ringOf("n1", "n2", "n3", "n4"), keys)
	after := owners(ringOf("n1", "n2", "n4"), keys)
	stayed, survivors, spilled := 0, 0, 0
	for _, k := range keys {
		if before[k] == "n3" {
			require.NotEqual(t, "n3", after[k])
			continue
		}
		survivors++
		if before[k] == after[k] {
			stayed++
		} else {
			spilled++
		}
	}
	t.Logf("removing n3: %d/%d keys of surviving owners stayed, %d spilled (bounded loads)", stayed, survivors, spilled)
	require.GreaterOrEqual(t, float64(stayed), 0.75*float64(survivors))
}

func TestOwnerDoesNotAllocate(t *testing.T) {
	c := &Cluster{}
	c.ring.Store(ringOf("n1", "n2", "n3"))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Owner("some-input-id"); !ok {
			t.Fatal("no owner")
		}
	})
	require.Zero(t, allocs)
}

func TestOwnedBy(t *testing.T) {
	c := &Cluster{}
	c.ring.Store(ringOf("n1", "n2", "n3"))
	keys := testKeys(30)
	got := c.OwnedBy(keys)
	total := 0
	for name, ks := range got {
		for _, k := range ks {
			m, _ := c.Owner(k)
			require.Equal(t, name, m.Name)
		}
		total += len(ks)
	}
	require.Equal(t, len(keys), total)
}

func BenchmarkOwner(b *testing.B) {
	c := &Cluster{}
	c.ring.Store(ringOf("n1", "n2", "n3", "n4", "n5"))
	keys := testKeys(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Owner(keys[i&1023])
			i++
		}
	})
}

// The standby of every key is the member that owns it once the owner
// leaves, and never the owner itself.
func TestStandbyIsTheNextOwner(t *testing.T) {
	var members []Member
	for _, n := range []string{"a", "b", "c", "d"} {
		members = append(members, Member{Name: n})
	}
	r := NewRing(members)
	for i := range 200 {
		key := fmt.Sprintf("input-%d", i)
		owner, ok := r.locate(key)
		require.True(t, ok)
		sb := r.standby[xxhash.Sum64String(key)%ringPartitions]
		require.GreaterOrEqual(t, sb, int32(0))
		standby := r.members[sb]
		require.NotEqual(t, owner.Name, standby.Name)
		var rest []Member
		for _, m := range members {
			if m.Name != owner.Name {
				rest = append(rest, m)
			}
		}
		next, ok := NewRing(rest).locate(key)
		require.True(t, ok)
		require.Equal(t, next.Name, standby.Name, "key %s", key)
	}
	single := NewRing(members[:1])
	require.Equal(t, int32(-1), single.standby[0])
}

// The candidate order is consistent's GetClosestN, partition by partition.
func TestRingCandidatesMatchGetClosestN(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	r := ringOf(names...)
	var cm []consistent.Member
	for _, n := range names {
		cm = append(cm, ringMember(n))
	}
	c := consistent.New(cm, consistent.Config{PartitionCount: ringPartitions, ReplicationFactor: ringReplication, Load: ringLoad, Hasher: xxHasher{}})
	for _, k := range testKeys(300) {
		want, err := c.GetClosestN([]byte(k), 4)
		require.NoError(t, err)
		got := r.Candidates(k, 4)
		require.Len(t, got, 4)
		for i := range want {
			require.Equal(t, want[i].String(), got[i].Name, "key %s candidate %d", k, i)
		}
		require.Equal(t, got[0].Name, owners(r, []string{k})[k], "the first candidate is the ring owner")
	}
	require.Len(t, r.Candidates("x", 10), len(names), "never more than the members")
	require.Empty(t, NewRing(nil).Candidates("x", 3))
}

func TestRingOwnerOfAndStandbyOf(t *testing.T) {
	all := []string{"a", "b", "c", "d", "e"}
	r := ringOf(all...)
	key := "input-7"
	order := r.Candidates(key, len(all))
	name := func(m Member, ok bool) string {
		require.True(t, ok)
		return m.Name
	}
	// Without a recorded owner: the ring's owner and the partition standby.
	require.Equal(t, order[0].Name, name(r.OwnerOf(key, "")))
	sb, _ := r.StandbyOf(key, "")
	require.Equal(t, sb.Name, name(r.StandbyOf(key, "")))

	for i := range order {
		rec := order[i].Name
		next := order[(i+1)%len(order)].Name
		t.Run("recorded "+rec, func(t *testing.T) {
			require.Equal(t, rec, name(r.OwnerOf(key, rec)), "a recorded owner on the ring owns it")
			require.Equal(t, next, name(r.StandbyOf(key, rec)), "the standby is the candidate after the owner")
			// The owner leaves (dies or drains): its standby stands in, on
			// every node's ring alike.
			var rest []string
			for _, n := range all {
				if n != rec {
					rest = append(rest, n)
				}
			}
			without := ringOf(rest...)
			require.Equal(t, next, name(without.OwnerOf(key, rec)))
			// and the stand-in's standby is the one after it.
			require.Equal(t, order[(i+2)%len(order)].Name, name(without.StandbyOf(key, rec)))
		})
	}
	// A recorded owner nobody has heard of still resolves, the same way on
	// every ring with the same members.
	require.Equal(t, name(r.OwnerOf(key, "zz")), name(ringOf("e", "d", "c", "b", "a").OwnerOf(key, "zz")))
	_, ok := ringOf("a").StandbyOf(key, "a")
	require.False(t, ok, "one member has no standby")
	_, ok = NewRing(nil).OwnerOf(key, "a")
	require.False(t, ok)
}
