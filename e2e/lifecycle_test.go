package e2e

// Issue 5, session lifecycle, through the real Traefik and sessionstore: concurrent use of one
// refresh token, bad input to the refresh endpoint (fake Strapi), and the whole lifecycle against
// the real Strapi 5 (refresh, reuse, logout, session list, logout everywhere).

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// TestFakeRefreshParallel: 20 concurrent refreshes with one refresh token: exactly one gets a new
// pair, the 19 others 401; the reuse revokes the family, so the winner's new token and refresh
// token are refused afterwards (router with cacheTTL 0s), and the original login's token too.
func TestFakeRefreshParallel(t *testing.T) {
	s := getFakeStack(t)
	const host, n = "sess.localhost", 20
	first, _ := loginWithRefresh(t, s.c, host, "dave", "dave-pw-4")
	expectStatus(t, do(t, s.c, "GET", host, "/api/articles", first.JWT, nil), 200, "the login's token")

	results := make([]*harness.Response, n)
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func(i int) {
			defer done.Done()
			start.Wait()
			results[i], errs[i] = s.c.Do("POST", host, "/api/auth/local/refresh", "", map[string]string{"refreshToken": first.RefreshToken})
		}(i)
	}
	start.Done()
	done.Wait()
	var winners []refreshPair
	refused := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		switch r.Status {
		case 200:
			var p refreshPair
			if err := json.Unmarshal(r.Body, &p); err != nil || p.JWT == "" || !strings.HasPrefix(p.RefreshToken, "apr_") {
				t.Fatalf("refresh %d answered 200 without a pair: %s", i, r)
			}
			winners = append(winners, p)
		case 401:
			if err := r.ErrorShape(401, "UnauthorizedError"); err != nil {
				t.Fatalf("refresh %d: %v", i, err)
			}
			noJWTKey(t, r, "refused refresh")
			refused++
		default:
			t.Fatalf("refresh %d: %s, want 200 or 401", i, r)
		}
	}
	// At most one rotation wins (the store's atomicity). The winner re-reads the user from Strapi
	// before answering (revalidateEvery), and by then the losers' reuse has usually revoked the
	// family: its answer is then 401 too.
	if len(winners) > 1 || refused != n-len(winners) {
		t.Fatalf("%d concurrent refreshes of one token: %d succeeded and %d were refused, want at most 1 and the rest", n, len(winners), refused)
	}
	// The losers were reuses: the whole login is revoked, the winner's pair included.
	for _, w := range winners {
		checkProxyToken(t, w.JWT)
		expectError(t, do(t, s.c, "GET", host, "/api/articles", w.JWT, nil), 401, "UnauthorizedError", "the winner's token after the reuse")
		expectError(t, refreshOn(t, s.c, host, w.RefreshToken), 401, "UnauthorizedError", "the winner's refresh token after the reuse")
	}
	expectError(t, do(t, s.c, "GET", host, "/api/articles", first.JWT, nil), 401, "UnauthorizedError", "the login's token after the reuse")
}

