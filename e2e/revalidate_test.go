package e2e

// Strapi stays the source of truth (e224295, `revalidateEvery`): every revalidateEvery the
// proxy re-reads a session's user with its Strapi JWT (GET /api/users/me); a user blocked in
// Strapi loses the session, a changed audience applies. The admin changes the user through
// Strapi's content-manager admin API, as the admin panel would. On the parity stack
// (strapi_parity_test.go); p-reval.localhost has revalidateEvery 2s.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const (
	revalEvery  = 2 * time.Second
	revalMargin = 3 * time.Second
)

func documentIDOf(t *testing.T, r *harness.Response) string {
	t.Helper()
	u, _ := r.JSON()["user"].(map[string]any)
	id, _ := u["documentId"].(string)
	if id == "" {
		t.Fatalf("no user.documentId in the login answer")
	}
	return id
}

// TestStrapiRevalidateBlocked guards revalidation of a blocked user: once the admin blocks the
// user in Strapi, the proxy token is refused by the proxy itself (401, "blocked") within
// revalidateEvery + a margin, and stays refused after the user is unblocked: the session ended,
// it is not only Strapi refusing the blocked user's JWT for a while. A refresh token of the
// blocked user is refused at once and its login ended. Before e224295 the session lived on
// (Strapi's own 401 while blocked, and the token worked again once unblocked).
func TestStrapiRevalidateBlocked(t *testing.T) {
	t.Parallel()
	s := getParityStack(t)
	const host = "p-reval.localhost"
	u := parityUser("pa-carl")
	tok, lr := login(t, s.c, host, u.Email, u.Password)
	doc := documentIDOf(t, lr)
	expectStatus(t, s.me(t, host, tok), 200, "before the block")
	pair, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)

	if _, err := s.admin.UpdateUPUser(doc, map[string]any{"blocked": true}); err != nil {
		t.Fatal(err)
	}
	blocked := time.Now()
	t.Cleanup(func() { _, _ = s.admin.UpdateUPUser(doc, map[string]any{"blocked": false}) })
	// A refresh asks Strapi first, whatever the interval: the blocked user's refresh token ends
	// its login (before e224295 it minted a new session without asking Strapi).
	r := refreshOn(t, s.c, host, pair.RefreshToken)
	expectError(t, r, 401, "UnauthorizedError", "refresh of the blocked user's login")
	noJWTKey(t, r, "refused refresh")
	for {
		r := s.me(t, host, tok)
		if r.Status == 401 && strings.Contains(errMessage(r), "blocked") {
			expectError(t, r, 401, "UnauthorizedError", "the blocked user's token")
			t.Logf("session ended %v after the block", time.Since(blocked).Round(time.Millisecond))
			break
		}
		if r.Status != 200 && r.Status != 401 {
			t.Fatalf("the blocked user's token: %s, want 200/401 until the proxy ends the session", r)
		}
		if time.Since(blocked) > revalEvery+revalMargin {
			t.Fatalf("the proxy still has the blocked user's session %v after the block (revalidateEvery %v): last answer %s",
				time.Since(blocked).Round(time.Millisecond), revalEvery, r)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Unblocked in Strapi: Strapi accepts the user again, the ended session stays ended.
	if _, err := s.admin.UpdateUPUser(doc, map[string]any{"blocked": false}); err != nil {
		t.Fatal(err)
	}
	if got := s.directMe(t, u.Email, u.Password)["blocked"]; got != false {
		t.Fatalf("unblocked user: blocked = %v in Strapi", got)
	}
	expectError(t, refreshOn(t, s.c, host, pair.RefreshToken), 401, "UnauthorizedError", "the ended login's refresh token after the unblock")
	expectError(t, s.me(t, host, pair.JWT), 401, "UnauthorizedError", "the ended login's token after the unblock")
	for i := 0; i < 6; i++ {
		expectError(t, s.me(t, host, tok), 401, "UnauthorizedError", fmt.Sprintf("the ended session's token after the unblock (%d)", i))
		expectError(t, s.me(t, "p.localhost", tok), 401, "UnauthorizedError", "the ended session's token on another host")
		time.Sleep(500 * time.Millisecond)
	}
	tok2, _ := login(t, s.c, host, u.Email, u.Password)
	expectStatus(t, s.me(t, host, tok2), 200, "a new login after the unblock")
}

// TestStrapiRevalidateAudience guards revalidation of a changed audience: the admin moves the
// user from p-reval.localhost to p.localhost; within revalidateEvery + a margin the token is 403
// on p-reval.localhost, and the new audience holds on the other router too (200 on p.localhost
// within its cacheTTL, 5 s: on this one Traefik both routers share the plugin's cache; another
// replica would read it from the store). Before e224295 the audience read at login held for the
// whole session.
func TestStrapiRevalidateAudience(t *testing.T) {
	t.Parallel()
	s := getParityStack(t)
	const host = "p-reval.localhost"
	u := parityUser("pa-dora")
	tok, lr := login(t, s.c, host, u.Email, u.Password)
	doc := documentIDOf(t, lr)
	expectStatus(t, s.me(t, host, tok), 200, "before the audience change")
	expectError(t, s.me(t, "p.localhost", tok), 403, "ForbiddenError", "p.localhost before the audience change")

	if _, err := s.admin.UpdateUPUser(doc, map[string]any{"audience": "p.localhost"}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	t.Cleanup(func() { _, _ = s.admin.UpdateUPUser(doc, map[string]any{"audience": u.Audience}) })
	for {
		r := s.me(t, host, tok)
		if r.Status == 403 {
			expectError(t, r, 403, "ForbiddenError", "p-reval.localhost after the audience change")
			t.Logf("refused on %s %v after the change", host, time.Since(changed).Round(time.Millisecond))
			break
		}
		if r.Status != 200 {
			t.Fatalf("token on %s after the audience change: %s, want 200 then 403", host, r)
		}
		if time.Since(changed) > revalEvery+revalMargin {
			t.Fatalf("token still accepted on %s %v after its audience moved away (revalidateEvery %v)",
				host, time.Since(changed).Round(time.Millisecond), revalEvery)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline := time.Now().Add(5*time.Second + revalMargin) // p.localhost's cacheTTL
	for {
		r := s.me(t, "p.localhost", tok)
		if r.Status == 200 {
			if r.JSON()["username"] != u.Username {
				t.Fatalf("/api/users/me on p.localhost: %s", r)
			}
			break
		}
		if r.Status != 403 || time.Now().After(deadline) {
			t.Fatalf("token on p.localhost after the audience moved there: %s, want 200 within cacheTTL", r)
		}
		time.Sleep(250 * time.Millisecond)
	}
	expectError(t, s.me(t, host, tok), 403, "ForbiddenError", "p-reval.localhost stays refused")
}
