package player

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

//go:embed whip.js
var whipJS []byte

// whipEngine names a Player that publishes (WHIP) instead of playing.
const whipEngine = "whip"

const whipPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>dionysia test WHIP publisher</title><link rel="icon" href="data:,"></head>
<body><script src="/config.js"></script><script src="/whip.js"></script></body></html>
`

// WHIPOptions say where a WHIPPublisher publishes.
type WHIPOptions struct {
	URL   string // the WHIP endpoint, e.g. http://node:8889/live/KEY/whip
	Token string // sent as "Authorization: Bearer <Token>" when set
	// Width, Height and FPS of the fake camera; 0 = 320x240 at 15.
	Width, Height, FPS int
}

// WHIPState is how far the page got.
type WHIPState struct {
	State      string  `json:"state"` // starting, answered or failed
	Error      string  `json:"error"`
	ICE        string  `json:"ice"`        // RTCPeerConnection.iceConnectionState
	Connection string  `json:"connection"` // RTCPeerConnection.connectionState
	VideoCodec string  `json:"videoCodec"` // what the endpoint took, e.g. video/H264
	AudioCodec string  `json:"audioCodec"`
	Location   string  `json:"location"` // the WHIP session URL
	AnsweredMs float64 `json:"answeredMs"`
	// ConnectedMs is when media started to flow, from the page's start.
	ConnectedMs float64 `json:"connectedMs"`
	// PostedAt is when the page POSTed its offer, in Unix milliseconds of
	// the machine's clock: a start time a benchmark can compare with its own.
	PostedAt float64 `json:"postedAt"`
	// PostedMs is the same moment from the page's start, as AnsweredMs.
	PostedMs float64 `json:"postedMs"`
}

// WHIPPublisher is a headless Chromium that publishes its fake camera and
// microphone (a test pattern and a beep) over WebRTC to a WHIP endpoint,
// as a browser or OBS's WHIP output does.
type WHIPPublisher struct {
	p *Player
}

// PublishWHIP opens Chromium with a fake camera and microphone and starts
// publishing; it returns once the page runs. Use WaitConnected. Loopback
// only: Chromium may use its loopback candidate, and only that one works
// with a node bound to 127.0.0.1. Skipped like Start (-short, no Chromium,
// except in CI).
func PublishWHIP(t testing.TB, o WHIPOptions) *WHIPPublisher {
	t.Helper()
	if testing.Short() {
		t.Skip("real browser publisher; skipped with -short")
	}
	if o.URL == "" {
		t.Fatalf("whip: no URL")
	}
	if o.Width == 0 {
		o.Width, o.Height = 320, 240
	}
	if o.FPS == 0 {
		o.FPS = 15
	}
	if _, err := os.Stat(chromiumBin); err != nil {
		missing(t, chromiumBin)
	}
	mux, err := PageMux(whipPage, "whipConfig", map[string]any{"url": o.URL, "token": o.Token, "width": o.Width, "height": o.Height, "fps": o.FPS},
		map[string][]byte{"whip.js": whipJS}, "")
	if err != nil {
		t.Fatalf("whip: %v", err)
	}
	p := &Player{t: t, name: "whip", opts: Options{URL: o.URL, Engine: whipEngine}}
	p.launch(mux, `!!window.whip`, []chromedp.ExecAllocatorOption{
		// A camera and a microphone that need no device and no prompt.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// The node listens on 127.0.0.1: Chromium must offer its loopback
		// address, as itself and not behind an mDNS name.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	})
	return &WHIPPublisher{p: p}
}

// State is how far the page got; a browser that does not answer fails the
// test.
func (w *WHIPPublisher) State() WHIPState {
	w.p.t.Helper()
	var s WHIPState
	if err := w.p.eval(`window.whip`, &s); err != nil {
		w.p.t.Fatalf("whip: read state: %v\nconsole:\n%s", err, w.p.Console())
	}
	return s
}

// WaitConnected waits until the endpoint has answered and media flows (the
// peer connection is connected); a refusal or a failed connection fails
// the test at once, with the page's console.
func (w *WHIPPublisher) WaitConnected(timeout time.Duration) WHIPState {
	w.p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := w.State()
		switch {
		case s.State == "failed":
			w.p.t.Fatalf("whip: %s (%+v)\nconsole:\n%s", s.Error, s, w.p.Console())
		case s.State == "answered" && s.Connection == "connected":
			return s
		case time.Now().After(deadline):
			w.p.t.Fatalf("whip: not connected after %s: %+v\nconsole:\n%s", timeout, s, w.p.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OfferAnswer POSTs one more offer from the page to a WHIP (publish) or
// WHEP (read) endpoint, token as bearer when set, and returns the HTTP
// status and body of the answer: to check what an endpoint refuses.
func (w *WHIPPublisher) OfferAnswer(url, token string, publish bool) (int, string, error) {
	args, err := json.Marshal([]any{url, token, publish})
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(w.p.ctx, 20*time.Second)
	defer cancel()
	var res struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	err = chromedp.Run(ctx, chromedp.Evaluate(`window.offerAnswer(...`+string(args)+`)`, &res,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	return res.Status, res.Body, err
}

// RecvOffer is a browser's WHEP offer (recvonly video and audio, with its
// candidates), for a test to post where it likes.
func (w *WHIPPublisher) RecvOffer() (string, error) {
	ctx, cancel := context.WithTimeout(w.p.ctx, 20*time.Second)
	defer cancel()
	var sdp string
	err := chromedp.Run(ctx, chromedp.Evaluate(`window.recvOffer()`, &sdp,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	return sdp, err
}

// Console is what the page logged.
func (w *WHIPPublisher) Console() string { return w.p.Console() }

// Stop closes the browser: the publish ends as when a tab is closed.
func (w *WHIPPublisher) Stop() { w.p.Close() }

// String is a one-line summary.
func (s WHIPState) String() string {
	return fmt.Sprintf("%s (ice %s, connection %s, video %s, audio %s, offer posted after %.0f ms, answered after %.0f ms, connected after %.0f ms)%s",
		s.State, s.ICE, s.Connection, s.VideoCodec, s.AudioCodec, s.PostedMs, s.AnsweredMs, s.ConnectedMs, map[bool]string{true: ": " + s.Error}[s.Error != ""])
}