// TestFakeRefreshBadInput: no body, bodies that are not a JSON object, a missing, mistyped or
// unknown refresh token, the wrong method: a JSON error (400/401/405), never forwarded, and nothing
// changed: the login's token and its refresh token still work afterwards.
func TestFakeRefreshBadInput(t *testing.T) {
	s := getFakeStack(t)
	const host = "sess.localhost"
	p, _ := loginWithRefresh(t, s.c, host, "dave", "dave-pw-4")
	n, logins := s.fake.Received(), s.fake.Logins()
	const path = "/api/auth/local/refresh"
	cases := []struct {
		name   string
		ct     string
		body   []byte
		status int
	}{
		{"no body", "", nil, 400},
		{"empty JSON body", "application/json", []byte(""), 400},
		{"not JSON", "application/json", []byte("refreshToken=" + p.RefreshToken), 400},
		{"JSON array", "application/json", []byte(`["` + p.RefreshToken + `"]`), 400},
		{"JSON string", "application/json", []byte(`"` + p.RefreshToken + `"`), 400},
		{"truncated JSON", "application/json", []byte(`{"refreshToken":"` + p.RefreshToken), 400},
		{"empty object", "application/json", []byte(`{}`), 400},
		{"wrong field", "application/json", []byte(`{"refresh_token":"` + p.RefreshToken + `"}`), 400},
		{"number token", "application/json", []byte(`{"refreshToken":12345}`), 400},
		{"null token", "application/json", []byte(`{"refreshToken":null}`), 400},
		{"empty token", "application/json", []byte(`{"refreshToken":""}`), 400},
		{"unknown token", "application/json", []byte(`{"refreshToken":"apr_` + strings.Repeat("A", 43) + `"}`), 401},
		{"malformed token", "application/json", []byte(`{"refreshToken":"not-a-refresh-token"}`), 401},
		{"proxy JWT as refresh token", "application/json", []byte(`{"refreshToken":"` + p.JWT + `"}`), 401},
		{"token with a suffix", "application/json", []byte(`{"refreshToken":"` + p.RefreshToken + `x"}`), 401},
	}
	for _, c := range cases {
		r := doRaw(t, s.c, "POST", host, path, c.ct, c.body)
		// An unreadable body is a ValidationError; a readable one without a token string is
		// Strapi's ctx.badRequest("Missing refresh token"), a BadRequestError.
		name := map[int]string{400: "BadRequestError", 401: "UnauthorizedError"}[c.status]
		if c.name == "not JSON" || c.name == "JSON string" || c.name == "truncated JSON" {
			name = "ValidationError"
		}
		expectError(t, r, c.status, name, "refresh with "+c.name)
		noJWTKey(t, r, "refresh with "+c.name)
		if strings.Contains(string(r.Body), "refreshToken\":\"apr_") {
			t.Fatalf("refresh with %s answered a refresh token: %s", c.name, r)
		}
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		r := doRaw(t, s.c, m, host, path, "application/json", []byte(`{"refreshToken":"`+p.RefreshToken+`"}`))
		if r.Status != 405 || r.JSON() == nil || r.JSON()["error"] == nil {
			t.Fatalf("%s on the refresh endpoint: %s, want a 405 JSON error", m, r)
		}
	}
	if s.fake.Received() != n || s.fake.Logins() != logins {
		t.Fatalf("bad refresh requests reached the upstream")
	}
	// Nothing changed: the session still works and the refresh token was not spent or revoked.
	expectStatus(t, do(t, s.c, "GET", host, "/api/articles", p.JWT, nil), 200, "the login's token after the bad refreshes")
	r := refreshOn(t, s.c, host, p.RefreshToken)
	expectStatus(t, r, 200, "the refresh token after the bad refreshes")
	var next refreshPair
	_ = json.Unmarshal(r.Body, &next)
	expectStatus(t, do(t, s.c, "GET", host, "/api/articles", next.JWT, nil), 200, "the refreshed token")
	// The refresh ended the session the old token belonged to (cacheTTL 0s: at once).
	expectError(t, do(t, s.c, "GET", host, "/api/articles", p.JWT, nil), 401, "UnauthorizedError", "the token the refresh replaced")
}

