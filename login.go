package accessproxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxLoginBody caps what the proxy buffers of a login response; past it, it fails closed.
const maxLoginBody = 1 << 20

// strapiRefreshCookie is the prefix of Strapi 5's refresh cookies (`strapi_up_refresh` and its `.sig`).
const strapiRefreshCookie = "strapi_up_refresh"

// serveLogin lets Strapi answer a login request, then replaces the Strapi JWT in its answer with
// a proxy token. Whatever goes wrong, the Strapi JWT never reaches the client.
func (m *Middleware) serveLogin(rw http.ResponseWriter, req *http.Request) {
	// The body is rewritten, so ask for one we can read.
	req.Header.Set("Accept-Encoding", "identity")
	buf := newBufferedResponse()
	m.next.ServeHTTP(buf, req)
	dropStrapiRefreshCookies(buf.header)

	if buf.overflow {
		writeError(rw, http.StatusBadGateway, "Login response too large")
		return
	}
	if buf.status < 200 || buf.status > 299 {
		buf.copyTo(rw, buf.body.Bytes())
		return
	}
	body, err := decodedBody(buf)
	if err != nil {
		writeError(rw, http.StatusBadGateway, "Unreadable login response")
		return
	}
	out, status, msg := m.swapLoginBody(req, body)
	if status != 0 {
		writeError(rw, status, msg)
		return
	}
	h := buf.header
	h.Del("Content-Encoding")
	h.Del("Etag")
	h.Del("Content-Md5")
	h.Set("Cache-Control", "no-store")
	buf.copyTo(rw, out)
}

// swapLoginBody returns the body to send: unchanged when it carries no credentials, else with
// `jwt` replaced by a new proxy token and Strapi's refresh token taken out. A non-zero status
// means: answer that error instead.
func (m *Middleware) swapLoginBody(req *http.Request, body []byte) ([]byte, int, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return body, 0, ""
	}
	var obj map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, http.StatusBadGateway, "Unreadable login response"
	}
	rawJWT, hasJWT := obj["jwt"]
	strapiRefresh, _ := obj["refreshToken"].(string)
	_, hasRefresh := obj["refreshToken"]
	if !hasJWT && !hasRefresh {
		return body, 0, ""
	}
	delete(obj, "refreshToken")
	strapiJWT, _ := rawJWT.(string)
	if strapiJWT == "" {
		return nil, http.StatusBadGateway, "Login response without a usable token"
	}
	up, err := readUpstreamJWT(strapiJWT)
	if err != nil {
		return nil, http.StatusBadGateway, "Login response with an unreadable token"
	}

	host := requestHost(req.Host)
	aud := userAudience(obj["user"], m.s.audienceField)
	if m.s.audienceCheck && !parseAudience(aud).allows(host) {
		return nil, http.StatusForbidden, "This account may not use " + host
	}

	now := time.Now()
	nowMs := now.UnixMilli()
	absMs := nowMs + m.maxLifetimeMs
	if up.exp > 0 && up.exp*1000 < absMs {
		absMs = up.exp * 1000
	}
	if absMs <= nowMs+1000 {
		return nil, http.StatusBadGateway, "Login response with an expired token"
	}
	sess, err := m.store.createSession(req.Context(), &createSessionRequest{
		UserID:            up.userID,
		Host:              host,
		Audience:          aud,
		StrapiJwt:         strapiJWT,
		StrapiRefresh:     strapiRefresh,
		IdleTimeoutMs:     m.idleMs,
		Sliding:           m.s.sliding,
		AbsoluteExpiresAt: absMs,
	})
	if err != nil {
		return nil, http.StatusServiceUnavailable, "Session service unavailable, try again shortly"
	}
	claims := tokenClaims{Iss: tokenIssuer, Sub: sess.UserID, Sid: sess.ID, Iat: now.Unix(), Exp: sess.AbsoluteExpiresAt / 1000}
	token, err := m.keys.sign(claims)
	if err != nil {
		return nil, http.StatusInternalServerError, "Could not issue a token"
	}
	m.cache.put(token, newTokenEntry(claims, sess, nowMs), nowMs)

	obj["jwt"] = token
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, http.StatusInternalServerError, "Could not write the login response"
	}
	return bytes.TrimRight(out.Bytes(), "\n"), 0, ""
}

// userAudience reads the audience attribute of the login response's user: a string of hosts
// separated by commas or spaces, or a JSON array of them.
func userAudience(user interface{}, field string) []string {
	u, ok := user.(map[string]interface{})
	if !ok {
		return nil
	}
	switch v := u[field].(type) {
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
		defer zr.Close()
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

// dropStrapiRefreshCookies removes Strapi's refresh cookies from a response: that credential
// belongs to the proxy, never to the client.
func dropStrapiRefreshCookies(h http.Header) {
	cookies := h.Values("Set-Cookie")
	if len(cookies) == 0 {
		return
	}
	var keep []string
	for _, c := range cookies {
		name := strings.TrimSpace(strings.SplitN(c, "=", 2)[0])
		if !strings.HasPrefix(name, strapiRefreshCookie) {
			keep = append(keep, c)
		}
	}
	h.Del("Set-Cookie")
	for _, c := range keep {
		h.Add("Set-Cookie", c)
	}
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
