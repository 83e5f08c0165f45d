package accessproxy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Refresh tokens are opaque: "apr_" and 256 random bits. The store keeps only their SHA-256.
const refreshPrefix = "apr_"

func newRefreshToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = refreshPrefix + b64.EncodeToString(b)
	return token, refreshHash(token), nil
}

func refreshHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func validRefreshShape(token string) bool {
	return len(token) == len(refreshPrefix)+43 && strings.HasPrefix(token, refreshPrefix)
}

// wantsRefresh applies `refreshTokens` to a login request body. With accessTokenTTL every login
// gets one: a short token without a way to renew it would end the login within minutes.
func (m *Middleware) wantsRefresh(body map[string]interface{}) bool {
	switch {
	case m.s.refreshTokens == "off":
		return false
	case m.s.refreshTokens == "always" || m.s.accessTokenTTL > 0:
		return true
	}
	v, _ := body["requestRefresh"].(bool)
	return v
}

// asksRefreshCookie is Strapi's test for the cookie form: the header is exactly "httpOnly" (Node
// would join a repeated header into one value that is not).
func asksRefreshCookie(req *http.Request) bool {
	v := req.Header["X-Strapi-Refresh-Cookie"]
	return len(v) == 1 && v[0] == "httpOnly"
}

// tokenPair is the refresh answer; RefreshToken is left out in the cookie form, as Strapi does.
type tokenPair struct {
	JWT          string `json:"jwt"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

// serveRefresh answers `POST <prefix>/auth/refresh` (and the refreshPath alias) as Strapi 5 does,
// with the proxy's refresh token: taken from the proxy's refresh cookie first, then the body's
// `refreshToken`. The presented token is spent; presented again within refreshReuseGrace (two
// tabs racing) it rotates once more, after that it revokes every session of that login. The new
// token goes back where the client keeps it: the cookie when it came in one or the client asks
// for the cookie form (or, at Strapi's path, cookie mode is on), else the body.
func (m *Middleware) serveRefresh(rw http.ResponseWriter, req *http.Request, fromCookie string, strapiPath bool) {
	if req.Method != http.MethodPost {
		writeError(rw, http.StatusMethodNotAllowed, "Use POST")
		return
	}
	body, err := readBodyFields(req)
	if err != nil {
		status, msg := bodyErrorStatus(err)
		writeError(rw, status, msg)
		return
	}
	presented := fromCookie
	if presented == "" {
		presented, _ = body["refreshToken"].(string)
	}
	if presented == "" {
		writeNamedError(rw, http.StatusBadRequest, "BadRequestError", "Missing refresh token") // Strapi's ctx.badRequest
		return
	}
	cookieForm := fromCookie != "" || asksRefreshCookie(req) || (strapiPath && m.s.cookie.Enabled)
	if !validRefreshShape(presented) {
		writeError(rw, http.StatusUnauthorized, "Invalid refresh token")
		return
	}
	next, nextHash, err := newRefreshToken()
	if err != nil {
		writeError(rw, http.StatusInternalServerError, "Could not issue a token")
		return
	}
	host := requestHost(req.Host)
	out, revoked, err := m.store.rotateRefresh(storeAudit(req, ""), &rotateRequest{
		TokenHash: refreshHash(presented), NewTokenHash: nextHash, Host: host,
		IdleTimeoutMs: m.normal.idleMs, Sliding: m.s.sliding, MaxLifetimeMs: m.normal.maxLifetimeMs,
		RememberIdleTimeoutMs: m.remembered.idleMs, RememberMaxLifetimeMs: m.remembered.maxLifetimeMs,
		ReuseGraceMs: m.s.refreshReuseGrace.Milliseconds(), ClientAddr: clientAddr(req),
	})
	if err != nil {
		m.refreshRefused(rw, req, err, revoked, fromCookie != "")
		return
	}
	if out.ReplacedSessionID != "" {
		m.cache.removeSession(out.ReplacedSessionID) // the old token ends now on this Traefik
	}
	sess, d := m.checkRefreshed(req, out.Session, host)
	if sess == nil {
		writeError(rw, d.status, d.msg)
		return
	}
	token, err := m.issueToken(sess, m.clock.now())
	if err != nil {
		writeError(rw, http.StatusInternalServerError, "Could not issue a token")
		return
	}
	if out.Grace {
		// A second successor of a token spent moments ago: two tabs refreshed at once.
		m.auditReason("refresh_grace", req, sess.UserID, sess.ID, "refresh token presented again within refreshReuseGrace")
	} else {
		m.audit("refresh", req, sess.UserID, sess.ID)
	}
	m.rememberIssued(req.Host, token)
	m.setSessionCookie(rw, token, sess)
	pair := tokenPair{JWT: token, RefreshToken: next}
	if cookieForm {
		m.setRefreshCookie(rw, next, out.RefreshExpiresAt)
		pair.RefreshToken = ""
	}
	writeJSONValue(rw, http.StatusOK, pair)
}

// refreshRefused answers a rotation the store refused: a reuse past the grace (its family is
// revoked: those sessions leave this Traefik's cache now), an unknown token, or the store down.
func (m *Middleware) refreshRefused(rw http.ResponseWriter, req *http.Request, err error, revoked *revokedSet, fromCookie bool) {
	switch {
	case errors.Is(err, errRefreshReused):
		if revoked != nil {
			m.cache.removeSessions(revoked.SessionIDs) // only that login's sessions end here
		} else {
			m.cache.dropAll() // a store that does not say which sessions it ended
		}
		m.audit("refresh_reuse", req, revokedUser(revoked), "")
		if fromCookie {
			m.clearRefreshCookie(rw)
		}
		writeError(rw, http.StatusUnauthorized, "Refresh token already used: every session of this login was revoked")
	case errors.Is(err, errStoreNotFound):
		if fromCookie {
			m.clearRefreshCookie(rw)
		}
		writeError(rw, http.StatusUnauthorized, "Invalid refresh token")
	default:
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
	}
}

// checkRefreshed holds a rotated session to what a login would: a refresh extends the login, so
// Strapi is asked about the user first (revalidateEvery), and the user's audience must allow host.
func (m *Middleware) checkRefreshed(req *http.Request, sess *storeSession, host string) (*storeSession, denial) {
	if m.revalidateMs > 0 {
		nowMs := m.clock.nowMs()
		e := m.newEntry(tokenClaims{Sub: sess.UserID, Sid: sess.ID}, sess, nowMs, m.cache.revocationSeq())
		ne, d := m.revalidate(req, "", e, nowMs, true)
		if ne == nil {
			return nil, d
		}
		sess = ne.sess
	}
	if m.s.audienceCheck && !parseAudience(sess.Audience).allows(host) {
		_, _ = m.store.deleteSession(storeAudit(req, "audience"), sess.ID, false, "")
		return nil, denial{http.StatusForbidden, "This account may not use " + host}
	}
	return sess, denial{}
}

// issueToken signs a proxy token for a session and caches it, so its first use costs nothing.
func (m *Middleware) issueToken(sess *storeSession, now time.Time) (string, error) {
	claims := tokenClaims{Iss: tokenIssuer, Sub: sess.UserID, Sid: sess.ID, Iat: now.Unix(), Exp: m.tokenExpiry(sess, now)}
	token, err := m.keys.sign(claims)
	if err != nil {
		return "", err
	}
	nowMs := now.UnixMilli()
	m.cache.put(token, m.newEntry(claims, sess, nowMs, m.cache.revocationSeq()))
	return token, nil
}

func revokedUser(r *revokedSet) string {
	if r == nil {
		return ""
	}
	return r.UserID
}

// tokenExpiry is a new token's exp: the session's cap, or with accessTokenTTL that long from now
// (rounded up to the second, so that a token never lives less than accessTokenTTL).
func (m *Middleware) tokenExpiry(sess *storeSession, now time.Time) int64 {
	capS := sess.AbsoluteExpiresAt / 1000
	if m.s.accessTokenTTL <= 0 {
		return capS
	}
	ttlS := (now.UnixMilli() + m.s.accessTokenTTL.Milliseconds() + 999) / 1000
	if ttlS < capS {
		return ttlS
	}
	return capS
}
