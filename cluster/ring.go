package cluster

import (
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Ring parameters. Every node must use the same ones: placement depends on
// them.
const (
	ringPartitions  = 271
	ringReplication = 20
	ringLoad        = 1.25
)

// ring is an immutable placement table built from one member set. The hot
// path (Owner) hashes the key and reads one slot: no locks, no allocation.
type ring struct {
	members []Member
	owner   []int32 // partition -> index into members
}

type ringMember string

func (m ringMember) String() string { return string(m) }

type xxHasher struct{}

func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// newRing places the partitions on the members with buraksezer/consistent's
// bounded loads. The result depends only on the set of names.
func newRing(members []Member) *ring {
	if len(members) == 0 {
		return &ring{}
	}
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	cm := make([]consistent.Member, len(members))
	index := make(map[string]int32, len(members))
	for i, m := range members {
		cm[i] = ringMember(m.Name)
		index[m.Name] = int32(i)
	}
	c := consistent.New(cm, consistent.Config{
		PartitionCount:    ringPartitions,
		ReplicationFactor: ringReplication,
		Load:              ringLoad,
		Hasher:            xxHasher{},
	})
	r := &ring{members: members, owner: make([]int32, ringPartitions)}
	for p := range ringPartitions {
		r.owner[p] = index[c.GetPartitionOwner(p).String()]
	}
	return r
}

// locate returns the owner of key, with consistent's partitioning
// (xxhash(key) mod partitions), without converting the key to bytes.
func (r *ring) locate(key string) (Member, bool) {
	if len(r.members) == 0 {
		return Member{}, false
	}
	return r.members[r.owner[xxhash.Sum64String(key)%ringPartitions]], true
}

// Owner returns the member that owns key on the ring of alive members, or
// false when no member is alive. Safe for heavy concurrent use.
func (c *Cluster) Owner(key string) (Member, bool) {
	return c.ring.Load().locate(key)
}

// OwnedBy groups keys by owning member name.
func (c *Cluster) OwnedBy(keys []string) map[string][]string {
	r := c.ring.Load()
	out := map[string][]string{}
	for _, k := range keys {
		if m, ok := r.locate(k); ok {
			out[m.Name] = append(out[m.Name], k)
		}
	}
	return out
}
