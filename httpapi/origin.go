package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// origin answers /live/{input id}/{file} on every node: the owner from its
// packager, any other node through the internal channel (or, with
// RedirectOrigin, a 307 to the owner with the query kept).
func (a *API) origin(w http.ResponseWriter, r *http.Request) {
	if !a.mediaRequest(w, r) {
		return
	}
	id, file, ok := splitLivePath(r)
	if !ok {
		a.originError(w, http.StatusNotFound, "not found")
		return
	}
	policy, ok := a.b.State().PlaybackPolicy(id)
	if !ok {
		a.originError(w, http.StatusNotFound, "unknown input")
		return
	}
	signed := policy == fsm.PlaybackSigned
	if signed {
		if err := checkPlaybackToken(a.b.PlaybackKey(), id, r.URL.Query(), time.Now()); err != nil {
			a.metrics.origin.WithLabelValues("denied", "403").Inc()
			a.originError(w, http.StatusForbidden, err.Error())
			return
		}
	}
	if a.cfg.RedirectOrigin {
		if rt, err := a.b.Route(id); err == nil && !rt.Local && r.Header.Get(hopHeader) == "" {
			// A CDN must not remember where a stream was: after a
			// failover the owner changes.
			h := w.Header()
			h.Set("Cache-Control", "no-store")
			h.Set("Location", rt.Origin+r.URL.RequestURI())
			w.WriteHeader(http.StatusTemporaryRedirect)
			a.metrics.redirects.Inc()
			return
		}
	}
	f, err := a.b.Live(r.Context(), id, file, r.URL.Query())
	if err != nil {
		a.liveError(w, file, err)
		return
	}
	a.serveLive(w, r, f, signed)
}

// hopHeader marks a request another node forwarded; it is never redirected.
const hopHeader = "X-Dionysia-Hop"

func (a *API) liveError(w http.ResponseWriter, file string, err error) {
	kind := kindOf(file)
	var bad *packager.BadRequestError
	switch {
	case errors.Is(err, packager.ErrNotFound) && file == packager.ThumbnailName:
		a.metrics.origin.WithLabelValues(kind, "404").Inc()
		a.originError(w, http.StatusNotFound, "no thumbnail yet (is the stream live?)")
	case errors.Is(err, packager.ErrNotFound):
		a.metrics.origin.WithLabelValues(kind, "404").Inc()
		a.originError(w, http.StatusNotFound, "not found (is the stream live?)")
	case errors.As(err, &bad):
		a.metrics.origin.WithLabelValues(kind, "400").Inc()
		a.originError(w, http.StatusBadRequest, bad.Msg)
	case errors.Is(err, context.Canceled):
		// The viewer left.
	default:
		a.metrics.origin.WithLabelValues(kind, "503").Inc()
		w.Header().Set("Retry-After", "1")
		a.originError(w, http.StatusServiceUnavailable, "stream temporarily unavailable, retry: "+err.Error())
	}
}

// serveLive writes one packager file with the cache policy a CDN needs:
// segments, parts and init segments never change under their names;
// playlists change with every segment (or part), and a blocking reload's
// answer is specific to its query.
func (a *API) serveLive(w http.ResponseWriter, r *http.Request, f packager.File, signed bool) {
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	if f.Source != "" {
		h.Set("X-Dionysia-Source", f.Source)
	}
	body := f.Body
	switch {
	case f.Immutable:
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	case f.Kind == "thumbnail":
		// A new picture comes every few seconds (media.ThumbnailSeconds).
		h.Set("Cache-Control", "public, max-age=5")
	case f.Kind == "vod-playlist":
		h.Set("Cache-Control", "public, max-age=60")
		f.Kind = "playlist"
	case r.URL.Query().Get("_HLS_msn") != "":
		h.Set("Cache-Control", "public, max-age=6")
	default:
		h.Set("Cache-Control", "public, max-age=1")
	}
	if f.Kind == "playlist" && signed {
		// Every URI in the playlist gets the viewer's token, so the
		// player's next requests are authorised too.
		q := r.URL.Query()
		suffix := "exp=" + url.QueryEscape(q.Get("exp")) + "&token=" + url.QueryEscape(q.Get("token"))
		if f.ContentType == "application/dash+xml" {
			body = signMPD(body, suffix)
		} else {
			body = signPlaylist(body, suffix)
		}
		h.Set("Cache-Control", "private, max-age=1")
	}
	a.metrics.origin.WithLabelValues(f.Kind, "200").Inc()
	if f.Progressive != nil {
		// Chunked transfer as the fragments arrive: no length, no ranges.
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		flush := func() {}
		if fl, ok := w.(http.Flusher); ok {
			flush = fl.Flush
		}
		_ = f.Progressive(r.Context(), w, flush)
		return
	}
	// A zero modtime: no Last-Modified, so nothing serves a stale playlist
	// with 304. Ranges still work (players and CDNs use them on segments).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// serveTime is the wall clock, ISO 8601 with milliseconds.
func serveTime(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write([]byte(time.Now().UTC().Format("2006-01-02T15:04:05.000Z")))
}

// mediaRequest answers what every media origin (/live, /vod) answers the
// same way: CORS for players on other origins, OPTIONS preflights, and
// methods other than GET and HEAD. It reports whether to go on.
func (a *API) mediaRequest(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range, Origin, Accept")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		a.originError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
	return false
}

// splitLivePath is splitMediaPath for /live/{input id}/{file}.
func splitLivePath(r *http.Request) (id, file string, ok bool) {
	return splitMediaPath(r, "/live/")
}

// splitMediaPath returns the id after prefix and the file path below it.
// It refuses anything that could step outside the id's folder: dot
// segments, empty segments, backslashes, NULs and encoded slashes (which
// net/url decodes into Path and would otherwise change the meaning of the
// path).
func splitMediaPath(r *http.Request, prefix string) (id, file string, ok bool) {
	rest, found := strings.CutPrefix(r.URL.Path, prefix)
	if !found || (r.URL.RawPath != "" && strings.Contains(strings.ToLower(r.URL.RawPath), "%2f")) {
		return "", "", false
	}
	id, file, ok = strings.Cut(rest, "/")
	if !ok || !isID(id) || file == "" || len(file) > 256 {
		return "", "", false
	}
	for _, seg := range strings.Split(file, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return "", "", false
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return "", "", false
			}
		}
	}
	return id, file, true
}

func (a *API) originError(w http.ResponseWriter, status int, msg string) {
	// Short negative caching: a CDN should ask again soon, the stream may
	// start any second.
	w.Header().Set("Cache-Control", "max-age=1")
	writeJSONStatusOnly(w, status, msg)
}

func writeJSONStatusOnly(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":` + strconv.Quote(msg) + "}\n"))
}

// kindOf names what a file is, for metrics of requests that failed.
func kindOf(file string) string {
	switch path.Ext(file) {
	case ".m3u8", ".mpd":
		return "playlist"
	case ".m4s", ".ts":
		return "segment"
	case ".mp4":
		return "init"
	case ".jpg":
		return "thumbnail"
	default:
		return "other"
	}
}
