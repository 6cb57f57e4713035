package dashboard_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/dashboard"
	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/testcluster"
)

// chromiumBin is Debian's chromium, installed by `scripts/deps.sh --test`.
const chromiumBin = "/usr/bin/chromium"

// h264Probe is what the page asks MediaSource about before it plays: the
// baseline H.264 + AAC-LC pair the transcoder's HLS carries.
const h264Probe = `MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')`

// TestDashboardInBrowser drives headless Chromium against a real node: the
// node is listed, an input created through the form shows up (in the page
// and in the API), and its live preview plays after a test stream is
// published to it.
func TestDashboardInBrowser(t *testing.T) {
	testcluster.Media(t)
	needChromium(t)
	start := time.Now()

	c := testcluster.Start(t, testcluster.Options{})
	n := c.Node(0)
	c.WaitLeader(20 * time.Second)
	c.WaitReady(30 * time.Second)
	// One cheap rung: the 2-core box also runs the publisher and Chromium.
	profileID := n.CreateProfile(t, map[string]any{
		"name": "Browser test 360p", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{
			{"name": "360p", "width": 640, "height": 360, "video_bitrate_kbps": 600, "audio_bitrate_kbps": 64},
		},
	})

	b := newBrowser(t)
	b.run(chromedp.Navigate(n.HTTPURL() + "/#cluster"))

	// The cluster view lists the node.
	b.waitJS(10*time.Second, "the node listed in the cluster view",
		`document.getElementById('nodes-body').innerText.includes('`+n.Name()+`')`)
	b.waitJS(5*time.Second, "a leader shown", `document.getElementById('fact-leader').innerText === '`+n.Name()+`'`)

	// Cost against capacity per node, and the drain button (issue 11).
	capacity := fmt.Sprint(fsm.CostUnitsPerCore * goruntime.NumCPU())
	b.waitJS(5*time.Second, "cost against capacity", `document.getElementById('nodes-body').innerText.includes('0 / `+capacity+` (0%)')`)
	b.run(chromedp.Click(`#nodes-body button`, chromedp.ByQuery))
	b.waitJS(10*time.Second, "the button offers Undrain", `document.querySelector('#nodes-body button').innerText === 'Undrain'`)
	require.True(t, n.ClusterHandle().Draining(), "the button drained the node")
	b.run(chromedp.Click(`#nodes-body button`, chromedp.ByQuery))
	b.waitJS(10*time.Second, "the button offers Drain again", `document.querySelector('#nodes-body button').innerText === 'Drain'`)
	require.False(t, n.ClusterHandle().Draining(), "the button undrained the node")

	var h264 bool
	b.run(chromedp.Evaluate(h264Probe, &h264))
	t.Logf("chromium: MediaSource H.264/AAC support: %v", h264)

	// Create an input through the form.
	const inputName = "Browser test stream"
	b.run(chromedp.Click(`nav a[data-view="inputs"]`, chromedp.ByQuery))
	b.waitJS(5*time.Second, "the test profile offered in the form",
		`!!document.querySelector('#input-profile option[value="`+profileID+`"]')`)
	b.run(
		chromedp.SendKeys(`#input-name`, inputName, chromedp.ByQuery),
		chromedp.SetValue(`#input-profile`, profileID, chromedp.ByQuery),
		chromedp.Click(`#input-record`, chromedp.ByQuery),
		chromedp.Click(`#input-form button[type="submit"]`, chromedp.ByQuery),
	)
	cardJS := `Array.from(document.querySelectorAll('#inputs-list article')).find(a => a.querySelector('h3').innerText === '` + inputName + `')`
	b.waitJS(10*time.Second, "the new input's card", `!!(`+cardJS+`)`)
	var id string
	b.run(chromedp.Evaluate(cardJS+`.dataset.id`, &id))
	require.NotEmpty(t, id)

	// The API has it, with the profile picked in the form.
	r := n.MustDo(t, http.MethodGet, "/v1/inputs/"+id, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var in testcluster.Input
	r.JSON(t, &in)
	require.Equal(t, inputName, in.Name)
	require.Equal(t, profileID, in.ProfileID)
	require.True(t, in.Enabled)
	var recorded struct {
		Record bool `json:"record"`
	}
	r.JSON(t, &recorded)
	require.True(t, recorded.Record, "the form's record box")

	// The stream key is hidden until revealed, in the key and in the URLs.
	card := `article[data-id="` + id + `"]`
	var keyText, rtmpText string
	b.run(chromedp.Text(card+` .secret`, &keyText, chromedp.ByQuery),
		chromedp.Text(card+` code.url`, &rtmpText, chromedp.ByQuery))
	require.NotContains(t, keyText, in.StreamKey)
	require.NotContains(t, rtmpText, in.StreamKey)
	b.run(chromedp.Click(card+` .keyrow button[aria-pressed]`, chromedp.ByQuery))
	b.waitJS(5*time.Second, "the revealed stream key",
		`document.querySelector('`+card+` .secret').innerText === '`+in.StreamKey+`'`)
	b.run(chromedp.Click(card+` .keyrow button[aria-pressed]`, chromedp.ByQuery))

	// Publish and wait until the stream plays over plain HTTP.
	testcluster.Publish(t, in.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360})
	testcluster.WaitPlayable(t, n, id, 1, 2, 30*time.Second)
	// The show being recorded is listed on the card, with its play link.
	b.waitJS(30*time.Second, "the recording listed on the card",
		`(() => { const a = document.querySelector('`+card+` li.recording a.vod-link'); `+
			`return !!a && /\/vod\/rec-[0-9a-f]+\/master\.m3u8$/.test(a.href); })()`)

	// The dashboard shows it live, with rendition stats, and previews it.
	preview := card + ` .card-actions button.primary`
	b.waitJS(10*time.Second, "the input shown live with rendition stats",
		`document.querySelector('`+card+` .badge').innerText.toLowerCase() === 'live' && `+
			`!document.querySelector('`+preview+`').disabled && !!document.querySelector('`+card+` .stats tbody tr')`)
	// Its card shows the stream's thumbnail (scaled to 320 px by the node),
	// and the preview uses it as its poster.
	b.waitJS(20*time.Second, "the input's thumbnail in its card",
		`(() => { const i = document.querySelector('`+card+` img.thumb'); return !!i && !i.hidden && i.complete && i.naturalWidth === 320 && i.naturalHeight === 180; })()`)
	b.run(chromedp.Click(preview, chromedp.ByQuery))
	b.waitJS(5*time.Second, "the thumbnail as the preview's poster",
		`document.getElementById('preview-video').poster.endsWith('/live/`+id+`/thumbnail.jpg')`)

	// With H.264 in MediaSource the <video> must really play; without it
	// (a chromium build without proprietary codecs) hls.js can still prove
	// that it fetched and parsed the live stream into attached media.
	var last playerState
	what := "the preview's currentTime past 1 s"
	if !h264 {
		what = "hls.js to load and parse 3 fragments into attached media"
	}
	testcluster.Eventually(t, 40*time.Second, what, func() error {
		if err := chromedp.Run(b.ctx, chromedp.Evaluate(playerStateJS, &last)); err != nil {
			return err
		}
		if h264 && last.CurrentTime > 1.0 {
			return nil
		}
		if !h264 && last.MediaAttached && last.FragParsed >= 3 {
			return nil
		}
		return fmt.Errorf("player state %+v; page console: %s", last, b.console())
	})
	t.Logf("preview: %+v", last)
	if h264 {
		require.Equal(t, 640, last.VideoWidth)
		require.Equal(t, 360, last.VideoHeight)
	}

	// A screenshot of the playing preview.
	shot := b.screenshot("dashboard.png")

	// The source over WebRTC (WHEP), through this node from the ingest
	// node's mediamtx (the same node here): the page holds no stream key.
	b.run(chromedp.Click(card+` .card-actions button.source`, chromedp.ByQuery))
	if h264 {
		b.waitJS(30*time.Second, "the WebRTC source preview playing",
			`(() => { const v = document.getElementById('preview-video'); return !!v.srcObject && v.currentTime > 1 && v.videoWidth === 640 && v.videoHeight === 360; })()`)
	} else {
		b.waitJS(30*time.Second, "the WebRTC source preview connected",
			`window.dionysiaPreview.manifestParsed && window.dionysiaPreview.mediaAttached`)
	}
	var pageText string
	b.run(chromedp.Evaluate(`document.documentElement.outerHTML`, &pageText))
	require.NotContains(t, pageText, in.StreamKey, "the stream key stays out of the page")
	b.screenshot("dashboard-webrtc.png")

	// The other views, for whoever looks at the artifacts; the profile
	// editor opens on the test profile.
	b.run(chromedp.Click(`nav a[data-view="cluster"]`, chromedp.ByQuery))
	b.waitJS(5*time.Second, "the node owning the live input",
		`document.getElementById('nodes-body').innerText.includes('`+inputName+`')`)
	b.screenshot("dashboard-cluster.png")
	b.run(chromedp.Click(`nav a[data-view="profiles"]`, chromedp.ByQuery),
		chromedp.Click(`#profiles-body tr[data-key="`+profileID+`"] button`, chromedp.ByQuery))
	b.waitJS(5*time.Second, "the profile editor on the test profile",
		`document.getElementById('profile-name').value === 'Browser test 360p' && document.getElementById('renditions-body').rows.length === 1`)
	b.screenshot("dashboard-profiles.png")
	t.Logf("screenshot: %s; browser test took %s", shot, time.Since(start).Round(time.Millisecond))
}

