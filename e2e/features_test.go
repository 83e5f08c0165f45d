package e2e

// The rest of the contract's behaviour on the wire, through the real Traefik and sessionstore with
// the fake Strapi: logout, logout everywhere, the session list, the proxy's refresh tokens, the
// admin channel, requireAuth, cookie mode, login rate limit and lockout.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// TestFakeLogout: POST logoutPath revokes the session at once (also for a cached token) and is
// answered by the proxy, never forwarded.
func TestFakeLogout(t *testing.T) {
	s := getFakeStack(t)
	token, _ := login(t, s.c, "b.localhost", "bob", "bob-pw-2") // b: default cacheTTL 5s
	expectStatus(t, do(t, s.c, "GET", "b.localhost", "/api/articles", token, nil), 200, "before logout")
	n := s.fake.Received()
	r := do(t, s.c, "POST", "b.localhost", "/api/auth/logout", token, nil)
	expectStatus(t, r, 200, "logout")
	if m := r.JSON(); m == nil || m["ok"] != true {
		t.Fatalf("logout answered %s, want {\"ok\":true}", r)
	}
	expectError(t, do(t, s.c, "GET", "b.localhost", "/api/articles", token, nil), 401, "UnauthorizedError", "token after logout")
	if s.fake.Received() != n {
		t.Fatalf("logout or the revoked token reached the upstream")
	}
	// A second logout with the same token is harmless; a garbage token is refused.
	if r := do(t, s.c, "POST", "b.localhost", "/api/auth/logout", token, nil); r.Status != 200 && r.Status != 401 {
		t.Fatalf("second logout: %s", r)
	}
	expectError(t, do(t, s.c, "POST", "b.localhost", "/api/auth/logout", "garbage", nil), 401, "UnauthorizedError", "logout with a garbage token")
}

// sessionList is Strapi 5's {data: [...]} (the proxy adds host).
type sessionList struct {
	Sessions []struct {
		ID      string `json:"id"`
		Host    string `json:"host"`
		Current bool   `json:"current"`
	} `json:"data"`
}

// TestFakeSessionsAndLogoutAll: a user lists their sessions (no credentials in it), revokes one,
// then logs out everywhere.
func TestFakeSessionsAndLogoutAll(t *testing.T) {
	s := getFakeStack(t)
	// carol: a user of her own in this test.
	var tokens []string
	for i := 0; i < 3; i++ {
		tok, _ := login(t, s.c, "a.localhost", "carol", "carol-pw-3")
		tokens = append(tokens, tok)
	}
	sids := map[string]int{}
	for i, tok := range tokens {
		sids[claim(checkProxyToken(t, tok), "sid")] = i
	}
	r := do(t, s.c, "GET", "a.localhost", "/api/auth/sessions", tokens[0], nil)
	expectStatus(t, r, 200, "list sessions")
	if len(harness.FindJWTs(string(r.Body))) != 0 || strings.Contains(string(r.Body), "strapi") {
		t.Fatalf("the session list carries credentials: %s", r)
	}
	var list sessionList
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("session list: %v: %s", err, r)
	}
	found, current := 0, 0
	for _, x := range list.Sessions {
		if i, ok := sids[x.ID]; ok {
			found++
			if x.Current {
				current++
				if i != 0 {
					t.Fatalf("session %d marked current, want 0", i)
				}
			}
		}
	}
	if found != 3 || current != 1 {
		t.Fatalf("session list %s: found %d of 3 sessions, %d current", r, found, current)
	}

	// Revoke session 1 from session 0.
	sid1 := claim(checkProxyToken(t, tokens[1]), "sid")
	r = do(t, s.c, "DELETE", "a.localhost", "/api/auth/sessions/"+sid1, tokens[0], nil)
	expectStatus(t, r, 200, "revoke one session")
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/articles", tokens[1], nil), 401, "UnauthorizedError", "revoked session")
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/articles", tokens[2], nil), 200, "other session still alive")
	// Another user's session id cannot be revoked (answers like a missing one).
	other, _ := login(t, s.c, "a.localhost", "dave", "dave-pw-4")
	r = do(t, s.c, "DELETE", "a.localhost", "/api/auth/sessions/"+claim(checkProxyToken(t, other), "sid"), tokens[0], nil)
	expectError(t, r, 404, "NotFoundError", "revoking another user's session")
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/articles", other, nil), 200, "dave's session after carol's attempt")

	r = do(t, s.c, "POST", "a.localhost", "/api/auth/logout-all", tokens[0], nil)
	expectStatus(t, r, 200, "logout-all")
	var out struct {
		OK      bool `json:"ok"`
		Revoked int  `json:"revoked"`
	}
	if json.Unmarshal(r.Body, &out) != nil || !out.OK || out.Revoked < 2 {
		t.Fatalf("logout-all answered %s, want ok and ≥ 2 revoked", r)
	}
	for i, tok := range tokens {
		expectError(t, do(t, s.c, "GET", "b.localhost", "/api/articles", tok, nil), 401, "UnauthorizedError", "carol's token "+strconv.Itoa(i)+" after logout-all")
	}
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/articles", other, nil), 200, "dave after carol's logout-all")
}

