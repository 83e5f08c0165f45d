package accessproxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 15: the per-user cap, rememberMe and the session details a user sees.

func loginWith(hs *harness, body string, header map[string]string) (string, int, string) {
	rec := hs.doWith(http.MethodPost, "a.localhost", "/api/auth/local", "", body, header)
	if rec.Code != http.StatusOK {
		return "", rec.Code, rec.Body.String()
	}
	tok, _ := decodeMap(hs.t, rec)["jwt"].(string)
	return tok, rec.Code, rec.Body.String()
}

func TestSessionCapEvictsLeastRecentlyUsed(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.MaxSessionsPerUser = 2 })
	first := hs.login("a.localhost")
	hs.advance(time.Second)
	second := hs.login("a.localhost")
	hs.advance(time.Second)
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", first, "") // warm on this Traefik
	third := hs.login("a.localhost")
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", first, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("the least recently used session after a login past the cap: %d", rec.Code)
	}
	for _, tok := range []string{second, third} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("a session within the cap: %d", rec.Code)
		}
	}
}

func TestSessionCapRefuseAnswers409InStrapiShape(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.MaxSessionsPerUser = 2; c.SessionLimit = "refuse" })
	a, b := hs.login("a.localhost"), hs.login("a.localhost")
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusConflict || strings.Contains(rec.Body.String(), hs.strapi.jwt) {
		t.Fatalf("login past the cap with refuse: %d %s", rec.Code, rec.Body.String())
	}
	e, _ := decodeMap(t, rec)["error"].(map[string]interface{})
	if e == nil || e["status"] != float64(409) || e["name"] != "ConflictError" || e["message"] == "" {
		t.Fatalf("409 not in Strapi's error shape: %s", rec.Body.String())
	}
	for _, tok := range []string{a, b} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("a refused login ended an existing session: %d", rec.Code)
		}
	}
}

// A remembered login lives by rememberMeIdleTimeout and gets a lasting cookie; a normal one by
// idleTimeout, with a browser-session cookie.
func TestRememberMeWindowAndCookie(t *testing.T) {
	hs := newHarness(t, func(c *Config) {
		c.Cookie.Enabled = true
		c.IdleTimeout, c.RememberMeIdleTimeout = "10m", "2h"
		c.MaxLifetime, c.RememberMeMaxLifetime = "24h", "240h"
	})
	cookieOf := func(body string) *http.Cookie {
		rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", body)
		for _, c := range rec.Result().Cookies() {
			if c.Name == "ap_session" {
				return c
			}
		}
		t.Fatalf("login without a session cookie: %d %s", rec.Code, rec.Body.String())
		return nil
	}
	normal := cookieOf(`{"identifier":"ann","password":"right"}`)
	remembered := cookieOf(`{"identifier":"ann","password":"right","rememberMe":true}`)
	if normal.MaxAge != 0 {
		t.Fatalf("a normal login's cookie has Max-Age %d", normal.MaxAge)
	}
	if remembered.MaxAge < int((239*time.Hour).Seconds()) || remembered.MaxAge > int((240*time.Hour).Seconds()) {
		t.Fatalf("a remembered login's cookie: Max-Age %d, want about rememberMeMaxLifetime", remembered.MaxAge)
	}
	hs.advance(30 * time.Minute)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", normal.Value, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a normal session 30 min idle (idleTimeout 10m): %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", remembered.Value, ""); rec.Code != http.StatusOK {
		t.Fatalf("a remembered session 30 min idle (rememberMeIdleTimeout 2h): %d %s", rec.Code, rec.Body.String())
	}
	hs.advance(2*time.Hour + time.Minute)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", remembered.Value, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a remembered session past its own idle window: %d", rec.Code)
	}
}

// The session list shows what a person recognises: device, addresses, hosts, rememberMe.
func TestSessionListShowsDeviceAndAddresses(t *testing.T) {
	hs := newHarness(t, nil)
	tok, code, body := loginWith(hs, `{"identifier":"ann","password":"right","rememberMe":true}`, map[string]string{
		"User-Agent":      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"X-Forwarded-For": "203.0.113.9",
	})
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	list := strapiSessionList(t, hs.do(http.MethodGet, "a.localhost", "/api/auth/sessions", tok, ""))
	if len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	s := list[0]
	hosts, _ := s["hosts"].(map[string]interface{})
	if s["deviceName"] != "Chrome on macOS" || s["loginAddr"] != "203.0.113.9" || s["lastAddr"] != "203.0.113.9" ||
		s["rememberMe"] != true || hosts["a.localhost"] == nil {
		t.Fatalf("session details: %v", s)
	}
}

func TestSessionBoundsConfigErrors(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.MaxSessionsPerUser = -1 },
		func(c *Config) { c.SessionLimit = "oldest" },
		func(c *Config) { c.RememberMeIdleTimeout = "1m" }, // shorter than idleTimeout
		func(c *Config) { c.RememberMeMaxLifetime = "1h" }, // shorter than maxLifetime
		func(c *Config) { c.RememberMeIdleTimeout = "soon" },
	} {
		cfg := CreateConfig()
		cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		mut(cfg)
		if _, err := New(nil, http.NotFoundHandler(), cfg, "t"); err == nil { //nolint:staticcheck // New ignores its context
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}
