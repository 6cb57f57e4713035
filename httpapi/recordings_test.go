package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func TestInputRecordingSettings(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"name":"a","dvr_window_seconds":-1}`, "dvr_window_seconds"},
		{`{"name":"a","dvr_window_seconds":29}`, "dvr_window_seconds"},
		{`{"name":"a","dvr_window_seconds":14401}`, "dvr_window_seconds"},
		{`{"name":"a","recording_retention_days":-1}`, "recording_retention_days"},
		{`{"name":"a","recording_retention_days":3651}`, "recording_retention_days"},
		{`{"name":"a","record":"yes"}`, "record"},
	} {
		requireAPIError(t, e.do(http.MethodPost, "/v1/inputs", tc.body), http.StatusBadRequest, tc.field)
	}
	rec := e.do(http.MethodPost, "/v1/inputs", `{"name":"a"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	plain := decodeBody[map[string]any](t, rec)
	require.Equal(t, false, plain["record"], "off unless asked")
	require.Equal(t, 0.0, plain["dvr_window_seconds"])
	require.NotContains(t, plain["playback"], "dvr")

	rec = e.do(http.MethodPost, "/v1/inputs", `{"name":"b","record":true,"dvr_window_seconds":14400,"recording_retention_days":30}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	in := decodeBody[struct {
		ID                     string        `json:"id"`
		Record                 bool          `json:"record"`
		DVRWindowSeconds       int           `json:"dvr_window_seconds"`
		RecordingRetentionDays int           `json:"recording_retention_days"`
		Playback               PlaybackLinks `json:"playback"`
	}](t, rec)
	require.True(t, in.Record)
	require.Equal(t, 14400, in.DVRWindowSeconds)
	require.Equal(t, 30, in.RecordingRetentionDays)
	require.Equal(t, "", in.Playback.DVR, "the fake's links; the node's test checks the URL")

	requireAPIError(t, e.do(http.MethodPatch, "/v1/inputs/"+in.ID, `{"dvr_window_seconds":10}`), http.StatusBadRequest, "dvr_window_seconds")
	rec = e.do(http.MethodPatch, "/v1/inputs/"+in.ID, `{"record":false,"dvr_window_seconds":0}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := e.b.State().Input(in.ID)
	require.False(t, got.Record)
	require.Zero(t, got.DVRWindowSeconds)
	require.Equal(t, 30, got.RecordingRetentionDays)
}

func putRecording(t *testing.T, e *testEnv, r fsm.Recording) {
	t.Helper()
	res := e.b.state.ApplyCommand(fsm.Command{Op: fsm.OpPutRecording, At: time.Now().UTC(), Node: "n1", Recording: &r})
	require.NoError(t, res.Err)
}

func TestRecordingRoutes(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/inputs", `{"name":"show","record":true}`)
	require.Equal(t, http.StatusCreated, rec.Code)
	in := decodeBody[struct{ ID string }](t, rec)
	putRecording(t, e, fsm.Recording{ID: "rec-old", InputID: in.ID, StreamID: "s1", Status: fsm.RecordingReady, StartedAt: time.Now().Add(-time.Hour)})
	putRecording(t, e, fsm.Recording{ID: "rec-live", InputID: in.ID, StreamID: "s2", Status: fsm.RecordingActive, StartedAt: time.Now()})

	type view struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Nodes    []string `json:"nodes"`
		Playback struct {
			HLS  string `json:"hls"`
			DASH string `json:"dash"`
		} `json:"playback"`
	}
	list := decodeBody[struct{ Recordings []view }](t, e.do(http.MethodGet, "/v1/inputs/"+in.ID+"/recordings", nil))
	require.Len(t, list.Recordings, 2)
	require.Equal(t, "rec-live", list.Recordings[0].ID, "newest first")
	require.Equal(t, "http://node.test:8080/vod/rec-old/master.m3u8", list.Recordings[1].Playback.HLS)
	require.Equal(t, "http://node.test:8080/vod/rec-old/manifest.mpd", list.Recordings[1].Playback.DASH)
	require.Equal(t, []string{"n1"}, list.Recordings[1].Nodes)
	all := decodeBody[struct{ Recordings []view }](t, e.do(http.MethodGet, "/v1/recordings?input_id="+in.ID, nil))
	require.Equal(t, list, all)
	requireAPIError(t, e.do(http.MethodGet, "/v1/inputs/nope/recordings", nil), http.StatusNotFound, "id")

	v := decodeBody[view](t, e.do(http.MethodGet, "/v1/recordings/rec-old", nil))
	require.Equal(t, fsm.RecordingReady, v.Status)
	requireAPIError(t, e.do(http.MethodGet, "/v1/recordings/nope", nil), http.StatusNotFound, "id")

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	rec = e.do(http.MethodPatch, "/v1/recordings/rec-old", `{"expires_at":"`+exp.Format(time.RFC3339)+`"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, exp, e.b.State().Recording("rec-old").ExpiresAt)
	rec = e.do(http.MethodPatch, "/v1/recordings/rec-old", `{"expires_at":null}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.True(t, e.b.State().Recording("rec-old").ExpiresAt.IsZero(), "null keeps it")
	requireAPIError(t, e.do(http.MethodPatch, "/v1/recordings/rec-old", `{"expires_at":"tomorrow"}`), http.StatusBadRequest, "expires_at")

	requireAPIError(t, e.do(http.MethodDelete, "/v1/recordings/rec-live", nil), http.StatusConflict, "id")
	rec = e.do(http.MethodDelete, "/v1/recordings/rec-old", nil)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Nil(t, e.b.State().Recording("rec-old"))
	requireAPIError(t, e.do(http.MethodDelete, "/v1/recordings/rec-old", nil), http.StatusNotFound, "id")
}

func TestVODOrigin(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/inputs", `{"name":"pub"}`)
	pub := decodeBody[struct{ ID string }](t, rec)
	rec = e.do(http.MethodPost, "/v1/inputs", `{"name":"paid","playback_policy":"signed"}`)
	paid := decodeBody[struct{ ID string }](t, rec)
	putRecording(t, e, fsm.Recording{ID: "rec-pub", InputID: pub.ID, StreamID: "s", Status: fsm.RecordingReady})
	putRecording(t, e, fsm.Recording{ID: "rec-paid", InputID: paid.ID, StreamID: "s", Status: fsm.RecordingActive})
	master := "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8\n"
	e.b.vod = map[string]map[string][]byte{
		"rec-pub":  {"master.m3u8": []byte(master), "v/s-1.m4s": []byte("seg")},
		"rec-paid": {"master.m3u8": []byte(master), "manifest.mpd": []byte(`<MPD type="static"><Period><AdaptationSet><SegmentTemplate initialization="$RepresentationID$/s-i1.mp4" media="$RepresentationID$/s-$Number$.m4s"></SegmentTemplate></AdaptationSet></Period></MPD>`)},
	}

	rec = e.do(http.MethodGet, "/vod/rec-pub/master.m3u8", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, "public, max-age=60", rec.Header().Get("Cache-Control"), "a finished recording's playlist")
	require.Equal(t, master, rec.Body.String())
	rec = e.do(http.MethodGet, "/vod/rec-pub/v/s-1.m4s", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "public, max-age=31536000, immutable", rec.Header().Get("Cache-Control"))

	for _, path := range []string{"/vod/nope/master.m3u8", "/vod/rec-pub/../x", "/vod/rec-pub/v/.hidden", "/vod/rec-pub/v/s-9.m4s"} {
		require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, path, nil).Code, path)
	}
	require.Equal(t, http.StatusMethodNotAllowed, e.do(http.MethodPost, "/vod/rec-pub/master.m3u8", "").Code)
	require.Equal(t, http.StatusNoContent, e.do(http.MethodOptions, "/vod/rec-pub/master.m3u8", nil).Code)

	// A signed input's recording needs that input's token, and its
	// playlists pass the token on.
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/vod/rec-paid/master.m3u8", nil).Code)
	exp := time.Now().Add(time.Minute).Unix()
	q := "?exp=" + strconv.FormatInt(exp, 10) + "&token=" + url.QueryEscape(SignPlayback(e.b.PlaybackKey(), paid.ID, exp))
	rec = e.do(http.MethodGet, "/vod/rec-paid/master.m3u8"+q, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "v/index.m3u8"+q)
	// ...and so do the MPD's segment templates (XML-escaped).
	rec = e.do(http.MethodGet, "/vod/rec-paid/manifest.mpd"+q, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/dash+xml", rec.Header().Get("Content-Type"))
	amp := strings.ReplaceAll(q, "&", "&amp;")
	require.Contains(t, rec.Body.String(), `initialization="$RepresentationID$/s-i1.mp4`+amp+`"`)
	require.Contains(t, rec.Body.String(), `media="$RepresentationID$/s-$Number$.m4s`+amp+`"`)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/vod/rec-paid/manifest.mpd", nil).Code)
	wrong := "?exp=" + strconv.FormatInt(exp, 10) + "&token=" + url.QueryEscape(SignPlayback(e.b.PlaybackKey(), pub.ID, exp))
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/vod/rec-paid/master.m3u8"+wrong, nil).Code, "another input's token")
}
