package e2e

// Issue 6 against the real Strapi 5: lockout of an identifier after repeated wrong passwords, and
// one login working on several hosts (SSO). Both on the shared Strapi stack (strapi_test.go), on
// routers of their own; SSO uses one Strapi behind three hosts.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// registerDirect creates a user straight at Strapi (no proxy session, no proxy counters); its
// audience is Strapi's DEFAULT_AUDIENCE, a.localhost.
func (s *strapiStack) registerDirect(t *testing.T, prefix string) (name, email, password string) {
	t.Helper()
	name = fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
	email, password = name+"@example.com", "Pw-"+name+"-0"
	r := do(t, s.direct, "POST", "", "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
	expectStatus(t, r, 200, "register straight at Strapi")
	return name, email, password
}

// TestStrapiLockout: five wrong passwords (Strapi's 400, passed through) lock the identifier: the
// right password is then refused with 429 and Retry-After until lockoutDuration (4 s) has passed,
// and works after that. Other accounts are not locked.
func TestStrapiLockout(t *testing.T) {
	t.Parallel()
	s := getStrapiStack(t)
	const host = "lock.localhost"
	name, email, password := s.registerDirect(t, "lock")
	for i := 0; i < 5; i++ {
		id := email
		if i%2 == 1 {
			id = strings.ToUpper(email) // the identifier is case-insensitive: same account, same counter
		}
		r := do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": id, "password": "wrong-" + strconv.Itoa(i)})
		expectError(t, r, 400, "ValidationError", fmt.Sprintf("wrong password %d", i+1))
	}
	locked := time.Now()
	attempts := 0
	for {
		r := do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
		attempts++
		el := time.Since(locked)
		if r.Status == 200 {
			if attempts < 2 || el < 2*time.Second {
				t.Fatalf("the right password was accepted %v after the lock (attempt %d), want refusals for about 4s", el.Round(time.Millisecond), attempts)
			}
			tok, _ := r.JSON()["jwt"].(string)
			me := do(t, s.c, "GET", host, "/api/users/me", tok, nil)
			expectStatus(t, me, 200, "the login after the lock ended")
			if me.JSON()["username"] != name {
				t.Fatalf("/api/users/me after the lock: %s", me)
			}
			break
		}
		expectError(t, r, 429, "RateLimitError", fmt.Sprintf("the right password %v after 5 failures", el.Round(time.Millisecond)))
		noJWTKey(t, r, "locked login")
		s.noStrapiJWT(t, r, "", "locked login")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 4 {
			t.Fatalf("locked login: Retry-After %q, want 1..4 seconds", r.Header.Get("Retry-After"))
		}
		if attempts == 1 {
			// Only this account is locked.
			tok, _ := login(t, s.c, host, "dave", "Dave-passw0rd")
			expectStatus(t, do(t, s.c, "GET", host, "/api/users/me", tok, nil), 200, "another account during the lock")
		}
		if el > 12*time.Second {
			t.Fatalf("still locked %v after the lock was set (lockoutDuration 4s)", el.Round(time.Millisecond))
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("unlocked %v after the 5th failure, %d attempts", time.Since(locked).Round(time.Millisecond), attempts)
}

// TestStrapiSSO: one login on the central auth host works on two app hosts of the user's
// audience (three routers, one middleware instance each, same secret and store, one Strapi); a
// user whose audience lacks those hosts is refused there; logout on one host ends it on all.
func TestStrapiSSO(t *testing.T) {
	s := getStrapiStack(t)
	apps := []string{"sso-app1.localhost", "sso-app2.localhost"}
	token, lr := login(t, s.c, "sso-auth.localhost", "dave", "Dave-passw0rd") // dave: *.localhost
	s.noStrapiJWT(t, lr, "", "login on the auth host")
	id := fmt.Sprint(lr.JSON()["user"].(map[string]any)["id"])
	for _, h := range apps {
		for i := 0; i < 2; i++ {
			me := do(t, s.c, "GET", h, "/api/users/me", token, nil)
			expectStatus(t, me, 200, "the auth host's token on "+h)
			if fmt.Sprint(me.JSON()["id"]) != id || me.JSON()["username"] != "dave" {
				t.Fatalf("/api/users/me on %s: %s, want dave (%s)", h, me, id)
			}
			s.noStrapiJWT(t, me, "", "/api/users/me on "+h)
		}
	}
	// The session list, seen from an app host, holds the login made on the auth host.
	sid := claim(checkProxyToken(t, token), "sid")
	r := do(t, s.c, "GET", apps[0], "/api/auth/sessions", token, nil)
	expectStatus(t, r, 200, "session list on "+apps[0])
	var list sessionList
	_ = json.Unmarshal(r.Body, &list)
	found := false
	for _, x := range list.Sessions {
		found = found || (x.ID == sid && x.Current)
	}
	if !found {
		t.Fatalf("session list on %s does not show the auth host's login %s as current: %s", apps[0], sid, r)
	}

	// carol (a.localhost, b.localhost) may not log in on the auth host, nor use a token from a on the apps.
	expectError(t, do(t, s.c, "POST", "sso-auth.localhost", "/api/auth/local", "", map[string]string{"identifier": "carol", "password": "Carol-passw0rd"}), 403, "ForbiddenError", "carol on the auth host")
	tc, _ := login(t, s.c, "a.localhost", "carol", "Carol-passw0rd")
	for _, h := range apps {
		expectError(t, do(t, s.c, "GET", h, "/api/users/me", tc, nil), 403, "ForbiddenError", "carol's token on "+h)
	}

	// Logout on one app host ends the session on every host.
	expectStatus(t, do(t, s.c, "POST", apps[1], "/api/auth/logout", token, nil), 200, "logout on "+apps[1])
	for _, h := range append([]string{"sso-auth.localhost"}, apps...) {
		expectError(t, do(t, s.c, "GET", h, "/api/users/me", token, nil), 401, "UnauthorizedError", "after logout, on "+h)
	}
}
