package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// privateSnapshots is raft's file snapshot store with every snapshot made
// private (directories 0700, files 0600) once written: a snapshot holds
// every stream key and the bootstrap secret, and raft creates its files
// with the process umask (typically 0644 under 0755 directories).
type privateSnapshots struct {
	raft.SnapshotStore
	dir string // <raft dir>/snapshots
}

func (s *privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &privateSink{SnapshotSink: sink, dir: s.dir}, nil
}

type privateSink struct {
	raft.SnapshotSink
	dir string
}

// Close finishes the snapshot (raft renames it into place) and then makes
// it private. The store's directory is 0700 already, so the snapshot was
// never readable by others in between.
func (s *privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	_, err := FixPrivate(filepath.Join(s.dir, s.ID()))
	return err
}

// FixPrivate makes path (a file, or a directory and everything below it)
// readable by this user only: 0700 directories, 0600 files. It returns what
// it had to change; a missing path is not an error. Raft's files are fixed
// here; the node checks its data dir with it at start.
func FixPrivate(path string) ([]string, error) {
	var changed []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&^want != 0 {
			if err := os.Chmod(p, info.Mode().Perm()&want); err != nil {
				return fmt.Errorf("make %s private: %w", p, err)
			}
			changed = append(changed, p)
		}
		return nil
	})
	return changed, err
}
