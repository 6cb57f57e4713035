package cluster

import (
	"cmp"
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

// Ring is an immutable placement table built from one member set (the
// serving members: alive and not draining). The hot path (OwnerOf) reads a
// slot or a map: no locks, no allocation.
//
// Two orders live here. The partition table (consistent's bounded loads)
// names the ring owner of every key: what an input without a recorded
// owner uses. The candidate order of a key is consistent's GetClosestN:
// the partition owner, then the members that follow it on the cycle of
// member-name hashes. Live streams are placed on one of the first few
// candidates by load (fsm.Place), and the node after a stream's owner on
// that cycle is its standby and stands in when the owner is gone.
type Ring struct {
	members []Member
	index   map[string]int32 // name -> index into members
	owner   []int32          // partition -> index into members
	// cycle is members by name hash (consistent's GetClosestN order);
	// cycleHash the hashes, ascending; cyclePos a member's place in it.
	cycle     []int32
	cycleHash []uint64
	cyclePos  []int32
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
func NewRing(members []Member) *Ring {
	if len(members) == 0 {
		return &Ring{}
	}
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	index := make(map[string]int32, len(members))
	for i, m := range members {
		index[m.Name] = int32(i)
	}
	r := &Ring{members: members, index: index, owner: placePartitions(members, -1, index), standby: make([]int32, ringPartitions)}
	r.buildCycle()
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

// buildCycle orders the members by the hash of their name, as consistent's
// GetClosestN does (ring_test checks that the two agree).
func (r *Ring) buildCycle() {
	r.cycle = make([]int32, len(r.members))
	r.cycleHash = make([]uint64, len(r.members))
	r.cyclePos = make([]int32, len(r.members))
	for i := range r.members {
		r.cycle[i] = int32(i)
	}
	slices.SortFunc(r.cycle, func(a, b int32) int {
		return cmp.Compare(xxhash.Sum64String(r.members[a].Name), xxhash.Sum64String(r.members[b].Name))
	})
	for pos, i := range r.cycle {
		r.cycleHash[pos] = xxhash.Sum64String(r.members[i].Name)
		r.cyclePos[i] = int32(pos)
	}
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
func (r *Ring) locate(key string) (Member, bool) {
	if len(r.members) == 0 {
		return Member{}, false
	}
	return r.members[r.owner[xxhash.Sum64String(key)%ringPartitions]], true
}

// Members are the members the ring was built from, sorted by name.
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// Candidates lists the first k members of key's candidate order
// (consistent's GetClosestN, fewer when the ring is smaller): where a new
// stream of input key may be placed, best first by the ring.
func (r *Ring) Candidates(key string, k int) []Member {
	if len(r.members) == 0 {
		return nil
	}
	k = min(k, len(r.members))
	out := make([]Member, 0, k)
	pos := int(r.cyclePos[r.owner[xxhash.Sum64String(key)%ringPartitions]])
	for i := range k {
		out = append(out, r.members[r.cycle[(pos+i)%len(r.cycle)]])
	}
	return out
}

// after returns the index of the first member after name on the cycle,
// skipping name itself: for a member of the ring, the next one; for a
// name that is not on it (dead, draining), the one that now follows where
// it was, since removing a member leaves the others' order unchanged.
func (r *Ring) after(name string) int32 {
	if i, ok := r.index[name]; ok {
		return r.cycle[(int(r.cyclePos[i])+1)%len(r.cycle)]
	}
	h := xxhash.Sum64String(name)
	pos, _ := slices.BinarySearch(r.cycleHash, h)
	for pos < len(r.cycleHash) && r.cycleHash[pos] == h {
		pos++ // a hash collision with a member: go past it
	}
	return r.cycle[pos%len(r.cycle)]
}

// OwnerOf resolves who produces input key now. recorded is the owner the
// replicated state chose ("" for none: the ring's owner then). A recorded
// owner on the ring owns it; one that is not (dead, left, draining) is
// stood in for by the next member after it on the cycle: its standby,
// which holds its copy. Every node resolves the same way from the same
// member set, so none has to ask.
func (r *Ring) OwnerOf(key, recorded string) (Member, bool) {
	if len(r.members) == 0 {
		return Member{}, false
	}
	if recorded == "" {
		return r.locate(key)
	}
	if i, ok := r.index[recorded]; ok {
		return r.members[i], true
	}
	return r.members[r.after(recorded)], true
}

// StandbyOf is the member that would produce input key if its owner left:
// where the owner copies its output. With a recorded owner it is the next
// member after the owner on the cycle, the candidate after it; without
// one, whoever owns the key's partition once the owner is gone. False with
// fewer than two members.
func (r *Ring) StandbyOf(key, recorded string) (Member, bool) {
	if len(r.members) < 2 {
		return Member{}, false
	}
	if recorded == "" {
		s := r.standby[xxhash.Sum64String(key)%ringPartitions]
		if s < 0 {
			return Member{}, false
		}
		return r.members[s], true
	}
	owner, _ := r.OwnerOf(key, recorded)
	return r.members[r.after(owner.Name)], true
}

// Ring is the placement table of the serving members now.
func (c *Cluster) Ring() *Ring { return c.ring.Load() }

// Owner returns the member that owns key on the ring of alive members, or
// false when no member is alive. Safe for heavy concurrent use. A live
// stream's owner is OwnerOf with the owner its session records.
func (c *Cluster) Owner(key string) (Member, bool) {
	return c.ring.Load().locate(key)
}

// OwnerOf is Ring.OwnerOf on the current ring.
func (c *Cluster) OwnerOf(key, recorded string) (Member, bool) {
	return c.ring.Load().OwnerOf(key, recorded)
}

// StandbyOf is Ring.StandbyOf on the current ring.
func (c *Cluster) StandbyOf(key, recorded string) (Member, bool) {
	return c.ring.Load().StandbyOf(key, recorded)
}

// Standby returns the member that would own key if its owner (the ring's,
// no recorded one) left: where the owner replicates its output. False with
// fewer than two members.
func (c *Cluster) Standby(key string) (Member, bool) {
	return c.ring.Load().StandbyOf(key, "")
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
