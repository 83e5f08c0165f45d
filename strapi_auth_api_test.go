package accessproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Strapi 5's own auth API, answered by the proxy with proxy credentials (issue 13).

// doWith is do with extra request headers.
func (hs *harness) doWith(method, host, path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// refreshCookieOf returns the value of the proxy refresh cookie a response sets ("" when none).
func refreshCookieOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	for _, c := range (&http.Response{Header: rec.Header()}).Cookies() {
		if c.Name == "ap_refresh" {
			if c.Path != "/api/auth" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("refresh cookie attributes: %+v", c)
			}
			return c.Value
		}
	}
	return ""
}

func TestStrapiRefreshBodyAndCookieForms(t *testing.T) {
	hs := newHarness(t, nil)
	_, ref := hs.loginWithRefresh("a.localhost")
	// The body form at Strapi's path: {jwt, refreshToken}.
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"`+ref+`"}`)
	pair := decodeMap(t, rec)
	ref2, _ := pair["refreshToken"].(string)
	if rec.Code != http.StatusOK || !validRefreshShape(ref2) || pair["jwt"] == nil || refreshCookieOf(t, rec) != "" {
		t.Fatalf("body form: %d %v %v", rec.Code, pair, rec.Header())
	}
	// The cookie form, asked for as Strapi's clients do: {jwt} and the rotated token as a cookie.
	rec = hs.doWith(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"`+ref2+`"}`, map[string]string{"X-Strapi-Refresh-Cookie": "httpOnly"})
	pair = decodeMap(t, rec)
	ref3 := refreshCookieOf(t, rec)
	if _, has := pair["refreshToken"]; rec.Code != http.StatusOK || has || !validRefreshShape(ref3) {
		t.Fatalf("cookie form: %d %v %v", rec.Code, pair, rec.Header())
	}
	// A token from the cookie goes back in the cookie, whatever the body says.
	rec = hs.doWith(http.MethodPost, "a.localhost", "/api/auth/refresh", "", "", map[string]string{"Cookie": "ap_refresh=" + ref3})
	ref4 := refreshCookieOf(t, rec)
	tok4, _ := decodeMap(t, rec)["jwt"].(string)
	if rec.Code != http.StatusOK || !validRefreshShape(ref4) || ref4 == ref3 || strings.Contains(rec.Body.String(), "refreshToken") {
		t.Fatalf("from the cookie: %d %s %v", rec.Code, rec.Body.String(), rec.Header())
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok4, ""); rec.Code != http.StatusOK {
		t.Fatalf("the refreshed token: %d", rec.Code)
	}
	// Header spelled otherwise: not Strapi's cookie form.
	rec = hs.doWith(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref4+`"}`, map[string]string{"X-Strapi-Refresh-Cookie": "httponly"})
	if _, ok := decodeMap(t, rec)["refreshToken"].(string); rec.Code != http.StatusOK || !ok {
		t.Fatalf("alias path, body form: %d %s", rec.Code, rec.Body.String())
	}
	// Strapi's error for no token at all.
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", "")
	if rec.Code != http.StatusBadRequest || strings.TrimSpace(rec.Body.String()) != `{"data":null,"error":{"status":400,"name":"BadRequestError","message":"Missing refresh token","details":{}}}` {
		t.Fatalf("no token: %d %s", rec.Code, rec.Body.String())
	}
	if n := hs.strapi.count("/api/auth/refresh") + hs.strapi.count("/api/auth/local/refresh"); n != 0 {
		t.Fatalf("%d refresh requests reached Strapi", n)
	}
}

func TestRefreshCookieNeverReachesStrapi(t *testing.T) {
	hs := newHarness(t, nil)
	hs.doWith(http.MethodPost, "a.localhost", "/api/auth/forgot-password", "", `{"email":"ann@example.com"}`, map[string]string{"Cookie": "theme=dark; ap_refresh=apr_secret"})
	last := hs.strapi.last()
	if last == nil || last.URL.Path != "/api/auth/forgot-password" {
		t.Fatalf("forgot-password did not reach Strapi: %v", last)
	}
	if c := last.Header.Get("Cookie"); c != "theme=dark" {
		t.Fatalf("Strapi received cookies %q", c)
	}
}

