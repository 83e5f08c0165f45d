package accessproxy

// The login swap: Strapi's answer to a login is rewritten so that its credentials stay with
// the proxy and the client gets the proxy's own. Everything but the credentials goes out exactly as
// Strapi wrote it, member by member, in Strapi's order.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// swapped is the outcome of swapLoginBody: the body to send and, when credentials were swapped,
// the new session and its proxy token.
type swapped struct {
	body       []byte
	sess       *storeSession
	token      string
	refresh    string // the proxy refresh token issued, if any
	refreshExp int64
}

// swapLoginBody returns the body to send: unchanged when it carries no credentials, else with
// `jwt` replaced by a new proxy token, Strapi's refresh token taken out and, when asked for or
// where Strapi issued one (session mode), the proxy's own refresh token issued: in the body, or
// for opt.refreshCookie left to the caller to set as the cookie. A non-zero status means: answer
// that error instead.
func (m *Middleware) swapLoginBody(req *http.Request, body []byte, opt loginOptions, cookieRefresh string) (swapped, int, string) {
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
	// Where Strapi hands out a refresh credential, the proxy hands out its own in its place.
	wantRefresh := opt.wantRefresh || (strapiRefresh != "" && m.s.refreshTokens != "off")
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
	w := &m.normal
	if opt.rememberMe {
		w = &m.remembered
	}
	absMs := capAt(nowMs+w.maxLifetimeMs, capMs)
	if absMs <= nowMs+1000 {
		return swapped{}, http.StatusBadGateway, "Login response with an expired token"
	}
	create := &createSessionRequest{
		UserID:            up.userID,
		Host:              host,
		Audience:          aud,
		DeviceID:          opt.deviceID,
		DeviceName:        opt.deviceName,
		StrapiJwt:         strapiJWT,
		StrapiRefresh:     strapiRefresh,
		IdleTimeoutMs:     w.idleMs,
		Sliding:           m.s.sliding,
		AbsoluteExpiresAt: absMs,
		ClientAddr:        opt.clientAddr,
		RememberMe:        opt.rememberMe,
		Username:          loginUsername(lastObject(members, "user")),
	}
	if m.s.maxSessionsPerUser > 0 {
		create.MaxSessions, create.SessionLimit = m.s.maxSessionsPerUser, m.s.sessionLimit
	}
	refresh := ""
	if wantRefresh {
		var hash string
		if refresh, hash, err = newRefreshToken(); err != nil {
			return swapped{}, http.StatusInternalServerError, "Could not issue a token"
		}
		create.Refresh = &refreshSeed{TokenHash: hash, ExpiresAt: capAt(nowMs+m.s.refreshTTL.Milliseconds(), capMs)}
	}
	sess, status, msg := m.storeLoginSession(req, create, opt.endOthers)
	if sess == nil {
		return swapped{}, status, msg
	}
	token, err := m.issueToken(sess, now)
	if err != nil {
		return swapped{}, http.StatusInternalServerError, "Could not issue a token"
	}
	inBody := refresh
	if opt.refreshCookie {
		inBody = ""
	}
	out, err := rewriteCredentials(members, token, inBody)
	if err != nil {
		return swapped{}, http.StatusInternalServerError, "Could not write the login response"
	}
	res := swapped{body: out, sess: sess, token: token, refresh: refresh}
	if create.Refresh != nil {
		res.refreshExp = create.Refresh.ExpiresAt
	}
	return res, 0, ""
}

// storeLoginSession creates the login's session in the store: after ending the user's others
// when a password changed (endOthers), within the per-user cap. On failure it returns the status
// and message to answer with.
func (m *Middleware) storeLoginSession(req *http.Request, create *createSessionRequest, endOthers bool) (*storeSession, int, string) {
	userID := create.UserID
	if endOthers {
		// The password changed: whoever held the old one, on any device, is out. The caller goes
		// on with the session made below.
		out, err := m.store.deleteUserSessions(storeAudit(req, "password_change"), userID)
		if err != nil {
			return nil, http.StatusServiceUnavailable, "Session service unavailable, try again shortly"
		}
		m.cache.removeUser(userID)
		m.auditReason("password_sessions_ended", req, userID, "", strconv.Itoa(out.Deleted)+" session(s) ended by the password change")
	}
	sess, evicted, err := m.store.createSession(storeAudit(req, "login"), create)
	if errors.Is(err, errSessionLimit) {
		m.auditReason("session_limit", req, userID, "", "login refused: "+strconv.Itoa(m.s.maxSessionsPerUser)+" session(s) already, sessionLimit refuse")
		return nil, http.StatusConflict, "Too many active sessions for this account: log out of another device first"
	}
	if err != nil {
		return nil, http.StatusServiceUnavailable, "Session service unavailable, try again shortly"
	}
	if len(evicted) > 0 {
		// Ended on this Traefik now; on the others through the change feed.
		m.cache.removeSessions(evicted)
		m.auditReason("session_evicted", req, userID, sess.ID, strconv.Itoa(len(evicted))+" least recently used session(s) ended by maxSessionsPerUser")
	}
	return sess, 0, ""
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

// A login answer is rewritten member by member, so everything but the credentials goes out
// exactly as Strapi wrote it, in Strapi's order.

var errNotObject = errors.New("not a JSON object")

// jsonMember is one top-level member of a JSON object; its value is kept byte for byte.
type jsonMember struct {
	key string
	raw json.RawMessage
}

// splitObject reads a JSON object into its top-level members, in order.
func splitObject(body []byte) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var out []jsonMember
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := kt.(string)
		if !ok {
			return nil, errNotObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: k, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	return out, nil
}

// lastString returns the value of the last member named key when it is a JSON string (JSON.parse
// keeps the last of duplicate keys, so that is the one Strapi's clients would see).
func lastString(members []jsonMember, key string) (string, bool) {
	value, found := "", false
	for _, mem := range members {
		if mem.key == key {
			found = true
			value = ""
			_ = json.Unmarshal(mem.raw, &value)
		}
	}
	return value, found
}

// lastObject returns the last member named key decoded as an object (nil if it is not one).
func lastObject(members []jsonMember, key string) map[string]interface{} {
	var obj map[string]interface{}
	for _, mem := range members {
		if mem.key == key {
			obj = nil
			dec := json.NewDecoder(bytes.NewReader(mem.raw))
			dec.UseNumber()
			_ = dec.Decode(&obj)
		}
	}
	return obj
}

// rewriteCredentials puts the proxy token in every `jwt` member, and the proxy's refresh token
// (or nothing, when refresh is "") in place of Strapi's `refreshToken`.
func rewriteCredentials(members []jsonMember, token, refresh string) ([]byte, error) {
	tokenRaw, err := json.Marshal(token)
	if err != nil {
		return nil, err
	}
	var refreshRaw []byte
	if refresh != "" {
		if refreshRaw, err = json.Marshal(refresh); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	write := func(key string, raw []byte) {
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(raw)
		n++
	}
	for _, mem := range members {
		switch mem.key {
		case "jwt":
			write(mem.key, tokenRaw)
		case "refreshToken":
			if refreshRaw != nil {
				write(mem.key, refreshRaw)
				refreshRaw = nil
			}
		default:
			write(mem.key, mem.raw)
		}
	}
	if refreshRaw != nil {
		write("refreshToken", refreshRaw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
