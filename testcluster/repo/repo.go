// Package repo finds the files `make deps` puts into the repository (bin/
// binaries and player scripts) for tests and benchmarks. It imports nothing
// of the project, so every test helper package can use it.
package repo

import (
	"os"
	"path/filepath"
)

// File finds a file `make deps` puts into the repository: the path in the
// environment variable when that file exists, else rel in the nearest
// directory upward from the working directory, up to the module root.
func File(env, rel string) (string, bool) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
	}
	return "", false
}
