package media

import (
	"bytes"
	"regexp"
	"sync"
)

// Children print URLs and paths that hold secrets: the stream key is the path
// live/<key>, and internal reads carry user:password. Every line is masked
// before it reaches a log.
var (
	keyInPath   = regexp.MustCompile(`(live/[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{4,}`)
	passwordURL = regexp.MustCompile(`(://[^/:@\s]+):[^@/\s]+@`)
)

// Redact masks stream keys and URL passwords in a line of child output.
func Redact(line string) string {
	line = passwordURL.ReplaceAllString(line, "$1:***@")
	return keyInPath.ReplaceAllString(line, "$1…")
}

// lineWriter is an io.Writer that calls fn for every complete line written to
// it; children's stdout and stderr go through it into the logger. Lines
// longer than maxLine are cut so a child cannot make us buffer without bound.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(line string)
}

const maxLine = 4096

func newLineWriter(fn func(string)) *lineWriter { return &lineWriter{fn: fn} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) > maxLine {
				w.emit()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a trailing line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit()
	}
}

func (w *lineWriter) emit() {
	line := Redact(string(bytes.TrimRight(w.buf, "\r")))
	w.buf = w.buf[:0]
	if line != "" {
		w.fn(line)
	}
}

// tailLines keeps the last n lines seen, to explain a crash in the log.
type tailLines struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func (t *tailLines) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// take returns the kept lines and forgets them.
func (t *tailLines) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lines
	t.lines = nil
	return l
}