func TestRefreshReuseGrace(t *testing.T) {
	hs := newHarness(t, nil) // refreshReuseGrace: 10s by default
	_, ref := hs.loginWithRefresh("a.localhost")
	var toks []string
	for i := 0; i < 2; i++ { // two tabs with one token
		rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"`+ref+`"}`)
		if rec.Code != http.StatusOK {
			t.Fatalf("refresh %d within the grace: %d %s", i, rec.Code, rec.Body.String())
		}
		tok, _ := decodeMap(t, rec)["jwt"].(string)
		toks = append(toks, tok)
	}
	for _, tok := range toks {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("a tab's new token: %d", rec.Code)
		}
	}
	if hs.store.live() != 2 {
		t.Fatalf("%d live sessions, want one per tab", hs.store.live())
	}
	hs.advance(11 * time.Second)
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"`+ref+`"}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("reuse after the grace: %d", rec.Code)
	}
	for _, tok := range toks {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("after a reuse past the grace the family is revoked: %d", rec.Code)
		}
	}
}

func TestAccessTokenTTL(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.AccessTokenTTL = "3s" })
	// Every login carries a refresh token: without one a short token would end the login.
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	body := decodeMap(t, rec)
	tok, _ := body["jwt"].(string)
	ref, _ := body["refreshToken"].(string)
	if !validRefreshShape(ref) {
		t.Fatalf("no refresh token with accessTokenTTL: %v", body)
	}
	c, _ := mustRing(t, testSecret).verify(tok, mwOf(hs.h).clock.now())
	if life := c.Exp - mwOf(hs.h).clock.now().Unix(); life < 3 || life > 4 {
		t.Fatalf("token lives %ds, want 3s", life)
	}
	for i := 0; i < 5; i++ { // constant use does not extend it
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("use %d: %d", i, rec.Code)
		}
		hs.advance(500 * time.Millisecond)
	}
	hs.advance(1500 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after 4 s: %d", rec.Code)
	}
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"`+ref+`"}`)
	tok2, _ := decodeMap(t, rec)["jwt"].(string)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok2, ""); rec.Code != http.StatusOK {
		t.Fatalf("refreshed token: %d", rec.Code)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.AccessTokenTTL = "3s"; c.RefreshTokens = "off" },
		func(c *Config) { c.AccessTokenTTL = "10ms" },
		func(c *Config) { c.RefreshReuseGrace = "1h" },
		func(c *Config) { c.Cookie.RefreshName = "strapi_up_refresh_x" },
		func(c *Config) { c.Cookie.RefreshName = "a b" },
	} {
		cfg := CreateConfig()
		cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		bad(cfg)
		if _, err := New(context.Background(), hs.strapi, cfg, "bad"); err == nil {
			t.Errorf("config accepted: accessTokenTTL %q refreshTokens %q grace %q refreshName %q", cfg.AccessTokenTTL, cfg.RefreshTokens, cfg.RefreshReuseGrace, cfg.Cookie.RefreshName)
		}
	}
}

