// Package api is the session store's HTTP layer: routing, bearer authentication, validation,
// id generation, encryption of secrets and metrics, above a store.Backend.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Config wires a Server.
type Config struct {
	Backend  store.Backend
	Sealer   *crypto.Sealer
	Token    string               // bearer credential of the plugin
	Registry *prometheus.Registry // where Metrics live; /metrics serves it
	Metrics  *Metrics
	Logger   *slog.Logger
	Now      func() time.Time // nil: time.Now
	// MaxFeedWaiters bounds the GET /v1/changes long-polls waiting at once (0: MaxFeedWaiters).
	MaxFeedWaiters int
	// FeedPoll is how often a change-feed wait reads the store for other replicas' writes (0: 100ms).
	FeedPoll time.Duration
}

// Server is the http.Handler of the API.
type Server struct {
	backend    store.Backend
	sealer     *crypto.Sealer
	tokenHash  [sha256.Size]byte
	metrics    *Metrics
	log        *slog.Logger
	now        func() time.Time
	mux        *http.ServeMux
	feed       *feed
	maxWaiters int
	feedPoll   time.Duration
	// feedCtx is the poller's context, cancelled by Shutdown.
	feedCtx     context.Context
	stopFeedCtx context.CancelFunc
}

// handlerFunc returns the status and the body to send (an *apiError for errors).
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any)

// New builds the handler.
func New(cfg Config) *Server {
	s := &Server{
		backend:    cfg.Backend,
		sealer:     cfg.Sealer,
		tokenHash:  sha256.Sum256([]byte(cfg.Token)),
		metrics:    cfg.Metrics,
		log:        cfg.Logger,
		now:        cfg.Now,
		mux:        http.NewServeMux(),
		feed:       newFeed(),
		maxWaiters: cfg.MaxFeedWaiters,
		feedPoll:   cfg.FeedPoll,
	}
	if s.feedPoll <= 0 {
		s.feedPoll = feedPoll
	}
	if s.maxWaiters <= 0 {
		s.maxWaiters = MaxFeedWaiters
	}
	s.feedCtx, s.stopFeedCtx = context.WithCancel(context.Background())
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.route("GET /healthz", false, s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.route("POST /v1/sessions", true, s.createSession)
	s.route("GET /v1/sessions/{id}", true, s.getSession)
	s.route("POST /v1/sessions/{id}/touch", true, s.touchSession)
	s.route("POST /v1/touches", true, s.touchSessions)
	s.route("GET /v1/changes", true, s.changes)
	s.route("PUT /v1/sessions/{id}/upstream", true, s.setUpstream)
	s.route("PUT /v1/sessions/{id}/user", true, s.setUser)
	s.route("DELETE /v1/sessions/{id}", true, s.deleteSession)
	s.route("GET /v1/users/{userId}/sessions", true, s.listUserSessions)
	s.route("DELETE /v1/users/{userId}/sessions", true, s.deleteUserSessions)
	s.route("POST /v1/refresh", true, s.rotateRefresh)
	s.route("POST /v1/counters/{key}/incr", true, s.incrCounter)
	s.route("DELETE /v1/counters/{key}", true, s.deleteCounter)
	s.route("GET /v1/audit", true, s.listAudit)
	s.route("/", true, func(http.ResponseWriter, *http.Request) (int, any) { return 0, errNoRoute })
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route registers h under pattern with authentication (when auth), JSON writing and metrics
// labelled by the pattern (never the raw path, which would carry ids).
func (s *Server) route(pattern string, auth bool, h handlerFunc) {
	label := pattern
	if pattern == "/" {
		label = "unmatched"
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var status int
		var body any
		if auth && !s.authorized(r) {
			status, body = 0, errUnauthorized
		} else {
			if n, ok := auditNote(r); ok {
				r = r.WithContext(store.WithAudit(r.Context(), n))
			}
			status, body = h(w, r)
		}
		if e, ok := body.(*apiError); ok {
			status, body = e.status, errorBody{errorDetail{e.code, e.message}}
		}
		writeJSON(w, status, body)
		code := strconv.Itoa(status)
		s.metrics.requests.WithLabelValues(label, code).Inc()
		s.metrics.duration.WithLabelValues(label, code).Observe(time.Since(start).Seconds())
	})
}

// authorized compares SHA-256 digests in constant time, so neither the token's content nor its
// length leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return false
	}
	got := sha256.Sum256([]byte(h[7:]))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	buf, err := json.Marshal(body)
	if err != nil { // only our own types are marshalled; this is a bug
		status, buf = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"} // bodies carry credentials
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}

// storeError maps a backend error to an API error, logging the unexpected ones (the error text
// comes from storage or crypto and never contains a secret).
func (s *Server) storeError(r *http.Request, err error) *apiError {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrConflict):
		return errConflict
	case errors.Is(err, store.ErrReused):
		return errReused
	case errors.Is(err, store.ErrSessionLimit):
		return errSessionLimit
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("store unavailable", "route", r.Pattern, "err", err)
		return errUnavailable
	default:
		s.log.Error("request failed", "route", r.Pattern, "err", err)
		return errInternal
	}
}

func (s *Server) nowMs() int64 { return s.now().UnixMilli() }

// newID returns 32 random bytes, base64url without padding.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// shortID names a record in logs without giving away the whole id.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) (int, any) {
	if err := s.backend.Ping(r.Context()); err != nil {
		s.log.Warn("health check failed", "err", err)
		return 0, errUnavailable
	}
	return http.StatusOK, map[string]bool{"ok": true}
}
