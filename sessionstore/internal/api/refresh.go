package api

import (
	"errors"
	"net/http"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

type refreshRequest struct {
	TokenHash     string `json:"tokenHash"`
	NewTokenHash  string `json:"newTokenHash"`
	Host          string `json:"host"`
	IdleTimeoutMs int64  `json:"idleTimeoutMs"`
	Sliding       bool   `json:"sliding"`
	MaxLifetimeMs int64  `json:"maxLifetimeMs"`
	ReuseGraceMs  int64  `json:"reuseGraceMs"` // 0: none; see store.RotationOutcome
	ClientAddr    string `json:"clientAddr"`   // optional: the new session's login address ("": the family's)
	// Optional: the windows of a remembered family's new session (0: idleTimeoutMs, maxLifetimeMs).
	RememberIdleTimeoutMs int64 `json:"rememberIdleTimeoutMs"`
	RememberMaxLifetimeMs int64 `json:"rememberMaxLifetimeMs"`
}

func (q *refreshRequest) validate() *apiError {
	switch {
	case !validTokenHash(q.TokenHash) || !validTokenHash(q.NewTokenHash):
		return badRequest("tokenHash, newTokenHash: 64 lower-case hex chars")
	case q.TokenHash == q.NewTokenHash:
		return badRequest("newTokenHash must differ from tokenHash")
	case !validHost(q.Host):
		return badRequest("host: 1-253 chars, lower-case host without port")
	case !validDuration(q.IdleTimeoutMs):
		return badRequest("idleTimeoutMs must be > 0")
	case !validDuration(q.MaxLifetimeMs):
		return badRequest("maxLifetimeMs must be > 0")
	case q.ReuseGraceMs < 0 || q.ReuseGraceMs > store.MaxReuseGraceMs:
		return badRequest("reuseGraceMs: 0 (no grace) to 300000")
	case !okAddr(q.ClientAddr):
		return badRequest(badClientAddr)
	case q.RememberIdleTimeoutMs < 0 || q.RememberMaxLifetimeMs < 0:
		return badRequest("rememberIdleTimeoutMs, rememberMaxLifetimeMs: 0 (the normal windows) or more")
	}
	return nil
}

func (s *Server) rotateRefresh(w http.ResponseWriter, r *http.Request) (int, any) {
	var q refreshRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	if err := q.validate(); err != nil {
		return 0, err
	}
	now, id := s.nowMs(), newID()
	addr, _ := clientAddr(q.ClientAddr)
	var jwt, refresh string // the family's secrets, kept for the response
	res, err := s.backend.RotateRefresh(r.Context(), store.Rotation{
		TokenHash: q.TokenHash, NewTokenHash: q.NewTokenHash, Now: now, ReuseGraceMs: q.ReuseGraceMs,
		NewSession: func(f *store.Family) (*store.Session, error) {
			var err error
			if jwt, err = s.sealer.Open(f.JWT, f.ID); err != nil {
				return nil, err
			}
			if refresh, err = s.sealer.Open(f.Refresh, f.ID); err != nil {
				return nil, err
			}
			sess := f.MintSession(store.Mint{ID: id, Host: q.Host, IdleTimeoutMs: q.IdleTimeoutMs, Sliding: q.Sliding, MaxLifetimeMs: q.MaxLifetimeMs,
				RememberIdleTimeoutMs: q.RememberIdleTimeoutMs, RememberMaxLifetimeMs: q.RememberMaxLifetimeMs, ClientAddr: addr, Now: now})
			sess.JWT, sess.Refresh = s.sealer.Seal(jwt, id), s.sealer.Seal(refresh, id)
			return sess, nil
		},
	})
	s.recorded(store.RotationChange(res, err, now))
	if errors.Is(err, store.ErrReused) {
		rev := res.Revoked.Sorted()
		s.metrics.RefreshReused.Inc()
		s.metrics.SessionsRevoked.Add(float64(rev.Live))
		s.log.Warn("refresh token reuse: family revoked", "family", shortID(rev.FamilyID), "revokedSessions", rev.Live)
		return http.StatusConflict, reusedBody{
			Error:   errorDetail{errReused.code, errReused.message},
			Revoked: revokedSet{UserID: rev.UserID, FamilyID: rev.FamilyID, SessionIDs: rev.SessionIDs},
		}
	}
	if err != nil {
		return 0, s.storeError(r, err)
	}
	s.metrics.SessionsCreated.Inc()
	if res.Grace {
		s.metrics.RefreshGrace.Inc()
		s.log.Info("spent refresh token presented again within its reuse grace: rotated, nothing revoked",
			"family", shortID(res.Family.ID), "session", shortID(res.Session.ID), "reuseGraceMs", q.ReuseGraceMs)
	}
	return http.StatusOK, refreshBody{withSecrets(res.Session, jwt, refresh), res.Family.ExpiresAt, res.Replaced, res.Grace}
}
