package bench

import (
	"context"
	_ "embed"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dionysia/dionysia/testcluster/player"
)

// The latency row's player: hls.js or dash.js in a headless Chromium, like
// testcluster/player (same browser, same flags), on a page of its own that
// reads the frame number on screen (glass.js). testcluster/player's page
// is not used because its dash.js settings pin a 3 s target delay for its
// stall tests, and the latency row wants each player's own low-latency
// behaviour.

const chromiumBin = "/usr/bin/chromium"

// glassEvery is how often the page reads the picture: drawing a 720p frame
// and reading it back costs a few milliseconds, cheap at two per second on
// a 2-core box that also runs the node and its transcoder.
const glassEvery = 500 * time.Millisecond

//go:embed glass.js
var glassJS []byte

const glassPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>dionysia glass-to-glass</title><link rel="icon" href="data:,"></head>
<body style="margin:0;background:#000">
<video id="video" muted autoplay playsinline width="640" height="360"></video>
<script src="/lib.js"></script>
<script src="/config.js"></script>
<script src="/glass.js"></script>
</body></html>
`

// playerLib finds a player library scripts/deps.sh installs: $env (the
// Makefile sets DIONYSIA_HLSJS and DIONYSIA_DASHJS), else bin/<file> in
// the repository.
func playerLib(e *Env, env, file string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p := filepath.Join(e.Root, "bin", file)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found ($%s or bin/%s; `make deps` fetches it)", file, env, file)
	}
	return p, nil
}

// browserReady says why real players cannot run here ("" when they can).
func browserReady(e *Env) string {
	if _, err := os.Stat(chromiumBin); err != nil {
		return chromiumBin + " is not installed (scripts/deps.sh --test installs it)"
	}
	for _, l := range [][2]string{{"DIONYSIA_HLSJS", "hls.min.js"}, {"DIONYSIA_DASHJS", "dash.all.min.js"}} {
		if _, err := playerLib(e, l[0], l[1]); err != nil {
			return err.Error()
		}
	}
	return ""
}

// glassSample is one reading of the picture on screen.
type glassSample struct {
	Shown   time.Time // when that frame was on screen
	Frame   int       // the frame number read from it
	Unclear int       // barcode blocks neither clearly black nor white
	Own     float64   // the player's own latency estimate, s (-1: none)
	Height  int       // the picture's height
	Rate    float64   // playback rate (catch-up plays faster)
}

type glassState struct {
	Samples   []glassSample
	Fatal     []string
	Errors    int
	LastError string
	RVFC      int       // samples taken in a video frame callback
	Interval  int       // samples taken by the fallback timer
	StartedAt time.Time // the video's first 'playing' event
}

// glassPlayer is one Chromium playing one stream.
type glassPlayer struct {
	srv    *httptest.Server
	ctx    context.Context
	cancel func()
	dir    string
	opened time.Time // the page was asked for

	mu      sync.Mutex
	console []string
}

// startGlass opens a Chromium on the glass page playing url with engine
// "hls" or "dash"; catchUp > 1 sets hls.js's maxLiveSyncPlaybackRate.
func startGlass(e *Env, engine, url string, lowLatency bool, catchUp float64) (*glassPlayer, error) {
	env, file := "DIONYSIA_HLSJS", "hls.min.js"
	if engine == "dash" {
		env, file = "DIONYSIA_DASHJS", "dash.all.min.js"
	}
	lib, err := playerLib(e, env, file)
	if err != nil {
		return nil, err
	}
	mux, err := player.PageMux(glassPage, "glassConfig", map[string]any{"url": url, "engine": engine, "lowLatency": lowLatency,
		"catchUp": catchUp, "bits": barcodeBits, "bandDiv": barcodeBandDiv, "everyMs": glassEvery.Milliseconds()},
		map[string][]byte{"glass.js": glassJS}, lib)
	if err != nil {
		return nil, err
	}
	g := &glassPlayer{srv: httptest.NewServer(mux)}
	g.dir, err = os.MkdirTemp("", "dionysia-bench-chromium-")
	if err != nil {
		g.srv.Close()
		return nil, err
	}
	profile, tmp := filepath.Join(g.dir, "profile"), filepath.Join(g.dir, "tmp")
	for _, d := range []string{profile, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			g.srv.Close()
			_ = os.RemoveAll(g.dir)
			return nil, err
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), player.BrowserOptions(profile, tmp)...)
	ctx, cancelTab := chromedp.NewContext(actx)
	g.ctx = ctx
	g.cancel = func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Cancel(cctx)
		cancelTab()
		cancelAlloc()
	}
	chromedp.ListenTarget(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
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
		default:
			return
		}
		g.mu.Lock()
		if len(g.console) >= 100 {
			g.console = g.console[1:]
		}
		g.console = append(g.console, time.Now().Format("15:04:05.000")+" "+line)
		g.mu.Unlock()
	})
	// The first Run starts Chromium and ties it to its context: the tab's,
	// not the page load's timeout below.
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(context.Context) error { return nil })); err != nil {
		g.close()
		return nil, fmt.Errorf("glass player: start %s: %w", chromiumBin, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	g.opened = time.Now()
	if err := chromedp.Run(sctx, chromedp.Navigate(g.srv.URL+"/"),
		chromedp.Poll(`!!window.glass`, nil, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		g.close()
		return nil, fmt.Errorf("glass player: load the page: %w", err)
	}
	return g, nil
}

// state reads what the page has seen so far.
func (g *glassPlayer) state() (glassState, error) {
	var raw struct {
		Samples   [][]float64 `json:"samples"`
		Fatal     []string    `json:"fatal"`
		Errors    int         `json:"errors"`
		LastError string      `json:"lastError"`
		RVFC      int         `json:"rvfc"`
		Interval  int         `json:"interval"`
		StartedAt float64     `json:"startedAt"`
	}
	ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.glass.state()`, &raw)); err != nil {
		return glassState{}, fmt.Errorf("glass player: read state: %w", err)
	}
	s := glassState{Fatal: raw.Fatal, Errors: raw.Errors, LastError: raw.LastError, RVFC: raw.RVFC, Interval: raw.Interval}
	if raw.StartedAt > 0 {
		s.StartedAt = time.UnixMicro(int64(raw.StartedAt * 1000))
	}
	for _, v := range raw.Samples {
		if len(v) < 6 {
			continue
		}
		s.Samples = append(s.Samples, glassSample{Shown: time.UnixMicro(int64(v[0] * 1000)), Frame: int(v[1]),
			Unclear: int(v[2]), Own: v[3], Height: int(v[4]), Rate: v[5]})
	}
	return s, nil
}

// consoleTail is the page's last console lines.
func (g *glassPlayer) consoleTail() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.console[max(0, len(g.console)-10):], "\n")
}

func (g *glassPlayer) close() {
	g.cancel()
	g.srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for os.RemoveAll(g.dir) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}