// TestStrapiLifecycle: against the real Strapi 5, a user of this test only (registered straight at
// Strapi, so no proxy session exists before): login with requestRefresh, refresh, the old refresh
// token refused (and its reuse ends the login), logout, the session list showing two logins with
// exactly one current, and logout everywhere from the second login ending both.
func TestStrapiLifecycle(t *testing.T) {
	s := getStrapiStack(t)
	const host = "a.localhost" // DEFAULT_AUDIENCE of registered users
	name := fmt.Sprintf("life%d", time.Now().UnixNano()%1e9)
	email, password := name+"@example.com", "Life-passw0rd-"+name
	r := do(t, s.direct, "POST", "", "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
	expectStatus(t, r, 200, "register straight at Strapi")
	me := func(token string) *harness.Response {
		return do(t, s.c, "GET", host, "/api/users/me", token, nil)
	}
	meOK := func(token, what string) {
		t.Helper()
		r := me(token)
		expectStatus(t, r, 200, what)
		if r.JSON()["username"] != name {
			t.Fatalf("%s: /api/users/me answered %s", what, r)
		}
		s.noStrapiJWT(t, r, "", what)
	}

	// Login with requestRefresh, refresh, the old refresh token refused.
	p1, lr := loginWithRefresh(t, s.c, host, email, password)
	s.noStrapiJWT(t, lr, "", "login with requestRefresh")
	meOK(p1.JWT, "the login's token")
	r = refreshOn(t, s.c, host, p1.RefreshToken)
	expectStatus(t, r, 200, "refresh")
	s.noStrapiJWT(t, r, "", "refresh answer")
	var p2 refreshPair
	if err := json.Unmarshal(r.Body, &p2); err != nil || p2.JWT == "" || p2.JWT == p1.JWT || !strings.HasPrefix(p2.RefreshToken, "apr_") || p2.RefreshToken == p1.RefreshToken {
		t.Fatalf("refresh answered %s", r)
	}
	if claim(checkProxyToken(t, p2.JWT), "sub") != claim(checkProxyToken(t, p1.JWT), "sub") {
		t.Fatalf("the refreshed token is for another user")
	}
	meOK(p2.JWT, "the refreshed token")
	// (The session the refresh replaced ends in the store; this router may still serve it from its
	// cache for up to cacheTTL, 5 s: the reuse below clears that cache. Checked with cacheTTL 0s in
	// TestFakeRefreshBadInput.)
	expectError(t, refreshOn(t, s.c, host, p1.RefreshToken), 401, "UnauthorizedError", "the spent refresh token")
	expectError(t, me(p1.JWT), 401, "UnauthorizedError", "the token the refresh replaced, after the reuse")
	expectError(t, me(p2.JWT), 401, "UnauthorizedError", "the refreshed token once its family saw a reuse")
	expectError(t, refreshOn(t, s.c, host, p2.RefreshToken), 401, "UnauthorizedError", "the newer refresh token once its family saw a reuse")

	// Logout.
	t2, _ := login(t, s.c, host, email, password)
	meOK(t2, "before logout")
	r = do(t, s.c, "POST", host, "/api/auth/logout", t2, nil)
	expectStatus(t, r, 200, "logout")
	if r.JSON()["ok"] != true {
		t.Fatalf("logout answered %s", r)
	}
	expectError(t, me(t2), 401, "UnauthorizedError", "the token after logout")

	// Two logins: the list shows exactly those two, the caller's marked current.
	t3, _ := login(t, s.c, host, email, password)
	t4, _ := login(t, s.c, host, name, password) // by username this time
	sid3, sid4 := claim(checkProxyToken(t, t3), "sid"), claim(checkProxyToken(t, t4), "sid")
	r = do(t, s.c, "GET", host, "/api/auth/sessions", t4, nil)
	expectStatus(t, r, 200, "session list")
	s.noStrapiJWT(t, r, "", "session list")
	var list sessionList
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("session list: %v: %s", err, r)
	}
	if len(list.Sessions) != 2 {
		t.Fatalf("session list has %d entries, want the 2 live logins: %s", len(list.Sessions), r)
	}
	current := 0
	seen := map[string]bool{}
	for _, x := range list.Sessions {
		seen[x.ID] = true
		if x.Current {
			current++
			if x.ID != sid4 {
				t.Fatalf("session %s marked current, want the caller's %s: %s", x.ID, sid4, r)
			}
		}
	}
	if !seen[sid3] || !seen[sid4] || current != 1 {
		t.Fatalf("session list %s: want sessions %s and %s, exactly one current", r, sid3, sid4)
	}

	// Logout everywhere from the second login ends both.
	r = do(t, s.c, "POST", host, "/api/auth/logout-all", t4, nil)
	expectStatus(t, r, 200, "logout-all")
	var out struct {
		OK      bool `json:"ok"`
		Revoked int  `json:"revoked"`
	}
	if json.Unmarshal(r.Body, &out) != nil || !out.OK || out.Revoked != 2 {
		t.Fatalf("logout-all answered %s, want ok and 2 revoked", r)
	}
	expectError(t, me(t3), 401, "UnauthorizedError", "the first login after logout-all")
	expectError(t, me(t4), 401, "UnauthorizedError", "the second login after logout-all")
	// The account itself is fine: a new login works.
	t5, _ := login(t, s.c, host, email, password)
	meOK(t5, "a new login after logout-all")
}
