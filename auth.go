package accessproxy

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// A request's credential, resolved to a live session allowed on this host: the cache, the
// store, liveness, the sliding touch, upstream renewal and revalidation, top to bottom.

// denial is why a credential was refused: the status and message to answer with.
type denial struct {
	status int
	msg    string
}

var (
	denyExpired     = denial{http.StatusUnauthorized, "Session expired"}
	denyRevoked     = denial{http.StatusUnauthorized, "Session expired or revoked"}
	denyStoreDown   = denial{http.StatusServiceUnavailable, "Session service unavailable, try again shortly"}
	denyBadToken    = denial{http.StatusUnauthorized, "Invalid token"}
	denyRevokedHere = denial{http.StatusUnauthorized, "Session revoked"}
)

// authenticate resolves a proxy token to a live session allowed on this host, or says why not.
func (m *Middleware) authenticate(req *http.Request, token string) (*tokenEntry, denial) {
	nowMs := m.clock.nowMs()
	e := m.cache.get(token)
	fresh := false
	// Stale past cacheTTL, unless the change feed vouches for it (it would have dropped it).
	if e == nil || (nowMs-e.fetchedMs >= m.cacheTTLms && !m.feedVouches(e, nowMs)) {
		var d denial
		if e, d = m.load(req.Context(), token, e, nowMs); e == nil {
			return nil, d
		}
		fresh = true
	}
	if nowMs >= e.expMs {
		m.cache.remove(token)
		return nil, denyExpired
	}
	host := requestHost(req.Host)
	if m.s.audienceCheck && !e.aud.allows(host) {
		return nil, denial{http.StatusForbidden, "This account may not use " + host}
	}
	if !m.alive(e.sess, host, nowMs) {
		if fresh {
			return nil, denyExpired
		}
		// The cached copy may be stale: another replica may have extended the session.
		var d denial
		if e, d = m.load(req.Context(), token, e, nowMs); e == nil {
			return nil, d
		}
		if !m.alive(e.sess, host, nowMs) {
			return nil, denyExpired
		}
	}
	if m.touchDue(e.sess, host, nowMs) {
		if m.cacheTTLms > 0 {
			// Extended here now, in the store within touchFlushEvery (touches.go).
			var ok bool
			if e, ok = m.touch(token, e, host, clientAddr(req), nowMs); !ok {
				return nil, denyRevokedHere
			}
		} else {
			// cacheTTL 0s: the store answers for every request, so it must know every use.
			var d denial
			if e, d = m.touchNow(req, token, e, host, nowMs); e == nil {
				return nil, d
			}
		}
	}
	if e.renewAtMs > 0 && nowMs >= e.renewAtMs {
		var d denial
		if e, d = m.renewUpstream(req, token, e, nowMs); e == nil {
			return nil, d
		}
	}
	if e.revalidateAtMs > 0 && nowMs >= e.revalidateAtMs {
		var d denial
		if e, d = m.revalidate(req, token, e, nowMs, false); e == nil {
			return nil, d
		}
		if m.s.audienceCheck && !e.aud.allows(host) {
			return nil, denial{http.StatusForbidden, "This account may not use " + host}
		}
	}
	return e, denial{}
}

// touchNow extends the session in the store before the request goes on (cacheTTL 0s).
func (m *Middleware) touchNow(req *http.Request, token string, e *tokenEntry, host string, nowMs int64) (*tokenEntry, denial) {
	seq := m.cache.revocationSeq()
	s, err := m.store.touchSession(req.Context(), e.claims.Sid, &touchRequest{Host: host, IdleTimeoutMs: m.windowOf(e.sess).idleMs, Sliding: m.s.sliding, ClientAddr: clientAddr(req)})
	if err != nil {
		return nil, storeFailure(err)
	}
	ne := m.newEntry(e.claims, s, nowMs, seq)
	if !m.cache.putUnlessRevoked(token, ne, nowMs) {
		return nil, denyRevokedHere
	}
	return ne, denial{}
}

// load verifies the token (unless a cached entry already did) and reads its session from the
// store. A revocation this Traefik saw while the read was in flight wins over the read.
func (m *Middleware) load(ctx context.Context, token string, old *tokenEntry, nowMs int64) (*tokenEntry, denial) {
	var claims tokenClaims
	if old != nil {
		claims = old.claims
	} else {
		c, err := m.keys.verify(token, time.UnixMilli(nowMs))
		if err != nil {
			return nil, denial{http.StatusUnauthorized, "Invalid token: " + err.Error()}
		}
		claims = c
	}
	seq := m.cache.revocationSeq()
	s, err := m.store.getSession(ctx, claims.Sid)
	if err != nil {
		if errors.Is(err, errStoreNotFound) {
			m.cache.remove(token)
		}
		return nil, storeFailure(err)
	}
	if s.UserID != claims.Sub {
		return nil, denyBadToken
	}
	e := m.newEntry(claims, s, nowMs, seq)
	if !m.cache.putUnlessRevoked(token, e, nowMs) {
		return nil, denyRevokedHere
	}
	return e, denial{}
}

// newEntry builds a cache entry for a session read from the store when the cache's revocation
// sequence was seq.
func (m *Middleware) newEntry(c tokenClaims, s *storeSession, nowMs, seq int64) *tokenEntry {
	e := newTokenEntry(c, s, nowMs)
	e.loadSeq = seq
	if m.revalidateMs > 0 {
		// Login counts as a check: Strapi had just answered for the user.
		at := s.RevalidatedAt
		if at == 0 {
			at = s.CreatedAt
		}
		e.revalidateAtMs = at + m.revalidateMs
	}
	return e
}

// storeFailure is the answer to a failed store call: a session the store does not have is 401,
// anything else fails closed with 503.
func storeFailure(err error) denial {
	if errors.Is(err, errStoreNotFound) {
		return denyRevoked
	}
	return denyStoreDown
}
