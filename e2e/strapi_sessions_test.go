package e2e

// Issue 15 against the real Strapi 5.54: sessions people can recognise (device, browser/OS, address),
// the per-user cap (evictOldest, refuse), reset-password through Strapi's own email flow ending every
// session, and rememberMe's longer window and lasting cookie.

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

var sessionsStack lazyStack

// getSessionsStack is a Traefik and a store of their own in front of the shared Strapi: one host per
// setting under test. audienceCheck is off so users registered by the tests may use every host.
func getSessionsStack(t *testing.T) *strapiStack {
	t.Helper()
	return sessionsStack.get(t, "the session-bounds tests", func(store *harness.Store, up, secret string) []harness.Router {
		cfg := func(extra map[string]any) map[string]any {
			extra["audienceCheck"] = false
			return harness.PluginConfig(store, secret, extra)
		}
		return []harness.Router{
			{Host: "devices.localhost", Upstream: up, Plugin: cfg(map[string]any{})},
			{Host: "cap.localhost", Upstream: up, Plugin: cfg(map[string]any{"maxSessionsPerUser": 2})},
			{Host: "capref.localhost", Upstream: up, Plugin: cfg(map[string]any{"maxSessionsPerUser": 2, "sessionLimit": "refuse"})},
			{Host: "remember.localhost", Upstream: up, Plugin: cfg(map[string]any{
				"idleTimeout": "3s", "rememberMeIdleTimeout": "1h", "rememberMeMaxLifetime": "1000h", "cacheTTL": "0s",
				"cookie": map[string]any{"enabled": true, "secure": false},
			})},
		}
	})
}

const (
	uaChromeMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaFirefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
)

func TestStrapiSessionListShowsDevices(t *testing.T) {
	t.Parallel()
	s := getSessionsStack(t)
	const host = "devices.localhost"
	_, email, password := s.registerDirect(t, "dev")
	body := map[string]string{"identifier": email, "password": password}
	r := do(t, s.c, "POST", host, "/api/auth/local", "", body, "User-Agent", uaChromeMac)
	expectStatus(t, r, 200, "login from Chrome on macOS")
	mac := r.JSON()["jwt"].(string)
	r = do(t, s.c, "POST", host, "/api/auth/local", "", body, "User-Agent", uaFirefoxLinux)
	expectStatus(t, r, 200, "login from Firefox on Linux")

	r = do(t, s.c, "GET", host, "/api/auth/sessions", mac, nil)
	expectStatus(t, r, 200, "session list")
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Data) != 2 {
		t.Fatalf("session list: %s", r)
	}
	names := map[string]bool{}
	for _, v := range list.Data {
		names[v["deviceName"].(string)] = true
		hosts, _ := v["hosts"].(map[string]any)
		// Traefik sets X-Forwarded-For to the peer: the test client on loopback.
		if v["loginAddr"] != "127.0.0.1" || v["lastAddr"] != "127.0.0.1" || hosts[host] == nil || v["lastActiveAt"] == "" {
			t.Fatalf("session details: %v", v)
		}
		if strings.Contains(string(r.Body), "strapiJwt") || len(harness.FindJWTs(string(r.Body))) > 0 {
			t.Fatalf("the session list carries a credential: %s", r)
		}
	}
	if !names["Chrome on macOS"] || !names["Firefox on Linux"] {
		t.Fatalf("device names %v, want Chrome on macOS and Firefox on Linux (Strapi's user-agent.js)", names)
	}
	t.Logf("session list: %s", r.Body)
}

