package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecureDataDir(t *testing.T) {
	cases := []struct {
		name      string
		dirMode   os.FileMode // 0 = the dir does not exist yet
		confMode  os.FileMode // 0 = no mediamtx config yet
		wantWarns int
	}{
		{"fresh", 0, 0, 0},
		{"left world readable", 0o755, 0o644, 2},
		{"private already", 0o700, 0o600, 0},
		{"group readable config", 0o700, 0o640, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			conf := filepath.Join(dir, mediamtxDir, "mediamtx.yml")
			if tc.dirMode != 0 {
				require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o700))
				require.NoError(t, os.Chmod(dir, tc.dirMode))
			}
			if tc.confMode != 0 {
				require.NoError(t, os.WriteFile(conf, []byte("x"), 0o600))
				require.NoError(t, os.Chmod(conf, tc.confMode))
			}
			var logs bytes.Buffer
			require.NoError(t, secureDataDir(dir, slog.New(slog.NewTextHandler(&logs, nil))))
			require.Equal(t, tc.wantWarns, bytes.Count(logs.Bytes(), []byte("level=WARN")), logs.String())
			fi, err := os.Stat(dir)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
			if tc.confMode != 0 {
				fi, err := os.Stat(conf)
				require.NoError(t, err)
				require.Zero(t, fi.Mode().Perm()&0o077)
			}
		})
	}
}
