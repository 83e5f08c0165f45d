package accessproxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// maxLoginBody caps what the proxy buffers of a login response; past it, it fails closed.
const maxLoginBody = 1 << 20

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
	status, sess := m.serveLogin(rw, req, m.wantsRefresh(body))
	m.limits.record(req.Context(), identifier, status)
	switch {
	case sess != nil:
		m.audit("login_ok", req, sess.UserID, sess.ID)
	case status == http.StatusBadRequest:
		m.audit("login_failed", req, "", "")
	}
}

// serveLogin lets Strapi answer a login request, then replaces the Strapi JWT in its answer with
// a proxy token. Whatever goes wrong, the Strapi JWT never reaches the client. It returns the
// status sent and the session created, if any.
func (m *Middleware) serveLogin(rw http.ResponseWriter, req *http.Request, wantRefresh bool) (int, *storeSession) {
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
	res, status, msg := m.swapLoginBody(req, body, wantRefresh, cookieRefresh)
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
		m.setSessionCookie(buf, res.token, res.sess)
	}
	buf.copyTo(rw, res.body)
	return buf.status, res.sess
}

// swapped is the outcome of swapLoginBody: the body to send and, when credentials were swapped,
// the new session and its proxy token.
type swapped struct {
	body  []byte
	sess  *storeSession
	token string
}

// swapLoginBody returns the body to send: unchanged when it carries no credentials, else with
// `jwt` replaced by a new proxy token, Strapi's refresh token taken out and, when asked for, the
// proxy's own refresh token put in. A non-zero status means: answer that error instead.
func (m *Middleware) swapLoginBody(req *http.Request, body []byte, wantRefresh bool, cookieRefresh string) (swapped, int, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return swapped{body: body}, 0, ""
	}
	members, err := splitObject(body)
	if err != nil {
		return swapped{}, http.StatusBadGateway, "Unreadable login response"
	}
	strapiJWT, hasJWT := lastString(members, "jwt")
	strapiRefresh, hasRefresh := lastString(members, "refreshToken")
	if !hasJWT && !hasRefresh {
		return swapped{body: body}, 0, ""
	}
	if strapiRefresh == "" {
		strapiRefresh = cookieRefresh
	}
	if strapiJWT == "" {
		return swapped{}, http.StatusBadGateway, "Login response without a usable token"
	}
	up, err := readUpstreamJWT(strapiJWT)
	if err != nil {
		return swapped{}, http.StatusBadGateway, "Login response with an unreadable token"
	}

	host := requestHost(req.Host)
	aud := userAudience(lastObject(members, "user"), m.s.audienceField)
	if m.s.audienceCheck && !parseAudience(aud).allows(host) {
		return swapped{}, http.StatusForbidden, "This account may not use " + host
	}

	now := m.clock.now()
	nowMs := now.UnixMilli()
	// Legacy mode: the session cannot outlive the Strapi JWT. Session mode: the access JWT is
	// renewed upstream, so Strapi's refresh lifetime (enforced by Strapi) is the limit.
	capMs := int64(0)
	if up.exp > 0 && strapiRefresh == "" {
		capMs = up.exp * 1000
	}
	absMs := capAt(nowMs+m.maxLifetimeMs, capMs)
	if absMs <= nowMs+1000 {
		return swapped{}, http.StatusBadGateway, "Login response with an expired token"
	}
	create := &createSessionRequest{
		UserID:            up.userID,
		Host:              host,
		Audience:          aud,
		StrapiJwt:         strapiJWT,
		StrapiRefresh:     strapiRefresh,
		IdleTimeoutMs:     m.idleMs,
		Sliding:           m.s.sliding,
		AbsoluteExpiresAt: absMs,
	}
	refresh := ""
	if wantRefresh {
		var hash string
		if refresh, hash, err = newRefreshToken(); err != nil {
			return swapped{}, http.StatusInternalServerError, "Could not issue a token"
		}
		create.Refresh = &refreshSeed{TokenHash: hash, ExpiresAt: capAt(nowMs+m.s.refreshTTL.Milliseconds(), capMs)}
	}
	sess, err := m.store.createSession(req.Context(), create)
	if err != nil {
		return swapped{}, http.StatusServiceUnavailable, "Session service unavailable, try again shortly"
	}
	token, err := m.issueToken(sess, now)
	if err != nil {
		return swapped{}, http.StatusInternalServerError, "Could not issue a token"
	}
	out, err := rewriteCredentials(members, token, refresh)
	if err != nil {
		return swapped{}, http.StatusInternalServerError, "Could not write the login response"
	}
	return swapped{body: out, sess: sess, token: token}, 0, ""
}

// capAt returns v, or limit when limit is set (> 0) and earlier.
func capAt(v, limit int64) int64 {
	if limit > 0 && limit < v {
		return limit
	}
	return v
}

// userAudience reads the audience attribute of the login response's user: a string of hosts
// separated by commas or spaces, or a JSON array of them.
func userAudience(user map[string]interface{}, field string) []string {
	switch v := user[field].(type) {
	case string:
		return splitAudience(v)
	case []interface{}:
		var out []string
		for _, item := range v {
			if s, ok := item.(string); ok {
				out = append(out, splitAudience(s)...)
			}
		}
		return out
	}
	return nil
}

// decodedBody returns the response body without content encoding (gzip is undone, within the cap).
func decodedBody(buf *bufferedResponse) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(buf.header.Get("Content-Encoding"))) {
	case "", "identity":
		return buf.body.Bytes(), nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(buf.body.Bytes()))
		if err != nil {
			return nil, err
		}
		defer func() { _ = zr.Close() }()
		out, err := io.ReadAll(io.LimitReader(zr, maxLoginBody+1))
		if err != nil {
			return nil, err
		}
		if len(out) > maxLoginBody {
			return nil, errors.New("decoded login response too large")
		}
		return out, nil
	}
	return nil, errors.New("unsupported content encoding")
}

// takeStrapiRefreshCookie removes Strapi's refresh cookies (`name` and its `.sig`) from a
// response and returns the refresh credential they carried ("" if none): that credential
// belongs to the proxy, never to the client.
func takeStrapiRefreshCookie(h http.Header, name string) string {
	cookies := h.Values("Set-Cookie")
	if len(cookies) == 0 {
		return ""
	}
	value := ""
	var keep []string
	for _, c := range cookies {
		kv := strings.SplitN(strings.SplitN(c, ";", 2)[0], "=", 2)
		cname := strings.TrimSpace(kv[0])
		if !strings.HasPrefix(cname, name) {
			keep = append(keep, c)
			continue
		}
		if cname == name && len(kv) == 2 {
			value = strings.TrimSpace(kv[1])
		}
	}
	h.Del("Set-Cookie")
	for _, c := range keep {
		h.Add("Set-Cookie", c)
	}
	return value
}

// bufferedResponse holds a login response until it has been rewritten. It is used on login
// paths only; every other route writes straight through.
type bufferedResponse struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > maxLoginBody {
		b.overflow = true
		return 0, errors.New("login response exceeds the proxy's buffer")
	}
	return b.body.Write(p)
}

// Flush is a no-op: nothing leaves before the rewrite.
func (b *bufferedResponse) Flush() {}

// Hijack is refused: a login answer must go through the rewrite, never over a raw connection.
func (b *bufferedResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("accessproxy: connection hijacking is not allowed on login paths")
}

func (b *bufferedResponse) copyTo(rw http.ResponseWriter, body []byte) {
	h := rw.Header()
	for k, v := range b.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}
