package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/gorilla/mux"
)

// maxSDP bounds an SDP offer: a browser's is a few kB.
const maxSDP = 64 << 10

// previewWHEP is the dashboard's sub-second monitor of a live input's
// source: the browser's WHEP offer (application/sdp) goes, through this
// node, to the mediamtx of the node the publisher is connected to, which
// reads with the cluster's own credentials; the SDP answer comes back and
// the media flows from that node straight to the browser. The page needs
// the API token only: neither the stream key (in mediamtx's path name) nor
// any media credential reaches it.
func (a *API) previewWHEP(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if a.b.State().Input(id) == nil {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		writeError(w, &apiError{Status: http.StatusUnsupportedMediaType, Message: "the body must be an SDP offer (Content-Type: application/sdp)"})
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDP))
	if err != nil {
		writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Message: "SDP offer too large"})
		return
	}
	answer, err := a.b.PreviewWHEP(r.Context(), id, offer)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			writeError(w, notFoundErr("id", err.Error()))
			return
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
}
