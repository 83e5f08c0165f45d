package accessproxy

import (
	"net/http"
	"net/url"
	"strings"
)

// Cookie mode: the proxy token also travels as an HttpOnly cookie, so browser apps need not keep
// it in JavaScript. Cookies ride along on cross-site requests, so state-changing requests
// authenticated by cookie must come from an origin in the user's audience.

func (m *Middleware) sameSite() http.SameSite {
	switch strings.ToLower(m.s.cookie.SameSite) {
	case "lax":
		return http.SameSiteLaxMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteStrictMode
}

func (m *Middleware) setSessionCookie(rw http.ResponseWriter, token string, sess *storeSession) {
	if !m.s.cookie.Enabled {
		return
	}
	// A remembered session's cookie lives as long as the token in it (with accessTokenTTL the
	// browser drops it when the token expires, and the client refreshes); any other is a
	// browser-session cookie, gone when the browser closes.
	maxAge := 0
	if sess.RememberMe {
		maxAge = int(m.tokenExpiry(sess, m.clock.now()) - m.clock.now().Unix())
	}
	// Secure is cookie.secure (default true; off only for plain-HTTP development).
	c := &http.Cookie{Name: m.s.cookie.Name, Value: token, Path: "/", Domain: m.s.cookie.Domain, MaxAge: maxAge, //nolint:gosec // Secure follows cookie.secure (default true)
		HttpOnly: true, Secure: m.s.cookie.Secure, SameSite: m.sameSite()}
	rw.Header().Add("Set-Cookie", c.String())
}

func (m *Middleware) clearSessionCookie(rw http.ResponseWriter) {
	if !m.s.cookie.Enabled {
		return
	}
	c := &http.Cookie{Name: m.s.cookie.Name, Value: "", Path: "/", Domain: m.s.cookie.Domain, MaxAge: -1, //nolint:gosec // Secure follows cookie.secure (default true)
		HttpOnly: true, Secure: m.s.cookie.Secure, SameSite: m.sameSite()}
	rw.Header().Add("Set-Cookie", c.String())
}

// setRefreshCookie hands the proxy's refresh token to the browser: HttpOnly, and sent only to the
// auth routes (where refresh and logout are), never to the rest of Strapi.
func (m *Middleware) setRefreshCookie(rw http.ResponseWriter, token string, expiresAtMs int64) {
	maxAge := int((expiresAtMs - m.clock.nowMs()) / 1000)
	if maxAge <= 0 {
		maxAge = -1
	}
	c := &http.Cookie{Name: m.s.cookie.RefreshName, Value: token, Path: m.s.routes.auth, Domain: m.s.cookie.Domain, MaxAge: maxAge, //nolint:gosec // Secure follows cookie.secure (default true)
		HttpOnly: true, Secure: m.s.cookie.Secure, SameSite: m.sameSite()}
	rw.Header().Add("Set-Cookie", c.String())
}

func (m *Middleware) clearRefreshCookie(rw http.ResponseWriter) {
	m.setRefreshCookie(rw, "", 0)
}

// takeRefreshCookie removes the proxy's refresh cookie from a request (it is the proxy's alone and
// never reaches Strapi) and returns its value: "" when absent, or set twice with different values.
func (m *Middleware) takeRefreshCookie(req *http.Request) string {
	if len(req.Header["Cookie"]) == 0 {
		return ""
	}
	v, _ := takeCookie(req, m.s.cookie.RefreshName)
	return v
}

// presented is the credential a request carries, or the answer when it carries it badly.
type presented struct {
	token      string
	fromCookie bool // the token came from the proxy's cookie (Origin rules apply)
	hadCookie  bool // the proxy's cookie was there (and was taken off the request)
	problem    int  // non-zero: answer this status with message
	message    string
}

// credential reads the proxy token of a request: the Authorization header, else the proxy's
// cookie. Anything an upstream or a second reader could take for another credential is refused:
// more than one Authorization header, a header that is not a bearer, and a bearer and a cookie
// (or two cookies) that disagree. The proxy's cookie is always taken off the request.
func (m *Middleware) credential(req *http.Request) presented {
	var out presented
	auth := req.Header["Authorization"]
	if len(auth) > 1 {
		return presented{problem: http.StatusBadRequest, message: "More than one Authorization header"}
	}
	if len(auth) == 1 {
		h := auth[0]
		if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
			return presented{problem: http.StatusUnauthorized, message: "Invalid credentials: only a token issued by the access proxy is accepted"}
		}
		out.token = strings.TrimSpace(h[7:])
	}
	if !m.s.cookie.Enabled {
		return out
	}
	cookie, n := m.takeSessionCookie(req)
	out.hadCookie = n > 0
	switch {
	case n > 1 && cookie == "":
		return presented{problem: http.StatusBadRequest, message: "The session cookie is set more than once with different values"}
	case out.token != "" && cookie != "" && cookie != out.token:
		return presented{problem: http.StatusBadRequest, message: "A bearer token and a different session cookie: send one credential"}
	case out.token == "" && cookie != "":
		out.token, out.fromCookie = cookie, true
	}
	return out
}

// takeSessionCookie removes the proxy's cookie from the request, so it never reaches the
// upstream, and returns its value and how many times it was there ("" when the copies differ).
func (m *Middleware) takeSessionCookie(req *http.Request) (string, int) {
	if len(req.Header["Cookie"]) == 0 {
		return "", 0
	}
	return takeCookie(req, m.s.cookie.Name)
}

// takeCookie removes every cookie called name from the request and returns its value and how
// many times it was there ("" when the copies differ).
func takeCookie(req *http.Request, name string) (string, int) {
	cookies := req.Cookies()
	value, n := "", 0
	var keep []*http.Cookie
	for _, c := range cookies {
		if c.Name != name {
			keep = append(keep, c)
			continue
		}
		if n > 0 && c.Value != value {
			value = ""
			n++
			continue
		}
		if n == 0 {
			value = c.Value
		}
		n++
	}
	if n == 0 {
		return "", 0
	}
	req.Header.Del("Cookie")
	for _, c := range keep {
		req.AddCookie(c)
	}
	return value, n
}

func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions || method == http.MethodTrace
}

// originTrusted checks the Origin (else Referer) of a cookie-authenticated request against the
// user's audience.
func originTrusted(req *http.Request, aud audience) bool {
	origin := req.Header.Get("Origin")
	if origin == "" || origin == "null" {
		origin = req.Header.Get("Referer")
	}
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return aud.allows(requestHost(u.Host))
}
