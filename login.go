package accessproxy

import (
	"net/http"
	"strconv"
)

// serveLoginRoute runs a login request through the edge checks (body rules, rate limit, lockout),
// lets Strapi answer it and swaps the credentials in the answer.
func (m *Middleware) serveLoginRoute(rw http.ResponseWriter, req *http.Request, p string) {
	r := &m.s.routes
	body, err := readBodyFields(req)
	if err != nil {
		status, msg := bodyErrorStatus(err)
		writeError(rw, status, msg)
		return
	}
	if p == r.register && !m.s.allowAudienceOnRegister && setsField(body, m.s.audienceField) {
		m.auditReason("denied", req, "", "", "register body sets "+m.s.audienceField)
		writeError(rw, http.StatusBadRequest, "Invalid parameters: "+m.s.audienceField+" cannot be set at registration")
		return
	}
	deviceID, ok := loginDeviceID(body)
	if !ok {
		writeError(rw, http.StatusBadRequest, "Invalid parameters: deviceId must be at most 255 characters, without control characters")
		return
	}
	identifier := ""
	if p == r.localLogin {
		identifier = loginIdentifier(body)
	}
	if req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		limited, err := m.limits.check(req.Context(), clientIP(req), identifier)
		if err != nil {
			// No counter, no attempt: a store outage must not open the door to unlimited guesses.
			writeError(rw, http.StatusServiceUnavailable, "Session service unavailable, try again shortly")
			return
		}
		if limited.status != 0 {
			m.auditReason("login_locked", req, "", "", limited.reason)
			rw.Header().Set("Retry-After", strconv.FormatInt(limited.wait, 10))
			writeError(rw, limited.status, limited.message)
			return
		}
	}
	if p == r.changePassword {
		// change-password needs the caller's session, and answers with a new Strapi JWT.
		e := m.requireSession(rw, req)
		if e == nil {
			return
		}
		m.prepareUpstream(req, e)
	} else {
		// Logging in needs no credential: a stale or revoked one is dropped, never a reason to
		// refuse the login (and never passed to Strapi).
		req.Header.Del("Authorization")
		if m.s.cookie.Enabled {
			m.takeSessionCookie(req)
		}
	}
	status, sess := m.serveLogin(rw, req, loginOptions{
		wantRefresh: m.wantsRefresh(body), refreshCookie: asksRefreshCookie(req),
		deviceID: deviceID, deviceName: deviceName(req), clientAddr: clientAddr(req), rememberMe: asksRememberMe(body),
		endOthers: m.s.revokeOnPasswordChange && (p == r.changePassword || p == r.resetPassword),
	})
	m.limits.record(storeAudit(req, ""), identifier, status)
	switch {
	case sess != nil:
		m.audit("login_ok", req, sess.UserID, sess.ID)
	case status == http.StatusBadRequest:
		m.audit("login_failed", req, "", "")
	}
}

// loginOptions is what the login request asked for and says of its device.
type loginOptions struct {
	wantRefresh   bool // a proxy refresh token is issued (also, in any case, when Strapi issued one)
	refreshCookie bool // the client asked for Strapi's cookie form (x-strapi-refresh-cookie)
	deviceID      string
	deviceName    string
	clientAddr    string // the client's address (clientIP), kept on the session
	rememberMe    bool   // the body's "rememberMe": true: the rememberMe windows and a lasting cookie
	// endOthers: a password was changed or reset: every earlier session of the user ends before
	// the new one is made (revokeOnPasswordChange).
	endOthers bool
}

// asksRememberMe: the login body's rememberMe is true (JSON true, or "true" in a form). Strapi
// itself ignores the field.
func asksRememberMe(body map[string]interface{}) bool {
	v := body["rememberMe"]
	return v == true || v == "true"
}

// serveLogin lets Strapi answer a login request, then replaces the Strapi JWT in its answer with
// a proxy token. Whatever goes wrong, the Strapi JWT never reaches the client. It returns the
// status sent and the session created, if any.
func (m *Middleware) serveLogin(rw http.ResponseWriter, req *http.Request, opt loginOptions) (int, *storeSession) {
	// The body is rewritten, so ask for one we can read.
	req.Header.Set("Accept-Encoding", "identity")
	buf := newBufferedResponse()
	m.next.ServeHTTP(buf, req)
	// Strapi's refresh cookie (session mode with httpOnly) is kept for the session, never sent on.
	cookieRefresh := takeStrapiRefreshCookie(buf.header, m.s.strapiRefreshCookie)

	if buf.overflow {
		writeError(rw, http.StatusBadGateway, "Login response too large")
		return http.StatusBadGateway, nil
	}
	if buf.status < 200 || buf.status > 299 {
		buf.copyTo(rw, buf.body.Bytes())
		return buf.status, nil
	}
	body, err := decodedBody(buf)
	if err != nil {
		writeError(rw, http.StatusBadGateway, "Unreadable login response")
		return http.StatusBadGateway, nil
	}
	if cookieRefresh != "" {
		// Strapi set its refresh cookie: the proxy's goes in its place.
		opt.refreshCookie = true
	}
	res, status, msg := m.swapLoginBody(req, body, opt, cookieRefresh)
	if status != 0 {
		writeError(rw, status, msg)
		return status, nil
	}
	h := buf.header
	h.Del("Content-Encoding")
	h.Del("Etag")
	h.Del("Content-Md5")
	h.Set("Cache-Control", "no-store")
	if res.sess != nil {
		m.rememberIssued(req.Host, res.token)
		m.setSessionCookie(buf, res.token, res.sess)
		if res.refresh != "" && opt.refreshCookie {
			m.setRefreshCookie(buf, res.refresh, res.refreshExp)
		}
	}
	buf.copyTo(rw, res.body)
	return buf.status, res.sess
}
