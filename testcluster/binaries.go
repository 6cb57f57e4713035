package testcluster

import (
	"os"
	"os/exec"
	"testing"

	"github.com/dionysia/dionysia/testcluster/repo"
)

// MediaMTX finds the mediamtx binary: $DIONYSIA_MEDIAMTX, or bin/mediamtx in
// the repository. Without it the test is skipped, except in CI (CI=true)
// where a missing binary is a failure: `make test` must have built it.
func MediaMTX(t testing.TB) string {
	t.Helper()
	if p, ok := repo.File("DIONYSIA_MEDIAMTX", "bin/mediamtx"); ok {
		return p
	}
	missing(t, "mediamtx (run `make deps`)")
	return ""
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
