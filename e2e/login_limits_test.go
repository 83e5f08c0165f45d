package e2e

// Login limits of e224295 against the real Strapi (parity stack, strapi_parity_test.go): the
// address rate limit is per router (one host's logins do not spend another's allowance), the
// lockout is per identifier across every host, and a login body that cannot be read is 400.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// TestStrapiLoginLimitsPerRouter guards the per-router rate limit and the cross-host lockout.
// p-rl-a and p-rl-b allow 3 logins a minute from one address each: after three on A the fourth
// on A is 429 naming the address limit, and B's first is still 200 (before e224295 every router
// on a store shared one counter, so B was refused too). p-lock-a and p-lock-b lock an identifier
// after 3 failures: three wrong passwords on A lock the account on B (429 naming the lockout).
func TestStrapiLoginLimitsPerRouter(t *testing.T) {
	t.Parallel()
	s := getParityStack(t)
	u := parityUser("pa-rl")
	for i := 1; i <= 3; i++ {
		login(t, s.c, "p-rl-a.localhost", u.Email, u.Password)
	}
	r := do(t, s.c, "POST", "p-rl-a.localhost", "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	expectError(t, r, 429, "RateLimitError", "the 4th login in a minute on p-rl-a")
	if msg := errMessage(r); !strings.Contains(msg, "from your address") {
		t.Fatalf("4th login on p-rl-a: message %q, want the address rate limit's", msg)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("4th login on p-rl-a: Retry-After %q, want 1..60", r.Header.Get("Retry-After"))
	}
	noJWTKey(t, r, "rate-limited login")
	tok, _ := login(t, s.c, "p-rl-b.localhost", u.Email, u.Password) // its own allowance
	expectStatus(t, s.me(t, "p-rl-b.localhost", tok), 200, "the login on p-rl-b")

	// The lockout counts per identifier, whatever the host.
	v := parityUser("pa-lock")
	for i := 1; i <= 3; i++ {
		r := do(t, s.c, "POST", "p-lock-a.localhost", "/api/auth/local", "", map[string]string{"identifier": v.Email, "password": fmt.Sprintf("wrong-%d", i)})
		expectError(t, r, 400, "ValidationError", fmt.Sprintf("wrong password %d on p-lock-a", i))
	}
	r = do(t, s.c, "POST", "p-lock-b.localhost", "/api/auth/local", "", map[string]string{"identifier": strings.ToUpper(v.Email), "password": v.Password})
	expectError(t, r, 429, "RateLimitError", "the right password on p-lock-b after 3 failures on p-lock-a")
	if msg := errMessage(r); !strings.Contains(msg, "locked") {
		t.Fatalf("locked login on p-lock-b: message %q, want the lockout's", msg)
	}
	noJWTKey(t, r, "locked login")
	// Another account on the same host is not locked.
	login(t, s.c, "p-lock-b.localhost", parityUser("pa-bob").Email, parityUser("pa-bob").Password)
}

func errMessage(r *harness.Response) string {
	e, _ := r.JSON()["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// TestStrapiLoginBrokenBody guards the body-read error mapping of e224295: a body the proxy must
// read (login, register, the proxy's refresh, a users API write) that cannot be read — chunked
// encoding with a bad chunk size, or a chunked body that breaks off — is a bad request, 400, not
// 413 "too large" as before. Sent over a raw TCP connection, since Go's client never sends such
// a body.
func TestStrapiLoginBrokenBody(t *testing.T) {
	s := getParityStack(t)
	addr := strings.TrimPrefix(s.c.Base, "http://")
	u := parityUser("pa-alice")
	tok, lr := login(t, s.c, "p.localhost", u.Email, u.Password)
	id, _ := userOf(t, lr)
	for _, target := range []struct{ method, path, auth string }{
		{"POST", "/api/auth/local", ""},
		{"POST", "/api/auth/local/register", ""},
		{"POST", "/api/auth/local/refresh", ""},
		{"PUT", "/api/users/" + id, tok},
	} {
		head := target.method + " " + target.path + " HTTP/1.1\r\nHost: p.localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
		if target.auth != "" {
			head += "Authorization: Bearer " + target.auth + "\r\n"
		}
		head += "\r\n"
		for _, c := range []struct {
			what       string
			body       string
			closeWrite bool
		}{
			{"a bad chunk size", "5\r\n{\"ide\r\nzz\r\n", false},
			{"a chunked body that breaks off", "40\r\n{\"identifier\":\"pa-alice\"", true},
		} {
			what := target.method + " " + target.path + " with " + c.what
			r, err := harness.RawExchange(addr, []byte(head+c.body), c.closeWrite, 10*time.Second)
			if err != nil {
				t.Fatalf("%s: no HTTP answer: %v", what, err)
			}
			expectError(t, r, 400, "ValidationError", what)
			noJWTKey(t, r, what)
		}
	}
	// The same login, well formed, works.
	login(t, s.c, "p.localhost", u.Email, u.Password)
}
