package accessproxy

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The proxy's own session endpoints: logout, logout everywhere, list and revoke one's sessions.
// They are answered here and never reach Strapi.

type okResponse struct {
	OK      bool `json:"ok"`
	Revoked *int `json:"revoked,omitempty"`
}

// sessionView is one entry of Strapi 5's session list (@strapi/utils sanitizeSessionEntry:
// id, deviceId, deviceName, current, loginAt, lastActiveAt), plus what the proxy knows besides.
// Never a credential. deviceName is left out when the User-Agent named nothing, as Strapi does.
type sessionView struct {
	ID           string  `json:"id"`
	DeviceID     *string `json:"deviceId"`
	DeviceName   string  `json:"deviceName,omitempty"`
	Current      bool    `json:"current"`
	LoginAt      string  `json:"loginAt"`
	LastActiveAt string  `json:"lastActiveAt"`
	Host         string  `json:"host"`
	CreatedAt    string  `json:"createdAt"`
	LastSeenAt   string  `json:"lastSeenAt"`
	ExpiresAt    string  `json:"expiresAt"`
	// LoginAddr and LastAddr: the client's address at login and at the last touch ("": unknown).
	LoginAddr  string            `json:"loginAddr"`
	LastAddr   string            `json:"lastAddr"`
	Hosts      map[string]string `json:"hosts"` // each host used, and when last
	RememberMe bool              `json:"rememberMe"`
}

type sessionsResponse struct {
	Data []sessionView `json:"data"`
}

// emptyData is Strapi's answer to a revoked session: {"data":{}}.
type emptyData struct {
	Data struct{} `json:"data"`
}

func isoMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// serveLogout is Strapi 5's logout: `{"scope":"all"}` ends every session of the user,
// `{"deviceId":"…"}` those of one device, and no body the caller's session and its refresh family
// (idempotent: a token whose session is already gone still logs out; one that does not verify is
// refused). It answers {"ok":true} and clears the proxy's cookies.
func (m *Middleware) serveLogout(rw http.ResponseWriter, req *http.Request, hadRefreshCookie bool) {
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
	if hadRefreshCookie || asksRefreshCookie(req) {
		m.clearRefreshCookie(rw)
	}
	scope, _ := body["scope"].(string)
	deviceID, _ := body["deviceId"].(string)
	if scope == "all" || deviceID != "" {
		// Ending more than this session needs a live one, not just a signed token.
		e := m.requireSession(rw, req)
		if e == nil {
			return
		}
		if scope == "all" {
			m.serveLogoutAll(rw, req, e)
			return
		}
		m.logoutDevice(rw, req, e, deviceID)
		return
	}
	c := m.credential(req)
	switch {
	case c.problem != 0:
		writeError(rw, c.problem, c.message)
		return
	case c.token == "":
		writeError(rw, http.StatusUnauthorized, "Missing authentication")
		return
	}
	claims, err := m.keys.verify(c.token, m.clock.now())
	if err != nil {
		writeError(rw, http.StatusUnauthorized, "Invalid token")
		return
	}
	// Session mode: end Strapi's session too (best effort, before the credentials are gone). The
	// cached session says which mode it is in; only without one does this cost a store read.
	var sess *storeSession
	if e := m.cache.get(c.token); e != nil {
		sess = e.sess
	} else if s, err := m.store.getSession(req.Context(), claims.Sid); err == nil && s.UserID == claims.Sub {
		sess = s
	}
	m.logoutUpstream(req, sess, false, "")
	out, err := m.store.deleteSession(storeAudit(req, "logout"), claims.Sid, true, claims.Sub)
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

// logoutDevice ends the caller's sessions opened with deviceId (Strapi's logout {"deviceId"}).
func (m *Middleware) logoutDevice(rw http.ResponseWriter, req *http.Request, e *tokenEntry, deviceID string) {
	m.logoutUpstream(req, e.sess, false, deviceID)
	out, err := m.store.deleteDeviceSessions(storeAudit(req, "logout"), e.claims.Sub, deviceID)
	if err != nil {
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
		return
	}
	m.cache.removeSessions(out.SessionIDs)
	m.auditReason("logout_device", req, e.claims.Sub, e.claims.Sid, strconv.Itoa(out.Deleted)+" session(s) of one device")
	if e.sess.DeviceID == deviceID {
		m.clearSessionCookie(rw)
	}
	writeJSONValue(rw, http.StatusOK, okResponse{OK: true, Revoked: &out.Deleted})
}

func (m *Middleware) serveLogoutAll(rw http.ResponseWriter, req *http.Request, e *tokenEntry) {
	if req.Method != http.MethodPost {
		writeError(rw, http.StatusMethodNotAllowed, "Use POST")
		return
	}
	m.logoutUpstream(req, e.sess, true, "")
	out, err := m.store.deleteUserSessions(storeAudit(req, "logout_all"), e.claims.Sub)
	if err != nil {
		writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
		return
	}
	m.cache.removeUser(e.claims.Sub)
	m.audit("logout_all", req, e.claims.Sub, e.claims.Sid)
	m.clearSessionCookie(rw)
	writeJSONValue(rw, http.StatusOK, okResponse{OK: true, Revoked: &out.Deleted})
}

// serveSessions is Strapi 5's session API: GET lists the caller's sessions, current first, then
// the most recently used; DELETE <id> revokes one of them (404 for any other id).
func (m *Middleware) serveSessions(rw http.ResponseWriter, req *http.Request, e *tokenEntry, id string) {
	switch {
	case id == "" && req.Method == http.MethodGet:
		list, err := m.store.listUserSessions(req.Context(), e.claims.Sub)
		if err != nil {
			writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
			return
		}
		out := sessionsResponse{Data: make([]sessionView, 0, len(list))}
		for i := range list {
			out.Data = append(out.Data, newSessionView(&list[i], e.claims.Sid))
		}
		sort.SliceStable(out.Data, sessionsFirst(out.Data))
		writeJSONValue(rw, http.StatusOK, out)
	case id != "" && req.Method == http.MethodDelete:
		// The store revokes only the caller's own session (or, for one that already ended, its
		// refresh family); another user's answers exactly like a missing one: nothing is revealed.
		out, err := m.store.deleteSession(storeAudit(req, "session_api"), id, true, e.claims.Sub)
		if errors.Is(err, errStoreNotFound) {
			writeError(rw, http.StatusNotFound, "Session not found")
			return
		}
		if err != nil {
			writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
			return
		}
		m.cache.removeSession(id)
		m.cache.removeSessions(out.SessionIDs)
		m.audit("session_revoked", req, e.claims.Sub, id)
		writeJSONValue(rw, http.StatusOK, emptyData{})
	default:
		writeError(rw, http.StatusMethodNotAllowed, "Use GET "+m.s.sessionsPath+" or DELETE "+m.s.sessionsPath+"/<id>")
	}
}

func newSessionView(s *storeSession, current string) sessionView {
	v := sessionView{
		ID: s.ID, DeviceName: s.DeviceName, Current: s.ID == current,
		LoginAt: isoMs(s.CreatedAt), LastActiveAt: isoMs(s.LastSeenAt),
		Host: s.Host, CreatedAt: isoMs(s.CreatedAt), LastSeenAt: isoMs(s.LastSeenAt), ExpiresAt: isoMs(s.ExpiresAt),
		LoginAddr: s.LoginAddr, LastAddr: s.LastAddr, Hosts: map[string]string{}, RememberMe: s.RememberMe,
	}
	for h, at := range s.HostsLastSeen {
		v.Hosts[h] = isoMs(at)
	}
	if s.DeviceID != "" {
		d := s.DeviceID
		v.DeviceID = &d
	}
	return v
}

// sessionsFirst is Strapi's sortSessionsForDisplay: the current session, then the latest used.
func sessionsFirst(v []sessionView) func(i, j int) bool {
	return func(i, j int) bool {
		if v[i].Current != v[j].Current {
			return v[i].Current
		}
		return v[i].LastActiveAt > v[j].LastActiveAt
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
