package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dionysia/dionysia/cluster"
)

// secureDataDir makes the data dir private to the node's user (0700) and
// the mediamtx config 0600, warning about whatever it had to fix: the data
// dir holds raft's log and snapshots (every stream key and the bootstrap
// secret) and the mediamtx config. Raft's own files are fixed by cluster.
func secureDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700|0o700); err != nil {
			return fmt.Errorf("data dir: make it private: %w", err)
		}
		log.Warn("the data dir was open to other users; made it 0700", "dir", dir, "was", fmt.Sprintf("%#o", perm))
	}
	fixed, err := cluster.FixPrivate(filepath.Join(dir, mediamtxDir))
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if len(fixed) > 0 {
		log.Warn("mediamtx files were readable by other users; made private", "fixed", fixed)
	}
	return nil
}

// logSecurity says how this node talks to the others and, in plain mode,
// warns once the cluster has more than one member: plain mode is safe on
// one node only (ADR 0009).
func (n *Node) logSecurity(ctx context.Context) {
	mode := n.peer.Mode()
	if n.peer.TLS() {
		n.log.Info("node-to-node traffic: mutual TLS", "certificates", string(mode))
		if len(n.cfg.ClusterKey) == 0 {
			n.log.Warn("no --cluster-key: gossip is not encrypted (TLS covers raft, internal calls and media reads only)")
		}
		return
	}
	const warning = "node-to-node traffic is NOT encrypted or authenticated (no --cluster-key, no --tls-* files): " +
		"raft, internal calls and media reads travel in clear, and anyone who can reach the cluster port can join. " +
		"Give every node the same --cluster-key (`openssl rand -base64 32`)"
	if len(n.cfg.Join) > 0 {
		n.log.Warn(warning)
		return
	}
	n.goRun("security", func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			if len(n.clu.Members()) > 1 {
				n.log.Warn(warning, "members", len(n.clu.Members()))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}