// screenshot saves a PNG of the viewport in the test's temp dir and, when
// $DIONYSIA_SCREENSHOT_DIR is set, there too (CI keeps it as an artifact).
// It returns where the last copy went.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var png []byte
	b.run(chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), chromedp.CaptureScreenshot(&png))
	if b.shots == "" {
		b.shots = b.t.TempDir()
	}
	path := filepath.Join(b.shots, name)
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	if dir := os.Getenv("DIONYSIA_SCREENSHOT_DIR"); dir != "" {
		require.NoError(b.t, os.MkdirAll(dir, 0o755))
		path = filepath.Join(dir, name)
		require.NoError(b.t, os.WriteFile(path, png, 0o644))
	}
	return path
}

// TestDashboardAsksForToken: against a node with --api-token the page asks
// for the token, says so when it is refused, and then works with it.
func TestDashboardAsksForToken(t *testing.T) {
	testcluster.Media(t)
	needChromium(t)
	var raw [16]byte
	_, err := rand.Read(raw[:])
	require.NoError(t, err)
	token := hex.EncodeToString(raw[:])
	c := testcluster.Start(t, testcluster.Options{APITokens: []string{token}})
	n := c.Node(0)
	c.WaitLeader(20 * time.Second)

	b := newBrowser(t)
	b.run(chromedp.Navigate(n.HTTPURL() + "/"))
	b.waitJS(10*time.Second, "the token dialog", `document.getElementById('token-dialog').open`)
	b.run(chromedp.SendKeys(`#token-input`, "not-the-token", chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery))
	b.waitJS(10*time.Second, "the refused token reported",
		`document.getElementById('token-dialog').open && document.getElementById('token-error').innerText.includes('refused')`)
	b.run(chromedp.Evaluate(`document.getElementById('token-input').value = ''`, nil),
		chromedp.SendKeys(`#token-input`, token, chromedp.ByQuery),
		chromedp.Click(`#token-form button[type="submit"]`, chromedp.ByQuery))
	b.waitJS(10*time.Second, "the node listed with the token",
		`!document.getElementById('token-dialog').open && document.getElementById('nodes-body').innerText.includes('`+n.Name()+`')`)
	var kept string
	b.run(chromedp.Evaluate(`sessionStorage.getItem('dionysia.apiToken')`, &kept))
	require.Equal(t, token, kept)
}

