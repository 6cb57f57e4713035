// Package player runs a real video player for tests and benchmarks: hls.js
// or dash.js in a headless Chromium, attached to a muted <video> that plays
// a stream from the cluster (or a CDN in front of it). The page samples the
// player every 100 ms: media time, stalls, errors, latency, quality level.
// A test asserts on what a viewer would have seen:
//
//	p := player.Start(t, player.Options{URL: masterURL})
//	p.WaitPlaying(30 * time.Second)
//	m := p.Mark()
//	c.Kill(i) // the event: the node that owns the stream dies
//	p.WaitAdvancingSince(m, 3*time.Second, 30*time.Second)
//	t.Logf("longest stall: %s", p.LongestStallSince(m))
//
// Each Player is one Chromium process with its own profile: several can
// play at once. The package stands alone (it does not import testcluster),
// so benchmarks and tests of any package can use it.
package player

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dionysia/dionysia/testcluster/repo"
)

// chromiumBin is Debian's chromium, installed by `scripts/deps.sh --test`.
const chromiumBin = "/usr/bin/chromium"

// Engines: the player library a Player runs.
const (
	HLS  = "hls"  // hls.js, bin/hls.min.js or $DIONYSIA_HLSJS
	DASH = "dash" // dash.js, bin/dash.all.min.js or $DIONYSIA_DASHJS
)

// libraries are the player libraries: environment variable, file in bin/.
var libraries = map[string]struct{ env, file string }{
	HLS:  {"DIONYSIA_HLSJS", "hls.min.js"},
	DASH: {"DIONYSIA_DASHJS", "dash.all.min.js"},
}

//go:embed harness.js
var harnessJS []byte

