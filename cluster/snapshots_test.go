package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestFixPrivate(t *testing.T) {
	cases := []struct {
		name    string
		dirMode os.FileMode
		mode    os.FileMode
		changed int
	}{
		{"world readable", 0o755, 0o644, 2},
		{"group readable file", 0o700, 0o640, 1},
		{"private already", 0o700, 0o600, 0},
		{"stricter kept", 0o700, 0o400, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			require.NoError(t, os.Mkdir(dir, 0o700))
			f := filepath.Join(dir, "raft.db")
			require.NoError(t, os.WriteFile(f, []byte("secret"), 0o600))
			require.NoError(t, os.Chmod(f, tc.mode))
			require.NoError(t, os.Chmod(dir, tc.dirMode))
			changed, err := FixPrivate(dir)
			require.NoError(t, err)
			require.Len(t, changed, tc.changed)
			fi, err := os.Stat(f)
			require.NoError(t, err)
			require.Zero(t, fi.Mode().Perm()&0o077, "file still open to others: %v", fi.Mode())
			require.Equal(t, tc.mode&0o700, fi.Mode().Perm()&0o700, "owner bits changed")
			di, err := os.Stat(dir)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
		})
	}
	changed, err := FixPrivate(filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, err)
	require.Empty(t, changed)
}

// TestSnapshotsArePrivate: a snapshot raft writes through the store ends up
// 0600 in 0700 directories, whatever the umask made of it.
func TestSnapshotsArePrivate(t *testing.T) {
	dir := t.TempDir()
	fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLog(slog.New(slog.NewTextHandler(io.Discard, nil)), "raft"))
	require.NoError(t, err)
	store := &privateSnapshots{SnapshotStore: fs, dir: filepath.Join(dir, "snapshots")}
	_, trans := raft.NewInmemTransport("")
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, trans)
	require.NoError(t, err)
	_, err = sink.Write([]byte(`{"secret":"stream keys"}`))
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	n := 0
	require.NoError(t, filepath.Walk(filepath.Join(dir, "snapshots", sink.ID()), func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		n++
		require.Zero(t, info.Mode().Perm()&0o077, "%s is %v", p, info.Mode())
		return nil
	}))
	require.GreaterOrEqual(t, n, 3, "snapshot dir, meta.json and state.bin")
}
