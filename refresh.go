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

// wantsRefresh applies `refreshTokens` to a login request body.
func (m *Middleware) wantsRefresh(body map[string]interface{}) bool {
	switch m.s.refreshTokens {
	case "always":
		return true
	case "onRequest":
		v, _ := body["requestRefresh"].(bool)
		return v
	}
	return false
}

type tokenPair struct {
	JWT          string `json:"jwt"`
	RefreshToken string `json:"refreshToken"`
}

// serveRefresh answers `POST refreshPath {"refreshToken"}` with a new token pair. The presented
// refresh token is spent; presenting it again revokes every session of that login.
func (m *Middleware) serveRefresh(rw http.ResponseWriter, req *http.Request) {
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
	presented, _ := body["refreshToken"].(string)
	if presented == "" {
		writeError(rw, http.StatusBadRequest, "refreshToken is required")
		return
	}
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
	out, revoked, err := m.store.rotateRefresh(req.Context(), &rotateRequest{
		TokenHash: refreshHash(presented), NewTokenHash: nextHash, Host: host,
		IdleTimeoutMs: m.idleMs, Sliding: m.s.sliding, MaxLifetimeMs: m.maxLifetimeMs,
	})
	switch {
	case errors.Is(err, errRefreshReused):
		if revoked != nil {
			m.cache.removeSessions(revoked.SessionIDs) // only that login's sessions end here
		} else {
			m.cache.dropAll() // a store that does not say which sessions it ended
		}
		m.audit("refresh_reuse", req, revokedUser(revoked), "")
		writeError(rw, http.StatusUnauthorized, "Refresh token already used: every session of this login was revoked")
		return
	case errors.Is(err, errStoreNotFound):
		writeError(rw, http.StatusUnauthorized, "Invalid or expired refresh token")
		return
	case err != nil:
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
		return
	}
	sess := out.Session
	if out.ReplacedSessionID != "" {
		m.cache.removeSession(out.ReplacedSessionID) // the old token ends now on this Traefik
	}
	if m.revalidateMs > 0 {
		// A refresh extends the login: Strapi is asked about the user first.
		nowMs := m.clock.nowMs()
		e := m.newEntry(tokenClaims{Sub: sess.UserID, Sid: sess.ID}, sess, nowMs, m.cache.revocationSeq())
		ne, d := m.revalidate(req, "", e, nowMs, true)
		if ne == nil {
			writeError(rw, d.status, d.msg)
			return
		}
		sess = ne.sess
	}
	if m.s.audienceCheck && !parseAudience(sess.Audience).allows(host) {
		_, _ = m.store.deleteSession(req.Context(), sess.ID, false, "")
		writeError(rw, http.StatusForbidden, "This account may not use "+host)
		return
	}
	token, err := m.issueToken(sess, m.clock.now())
	if err != nil {
		writeError(rw, http.StatusInternalServerError, "Could not issue a token")
		return
	}
	m.audit("refresh", req, sess.UserID, sess.ID)
	m.setSessionCookie(rw, token, sess)
	writeJSONValue(rw, http.StatusOK, tokenPair{JWT: token, RefreshToken: next})
}

// issueToken signs a proxy token for a session and caches it, so its first use costs nothing.
func (m *Middleware) issueToken(sess *storeSession, now time.Time) (string, error) {
	claims := tokenClaims{Iss: tokenIssuer, Sub: sess.UserID, Sid: sess.ID, Iat: now.Unix(), Exp: sess.AbsoluteExpiresAt / 1000}
	token, err := m.keys.sign(claims)
	if err != nil {
		return "", err
	}
	nowMs := now.UnixMilli()
	m.cache.put(token, m.newEntry(claims, sess, nowMs, m.cache.revocationSeq()), nowMs)
	return token, nil
}

func revokedUser(r *revokedSet) string {
	if r == nil {
		return ""
	}
	return r.UserID
}