// needChromium skips the test without Debian's chromium, except in CI.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI but missing (scripts/deps.sh --test installs it)", chromiumBin)
		}
		t.Skipf("%s not found (run scripts/deps.sh --test); skipping the browser test", chromiumBin)
	}
}

// playerState is what the page says about its preview player.
type playerState struct {
	CurrentTime   float64  `json:"currentTime"`
	ReadyState    int      `json:"readyState"`
	Paused        bool     `json:"paused"`
	VideoWidth    int      `json:"videoWidth"`
	VideoHeight   int      `json:"videoHeight"`
	Engine        string   `json:"engine"`
	MediaAttached bool     `json:"mediaAttached"`
	FragLoaded    int      `json:"fragLoaded"`
	FragParsed    int      `json:"fragParsed"`
	Errors        []string `json:"errors"`
}

const playerStateJS = `(() => {
	const v = document.getElementById('preview-video');
	const p = window.dionysiaPreview || {};
	return {currentTime: v.currentTime, readyState: v.readyState, paused: v.paused,
		videoWidth: v.videoWidth, videoHeight: v.videoHeight, engine: p.engine,
		mediaAttached: !!p.mediaAttached, fragLoaded: p.fragLoaded || 0, fragParsed: p.fragParsed || 0,
		errors: p.errors || []};
})()`

