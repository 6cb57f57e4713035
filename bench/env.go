package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Env is what rows share: a work dir, the generated sources and the time
// left in the suite's budget.
type Env struct {
	Work     string    // temp dir, removed when the suite ends
	Root     string    // repository root
	Deadline time.Time // the whole suite's budget

	mu      sync.Mutex
	sources map[string]string
}

// SourceFPS is the frame rate of every generated source; the latency row
// turns frame numbers into send times with it.
const SourceFPS = 30

// Source returns a generated MP4 (H.264 + AAC, 1 s GOP) of the given size and
// length: testsrc2 with a 16-block binary frame counter over its top ninth
// (see barcode.go) and a 440 Hz tone. Files are made once per suite.
func (e *Env) Source(ctx context.Context, w, h int, seconds int) (string, error) {
	key := fmt.Sprintf("%dx%d-%ds", w, h, seconds)
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.sources[key]; ok {
		return p, nil
	}
	out := filepath.Join(e.Work, "src-"+key+".mp4")
	barH := h / barcodeBandDiv
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, SourceFPS),
		"-f", "lavfi", "-i", fmt.Sprintf("color=black:size=%dx1:rate=%d,format=gray,geq=lum='255*mod(floor(N/pow(2\\,X))\\,2)'", barcodeBits, SourceFPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-filter_complex", fmt.Sprintf("[1:v]scale=%d:%d:flags=neighbor,format=yuv420p[bar];[0:v][bar]overlay=0:0:shortest=1,format=yuv420p[v]", w, barH),
		"-map", "[v]", "-map", "2:a", "-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-g", fmt.Sprint(SourceFPS), "-keyint_min", fmt.Sprint(SourceFPS),
		"-sc_threshold", "0", "-b:v", "3000k", "-maxrate", "3000k", "-bufsize", "6000k",
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", out}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("generate source %s: %w: %s", key, err, b)
	}
	if e.sources == nil {
		e.sources = map[string]string{}
	}
	e.sources[key] = out
	return out, nil
}

// Left is the time left in the suite's budget.
func (e *Env) Left() time.Duration { return time.Until(e.Deadline) }

// repoRoot walks up from the working directory to go.mod.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// firstLine runs a command and returns the first line of its output.
func firstLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// load1 is the 1-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}
