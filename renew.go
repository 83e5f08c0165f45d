package accessproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Strapi 5 session mode (`jwtManagement: 'refresh'`): Strapi's access JWT lives minutes and a
// refresh credential renews it. The proxy keeps that credential in the session and renews the
// access JWT itself, so the client's proxy session outlives many Strapi access tokens and the
// client never holds anything it could mint Strapi JWTs with.

const (
	// renewLease bounds how long one replica may hold a session's renewal before another may try.
	renewLease = 10 * time.Second
	// renewWait is how long a request waits for another replica's renewal of an expired JWT.
	renewWait = 3 * time.Second
)

var errUpstreamRefused = errors.New("strapi refused the refresh credential")

// renewUpstream renews the session's Strapi access JWT. Of concurrent renewals of one session, on
// any number of replicas, one calls Strapi: the store's counter is the lease. The others keep
// using the current JWT while it is valid, or wait for the winner's.
func (m *Middleware) renewUpstream(req *http.Request, token string, e *tokenEntry, nowMs int64) (*tokenEntry, denial) {
	ctx := req.Context()
	sid := e.claims.Sid
	lease, err := m.store.incrCounter(ctx, "renew:"+sid, renewLease, 1)
	if err != nil {
		return nil, storeFailure(err)
	}
	if lease.Count != 1 {
		return m.awaitRenewal(ctx, token, e, nowMs)
	}
	defer func() { _ = m.store.deleteCounter(context.Background(), "renew:"+sid) }()
	// The lease may come right after another request finished a renewal (and gave the lease
	// back): renewing again with the refresh credential it spent would end the session.
	seq := m.cache.revocationSeq()
	cur, err := m.store.getSession(ctx, sid)
	if err != nil {
		return nil, storeFailure(err)
	}
	if cur.UpstreamVersion != e.sess.UpstreamVersion {
		ne := m.newEntry(e.claims, cur, nowMs, seq)
		if !m.cache.putUnlessRevoked(token, ne, nowMs) {
			return nil, denyRevokedHere
		}
		return ne, denial{}
	}

	jwt, refresh, err := m.callStrapiRefresh(req, e.sess.StrapiRefresh)
	if errors.Is(err, errUpstreamRefused) {
		_, _ = m.store.deleteSession(ctx, sid, true, "")
		m.cache.removeSession(sid)
		m.auditReason("denied", req, e.claims.Sub, sid, "Strapi refused to renew the session")
		return nil, denial{http.StatusUnauthorized, "Session ended by the server"}
	}
	if err != nil {
		return nil, denial{http.StatusBadGateway, "Could not renew the session upstream"}
	}
	seq = m.cache.revocationSeq()
	s, err := m.store.updateUpstream(ctx, sid, &upstreamUpdate{StrapiJwt: jwt, StrapiRefresh: refresh, ExpectVersion: e.sess.UpstreamVersion})
	if errors.Is(err, errStoreConflict) {
		return m.load(ctx, token, e, nowMs)
	}
	if err != nil {
		return nil, storeFailure(err)
	}
	ne := m.newEntry(e.claims, s, nowMs, seq)
	if !m.cache.putUnlessRevoked(token, ne, nowMs) {
		return nil, denyRevokedHere
	}
	m.audit("upstream_renewed", req, e.claims.Sub, sid)
	return ne, denial{}
}

// awaitRenewal is the loser's side of renewUpstream.
func (m *Middleware) awaitRenewal(ctx context.Context, token string, e *tokenEntry, nowMs int64) (*tokenEntry, denial) {
	if nowMs < e.upstreamExpMs-1000 {
		return e, denial{} // the current JWT still works while the winner renews it
	}
	deadline := time.Now().Add(renewWait) // a real wait: the other replica works in real time
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		seq := m.cache.revocationSeq()
		s, err := m.store.getSession(ctx, e.claims.Sid)
		if err != nil {
			return nil, storeFailure(err)
		}
		if s.UpstreamVersion != e.sess.UpstreamVersion {
			now := m.clock.nowMs()
			ne := m.newEntry(e.claims, s, now, seq)
			if !m.cache.putUnlessRevoked(token, ne, now) {
				return nil, denyRevokedHere
			}
			return ne, denial{}
		}
	}
	return nil, denial{http.StatusServiceUnavailable, "Session renewal in progress, try again shortly"}
}

type strapiTokens struct {
	JWT          string `json:"jwt"`
	RefreshToken string `json:"refreshToken"`
}

// callStrapiRefresh asks Strapi, through the rest of the router's chain, for a new access JWT.
// The credential always goes in the body: Strapi reads its signed cookie first, but falls back to
// the body, whatever its httpOnly setting.
func (m *Middleware) callStrapiRefresh(req *http.Request, refresh string) (string, string, error) {
	buf := m.callStrapi(req, http.MethodPost, m.s.routes.strapiRefresh, "", map[string]string{"refreshToken": refresh})
	if buf.status == http.StatusUnauthorized || buf.status == http.StatusBadRequest || buf.status == http.StatusForbidden {
		return "", "", errUpstreamRefused
	}
	if buf.status < 200 || buf.status > 299 || buf.overflow {
		return "", "", errors.New("strapi refresh failed")
	}
	raw, err := decodedBody(buf)
	if err != nil {
		return "", "", err
	}
	var out strapiTokens
	if err := json.Unmarshal(raw, &out); err != nil || out.JWT == "" {
		return "", "", errors.New("strapi refresh answer unreadable")
	}
	next := out.RefreshToken
	if next == "" {
		next = takeStrapiRefreshCookie(buf.header, m.s.strapiRefreshCookie)
	}
	if next == "" {
		next = refresh
	}
	return out.JWT, next, nil
}

// logoutUpstream ends the Strapi session(s) behind a proxy session (all: every session of the
// user; deviceID: that device's). Failures are logged: they never keep the proxy session alive.
func (m *Middleware) logoutUpstream(req *http.Request, s *storeSession, all bool, deviceID string) {
	if s == nil || s.StrapiRefresh == "" {
		return // legacy mode: Strapi has no server-side session to end
	}
	jwt, refresh := s.StrapiJwt, s.StrapiRefresh
	if up, err := readUpstreamJWT(jwt); err != nil || (up.exp > 0 && m.clock.now().Unix() >= up.exp-1) {
		// Strapi's logout needs a valid access JWT; renewing rotates the refresh credential too.
		var err error
		if jwt, refresh, err = m.callStrapiRefresh(req, refresh); err != nil {
			m.auditReason("upstream_logout_failed", req, s.UserID, s.ID, "could not renew the access token: "+err.Error())
			return
		}
	}
	body := map[string]string{"refreshToken": refresh}
	switch {
	case all:
		body = map[string]string{"scope": "all"}
	case deviceID != "":
		// The deviceId went to Strapi with the login: Strapi's sessions of that device end too.
		body = map[string]string{"deviceId": deviceID}
	}
	buf := m.callStrapi(req, http.MethodPost, m.s.routes.strapiLogout, jwt, body)
	if buf.status < 200 || buf.status > 299 {
		m.auditReason("upstream_logout_failed", req, s.UserID, s.ID, "Strapi answered "+http.StatusText(buf.status))
	}
}
