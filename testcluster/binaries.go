package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MediaMTX finds the mediamtx binary: $DIONYSIA_MEDIAMTX, or bin/mediamtx in
// the repository. Without it the test is skipped, except in CI (CI=true)
// where a missing binary is a failure: `make test` must have built it.
func MediaMTX(t testing.TB) string {
	t.Helper()
	if p, ok := repoFile("DIONYSIA_MEDIAMTX", "bin/mediamtx"); ok {
		return p
	}
	missing(t, "mediamtx (run `make deps`)")
	return ""
}

// repoFile finds a file `make deps` puts into the repository: the path in
// the environment variable when that file exists, else rel in the nearest
// directory upward from the working directory, up to the module root.
func repoFile(env, rel string) (string, bool) {
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

// FFmpeg finds ffmpeg and ffprobe on PATH, with the same skip rule.
func FFmpeg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		missing(t, "ffmpeg (run `make deps`)")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		missing(t, "ffprobe (run `make deps`)")
	}
	return p
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI but missing", what)
	}
	t.Skipf("%s not found; skipping", what)
}

// Media marks a test that pushes real streams: skipped with -short.
func Media(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("media integration test; skipped with -short")
	}
	MediaMTX(t)
	FFmpeg(t)
}
