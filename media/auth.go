package media

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// AuthRequest is what mediamtx POSTs to authHTTPAddress before every
// publish and read, and every control API call (metrics and pprof, which our
// config excludes, never reach it).
type AuthRequest struct {
	IP       string `json:"ip"`
	User     string `json:"user"`
	Password string `json:"password"`
	Token    string `json:"token"`
	// Action is "publish", "read", "playback" or "api" (metrics and pprof
	// are excluded in the config we write; api is answered by the handler
	// itself, see apiUser).
	Action   string `json:"action"`
	Path     string `json:"path"`
	Protocol string `json:"protocol"` // rtsp, rtmp, srt, ...
	ID       string `json:"id"`       // connection id; empty for some protocols
	Query    string `json:"query"`
}

const (
	// authTimeout bounds one Authorize call. mediamtx gives up on the hook
	// after its readTimeout (10s by default); answering well before that
	// makes a slow decision a clean refusal instead of a mediamtx timeout.
	authTimeout = 5 * time.Second
	// authMaxBody is far above any real request (a few hundred bytes).
	authMaxBody = 64 << 10
	// authPath is where the hook listens; mediamtx is pointed at it.
	authPath = "/auth"
	// apiUser is the control API user of the node's own calls (Paths,
	// Ready); its password is random per MediaMTX and never leaves the
	// process.
	apiUser = "dionysia-api"
)

// authHandler serves mediamtx's HTTP authentication hook: 200 lets the
// publish or read through, 401 refuses it, 400 is for a body that is not a
// request at all.
type authHandler struct {
	authorize func(ctx context.Context, req AuthRequest) error
	log       *slog.Logger
	// apiPass authorises "api" requests of apiUser. The control API listens
	// on loopback but can rewrite mediamtx's whole config (the auth hook,
	// runOn* commands): without a password any local user could.
	apiPass string
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != authPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req AuthRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, authMaxBody))
	if err := dec.Decode(&req); err != nil {
		h.log.Warn("mediamtx auth: bad request body", "err", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if req.Action == "api" {
		if h.apiPass != "" && req.User == apiUser &&
			subtle.ConstantTimeCompare([]byte(req.Password), []byte(h.apiPass)) == 1 {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), authTimeout)
	defer cancel()
	if err := h.authorize(ctx, req); err != nil {
		// The Authorize hook logs refusals that matter; RTSP clients ask
		// once without credentials before every authenticated read, so
		// this line is debug. The password and the path (it may hold a
		// stream key) are never logged here.
		h.log.Debug("mediamtx auth: refused", "action", req.Action, "protocol", req.Protocol, "ip", req.IP, "err", err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}
