package node_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
	"github.com/dionysia/dionysia/testcluster/player"
)

// TestIntegrationWHIPFromBrowser: headless Chromium publishes its fake
// camera and microphone over WebRTC (WHIP, the stream key as bearer token)
// to the node that does not own the input; the owner transcodes it like
// any other publish (Opus audio into AAC) and the ladder plays through the
// node the browser published to. Reading the stream back over WebRTC
// (WHEP) with the stream key is refused: the WebRTC server is for
// publishing.
func TestIntegrationWHIPFromBrowser(t *testing.T) {
	testcluster.Media(t)
	start := time.Now()
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.WaitMembers(2, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	profile := c.Node(0).CreateProfile(t, map[string]any{
		"name": "whip", "segment_seconds": 1, "video_preset": "ultrafast",
		"renditions": []map[string]any{
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 300, "audio_bitrate_kbps": 64, "fps": 15},
			{"name": "90p", "width": 160, "height": 90, "video_bitrate_kbps": 100, "audio_bitrate_kbps": 48, "fps": 15},
		},
	})
	in := c.Node(0).CreateInput(t, map[string]any{"name": "whip", "profile_id": profile})
	m, ok := c.Node(0).ClusterHandle().Owner(in.ID)
	require.True(t, ok)
	owner, ingest := c.Node(0), c.Node(1)
	if owner.Name() != m.Name {
		owner, ingest = ingest, owner
	}
	via := ingest.WaitInput(t, in.ID)
	whipURL := via.Ingest.WHIP
	require.Equal(t, "http://"+ingest.Config.WebRTCAddr+"/live/"+in.StreamKey+"/whip", whipURL)

	// The key as bearer token, the input's id in the URL: OBS's WHIP
	// settings (server URL and bearer token) with the key kept out of the URL.
	pub := player.PublishWHIP(t, player.WHIPOptions{
		URL:   strings.Replace(whipURL, "/"+in.StreamKey+"/", "/"+in.ID+"/", 1),
		Token: in.StreamKey,
	})
	st := pub.WaitConnected(30 * time.Second)
	connected := time.Now()
	t.Logf("whip: %s", st)

	testcluster.WaitPlayable(t, ingest, in.ID, 2, 1, 45*time.Second)
	t.Logf("WHIP media flowing → first playable (a segment in every playlist) through the ingest node: %s",
		time.Since(connected).Round(time.Millisecond))
	pb := testcluster.WaitPlayable(t, ingest, in.ID, 2, 2, 20*time.Second)

	// Transcoded like any other publish: H.264 video at the ladder's sizes,
	// the browser's Opus as AAC.
	require.Len(t, pb.Audio, 1, "one audio rendition")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := testcluster.ProbeSegment(ctx, pb, pb.Audio[0], len(pb.Media[pb.Audio[0]].Segments)-1)
	require.NoError(t, err)
	require.True(t, a.HasAudio())
	require.Equal(t, "aac", a.Streams[0].CodecName, "Opus from the browser becomes AAC")
	v, err := testcluster.ProbeSegment(ctx, pb, pb.Variants[0].URI, len(pb.Media[pb.Variants[0].URI].Segments)-1)
	require.NoError(t, err)
	codec, w, h, ok := v.Video()
	require.True(t, ok)
	require.Equal(t, "h264", codec)
	require.Positive(t, v.Frames)
	t.Logf("video %s %dx%d", codec, w, h)

	// The status names the protocol, the node the browser reached, and
	// the owner.
	testcluster.Eventually(t, 10*time.Second, "status: live over webrtc", func() error {
		r, err := ingest.Do(http.MethodGet, "/v1/inputs/"+in.ID+"/status", nil)
		if err != nil {
			return err
		}
		var s struct {
			State      string `json:"state"`
			Protocol   string `json:"protocol"`
			IngestNode string `json:"ingest_node"`
			OwnerNode  string `json:"owner_node"`
		}
		r.JSON(t, &s)
		if s.State != "live" || s.Protocol != "webrtc" || s.IngestNode != ingest.Name() || s.OwnerNode != owner.Name() {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})

	// Publish only: a WHEP read (a browser's real recvonly offer) is
	// refused, with the stream key as token and without; and a WHIP
	// publish with a wrong key is refused. mediamtx v1.15.3 answers an
	// offer its auth hook refused with 400 and the reason, not 401.
	webrtc := "http://" + ingest.Config.WebRTCAddr + "/live/"
	for _, tc := range []struct {
		what, url, token string
		publish          bool
	}{
		{"WHEP read with the stream key", webrtc + in.StreamKey + "/whep", in.StreamKey, false},
		{"WHEP read with the key in the path only", webrtc + in.StreamKey + "/whep", "", false},
		{"WHEP read of the input id with the key", webrtc + in.ID + "/whep", in.StreamKey, false},
		{"WHIP publish with a wrong key", webrtc + in.ID + "/whip", "sk-not-the-key", true},
	} {
		status, body, err := pub.OfferAnswer(tc.url, tc.token, tc.publish)
		require.NoError(t, err, tc.what)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, status, "%s: %s", tc.what, body)
		require.Contains(t, body, "authentication failed", tc.what)
	}
	// The dashboard's source preview, asked of the owner: the offer goes
	// to the ingest node's mediamtx, whose answer offers its ICE port.
	offer, err := pub.RecvOffer()
	require.NoError(t, err)
	r, err := owner.Do(http.MethodPost, "/v1/inputs/"+in.ID+"/whep", offer, "Content-Type", "application/sdp")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Equal(t, "application/sdp", r.Header.Get("Content-Type"))
	_, udpPort, _ := strings.Cut(ingest.Config.WebRTCUDPAddr, ":")
	require.Contains(t, string(r.Body), " "+udpPort+" typ host", "the ingest node's candidates")
	require.NotContains(t, string(r.Body)+fmt.Sprint(r.Header), in.StreamKey)

	// The browser's own publish went on meanwhile.
	require.Equal(t, "connected", pub.State().Connection)
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}
