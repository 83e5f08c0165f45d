package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Metrics are the service's Prometheus collectors.
type Metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route, code

	SessionsCreated prometheus.Counter
	SessionsExpired prometheus.Counter // removed by the sweeper
	SessionsRevoked prometheus.Counter // removed by a delete or a refresh-reuse revocation
	RefreshReused   prometheus.Counter
	RefreshGrace    prometheus.Counter
	SessionsEvicted prometheus.Counter // live sessions a create's per-user cap revoked
	// SessionLimitRefused counts creates refused at the cap (sessionLimit "refuse").
	SessionLimitRefused prometheus.Counter
	SweepErrors         prometheus.Counter
	ChangesRecorded     prometheus.Counter // change-feed records written by this process
	ChangesTrimmed      prometheus.Counter // change-feed records removed by the sweeper's retention
	FeedWaiters         prometheus.Gauge   // GET /v1/changes long-polls waiting now
}

// NewMetrics registers the collectors on reg, including a gauge of stored sessions read from b
// (cheap: the backend keeps the count) and the Go runtime and process collectors.
func NewMetrics(reg prometheus.Registerer, b store.Backend) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionstore_http_requests_total", Help: "HTTP requests by route template and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionstore_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route", "code"}),
		SessionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_sessions_created_total", Help: "Sessions created (logins and refresh rotations).",
		}),
		SessionsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_sessions_expired_total", Help: "Expired sessions removed by the sweeper.",
		}),
		SessionsRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_sessions_revoked_total", Help: "Live sessions revoked (deletes, refresh-token reuse and session-cap evictions).",
		}),
		RefreshReused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_refresh_reuse_total", Help: "Spent refresh tokens presented again (each revokes its family).",
		}),
		RefreshGrace: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_refresh_grace_total", Help: "Spent refresh tokens presented again within the request's reuse grace (each rotated, nothing revoked).",
		}),
		SessionsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_sessions_evicted_total", Help: "Live sessions revoked by a login at its user's session cap (evictOldest; also counted as revoked).",
		}),
		SessionLimitRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_session_limit_refused_total", Help: "Logins refused at their user's session cap (sessionLimit refuse).",
		}),
		SweepErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_sweep_errors_total", Help: "Sweeper runs that failed.",
		}),
		ChangesRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_changes_recorded_total", Help: "Change-feed records written by this process (revocations, user and upstream changes).",
		}),
		ChangesTrimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionstore_changes_trimmed_total", Help: "Change-feed records removed past --change-retention or --change-max.",
		}),
		FeedWaiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionstore_change_feed_waiters", Help: "GET /v1/changes long-polls waiting now (at most 1024).",
		}),
	}
	stored := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sessionstore_sessions_stored", Help: "Sessions in storage (expired ones count until swept).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := b.SessionCount(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	reg.MustRegister(m.requests, m.duration, m.SessionsCreated, m.SessionsExpired, m.SessionsRevoked,
		m.RefreshReused, m.RefreshGrace, m.SessionsEvicted, m.SessionLimitRefused, m.SweepErrors, m.ChangesRecorded, m.ChangesTrimmed, m.FeedWaiters, stored,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// OnSweep feeds a sweeper's result into the expired counter.
func (m *Metrics) OnSweep(r store.SweepResult, err error) {
	m.SessionsExpired.Add(float64(r.Sessions))
	m.ChangesTrimmed.Add(float64(r.Changes))
	if err != nil {
		m.SweepErrors.Inc()
	}
}