func TestSessionModeLoginPutsProxyRefreshWhereStrapiDid(t *testing.T) {
	// Strapi answered with a body refreshToken: the proxy's goes in the body, unasked.
	hs := newHarness(t, nil)
	hs.strapi.extra = map[string]interface{}{"refreshToken": "strapi-refresh-body"}
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	assertNoStrapiSecrets(t, hs, rec)
	if ref, _ := decodeMap(t, rec)["refreshToken"].(string); !validRefreshShape(ref) || refreshCookieOf(t, rec) != "" {
		t.Fatalf("body variant: %s %v", rec.Body.String(), rec.Header())
	}
	// Strapi set its cookie: the proxy's cookie in its place, nothing in the body.
	hs.strapi.extra = nil
	hs.strapi.refreshCookie = true
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	assertNoStrapiSecrets(t, hs, rec)
	if _, has := decodeMap(t, rec)["refreshToken"]; has || !validRefreshShape(refreshCookieOf(t, rec)) {
		t.Fatalf("cookie variant: %s %v", rec.Body.String(), rec.Header())
	}
	// refreshTokens off: no proxy refresh token at all.
	hs = newHarness(t, func(c *Config) { c.RefreshTokens = "off" })
	hs.strapi.extra = map[string]interface{}{"refreshToken": "strapi-refresh-body"}
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if _, has := decodeMap(t, rec)["refreshToken"]; has {
		t.Fatalf("refreshTokens off: %s", rec.Body.String())
	}
}

// strapiSessionList decodes Strapi's {data:[…]} session list.
func strapiSessionList(t *testing.T, rec *httptest.ResponseRecorder) []map[string]interface{} {
	t.Helper()
	var out struct {
		Data []map[string]interface{} `json:"data"`
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rec.Code, rec.Body.String())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Data == nil {
		t.Fatalf("list %s: %v", rec.Body.String(), err)
	}
	return out.Data
}

