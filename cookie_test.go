package accessproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Credentials an upstream or a second reader could take another way are refused.
func TestAmbiguousCredentialsRefused(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	tok := hs.login("a.localhost")
	other := hs.login("a.localhost")
	send := func(auth []string, cookies ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		for _, c := range cookies {
			req.Header.Add("Cookie", c)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	seen := len(hs.strapi.seen)
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"two Authorization headers":        send([]string{"Bearer " + tok, "Bearer " + other}),
		"two identical headers":            send([]string{"Bearer " + tok, "Bearer " + tok}),
		"bearer and a different cookie":    send([]string{"Bearer " + tok}, "ap_session="+other),
		"two different cookies":            send(nil, "ap_session="+tok+"; ap_session="+other),
		"two cookie headers that disagree": send(nil, "ap_session="+tok, "ap_session="+other),
	} {
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"status":400`) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body.String())
		}
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("an ambiguous request reached Strapi")
	}
	// The same token twice is one credential; the proxy's cookie never reaches the upstream.
	rec := send([]string{"Bearer " + tok}, "ap_session="+tok+"; theme=dark")
	if rec.Code != http.StatusOK {
		t.Fatalf("bearer and the same cookie: %d %s", rec.Code, rec.Body.String())
	}
	if c := hs.strapi.last().Header.Get("Cookie"); strings.Contains(c, "ap_session") || !strings.Contains(c, "theme=dark") {
		t.Fatalf("upstream Cookie %q", c)
	}
	// Twice through the fast path too.
	for i := 0; i < 2; i++ {
		send([]string{"Bearer " + tok}, "ap_session="+tok)
		if c := hs.strapi.last().Header.Get("Cookie"); strings.Contains(c, "ap_session") {
			t.Fatalf("fast path forwarded the proxy cookie: %q", c)
		}
	}
}

// A login is always possible: a stale, revoked or foreign credential on a login request is
// dropped, in bearer and cookie mode.
func TestLoginWithStaleCredential(t *testing.T) {
	for _, cookieMode := range []bool{false, true} {
		hs := newHarness(t, func(c *Config) { c.Cookie.Enabled = cookieMode })
		tok := hs.login("a.localhost")
		if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("logout: %d", rec.Code)
		}
		for name, set := range map[string]func(*http.Request){
			"revoked bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) },
			"garbage bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer x.y.z") },
			"basic header":   func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") },
			"revoked cookie": func(r *http.Request) { r.Header.Set("Cookie", "ap_session="+tok) },
		} {
			if name == "revoked cookie" && !cookieMode {
				continue
			}
			req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local", strings.NewReader(`{"identifier":"ann","password":"right"}`))
			req.Header.Set("Content-Type", "application/json")
			set(req)
			rec := httptest.NewRecorder()
			hs.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || decodeMap(t, rec)["jwt"] == nil {
				t.Fatalf("cookie mode %v, login with a %s: %d %s", cookieMode, name, rec.Code, rec.Body.String())
			}
			if up := hs.strapi.last(); up.Header.Get("Authorization") != "" || strings.Contains(up.Header.Get("Cookie"), "ap_session") {
				t.Fatalf("the stale credential reached Strapi: %v", up.Header)
			}
		}
	}
}

func TestCookieModeAndCSRF(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	var cookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "ap_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.MaxAge != 0 || !cookie.Expires.IsZero() {
		t.Fatalf("cookie of a login without rememberMe (a browser-session cookie): %+v", cookie)
	}
	if cookie.Value != decodeMap(t, rec)["jwt"] {
		t.Fatal("cookie must carry the proxy token")
	}
	send := func(method, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://a.localhost/api/articles", nil)
		req.AddCookie(cookie)
		req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	rec = send(http.MethodGet, "")
	if rec.Code != http.StatusOK || decodeMap(t, rec)["authorization"] != "Bearer "+hs.strapi.jwt {
		t.Fatalf("GET with cookie: %d %s", rec.Code, rec.Body.String())
	}
	last := hs.strapi.seen[len(hs.strapi.seen)-1]
	if strings.Contains(last.Header.Get("Cookie"), "ap_session") || !strings.Contains(last.Header.Get("Cookie"), "theme=dark") {
		t.Fatalf("upstream Cookie header %q", last.Header.Get("Cookie"))
	}
	if rec := send(http.MethodPost, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("POST by cookie without Origin: %d", rec.Code)
	}
	if rec := send(http.MethodPost, "https://evil.example.org"); rec.Code != http.StatusForbidden {
		t.Fatalf("POST by cookie from a foreign origin: %d", rec.Code)
	}
	if rec := send(http.MethodPost, "https://a.localhost"); rec.Code != http.StatusOK {
		t.Fatalf("POST by cookie from the audience: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/logout", nil)
	req.AddCookie(cookie)
	rec = httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout by cookie: %d %v", rec.Code, rec.Header())
	}
}