// page is the player's page; the library, the config and the harness are
// loaded from the same test server.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>dionysia test player</title><link rel="icon" href="data:,"></head>
<body style="margin:0;background:#000">
<video id="video" muted autoplay playsinline width="640" height="360"></video>
<script src="/lib.js"></script>
<script src="/config.js"></script>
<script src="/harness.js"></script>
</body></html>
`

// Options say what a Player plays and how.
type Options struct {
	URL string // the master playlist (.m3u8) or manifest (.mpd); CORS must allow any origin
	// Engine is HLS or DASH; empty picks DASH for a .mpd URL, HLS otherwise.
	Engine string
	// LowLatency turns on hls.js's lowLatencyMode (off otherwise) or
	// dash.js's low-latency settings (a 3 s target delay with catch-up).
	LowLatency bool
	Name       string // in logs and failure messages; default: the engine
}

// Stats is what the player has seen since it started.
type Stats struct {
	Engine      string
	LowLatency  bool    // the engine's low-latency mode is on
	CurrentTime float64 // video.currentTime, seconds
	// Played is the media time really played, seconds: the sum of forward
	// moves of currentTime during playback; seeks do not count.
	Played      float64
	Playing     bool // media time moved in the last 500 ms
	Paused      bool
	Ended       bool
	ReadyState  int     // HTMLMediaElement.readyState, 0-4
	BufferedEnd float64 // end of the buffered range holding currentTime, 0 when none
	Started     bool    // media time has moved at least once
	Startup     time.Duration
	// Fatal are the errors the player gave up on (the first 20): hls.js
	// ERROR events with fatal set, dash.js error and playbackError events,
	// and <video> errors. Nothing here recovers from them.
	Fatal      []string
	Errors     []string // the last 100 non-fatal errors
	ErrorCount int      // every non-fatal error
	// A stall is a time media time did not move although the video had
	// started playing and was neither paused nor ended. Measured to about
	// 100 ms.
	Stalls        int           // stalls so far, the current one included
	LongestStall  time.Duration // the current stall included
	CurrentStall  time.Duration // 0 when playing
	Latency       float64       // seconds behind the live edge, per the player; 0 when unknown (VOD)
	Level         int           // the quality level playing (-1 until known), lowest bitrate first
	Height        int           // that level's height (the video's until a level is known)
	VideoHeight   int           // the decoded video's height
	LevelSwitches int

	clock float64 // page clock, ms
}

// stats is Stats as the page writes it.
type stats struct {
	Engine         string   `json:"engine"`
	LowLatency     bool     `json:"lowLatency"`
	Clock          float64  `json:"clock"`
	CurrentTime    float64  `json:"currentTime"`
	Played         float64  `json:"played"`
	Playing        bool     `json:"playing"`
	Paused         bool     `json:"paused"`
	Ended          bool     `json:"ended"`
	ReadyState     int      `json:"readyState"`
	BufferedEnd    float64  `json:"bufferedEnd"`
	Started        bool     `json:"started"`
	StartupMs      float64  `json:"startupMs"`
	Fatal          []string `json:"fatal"`
	Errors         []string `json:"errors"`
	ErrorCount     int      `json:"errorCount"`
	Stalls         int      `json:"stalls"`
	LongestStallMs float64  `json:"longestStallMs"`
	CurrentStallMs float64  `json:"currentStallMs"`
	Latency        *float64 `json:"latency"`
	Level          int      `json:"level"`
	Height         int      `json:"height"`
	VideoHeight    int      `json:"videoHeight"`
	LevelSwitches  int      `json:"levelSwitches"`
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func (s stats) toStats() Stats {
	out := Stats{
		Engine: s.Engine, LowLatency: s.LowLatency, CurrentTime: s.CurrentTime, Played: s.Played, Playing: s.Playing,
		Paused: s.Paused, Ended: s.Ended, ReadyState: s.ReadyState, BufferedEnd: s.BufferedEnd,
		Started: s.Started, Startup: ms(s.StartupMs), Fatal: s.Fatal, Errors: s.Errors,
		ErrorCount: s.ErrorCount, Stalls: s.Stalls, LongestStall: ms(s.LongestStallMs),
		CurrentStall: ms(s.CurrentStallMs), Level: s.Level, Height: s.Height,
		VideoHeight: s.VideoHeight, LevelSwitches: s.LevelSwitches, clock: s.Clock,
	}
	if s.Latency != nil {
		out.Latency = *s.Latency
	}
	return out
}

// String is a one-line summary for logs.
func (s Stats) String() string {
	engine := s.Engine
	if s.LowLatency {
		engine += " (low latency)"
	}
	b := fmt.Sprintf("%s: currentTime %.2fs played %.2fs playing=%v paused=%v readyState=%d buffered to %.2fs, "+
		"startup %s, %d stalls (longest %s, current %s), latency %.2fs, level %d (%dp, video %dp, %d switches), %d errors",
		engine, s.CurrentTime, s.Played, s.Playing, s.Paused, s.ReadyState, s.BufferedEnd,
		s.Startup.Round(time.Millisecond), s.Stalls, s.LongestStall.Round(time.Millisecond),
		s.CurrentStall.Round(time.Millisecond), s.Latency, s.Level, s.Height, s.VideoHeight, s.LevelSwitches, s.ErrorCount)
	if len(s.Fatal) > 0 {
		b += fmt.Sprintf(", FATAL %q", s.Fatal)
	}
	if len(s.Errors) > 0 {
		last := s.Errors[max(0, len(s.Errors)-5):]
		b += fmt.Sprintf(", last errors %q", last)
	}
	return b
}

// Mark is a point in a Player's life to measure from: see Mark.
type Mark struct {
	Played float64   // Stats.Played then
	At     time.Time // wall clock then
	clock  float64   // page clock then, ms
}

// Player is one headless Chromium playing one stream.
type Player struct {
	t    testing.TB
	name string
	opts Options
	srv  *httptest.Server
	ctx  context.Context // the tab

	cancel    func() // closes the tab, the browser and the allocator
	dir       string // the Chromium profile and temporary files
	closeOnce sync.Once
	closed    atomic.Bool

	mu      sync.Mutex
	console []string // the last maxConsole lines of console, log and failed requests
}

const maxConsole = 300

// Start opens a Chromium on a page that plays opts.URL with the chosen
// engine, muted, from the start. It returns once the page has loaded; use
// WaitPlaying to wait for the picture. The test is skipped with -short, or
// without Chromium or the player library (except in CI, where that fails
// it: `make test` installs them with scripts/deps.sh --test). Close ends it;
// the test's cleanup does too.
func Start(t testing.TB, opts Options) *Player {
	t.Helper()
	if testing.Short() {
		t.Skip("real browser player; skipped with -short")
	}
	if opts.URL == "" {
		t.Fatalf("player: no URL")
	}
	if opts.Engine == "" {
		opts.Engine = HLS
		if strings.HasSuffix(strings.SplitN(opts.URL, "?", 2)[0], ".mpd") {
			opts.Engine = DASH
		}
	}
	lib, ok := libraries[opts.Engine]
	if !ok {
		t.Fatalf("player: unknown engine %q (want %q or %q)", opts.Engine, HLS, DASH)
	}
	if opts.Name == "" {
		opts.Name = opts.Engine
	}
	if _, err := os.Stat(chromiumBin); err != nil {
		missing(t, chromiumBin)
	}
	libPath, ok := repo.File(lib.env, path.Join("bin", lib.file))
	if !ok {
		missing(t, lib.file+" ($"+lib.env+" or bin/"+lib.file+")")
	}

	p := &Player{t: t, name: opts.Name, opts: opts}
	mux, err := PageMux(page, "harnessConfig", map[string]any{"url": opts.URL, "engine": opts.Engine, "lowLatency": opts.LowLatency},
		map[string][]byte{"harness.js": harnessJS}, libPath)
	if err != nil {
		t.Fatalf("player: %v", err)
	}
	p.launch(mux, `!!window.harness`, nil)
	return p
}

// launch serves mux on 127.0.0.1, starts a Chromium (BrowserOptions plus
// extra flags) on a fresh profile, and loads the page at / until ready (a
// JavaScript expression) is true. Close undoes it all; the test's cleanup
// calls Close, after logging the page's state when the test failed.
func (p *Player) launch(mux *http.ServeMux, ready string, extra []chromedp.ExecAllocatorOption) {
	t := p.t
	t.Helper()
	p.srv = httptest.NewServer(mux) // on 127.0.0.1

	// Not t.TempDir: Chromium's helpers may still write to the profile for
	// a moment after the browser has gone, and t.TempDir's one RemoveAll
	// would then fail the test. Close removes it, retrying. Chromium's own
	// temporary files (its singleton socket, which it leaves behind when
	// killed) go to tmp/ in there too.
	var err error
	p.dir, err = os.MkdirTemp("", "dionysia-player-")
	if err != nil {
		p.srv.Close()
		t.Fatalf("player: %v", err)
	}
	profile, tmp := filepath.Join(p.dir, "profile"), filepath.Join(p.dir, "tmp")
	for _, d := range []string{profile, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			p.srv.Close()
			_ = os.RemoveAll(p.dir)
			t.Fatalf("player: %v", err)
		}
	}
	allocOpts := append(BrowserOptions(profile, tmp), extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	p.ctx = ctx
	p.cancel = func() {
		// Closed politely first, so Chromium cleans up after itself.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Cancel(cctx)
		cancelTab()
		cancelAlloc() // kills what is left of Chromium and waits for it
	}
	t.Cleanup(func() {
		if t.Failed() {
			p.logState()
		}
		p.Close()
	})
	chromedp.ListenTarget(ctx, p.listen)

	// Starts Chromium and loads the page.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(context.Context) error { return nil })); err != nil {
		t.Fatalf("player %s: start %s: %v", p.name, chromiumBin, err)
	}
	if err := chromedp.Run(sctx, chromedp.Navigate(p.srv.URL+"/"), chromedp.Poll(ready, nil, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("player %s: load the page: %v\nconsole: %s", p.name, err, p.Console())
	}
}

// listen keeps the page's console, its log (CORS and network errors land
// there) and the requests that failed.
func (p *Player) listen(ev any) {
	var line string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(e.Args))
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = string(e.Type) + ": " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		line = "exception: " + e.ExceptionDetails.Error()
	case *log.EventEntryAdded:
		line = "log " + string(e.Entry.Level) + ": " + e.Entry.Text
		if e.Entry.URL != "" {
			line += " " + e.Entry.URL
		}
	case *network.EventResponseReceived:
		if e.Response.Status < 400 {
			return
		}
		line = fmt.Sprintf("http %d %s", e.Response.Status, e.Response.URL)
	case *network.EventLoadingFailed:
		if e.Canceled {
			return
		}
		line = "request failed: " + e.ErrorText
		if e.BlockedReason != "" {
			line += " (" + string(e.BlockedReason) + ")"
		}
		if e.CorsErrorStatus != nil {
			line += " (CORS " + string(e.CorsErrorStatus.CorsError) + ")"
		}
	default:
		return
	}
	line = time.Now().Format("15:04:05.000") + " " + line
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) >= maxConsole {
		p.console = p.console[1:]
	}
	p.console = append(p.console, line)
}

// Console is what the page logged, newest last: console messages,
// exceptions, the browser's log, and HTTP responses ≥ 400 or failed
// requests (the last 300 lines).
func (p *Player) Console() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) == 0 {
		return "(empty)"
	}
	return strings.Join(p.console, "\n")
}

// eval runs a JavaScript expression in the page.
func (p *Player) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate(expr, out))
}

func (p *Player) stats() (Stats, error) {
	var s stats
	if err := p.eval(`window.harness.stats()`, &s); err != nil {
		return Stats{}, fmt.Errorf("player %s: read stats: %w", p.name, err)
	}
	return s.toStats(), nil
}

// Stats is what the player has seen so far. A browser that does not
// answer fails the test.
func (p *Player) Stats() Stats {
	p.t.Helper()
	s, err := p.stats()
	if err != nil {
		p.t.Fatalf("%v\nconsole:\n%s", err, p.Console())
	}
	return s
}

// WaitPlaying waits until the player has played at least 1 s of media and
// returns its stats then. A fatal player error or the timeout fails the
// test, with the stats and the page's console.
func (p *Player) WaitPlaying(timeout time.Duration) Stats {
	p.t.Helper()
	return p.Wait("1 s of media played", timeout, func(s Stats) bool { return s.Played >= 1 })
}

// Mark notes where the player is now, to measure from: media time played
// since (WaitAdvancingSince) and stalls since (LongestStallSince).
func (p *Player) Mark() Mark {
	p.t.Helper()
	s := p.Stats()
	return Mark{Played: s.Played, At: time.Now(), clock: s.clock}
}

// WaitAdvancing waits until the player has played d more media time from
// now; see WaitAdvancingSince.
func (p *Player) WaitAdvancing(d, timeout time.Duration) Stats {
	p.t.Helper()
	return p.WaitAdvancingSince(p.Mark(), d, timeout)
}

// WaitAdvancingSince waits until the player has played d of media time
// since m (seeks do not count): "it plays again after the event". A fatal
// player error or the timeout fails the test, with the stats and the
// page's console.
func (p *Player) WaitAdvancingSince(m Mark, d, timeout time.Duration) Stats {
	p.t.Helper()
	return p.Wait(fmt.Sprintf("%s of media played since the mark", d), timeout, func(s Stats) bool {
		return s.Played-m.Played >= d.Seconds()
	})
}

// Wait polls the stats until cond holds and returns them. A fatal player
// error or the timeout fails the test, with the stats and the page's
// console.
func (p *Player) Wait(what string, timeout time.Duration, cond func(Stats) bool) Stats {
	p.t.Helper()
	return p.wait(what, timeout, func(s Stats) (bool, error) {
		if len(s.Fatal) > 0 {
			return false, fmt.Errorf("fatal error")
		}
		return cond(s), nil
	})
}

// WaitFatal waits until the player reports a fatal error and returns its
// stats then; the timeout fails the test. For tests that a broken stream
// really is seen as broken.
func (p *Player) WaitFatal(timeout time.Duration) Stats {
	p.t.Helper()
	return p.wait("a fatal error", timeout, func(s Stats) (bool, error) { return len(s.Fatal) > 0, nil })
}

func (p *Player) wait(what string, timeout time.Duration, cond func(Stats) (bool, error)) Stats {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.Stats()
		ok, err := cond(s)
		if err != nil {
			p.t.Fatalf("player %s: %v while waiting for %s: %s\nconsole:\n%s", p.name, err, what, s, p.Console())
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("player %s: timed out after %s waiting for %s: %s\nconsole:\n%s", p.name, timeout, what, s, p.Console())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LongestStallSince is the longest stall after m: of a stall that began
// before m only the part after m counts; a stall still going on counts
// up to now.
func (p *Player) LongestStallSince(m Mark) time.Duration {
	p.t.Helper()
	var v float64
	if err := p.eval(fmt.Sprintf(`window.harness.longestStallSince(%f)`, m.clock), &v); err != nil {
		p.t.Fatalf("player %s: read stalls: %v\nconsole:\n%s", p.name, err, p.Console())
	}
	return ms(v)
}

// URL is the stream the player plays.
func (p *Player) URL() string { return p.opts.URL }

// Levels is the height of each video level (HLS variant, DASH video
// representation) in the engine's order; index them for SwitchTo.
func (p *Player) Levels() []int {
	p.t.Helper()
	var out []int
	if err := p.eval(`window.harness.levels()`, &out); err != nil {
		p.logState()
		p.t.Fatalf("player %s: levels: %v", p.name, err)
	}
	return out
}

// SwitchTo pins playback to video level i, as a viewer picking a quality:
// the engine's ABR stops choosing and the switch takes effect at a
// segment boundary. Wait for Stats().Level to see it rendered.
func (p *Player) SwitchTo(i int) {
	p.t.Helper()
	var msg string
	if err := p.eval(fmt.Sprintf(`window.harness.switchTo(%d)`, i), &msg); err != nil || msg != "" {
		p.logState()
		p.t.Fatalf("player %s: switch to level %d: %v%s", p.name, i, err, msg)
	}
}

// Seek moves the play head to media time t (seconds), as a viewer
// dragging the seek bar: the engine loads what is there and plays on.
func (p *Player) Seek(t float64) {
	p.t.Helper()
	var msg string
	if err := p.eval(fmt.Sprintf(`window.harness.seek(%f)`, t), &msg); err != nil || msg != "" {
		p.logState()
		p.t.Fatalf("player %s: seek to %.2f: %v%s", p.name, t, err, msg)
	}
}

// Seekable is the media time range the player can seek in (a live
// window, a DVR window, a whole VOD); ok is false until it is known.
func (p *Player) Seekable() (start, end float64, ok bool) {
	p.t.Helper()
	var r []float64
	if err := p.eval(`window.harness.seekable()`, &r); err != nil {
		p.logState()
		p.t.Fatalf("player %s: seekable: %v", p.name, err)
	}
	if len(r) != 2 {
		return 0, 0, false
	}
	return r[0], r[1], true
}

// logState logs the stats and the console (for a failed test).
func (p *Player) logState() {
	p.t.Helper()
	if !p.closed.Load() && p.opts.Engine != whipEngine {
		if s, err := p.stats(); err == nil {
			p.t.Logf("player %s: %s", p.name, s)
		} else {
			p.t.Logf("%v", err)
		}
	}
	p.t.Logf("player %s: console:\n%s", p.name, p.Console())
}

// Close kills Chromium, stops the page server and removes the profile.
// It is safe to call more than once; the test's cleanup calls it too.
func (p *Player) Close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.cancel()
		p.srv.Close()
		// Chromium's helpers may outlive it by a moment and write on.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.RemoveAll(p.dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				p.t.Errorf("player %s: remove the chromium profile: %v", p.name, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// missing skips the test, or fails it in CI where `make test` must have
// installed what is missing.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI but missing (scripts/deps.sh --test installs it)", what)
	}
	t.Skipf("%s not found (run scripts/deps.sh --test); skipping the player test", what)
}

// BrowserOptions start Debian's Chromium headless for a player: no network
// of its own (this workplace refuses it), autoplay without a gesture, and
// no throttling of a page nobody looks at. profile is a fresh user data dir,
// tmp its temporary files (removed with it).
func BrowserOptions(profile, tmp string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumBin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR=" + tmp),
	}
}

// PageMux serves a test page the way every page of ours is served (the
// player, the WHIP publisher, the bench's glass): the page at /, its
// configuration as a script setting window.<configVar> at /config.js, and
// the page's own scripts by path; nothing cached. libPath, when set, is
// served from disk at /lib.js (hls.js or dash.js).
func PageMux(page, configVar string, config any, scripts map[string][]byte, libPath string) (*http.ServeMux, error) {
	js, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("page config: %w", err)
	}
	mux := http.NewServeMux()
	serve := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(body)
		}
	}
	mux.Handle("GET /{$}", serve("text/html; charset=utf-8", []byte(page)))
	mux.Handle("GET /config.js", serve("text/javascript", fmt.Appendf(nil, "window.%s = %s;\n", configVar, js)))
	for name, body := range scripts {
		mux.Handle("GET /"+name, serve("text/javascript", body))
	}
	if libPath != "" {
		mux.HandleFunc("GET /lib.js", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, libPath)
		})
	}
	return mux, nil
}