// browser is one headless Chromium with one tab, closed when the test ends.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string // the test's screenshot dir

	mu  sync.Mutex
	log []string // the page's console and uncaught exceptions
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes (the network service) may
	// still write to the profile for a moment after the browser has exited,
	// and t.TempDir's single RemoveAll then fails the test. Registered
	// before the cancels below, so it runs after them.
	profile, err := os.MkdirTemp("", "dionysia-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() {
		testcluster.Eventually(t, 10*time.Second, "chromium's profile dir removed", func() error {
			return os.RemoveAll(profile)
		})
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumBin),
		chromedp.Headless, // --headless
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
		// The WebRTC preview comes from a node on 127.0.0.1: Chromium must
		// offer its loopback address, as itself, not behind an mDNS name.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.UserDataDir(profile),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The whole browser part of the test must end well within a minute.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			}
			line = string(e.Type) + ": " + strings.Join(parts, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Error()
		default:
			return
		}
		b.mu.Lock()
		b.log = append(b.log, line)
		b.mu.Unlock()
	})
	// Starts Chromium, with the viewport the screenshots show.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 1040)); err != nil {
		t.Fatalf("start %s: %v", chromiumBin, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", b.console())
		}
	})
	return b
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nconsole: %s", err, b.console())
	}
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(timeout time.Duration, what, expr string) {
	b.t.Helper()
	testcluster.Eventually(b.t, timeout, what, func() error {
		var ok bool
		if err := chromedp.Run(b.ctx, chromedp.Evaluate(`!!(`+expr+`)`, &ok)); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is false", expr)
		}
		return nil
	})
}

func (b *browser) console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.log) == 0 {
		return "(empty)"
	}
	j, _ := json.MarshalIndent(b.log, "", "  ")
	return string(j)
}

// TestDashboardSignedPreviewWithoutURL: when the API cannot sign a playback
// URL for a signed input, the preview says why and does not play the
// unsigned URL (which can only answer 403). The API is a stand-in: no node,
// no media.
func TestDashboardSignedPreviewWithoutURL(t *testing.T) {
	needChromium(t)
	var liveHits atomic.Int32
	answer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/nodes", answer(http.StatusOK, `{"nodes":[{"name":"n0","state":"alive","raft_role":"leader","local":true,"owned_streams":["in1"]}]}`))
	mux.Handle("GET /v1/cluster", answer(http.StatusOK, `{"node":"n0","leader":"n0","members":[],"raft_servers":[]}`))
	mux.Handle("GET /v1/inputs", answer(http.StatusOK, `{"inputs":[{"id":"in1","name":"Signed show","enabled":true,"live":true,`+
		`"playback_policy":"signed","stream_key":"k","ingest":{},"playback":{}}]}`))
	mux.Handle("GET /v1/profiles", answer(http.StatusOK, `{"profiles":[],"default_profile_id":""}`))
	mux.Handle("GET /v1/inputs/in1/status", answer(http.StatusOK, `{"input_id":"in1","live":true}`))
	mux.Handle("POST /v1/inputs/in1/playback-url", answer(http.StatusServiceUnavailable, `{"error":"no raft leader: retry"}`))
	mux.HandleFunc("/live/", func(w http.ResponseWriter, _ *http.Request) {
		liveHits.Add(1)
		http.Error(w, "403 token required", http.StatusForbidden)
	})
	mux.Handle("/", dashboard.Handler(dashboard.Config{HLSJSPath: testcluster.HLSJSPath()}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := newBrowser(t)
	b.run(chromedp.Navigate(srv.URL + "/#inputs"))
	preview := `article[data-id="in1"] .card-actions button.primary`
	b.waitJS(10*time.Second, "the live input's preview button", `!document.querySelector('`+preview+`').disabled`)
	b.run(chromedp.Click(preview, chromedp.ByQuery))
	b.waitJS(10*time.Second, "the signing failure shown in the preview",
		`!document.getElementById('preview').hidden && `+
			`document.getElementById('preview-error').innerText.includes('signed playback URL: no raft leader')`)
	require.Zero(t, liveHits.Load(), "the unsigned playback URL was requested")
}
