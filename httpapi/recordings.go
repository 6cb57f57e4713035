package httpapi

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/dionysia/dionysia/fsm"
)

// recordingView is a recording as the API shows it: the stored fields and
// where to play it (any node serves it).
type recordingView struct {
	*fsm.Recording
	Playback RecordingLinks `json:"playback"`
}

// RecordingLinks are a recording's VOD playlists: HLS, and DASH (for
// fMP4 recordings: an MPEG-TS one answers 404 there).
type RecordingLinks struct {
	HLS  string `json:"hls"`
	DASH string `json:"dash"`
}

func (a *API) recordingView(rec *fsm.Recording) recordingView {
	if rec.Nodes == nil {
		rec.Nodes = []string{}
	}
	if rec.Renditions == nil {
		rec.Renditions = []string{}
	}
	base := a.b.BaseURL() + "/vod/" + rec.ID + "/"
	return recordingView{Recording: rec, Playback: RecordingLinks{HLS: base + "master.m3u8", DASH: base + "manifest.mpd"}}
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request) {
	input := r.URL.Query().Get("input_id")
	a.writeRecordings(w, input)
}

func (a *API) listInputRecordings(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if a.b.State().Input(id) == nil && len(a.b.State().Recordings(id)) == 0 {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	a.writeRecordings(w, id)
}

func (a *API) writeRecordings(w http.ResponseWriter, inputID string) {
	recs := a.b.State().Recordings(inputID)
	out := make([]recordingView, 0, len(recs))
	for _, rec := range recs {
		out = append(out, a.recordingView(rec))
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

func (a *API) getRecording(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	rec := a.b.State().Recording(id)
	if rec == nil {
		writeError(w, notFoundErr("id", "recording "+quote(id)+" not found"))
		return
	}
	writeJSON(w, http.StatusOK, a.recordingView(rec))
}

// recordingPatchBody: expires_at null keeps the recording until deleted.
type recordingPatchBody struct {
	ExpiresAt *string `json:"expires_at"`
}

func (a *API) patchRecording(w http.ResponseWriter, r *http.Request) {
	var body recordingPatchBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	p := &fsm.RecordingPatch{}
	if body.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339Nano, *body.ExpiresAt)
		if err != nil {
			writeError(w, badRequest("expires_at", "expires_at must be an RFC 3339 time (2026-12-01T00:00:00Z) or null"))
			return
		}
		p.ExpiresAt = at.UTC()
	}
	id := mux.Vars(r)["id"]
	res, err := a.apply(r, fsm.Command{Op: fsm.OpPatchRecording, ID: id, RecordingPatch: p})
	if err != nil {
		writeError(w, err)
		return
	}
	rec := res.Recording
	if rec == nil {
		// Answered by a leader from before recordings carried results.
		if rec = a.b.State().Recording(id); rec == nil {
			writeError(w, notFoundErr("id", "recording "+quote(id)+" not found"))
			return
		}
	}
	writeJSON(w, http.StatusOK, a.recordingView(rec))
}

func (a *API) deleteRecording(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	rec := a.b.State().Recording(id)
	if rec == nil {
		writeError(w, notFoundErr("id", "recording "+quote(id)+" not found"))
		return
	}
	if rec.Status == fsm.RecordingActive {
		writeError(w, &apiError{Status: http.StatusConflict, Field: "id",
			Message: "recording " + quote(id) + " is still being made: delete it once its show is over"})
		return
	}
	if _, err := a.apply(r, fsm.Command{Op: fsm.OpDeleteRecording, ID: id}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// vodOrigin answers /vod/{recording id}/{file} on every node: the
// recording's playlists (VOD, ENDLIST) and files, from whichever nodes hold
// them.
func (a *API) vodOrigin(w http.ResponseWriter, r *http.Request) {
	if !a.mediaRequest(w, r) {
		return
	}
	id, file, ok := splitMediaPath(r, "/vod/")
	if !ok {
		a.originError(w, http.StatusNotFound, "not found")
		return
	}
	rec := a.b.State().Recording(id)
	if rec == nil {
		a.originError(w, http.StatusNotFound, "unknown recording")
		return
	}
	signed := rec.PlaybackPolicy == fsm.PlaybackSigned
	if signed {
		if err := checkPlaybackToken(a.b.PlaybackKey(), rec.InputID, r.URL.Query(), time.Now()); err != nil {
			a.metrics.origin.WithLabelValues("denied", "403").Inc()
			a.originError(w, http.StatusForbidden, err.Error())
			return
		}
	}
	f, err := a.b.VOD(r.Context(), id, file)
	if err != nil {
		a.liveError(w, file, err)
		return
	}
	if f.Kind == "playlist" && rec.Status == fsm.RecordingReady {
		// A finished recording's playlists do not change any more (but
		// its nodes may still come and go: not immutable).
		f.Kind = "vod-playlist"
	}
	a.serveLive(w, r, f, signed)
}