// TestFakeRefreshTokens: a login asking for it gets the proxy's refresh token; it rotates; a
// reused one revokes the whole login.
func TestFakeRefreshTokens(t *testing.T) {
	s := getFakeStack(t)
	r := do(t, s.c, "POST", "sess.localhost", "/api/auth/local", "", map[string]any{"identifier": "dave", "password": "dave-pw-4", "requestRefresh": true})
	expectStatus(t, r, 200, "login with requestRefresh")
	var lb struct {
		JWT          string `json:"jwt"`
		RefreshToken string `json:"refreshToken"`
	}
	_ = json.Unmarshal(r.Body, &lb)
	if lb.JWT == "" || !strings.HasPrefix(lb.RefreshToken, "apr_") {
		t.Fatalf("login with requestRefresh: %s", r)
	}
	// Without requestRefresh: no refresh token.
	_, plain := login(t, s.c, "sess.localhost", "dave", "dave-pw-4")
	if _, ok := plain.JSON()["refreshToken"]; ok {
		t.Fatalf("login without requestRefresh got a refresh token: %s", plain)
	}

	r = do(t, s.c, "POST", "sess.localhost", "/api/auth/local/refresh", "", map[string]string{"refreshToken": lb.RefreshToken})
	expectStatus(t, r, 200, "refresh")
	var next struct {
		JWT          string `json:"jwt"`
		RefreshToken string `json:"refreshToken"`
	}
	_ = json.Unmarshal(r.Body, &next)
	if next.JWT == "" || next.JWT == lb.JWT || !strings.HasPrefix(next.RefreshToken, "apr_") || next.RefreshToken == lb.RefreshToken {
		t.Fatalf("refresh answered %s", r)
	}
	checkProxyToken(t, next.JWT)
	e := echoOf(t, do(t, s.c, "GET", "sess.localhost", "/api/articles", next.JWT, nil))
	if s.fake.IssuedTo(strings.TrimPrefix(e.Authorization, "Bearer ")) != "dave" {
		t.Fatalf("refreshed token forwarded %q, want dave's Strapi JWT", e.Authorization)
	}

	// Reuse of the spent refresh token: refused, and the login's sessions are revoked.
	r = do(t, s.c, "POST", "sess.localhost", "/api/auth/local/refresh", "", map[string]string{"refreshToken": lb.RefreshToken})
	expectError(t, r, 401, "UnauthorizedError", "reused refresh token")
	expectError(t, do(t, s.c, "GET", "sess.localhost", "/api/articles", next.JWT, nil), 401, "UnauthorizedError", "token of a revoked family")
	r = do(t, s.c, "POST", "sess.localhost", "/api/auth/local/refresh", "", map[string]string{"refreshToken": next.RefreshToken})
	expectError(t, r, 401, "UnauthorizedError", "refresh token of a revoked family")
	expectError(t, do(t, s.c, "POST", "sess.localhost", "/api/auth/local/refresh", "", map[string]string{"refreshToken": "apr_nonsense"}), 401, "UnauthorizedError", "unknown refresh token")
}

// TestFakeAdminChannel: blockedPaths are 403 from outside adminAllowFrom, with or without a token,
// and an X-Forwarded-For sent by the client does not get around it.
func TestFakeAdminChannel(t *testing.T) {
	s := getFakeStack(t)
	n := s.fake.Received()
	for _, p := range []string{"/admin", "/admin/login", "/upload", "/content-manager/x", "/ADMIN", "/api/../admin"} {
		r := do(t, s.c, "GET", "locked.localhost", p, "", nil, "X-Forwarded-For", "10.1.2.3")
		expectError(t, r, 403, "ForbiddenError", "GET "+p+" from 127.0.0.1 (allowed: 10.0.0.0/8)")
	}
	if s.fake.Received() != n {
		t.Fatalf("a blocked path reached the upstream")
	}
	// Other paths pass; on a router with the default adminAllowFrom (loopback) /admin passes too.
	expectStatus(t, do(t, s.c, "GET", "locked.localhost", "/api/articles", "", nil), 200, "non-admin path")
	r := do(t, s.c, "GET", "b.localhost", "/admin", "", nil)
	expectStatus(t, r, 200, "/admin from loopback with the default adminAllowFrom")
	if echoOf(t, r).Path != "/admin" {
		t.Fatalf("/admin from loopback: %s", r)
	}
}

// TestFakeRequireAuth: with requireAuth, anonymous requests are 401 but logins still work.
func TestFakeRequireAuth(t *testing.T) {
	s := getFakeStack(t)
	n := s.fake.Received()
	expectError(t, do(t, s.c, "GET", "private.localhost", "/api/articles", "", nil), 401, "UnauthorizedError", "anonymous request with requireAuth")
	if s.fake.Received() != n {
		t.Fatalf("an anonymous request reached the upstream")
	}
	token, _ := login(t, s.c, "private.localhost", "dave", "dave-pw-4")
	expectStatus(t, do(t, s.c, "GET", "private.localhost", "/api/articles", token, nil), 200, "with a token")
}

