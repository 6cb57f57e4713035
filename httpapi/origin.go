package httpapi

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/fsm"
)

// origin answers /live/{input id}/{file}: the owner serves the file from its
// output folder, every other node redirects to the owner with the query kept.
func (a *API) origin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range, Origin, Accept")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		a.originError(w, http.StatusMethodNotAllowed, "method not allowed")
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
	rt, err := a.b.Route(id)
	if err != nil {
		a.originError(w, http.StatusServiceUnavailable, "no node can serve this input right now")
		return
	}
	if !rt.Local {
		// A CDN must not remember where a stream was: after a failover the
		// owner changes.
		h.Set("Cache-Control", "no-store")
		h.Set("Location", rt.Origin+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		a.metrics.redirects.Inc()
		return
	}
	a.serveFile(w, r, id, file, signed)
}

// splitLivePath returns the input id and the file path below it. It refuses
// anything that could step outside the input's folder: dot segments, empty
// segments, backslashes, NULs and encoded slashes (which net/url decodes into
// Path and would otherwise change the meaning of the path).
func splitLivePath(r *http.Request) (id, file string, ok bool) {
	if r.URL.RawPath != "" && strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
		return "", "", false
	}
	rest := strings.TrimPrefix(r.URL.Path, "/live/")
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

func (a *API) serveFile(w http.ResponseWriter, r *http.Request, id, file string, signed bool) {
	kind, ctype, cache := classify(file)
	// os.Root refuses any path that leaves the folder, symlinks included.
	root, err := os.OpenRoot(a.b.OutputDir(id))
	if err != nil {
		a.originMiss(w, kind, err)
		return
	}
	defer root.Close()
	f, err := root.Open(file)
	if err != nil {
		a.originMiss(w, kind, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		a.originMiss(w, kind, fs.ErrNotExist)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cache)
	a.metrics.origin.WithLabelValues(kind, "200").Inc()
	if kind == "playlist" && signed {
		// Every URI in the playlist gets the viewer's token, so the
		// player's next requests are authorised too.
		b, err := io.ReadAll(io.LimitReader(f, 4<<20))
		if err != nil {
			a.originMiss(w, kind, err)
			return
		}
		q := r.URL.Query()
		b = signPlaylist(b, "exp="+url.QueryEscape(q.Get("exp"))+"&token="+url.QueryEscape(q.Get("token")))
		h.Set("Cache-Control", "private, max-age=1")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		return
	}
	if kind == "playlist" {
		// Playlists change every segment: no validators, so nothing serves
		// a stale one with 304.
		h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		if r.Method == http.MethodHead {
			return
		}
		// A zero modtime: no Last-Modified, If-Modified-Since ignored.
		http.ServeContent(w, r, "", time.Time{}, f)
		return
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (a *API) originMiss(w http.ResponseWriter, kind string, err error) {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || isEscape(err) {
		a.metrics.origin.WithLabelValues(kind, "404").Inc()
		a.originError(w, http.StatusNotFound, "not found (is the stream live?)")
		return
	}
	a.log.Warn("origin read failed", "err", err)
	a.metrics.origin.WithLabelValues(kind, "500").Inc()
	a.originError(w, http.StatusInternalServerError, "cannot read file")
}

func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
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

// classify returns the kind (for metrics), the content type and the cache
// policy of an output file. Segment names carry an epoch-based sequence
// number and are never rewritten, so they can be cached for good; playlists
// and init segments are rewritten in place.
func classify(file string) (kind, ctype, cache string) {
	switch path.Ext(file) {
	case ".m3u8":
		return "playlist", "application/vnd.apple.mpegurl", "public, max-age=1"
	case ".mpd":
		return "playlist", "application/dash+xml", "public, max-age=1"
	case ".ts":
		return "segment", "video/mp2t", "public, max-age=31536000, immutable"
	case ".m4s":
		return "segment", "video/iso.segment", "public, max-age=31536000, immutable"
	case ".mp4":
		return "init", "video/mp4", "public, max-age=2"
	case ".aac":
		return "segment", "audio/aac", "public, max-age=31536000, immutable"
	case ".vtt":
		return "segment", "text/vtt", "public, max-age=31536000, immutable"
	default:
		return "other", "application/octet-stream", "public, max-age=1"
	}
}