func TestStrapiSessionsListDevicesAndLogoutScopes(t *testing.T) {
	hs := newHarness(t, nil)
	chrome := map[string]string{"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}
	loginAs := func(device string) string {
		body := `{"identifier":"ann","password":"right"}`
		if device != "" {
			body = `{"identifier":"ann","password":"right","deviceId":"` + device + `"}`
		}
		rec := hs.doWith(http.MethodPost, "a.localhost", "/api/auth/local", "", body, chrome)
		tok, _ := decodeMap(t, rec)["jwt"].(string)
		return tok
	}
	tokLaptop := loginAs("laptop")
	hs.advance(time.Second)
	tokPhone := loginAs("phone")
	hs.advance(time.Second)
	tokPhone2 := loginAs("phone")
	hs.advance(time.Second)
	tokNone := loginAs("")
	// The deviceId reached Strapi untouched.
	if last := hs.strapi.last(); last == nil {
		t.Fatal("no login reached Strapi")
	}

	list := strapiSessionList(t, hs.do(http.MethodGet, "a.localhost", "/api/auth/sessions", tokPhone, ""))
	if len(list) != 4 || list[0]["current"] != true || list[0]["deviceId"] != "phone" {
		t.Fatalf("current first: %v", list)
	}
	for i, s := range list {
		for _, k := range []string{"id", "deviceId", "current", "loginAt", "lastActiveAt", "deviceName"} {
			if _, ok := s[k]; !ok {
				t.Fatalf("entry %d lacks %s: %v", i, k, s)
			}
		}
		if s["deviceName"] != "Chrome on macOS" {
			t.Fatalf("deviceName %v", s["deviceName"])
		}
		if _, err := time.Parse(time.RFC3339, s["lastActiveAt"].(string)); err != nil {
			t.Fatalf("lastActiveAt %v", s["lastActiveAt"])
		}
		for k, v := range s {
			if str, ok := v.(string); ok && (strings.Contains(str, hs.strapi.jwt) || strings.HasPrefix(str, "apr_")) {
				t.Fatalf("a credential in the list: %s", k)
			}
		}
	}
	// Then the most recently used: the no-device login, then the second phone, then the laptop.
	if list[1]["deviceId"] != nil || list[3]["deviceId"] != "laptop" || list[2]["deviceId"] != "phone" {
		t.Fatalf("order: %v", list)
	}

	// {"deviceId"}: that device's sessions go, the others stay.
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tokLaptop, `{"deviceId":"phone"}`)
	if rec.Code != http.StatusOK || decodeMap(t, rec)["ok"] != true {
		t.Fatalf("logout deviceId: %d %s", rec.Code, rec.Body.String())
	}
	for tok, want := range map[string]int{tokPhone: 401, tokPhone2: 401, tokLaptop: 200, tokNone: 200} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != want {
			t.Fatalf("after logout of one device: %d, want %d", rec.Code, want)
		}
	}
	// DELETE one: {"data":{}}; again: 404 in Strapi's shape.
	id := ""
	for _, s := range strapiSessionList(t, hs.do(http.MethodGet, "a.localhost", "/api/auth/sessions", tokLaptop, "")) {
		if s["current"] != true {
			id, _ = s["id"].(string)
		}
	}
	rec = hs.do(http.MethodDelete, "a.localhost", "/api/auth/sessions/"+id, tokLaptop, "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"data":{}}` {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	rec = hs.do(http.MethodDelete, "a.localhost", "/api/auth/sessions/"+id, tokLaptop, "")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"name":"NotFoundError"`) {
		t.Fatalf("delete again: %d %s", rec.Code, rec.Body.String())
	}
	// {"scope":"all"}: everything.
	tokMore := loginAs("tablet")
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tokLaptop, `{"scope":"all"}`)
	if rec.Code != http.StatusOK || decodeMap(t, rec)["ok"] != true || hs.store.live() != 0 {
		t.Fatalf("logout scope all: %d %s, %d live", rec.Code, rec.Body.String(), hs.store.live())
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tokMore, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after scope all: %d", rec.Code)
	}
	// Ending more than one's own session needs a live one.
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tokLaptop, `{"scope":"all"}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("scope all with a dead session: %d", rec.Code)
	}
}

func TestLoginDeviceIDChecked(t *testing.T) {
	hs := newHarness(t, nil)
	for _, id := range []string{strings.Repeat("x", 256), "a\\u0001b", "tab\\tbed"} {
		rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right","deviceId":"`+id+`"}`)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("deviceId %q: %d", id, rec.Code)
		}
	}
	if len(hs.strapi.seen) != 0 {
		t.Fatalf("%d refused logins reached Strapi", len(hs.strapi.seen))
	}
	// Not a string: ignored, as Strapi ignores it.
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right","deviceId":7}`)
	if rec.Code != http.StatusOK || hs.store.only().DeviceID != "" {
		t.Fatalf("numeric deviceId: %d", rec.Code)
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	hs := newHarness(t, nil)
	caller, other := hs.login("a.localhost"), hs.login("a.localhost")
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/change-password", caller, `{"currentPassword":"right","password":"right","passwordConfirmation":"right"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("change-password: %d %s", rec.Code, rec.Body.String())
	}
	next, _ := decodeMap(t, rec)["jwt"].(string)
	for tok, want := range map[string]int{caller: 401, other: 401, next: 200} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != want {
			t.Fatalf("after the password change: %d, want %d", rec.Code, want)
		}
	}
	if hs.store.live() != 1 {
		t.Fatalf("%d live sessions after the password change, want the caller's new one", hs.store.live())
	}
	// reset-password: every earlier session ends.
	a, b := hs.login("a.localhost"), hs.login("a.localhost")
	hs.do(http.MethodPost, "a.localhost", "/api/auth/reset-password", "", `{"code":"x","password":"right","passwordConfirmation":"right"}`)
	for _, tok := range []string{a, b, next} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("a session from before the reset: %d", rec.Code)
		}
	}
	// revokeOnPasswordChange false: the others stay.
	hs = newHarness(t, func(c *Config) { c.RevokeOnPasswordChange = false })
	caller, other = hs.login("a.localhost"), hs.login("a.localhost")
	hs.do(http.MethodPost, "a.localhost", "/api/auth/change-password", caller, `{"currentPassword":"right","password":"right","passwordConfirmation":"right"}`)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", other, ""); rec.Code != http.StatusOK {
		t.Fatalf("revokeOnPasswordChange false ended another session: %d", rec.Code)
	}
}
