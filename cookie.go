package accessproxy

import (
	"net/http"
	"net/url"
	"strings"
	"time"
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
	maxAge := int((sess.AbsoluteExpiresAt - time.Now().UnixMilli()) / 1000)
	c := &http.Cookie{Name: m.s.cookie.Name, Value: token, Path: "/", Domain: m.s.cookie.Domain, MaxAge: maxAge,
		HttpOnly: true, Secure: m.s.cookie.Secure, SameSite: m.sameSite()}
	rw.Header().Add("Set-Cookie", c.String())
}

func (m *Middleware) clearSessionCookie(rw http.ResponseWriter) {
	if !m.s.cookie.Enabled {
		return
	}
	c := &http.Cookie{Name: m.s.cookie.Name, Value: "", Path: "/", Domain: m.s.cookie.Domain, MaxAge: -1,
		HttpOnly: true, Secure: m.s.cookie.Secure, SameSite: m.sameSite()}
	rw.Header().Add("Set-Cookie", c.String())
}

// credential returns the proxy token of a request: the Authorization header first, then the cookie.
// bad is true when an Authorization header is there but is not a bearer token.
func (m *Middleware) credential(req *http.Request) (token string, fromCookie, bad bool) {
	if h := req.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:]), false, false
		}
		return "", false, true
	}
	if m.s.cookie.Enabled {
		if c, err := req.Cookie(m.s.cookie.Name); err == nil && c.Value != "" {
			return c.Value, true, false
		}
	}
	return "", false, false
}

// stripSessionCookie keeps the proxy's cookie from reaching the upstream.
func (m *Middleware) stripSessionCookie(req *http.Request) {
	cookies := req.Cookies()
	req.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != m.s.cookie.Name {
			req.AddCookie(c)
		}
	}
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
