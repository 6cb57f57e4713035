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
	// standby is, per partition, the member that owns it once its owner
	// is gone (-1 with a single member): the owner copies its output there
	// as it goes, so the next owner continues from it.
	standby []int32
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
	index := make(map[string]int32, len(members))
	for i, m := range members {
		index[m.Name] = int32(i)
	}
	r := &ring{members: members, owner: placePartitions(members, -1, index), standby: make([]int32, ringPartitions)}
	for p := range r.standby {
		r.standby[p] = -1
	}
	// The standby of a partition is exactly who would own it if its owner
	// left: the same placement computed without that member.
	for without := range members {
		if len(members) < 2 {
			break
		}
		alt := placePartitions(members, without, index)
		for p, o := range r.owner {
			if int(o) == without {
				r.standby[p] = alt[p]
			}
		}
	}
	return r
}

// placePartitions runs consistent's bounded-load placement over members
// (leaving out the one at index skip, when not -1).
func placePartitions(members []Member, skip int, index map[string]int32) []int32 {
	cm := make([]consistent.Member, 0, len(members))
	for i, m := range members {
		if i != skip {
			cm = append(cm, ringMember(m.Name))
		}
	}
	c := consistent.New(cm, consistent.Config{
		PartitionCount:    ringPartitions,
		ReplicationFactor: ringReplication,
		Load:              ringLoad,
		Hasher:            xxHasher{},
	})
	owner := make([]int32, ringPartitions)
	for p := range ringPartitions {
		owner[p] = index[c.GetPartitionOwner(p).String()]
	}
	return owner
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

// Standby returns the member that would own key if its owner left: where
// the owner replicates its output. False with fewer than two members.
func (c *Cluster) Standby(key string) (Member, bool) {
	r := c.ring.Load()
	if len(r.members) == 0 {
		return Member{}, false
	}
	s := r.standby[xxhash.Sum64String(key)%ringPartitions]
	if s < 0 {
		return Member{}, false
	}
	return r.members[s], true
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
