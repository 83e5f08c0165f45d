package accessproxy

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// The proxy's own session endpoints: logout, logout everywhere, list and revoke one's sessions.
// They are answered here and never reach Strapi.

type okResponse struct {
	OK      bool `json:"ok"`
	Revoked *int `json:"revoked,omitempty"`
}

// sessionView is what a user may see of a session: never a credential.
type sessionView struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	CreatedAt  string `json:"createdAt"`
	LastSeenAt string `json:"lastSeenAt"`
	ExpiresAt  string `json:"expiresAt"`
	Current    bool   `json:"current"`
}

type sessionsResponse struct {
	Sessions []sessionView `json:"sessions"`
}

func isoMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// serveLogout revokes the caller's session and its refresh family. A token whose session is
// already gone still logs out (idempotent); a token that does not verify is refused.
func (m *Middleware) serveLogout(rw http.ResponseWriter, req *http.Request, token string) {
	if req.Method != http.MethodPost {
		writeError(rw, http.StatusMethodNotAllowed, "Use POST")
		return
	}
	claims, err := m.keys.verify(token, m.clock.now())
	if err != nil {
		writeError(rw, http.StatusUnauthorized, "Invalid token")
		return
	}
	// Session mode: end Strapi's session too (best effort, before the credentials are gone). The
	// cached session says which mode it is in; only without one does this cost a store read.
	var sess *storeSession
	if e := m.cache.get(token); e != nil {
		sess = e.sess
	} else if s, err := m.store.getSession(req.Context(), claims.Sid); err == nil && s.UserID == claims.Sub {
		sess = s
	}
	m.logoutUpstream(req, sess, false)
	out, err := m.store.deleteSession(req.Context(), claims.Sid, true, claims.Sub)
	if err != nil && !errors.Is(err, errStoreNotFound) {
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
		return
	}
	m.cache.removeSession(claims.Sid)
	m.cache.removeSessions(out.SessionIDs) // the rest of its refresh family
	m.audit("logout", req, claims.Sub, claims.Sid)
	m.clearSessionCookie(rw)
	writeJSONValue(rw, http.StatusOK, okResponse{OK: true})
}

func (m *Middleware) serveLogoutAll(rw http.ResponseWriter, req *http.Request, e *tokenEntry) {
	if req.Method != http.MethodPost {
		writeError(rw, http.StatusMethodNotAllowed, "Use POST")
		return
	}
	m.logoutUpstream(req, e.sess, true)
	out, err := m.store.deleteUserSessions(req.Context(), e.claims.Sub)
	if err != nil {
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
		return
	}
	m.cache.removeUser(e.claims.Sub)
	m.audit("logout_all", req, e.claims.Sub, e.claims.Sid)
	m.clearSessionCookie(rw)
	writeJSONValue(rw, http.StatusOK, okResponse{OK: true, Revoked: &out.Deleted})
}

// serveSessions lists the caller's sessions (GET sessionsPath) or revokes one (DELETE sessionsPath/<id>).
func (m *Middleware) serveSessions(rw http.ResponseWriter, req *http.Request, e *tokenEntry, id string) {
	switch {
	case id == "" && req.Method == http.MethodGet:
		list, err := m.store.listUserSessions(req.Context(), e.claims.Sub)
		if err != nil {
			writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
			return
		}
		out := sessionsResponse{Sessions: []sessionView{}}
		for _, s := range list {
			out.Sessions = append(out.Sessions, sessionView{
				ID: s.ID, Host: s.Host, CreatedAt: isoMs(s.CreatedAt), LastSeenAt: isoMs(s.LastSeenAt),
				ExpiresAt: isoMs(s.ExpiresAt), Current: s.ID == e.claims.Sid,
			})
		}
		writeJSONValue(rw, http.StatusOK, out)
	case id != "" && req.Method == http.MethodDelete:
		// The store revokes only the caller's own session (or, for one that already ended, its
		// refresh family); another user's answers exactly like a missing one: nothing is revealed.
		out, err := m.store.deleteSession(req.Context(), id, true, e.claims.Sub)
		if errors.Is(err, errStoreNotFound) {
			writeError(rw, http.StatusNotFound, "No such session")
			return
		}
		if err != nil {
			writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
			return
		}
		m.cache.removeSession(id)
		m.cache.removeSessions(out.SessionIDs)
		m.audit("session_revoked", req, e.claims.Sub, id)
		writeJSONValue(rw, http.StatusOK, okResponse{OK: true})
	default:
		writeError(rw, http.StatusMethodNotAllowed, "Use GET "+m.s.sessionsPath+" or DELETE "+m.s.sessionsPath+"/<id>")
	}
}

// sessionsPathID returns ("", true) for sessionsPath itself and (id, true) for sessionsPath/<id>.
// The id is taken from the raw path: ids are case-sensitive.
func (m *Middleware) sessionsPathID(p string, req *http.Request) (string, bool) {
	if p == m.s.sessionsPath {
		return "", true
	}
	if !strings.HasPrefix(p, m.s.sessionsPath+"/") {
		return "", false
	}
	raw := strings.TrimRight(req.URL.Path, "/")
	i := strings.LastIndexByte(raw, '/')
	id := raw[i+1:]
	if strings.ToLower(id) != p[len(m.s.sessionsPath)+1:] {
		return "", false
	}
	return id, true
}
