package chaos

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// NodeHealth is one node's raft progress and data dir as the suite saw them
// at one moment: the evidence behind a missing write (did the node stop
// receiving the log, stop applying it, or run out of disk?).
type NodeHealth struct {
	Node  string `json:"node"`
	Err   string `json:"err,omitempty"` // /v1/cluster did not answer
	State string `json:"state,omitempty"`
	Term  uint64 `json:"term,omitempty"`
	// LastLog is the newest entry the node has stored, Commit the newest it
	// knows committed, Applied the newest its state machine applied.
	LastLog uint64 `json:"last_log_index"`
	Commit  uint64 `json:"commit_index"`
	Applied uint64 `json:"applied_index"`
	// LastContactMs: since the follower last heard from the leader.
	LastContactMs uint64 `json:"last_contact_ms,omitempty"`
	// Disk is the node's data dir (its own tmpfs): bytes used of size, and
	// what raft's log (raft.db) and snapshots take of it.
	DiskUsed  uint64 `json:"disk_used"`
	DiskSize  uint64 `json:"disk_size"`
	RaftDB    uint64 `json:"raft_db"`
	Snapshots uint64 `json:"snapshots"`
}

// DiskLow reports whether less than a quarter of the node's data dir is
// free: one more fault's writes, and the snapshot raft writes beside the
// two it keeps, must still fit.
func (h NodeHealth) DiskLow() bool {
	return h.DiskSize > 0 && h.DiskUsed*4 > h.DiskSize*3
}

func (h NodeHealth) String() string {
	var b strings.Builder
	b.WriteString(h.Node)
	if h.Err != "" {
		fmt.Fprintf(&b, " (no answer: %s)", h.Err)
	} else {
		fmt.Fprintf(&b, " %s term %d, log %d, commit %d, applied %d", h.State, h.Term, h.LastLog, h.Commit, h.Applied)
		if h.State == "follower" {
			fmt.Fprintf(&b, ", leader heard %d ms ago", h.LastContactMs)
		}
	}
	fmt.Fprintf(&b, "; disk %s of %s (raft.db %s, snapshots %s)", mb(h.DiskUsed), mb(h.DiskSize), mb(h.RaftDB), mb(h.Snapshots))
	return b.String()
}

func mb(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// health reads every node's raft progress and disk.
func (s *Suite) health(ctx context.Context) []NodeHealth {
	out := make([]NodeHealth, len(s.Procs))
	for i, p := range s.Procs {
		h := NodeHealth{Node: p.Name}
		var ci struct {
			Raft struct {
				State         string `json:"state"`
				Term          uint64 `json:"term"`
				LastLog       uint64 `json:"last_log_index"`
				Commit        uint64 `json:"commit_index"`
				Applied       uint64 `json:"applied_index"`
				LastContactMs uint64 `json:"last_contact_ms"`
			} `json:"raft"`
		}
		if err := s.getJSON(ctx, i, "/v1/cluster", &ci); err != nil {
			h.Err = err.Error()
		} else {
			r := ci.Raft
			h.State, h.Term, h.LastLog, h.Commit, h.Applied, h.LastContactMs = r.State, r.Term, r.LastLog, r.Commit, r.Applied, r.LastContactMs
		}
		h.DiskUsed, h.DiskSize = diskUse(p.DataDir)
		h.RaftDB = treeSize(filepath.Join(p.DataDir, "raft", "raft.db"))
		h.Snapshots = treeSize(filepath.Join(p.DataDir, "raft", "snapshots"))
		out[i] = h
	}
	return out
}

// diskUse is the used and total bytes of the file system under path.
func diskUse(path string) (used, size uint64) {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0, 0
	}
	bs := uint64(st.Bsize)
	return (st.Blocks - st.Bfree) * bs, st.Blocks * bs
}

// treeSize is the bytes of the regular files at or under path.
func treeSize(path string) uint64 {
	var n uint64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			n += uint64(info.Size())
		}
		return nil
	})
	return n
}

// checkDisks fails when a node's data dir is filling up before a fault
// that does not fill it on purpose: a node that cannot store raft entries
// falls behind for good, and every later check would blame the fault for
// what the suite's too-small disk did.
func checkDisks(hs []NodeHealth) error {
	var full []string
	for _, h := range hs {
		if h.DiskLow() {
			full = append(full, h.String())
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("data dir more than 3/4 full before the fault (the tmpfs of %s is too small for what the run wrote): %s",
			dataDirSize, strings.Join(full, "; "))
	}
	return nil
}

// summarize says in one line where the nodes' raft logs and disks stood:
// the range of their indexes when every node is within a few entries of
// the others (the cluster's own writes, sessions and placement, go on while
// the suite reads one node after the other), each node's otherwise.
func summarize(hs []NodeHealth) string {
	if len(hs) == 0 {
		return ""
	}
	const near = 16
	ok := true
	lo, hi := hs[0].Applied, hs[0].LastLog
	dlo, dhi := hs[0].DiskUsed, hs[0].DiskUsed
	for _, h := range hs {
		if h.Err != "" || h.Applied > h.Commit || h.Commit > h.LastLog {
			ok = false
		}
		lo, hi = min(lo, h.Applied), max(hi, h.LastLog)
		dlo, dhi = min(dlo, h.DiskUsed), max(dhi, h.DiskUsed)
	}
	disks := fmt.Sprintf("data dirs %s–%s used of %s", mb(dlo), mb(dhi), mb(hs[0].DiskSize))
	switch {
	case ok && lo == hi:
		return fmt.Sprintf("every node stored, committed and applied raft index %d; %s", hi, disks)
	case ok && hi-lo <= near:
		return fmt.Sprintf("every node had stored, committed and applied raft indexes %d–%d; %s", lo, hi, disks)
	}
	var each []string
	for _, h := range hs {
		each = append(each, h.String())
	}
	return strings.Join(each, "; ")
}
