package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dionysia/dionysia/docs"
)

// Config builds an API.
type Config struct {
	Backend Backend
	// Tokens, when not empty, are the bearer tokens every /v1 request needs.
	Tokens []string
	// Metrics serves /metrics.
	Metrics http.Handler
	// Registerer receives the request metrics; nil = none.
	Registerer prometheus.Registerer
	// Dashboard serves / and whatever the router does not know; nil = 404.
	Dashboard http.Handler
	// RedirectOrigin answers a /live request for a stream another node owns
	// with a 307 to that node, for CDNs that follow redirects themselves;
	// by default every node answers every /live request itself.
	RedirectOrigin bool
	Logger         *slog.Logger
}

// API is the node's HTTP handler.
type API struct {
	cfg     Config
	b       Backend
	log     *slog.Logger
	router  *mux.Router
	tokens  [][]byte
	metrics *httpMetrics
}

// New builds the handler; it starts nothing.
func New(cfg Config) (*API, error) {
	if cfg.Backend == nil {
		return nil, errors.New("httpapi: Backend is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, b: cfg.Backend, log: cfg.Logger.With("component", "http")}
	for _, t := range cfg.Tokens {
		if t = strings.TrimSpace(t); t != "" {
			a.tokens = append(a.tokens, []byte(t))
		}
	}
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	a.router = a.routes()
	return a, nil
}

func (a *API) routes() *mux.Router {
	r := mux.NewRouter()
	r.StrictSlash(false)
	// Records the matched route template for metrics and logs: ServeHTTP
	// only sees the request before mux adds the route to it.
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if sw, ok := w.(*statusWriter); ok {
				sw.route = routeLabel(req)
			}
			next.ServeHTTP(w, req)
		})
	})
	// /v1 routes sit on the root router, each wrapped in requireToken,
	// instead of in a PathPrefix subrouter: gorilla/mux v1.8.1 subrouters
	// answer a wrong method with 404 (gorilla/mux#751).
	v1 := func(method, path string, h http.HandlerFunc) {
		var hh http.Handler = h
		if method == http.MethodPost {
			hh = a.idempotent(hh)
		}
		r.Handle("/v1"+path, a.requireToken(hh)).Methods(method)
	}
	v1(http.MethodGet, "/profiles", a.listProfiles)
	v1(http.MethodPost, "/profiles", a.createProfile)
	v1(http.MethodGet, "/profiles/{id}", a.getProfile)
	v1(http.MethodPut, "/profiles/{id}", a.updateProfile)
	v1(http.MethodDelete, "/profiles/{id}", a.deleteProfile)

	v1(http.MethodGet, "/inputs", a.listInputs)
	v1(http.MethodPost, "/inputs", a.createInput)
	v1(http.MethodGet, "/inputs/{id}", a.getInput)
	v1(http.MethodPatch, "/inputs/{id}", a.updateInput)
	v1(http.MethodDelete, "/inputs/{id}", a.deleteInput)
	v1(http.MethodPost, "/inputs/{id}/rotate-key", a.rotateKey)
	v1(http.MethodGet, "/inputs/{id}/status", a.inputStatus)
	v1(http.MethodPost, "/inputs/{id}/playback-url", a.playbackURL)
	v1(http.MethodPost, "/inputs/{id}/whep", a.previewWHEP)
	v1(http.MethodGet, "/inputs/{id}/recordings", a.listInputRecordings)

	v1(http.MethodGet, "/recordings", a.listRecordings)
	v1(http.MethodGet, "/recordings/{id}", a.getRecording)
	v1(http.MethodPatch, "/recordings/{id}", a.patchRecording)
	v1(http.MethodDelete, "/recordings/{id}", a.deleteRecording)

	v1(http.MethodGet, "/webhooks", a.listWebhooks)
	v1(http.MethodPost, "/webhooks", a.createWebhook)
	v1(http.MethodGet, "/webhooks/{id}", a.getWebhook)
	v1(http.MethodDelete, "/webhooks/{id}", a.deleteWebhook)
	v1(http.MethodGet, "/webhooks/{id}/deliveries", a.webhookDeliveries)

	v1(http.MethodGet, "/nodes", a.nodes)
	v1(http.MethodPost, "/nodes/{name}/drain", a.drainNode)
	v1(http.MethodPost, "/nodes/{name}/undrain", a.undrainNode)
	v1(http.MethodGet, "/cluster", a.cluster)
	v1(http.MethodGet, "/route/{id}", a.route)

	// The clock DASH players synchronise with (the MPD's UTCTiming).
	r.HandleFunc("/time", serveTime).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", a.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", a.readyz).Methods(http.MethodGet, http.MethodHead)
	if a.cfg.Metrics != nil {
		r.Handle("/metrics", a.cfg.Metrics).Methods(http.MethodGet)
	}
	r.HandleFunc("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(docs.OpenAPI)
	}).Methods(http.MethodGet, http.MethodHead)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFoundErr("", "not found: "+r.URL.Path))
	})
	if a.cfg.Dashboard != nil {
		notFound = a.cfg.Dashboard.ServeHTTP
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/") {
			writeError(w, notFoundErr("", "no such API route: "+r.Method+" "+r.URL.Path))
			return
		}
		notFound(w, r)
	})
	return r
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, &apiError{Message: "method " + r.Method + " is not allowed on " + r.URL.Path})
}

// ServeHTTP sends /live/ straight to the origin handler: it is the hot path a
// CDN hammers, so it skips the router and the per-request log line.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/live/") {
		a.origin(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/vod/") {
		a.vodOrigin(w, r)
		return
	}
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("handler panic", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !sw.wrote {
				writeError(sw, fmt.Errorf("internal error"))
			}
		}
		route := sw.route
		if route == "" {
			route = routeLabel(r)
		}
		elapsed := time.Since(start)
		a.metrics.observe(route, r.Method, sw.status, elapsed)
		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			level = slog.LevelDebug
		}
		a.log.Log(r.Context(), level, "request", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "bytes", sw.bytes, "duration_ms", float64(elapsed.Microseconds())/1000, "remote", r.RemoteAddr)
	}()
	a.router.ServeHTTP(sw, r)
}

// routeLabel keeps metric cardinality bounded: the route template, not the URL.
func routeLabel(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "other"
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requireToken checks the bearer token in constant time against each configured one.
func (a *API) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(a.tokens) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		// The auth scheme is case-insensitive (RFC 9110 11.1): "bearer x"
		// is as good as "Bearer x".
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || !a.validToken([]byte(strings.TrimSpace(got))) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dionysia"`)
			writeJSON(w, http.StatusUnauthorized, &apiError{Field: "Authorization", Message: "missing or invalid API token: send Authorization: Bearer <token>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) validToken(got []byte) bool {
	ok := 0
	for _, t := range a.tokens {
		ok |= subtle.ConstantTimeCompare(got, t)
	}
	return ok == 1
}

type statusWriter struct {
	http.ResponseWriter
	route  string // the matched route template, set by the router
	status int
	bytes  int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type httpMetrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	redirects prometheus.Counter
	origin    *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_http_requests_total", Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dionysia_http_request_duration_seconds", Help: "API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_origin_redirects_total", Help: "307 answers sending a /live request to the owning node.",
		}),
		origin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_origin_responses_total", Help: "/live answers served by this node, by kind and status code.",
		}, []string{"kind", "code"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.redirects, m.origin} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register http metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}
