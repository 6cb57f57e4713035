package node

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

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