// TestFakeCookieMode: the token also comes as an HttpOnly cookie and is accepted from it; a
// state-changing request authenticated by the cookie needs a trusted Origin.
func TestFakeCookieMode(t *testing.T) {
	s := getFakeStack(t)
	token, r := login(t, s.c, "cookie.localhost", "dave", "dave-pw-4")
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "ap_session" {
			cookie = c
		}
		if strings.HasPrefix(c.Name, "strapi_up_refresh") {
			t.Fatalf("Strapi's refresh cookie reached the client")
		}
	}
	if cookie == nil || cookie.Value != token || !cookie.HttpOnly {
		t.Fatalf("login Set-Cookie %q: want an HttpOnly ap_session cookie holding the token", r.Header.Values("Set-Cookie"))
	}
	ck := "ap_session=" + token + "; theme=dark"
	r = do(t, s.c, "GET", "cookie.localhost", "/api/articles", "", nil, "Cookie", ck)
	expectStatus(t, r, 200, "GET with the cookie")
	if e := echoOf(t, r); s.fake.IssuedTo(strings.TrimPrefix(e.Authorization, "Bearer ")) != "dave" {
		t.Fatalf("cookie request forwarded Authorization %q", e.Authorization)
	}
	n := s.fake.Received()
	r = do(t, s.c, "POST", "cookie.localhost", "/api/articles", "", map[string]string{"x": "y"}, "Cookie", ck)
	if r.Status != 403 {
		t.Fatalf("POST with the cookie and no Origin: %s, want 403", r)
	}
	r = do(t, s.c, "POST", "cookie.localhost", "/api/articles", "", map[string]string{"x": "y"}, "Cookie", ck, "Origin", "https://evil.example")
	if r.Status != 403 {
		t.Fatalf("POST with the cookie from a foreign Origin: %s, want 403", r)
	}
	if s.fake.Received() != n {
		t.Fatalf("a cross-site cookie POST reached the upstream")
	}
	r = do(t, s.c, "POST", "cookie.localhost", "/api/articles", "", map[string]string{"x": "y"}, "Cookie", ck, "Origin", "http://cookie.localhost")
	expectStatus(t, r, 200, "POST with the cookie from a trusted Origin")
	// Logout clears the cookie.
	r = do(t, s.c, "POST", "cookie.localhost", "/api/auth/logout", "", nil, "Cookie", ck, "Origin", "http://cookie.localhost")
	expectStatus(t, r, 200, "logout by cookie")
	if !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "ap_session=;") {
		t.Fatalf("logout did not clear the cookie: %q", r.Header.Values("Set-Cookie"))
	}
	expectError(t, do(t, s.c, "GET", "cookie.localhost", "/api/articles", "", nil, "Cookie", ck), 401, "UnauthorizedError", "cookie after logout")
}

// TestFakeLoginLimits: the login rate limit per client address (429 + Retry-After) and the lockout
// of an identifier after repeated failures. Own store: the counters live there.
func TestFakeLoginLimits(t *testing.T) {
	env := harness.ForTest(t)
	s, err := newFakeStack(env, func(store *harness.Store, fake *harness.FakeStrapi, secret string) []harness.Router {
		return []harness.Router{
			{Host: "rl.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, secret, map[string]any{"loginRateLimit": "4/m", "lockoutThreshold": 1000})},
			{Host: "lock.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, secret, map[string]any{"lockoutThreshold": 2, "lockoutDuration": "1m"})},
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Lockout first (its router does not rate-limit): 2 failures lock bob, even the right password.
	for i := 0; i < 2; i++ {
		expectError(t, do(t, s.c, "POST", "lock.localhost", "/api/auth/local", "", map[string]string{"identifier": "bob", "password": "nope"}), 400, "ValidationError", "failed login")
	}
	logins := s.fake.Logins()
	r := do(t, s.c, "POST", "lock.localhost", "/api/auth/local", "", map[string]string{"identifier": "bob", "password": "bob-pw-2"})
	expectError(t, r, 429, "RateLimitError", "locked identifier with the right password")
	noJWTKey(t, r, "locked login")
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After")
	}
	if s.fake.Logins() != logins {
		t.Fatalf("a locked login reached Strapi")
	}
	login(t, s.c, "lock.localhost", "dave", "dave-pw-4") // others are not locked

	// Rate limit: 4 attempts a minute from this address, whatever the outcome.
	for i := 0; i < 4; i++ {
		r := do(t, s.c, "POST", "rl.localhost", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": "dave-pw-4"})
		if r.Status == 429 {
			break // the counter is per address and store-wide: the logins above may have counted
		}
		expectStatus(t, r, 200, "login within the rate")
	}
	r = do(t, s.c, "POST", "rl.localhost", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": "dave-pw-4"})
	expectError(t, r, 429, "RateLimitError", "login past the rate")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q, want 1..60 seconds", r.Header.Get("Retry-After"))
	}
	noJWTKey(t, r, "rate-limited login")
}