func TestStrapiSessionCap(t *testing.T) {
	t.Parallel()
	s := getSessionsStack(t)

	t.Run("evictOldest", func(t *testing.T) {
		_, email, password := s.registerDirect(t, "cap")
		first, _ := login(t, s.c, "cap.localhost", email, password)
		expectStatus(t, do(t, s.c, "GET", "cap.localhost", "/api/users/me", first, nil), 200, "first session")
		second, _ := login(t, s.c, "cap.localhost", email, password)
		third, _ := login(t, s.c, "cap.localhost", email, password)
		expectError(t, do(t, s.c, "GET", "cap.localhost", "/api/users/me", first, nil), 401, "UnauthorizedError", "the least recently used session after a third login at cap 2")
		for _, tok := range []string{second, third} {
			expectStatus(t, do(t, s.c, "GET", "cap.localhost", "/api/users/me", tok, nil), 200, "a session within the cap")
		}
	})

	t.Run("refuse", func(t *testing.T) {
		_, email, password := s.registerDirect(t, "capref")
		a, _ := login(t, s.c, "capref.localhost", email, password)
		b, _ := login(t, s.c, "capref.localhost", email, password)
		r := do(t, s.c, "POST", "capref.localhost", "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
		expectError(t, r, 409, "ConflictError", "a third login at cap 2 with sessionLimit refuse")
		noJWTKey(t, r, "the refused login")
		for _, tok := range []string{a, b} {
			expectStatus(t, do(t, s.c, "GET", "capref.localhost", "/api/users/me", tok, nil), 200, "a session from before the refused login")
		}
	})
}

// TestStrapiResetPasswordEndsEverySession: Strapi's own forgot-password writes a reset code (its
// email cannot be delivered here; the code is read from Strapi's database, where the controller
// stores it before sending), reset-password through the proxy answers with a new proxy token,
// and every session from before is gone.
func TestStrapiResetPasswordEndsEverySession(t *testing.T) {
	t.Parallel()
	s := getSessionsStack(t)
	const host = "devices.localhost"
	_, email, password := s.registerDirect(t, "reset")
	a, _ := login(t, s.c, host, email, password)
	b, _ := login(t, s.c, host, email, password)
	r := do(t, s.c, "POST", host, "/api/auth/forgot-password", "", map[string]string{"email": email})
	t.Logf("forgot-password (Strapi's mail to %s has nowhere to go here): %d", email, r.Status)
	code := resetCode(t, s.strapi, email)
	newPassword := password + "-reset"
	r = do(t, s.c, "POST", host, "/api/auth/reset-password", "", map[string]string{"code": code, "password": newPassword, "passwordConfirmation": newPassword})
	expectStatus(t, r, 200, "reset-password through the proxy")
	fresh := r.JSON()["jwt"].(string)
	checkProxyToken(t, fresh)
	for _, tok := range []string{a, b} {
		expectError(t, do(t, s.c, "GET", host, "/api/users/me", tok, nil), 401, "UnauthorizedError", "a session from before the reset")
	}
	expectStatus(t, do(t, s.c, "GET", host, "/api/users/me", fresh, nil), 200, "the token reset-password answered with")
	login(t, s.c, host, email, newPassword)
}

// resetCode reads the user's resetPasswordToken from the e2e Strapi's sqlite file with the app's
// own better-sqlite3.
func resetCode(t *testing.T, st *harness.Strapi, email string) string {
	t.Helper()
	script := `const db = require('better-sqlite3')(process.argv[1], { readonly: true });
const row = db.prepare('SELECT reset_password_token AS code FROM up_users WHERE email = ?').get(process.argv[2].toLowerCase());
process.stdout.write((row && row.code) || '');`
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command("node", "-e", script, filepath.Join(st.AppDir, ".tmp", "data.db"), email)
		cmd.Dir = st.AppDir
		out, err := cmd.Output()
		if err == nil && len(out) > 0 {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reset code for %s in Strapi's database: %v %s", email, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStrapiRememberMe: with rememberMe the session keeps rememberMeIdleTimeout (1h here) instead
// of idleTimeout (3s), and its cookie has a Max-Age; a normal login's cookie is a browser-session one.
func TestStrapiRememberMe(t *testing.T) {
	t.Parallel()
	s := getSessionsStack(t)
	const host = "remember.localhost"
	_, email, password := s.registerDirect(t, "rem")
	cookie := func(r *harness.Response) *http.Cookie {
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "ap_session" {
				return c
			}
		}
		t.Fatalf("login without the session cookie: %s", r)
		return nil
	}
	r := do(t, s.c, "POST", host, "/api/auth/local", "", map[string]any{"identifier": email, "password": password})
	expectStatus(t, r, 200, "normal login")
	normal, normalCookie := r.JSON()["jwt"].(string), cookie(r)
	r = do(t, s.c, "POST", host, "/api/auth/local", "", map[string]any{"identifier": email, "password": password, "rememberMe": true})
	expectStatus(t, r, 200, "login with rememberMe (Strapi ignores the field)")
	remembered, rememberedCookie := r.JSON()["jwt"].(string), cookie(r)
	if normalCookie.MaxAge != 0 || !normalCookie.Expires.IsZero() {
		t.Fatalf("a normal login's cookie lasts: %+v", normalCookie)
	}
	if rememberedCookie.MaxAge < 3600 {
		t.Fatalf("a remembered login's cookie: %+v, want a Max-Age (the token's life)", rememberedCookie)
	}
	time.Sleep(4 * time.Second) // past idleTimeout (3s), well inside rememberMeIdleTimeout (1h)
	expectError(t, do(t, s.c, "GET", host, "/api/users/me", normal, nil), 401, "UnauthorizedError", "a normal session 4 s idle (idleTimeout 3s)")
	expectStatus(t, do(t, s.c, "GET", host, "/api/users/me", remembered, nil), 200, "a remembered session 4 s idle (rememberMeIdleTimeout 1h)")
}
