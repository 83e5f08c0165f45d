package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Strapi stays the source of truth about its users. Every revalidateEvery, a session's user is
// re-read from Strapi with the session's own Strapi JWT (`GET <prefix>/users/me`): a user Strapi
// no longer accepts (blocked, deleted) loses the session and its refresh family; a changed
// audience is written to the session (and its family) in the store, so every replica applies it.
// Of the replicas serving one session, one does the check per interval: a store counter is the
// lease. This runs on the slow path only: the fast path never outlives revalidateAtMs.

// revalidateLease bounds how long one replica may hold a session's re-check.
const revalidateLease = 30 * time.Second

// revalidate re-reads the user of e from Strapi. force skips the lease (a refresh re-reads always).
func (m *Middleware) revalidate(req *http.Request, token string, e *tokenEntry, nowMs int64, force bool) (*tokenEntry, denial) {
	ctx := req.Context()
	sid := e.claims.Sid
	if !force {
		lease, err := m.store.incrCounter(ctx, "reval:"+sid, revalidateLease, 1)
		if err != nil {
			return nil, storeFailure(err)
		}
		if lease.Count != 1 {
			// Another replica is checking right now; its answer reaches this one through the
			// store. Look again after a second, not on every request meanwhile.
			next := *e
			next.revalidateAtMs = nowMs + 1000
			if token != "" && !m.cache.putUnlessRevoked(token, &next, nowMs) {
				return nil, denyRevokedHere
			}
			return &next, denial{}
		}
		defer func() { _ = m.store.deleteCounter(ctx, "reval:"+sid) }()
	}
	aud, blocked, d := m.readStrapiUser(req, e)
	if d.status != 0 {
		return nil, d
	}
	if blocked {
		if _, err := m.store.deleteSession(ctx, sid, true, ""); err != nil && !errors.Is(err, errStoreNotFound) {
			return nil, storeFailure(err)
		}
		m.cache.removeSession(sid)
		m.auditReason("revoked", req, e.claims.Sub, sid, "Strapi no longer accepts the user (blocked or deleted)")
		return nil, denial{http.StatusUnauthorized, "Session ended: the account is blocked or no longer exists"}
	}
	seq := m.cache.revocationSeq()
	s, err := m.store.updateUser(ctx, sid, aud)
	if err != nil {
		return nil, storeFailure(err)
	}
	ne := m.newEntry(e.claims, s, nowMs, seq)
	if token != "" && !m.cache.putUnlessRevoked(token, ne, nowMs) {
		return nil, denyRevokedHere
	}
	return ne, denial{}
}

// readStrapiUser asks Strapi who the session's user is now. A 401 means Strapi no longer
// accepts the user (users-permissions refuses a blocked user's JWT); anything else that is not
// a readable 200 fails closed without ending the session.
func (m *Middleware) readStrapiUser(req *http.Request, e *tokenEntry) ([]string, bool, denial) {
	buf := m.callStrapi(req, http.MethodGet, m.s.routes.usersMe, e.sess.StrapiJwt, nil)
	switch {
	case buf.status == http.StatusUnauthorized:
		return nil, true, denial{}
	case buf.status < 200 || buf.status > 299 || buf.overflow:
		return nil, false, denial{http.StatusBadGateway, "Could not re-check the account with Strapi (" + m.s.routes.usersMe + " answered " + http.StatusText(buf.status) + ")"}
	}
	raw, err := decodedBody(buf)
	if err != nil {
		return nil, false, denial{http.StatusBadGateway, "Could not re-check the account with Strapi"}
	}
	var user map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&user) != nil || user == nil {
		return nil, false, denial{http.StatusBadGateway, "Could not re-check the account with Strapi"}
	}
	switch id := jsonScalar(user["id"]); {
	case id == "":
		return nil, false, denial{http.StatusBadGateway, "Could not re-check the account with Strapi (" + m.s.routes.usersMe + " names no user)"}
	case id != e.claims.Sub:
		return nil, true, denial{} // the JWT names someone else now: end the session
	}
	if b, _ := user["blocked"].(bool); b {
		return nil, true, denial{}
	}
	return userAudience(user, m.s.audienceField), false, denial{}
}
