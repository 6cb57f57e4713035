package media

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Integration tests need real binaries. Locally a missing binary skips the
// test; in CI (CI set) it fails it, so a broken `make deps` cannot hide them.
func missingBinary(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s not found; skipping (set CI=true to fail instead)", what)
	}
	t.Fatalf("%s not found (CI is set, so this is fatal)", what)
}

// mediamtxBinary finds mediamtx: $DIONYSIA_MEDIAMTX, else ../bin/mediamtx
// (what `make deps` builds).
func mediamtxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DIONYSIA_MEDIAMTX"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		missingBinary(t, "mediamtx at $DIONYSIA_MEDIAMTX="+p)
	}
	p, err := filepath.Abs(filepath.Join("..", "bin", "mediamtx"))
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		missingBinary(t, "mediamtx (../bin/mediamtx or $DIONYSIA_MEDIAMTX)")
	}
	return p
}

func requireFFmpeg(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			missingBinary(t, b)
		}
	}
}

// freeTCPAddr returns a free 127.0.0.1 TCP address.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// freeUDPAddr returns a free 127.0.0.1 UDP address (SRT).
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	return pc.LocalAddr().String()
}

// waitFor polls cond until it holds or timeout passes, then fails the test
// with what cond last reported.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// makeSource writes a small test pattern with a tone: 320x180, 30 fps,
// H.264 (a keyframe every second) + AAC in MPEG-TS.
func makeSource(t *testing.T, seconds int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "source.ts")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-shortest", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "make test source: %s", b)
	return out
}
