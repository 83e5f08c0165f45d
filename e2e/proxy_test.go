package e2e

// Issue 3: the plugin in the real Traefik with a real sessionstore, against a fake Strapi that
// answers logins like Strapi and echoes what reaches it.

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

var fakeUsers = []harness.FakeUser{
	{ID: 1, Username: "alice", Email: "alice@example.com", Password: "alice-pw-1", Audience: "a.localhost"},
	{ID: 2, Username: "bob", Email: "bob@example.com", Password: "bob-pw-2", Audience: "b.localhost"},
	{ID: 3, Username: "carol", Email: "carol@example.com", Password: "carol-pw-3", Audience: "a.localhost, b.localhost"},
	{ID: 4, Username: "dave", Email: "dave@example.com", Password: "dave-pw-4", Audience: "*.localhost"},
}

// fakeStack is one Traefik + store + fake Strapi shared by the fake-Strapi tests that do not
// stop anything; each scenario uses its own host (router, middleware instance).
type fakeStack struct {
	store   *harness.Store
	fake    *harness.FakeStrapi
	traefik *harness.Traefik
	c       *harness.Client
}

var (
	fakeOnce   sync.Once
	sharedFake *fakeStack
	fakeErr    error
)

func newFakeStack(env *harness.Env, routers func(store *harness.Store, fake *harness.FakeStrapi, secret string) []harness.Router) (*fakeStack, error) {
	store, err := harness.StartStore(env)
	if err != nil {
		return nil, err
	}
	fake, err := harness.StartFakeStrapi(env, fakeUsers)
	if err != nil {
		return nil, err
	}
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{Routers: routers(store, fake, harness.NewSecret()), AccessLog: true})
	if err != nil {
		return nil, err
	}
	return &fakeStack{store: store, fake: fake, traefik: tr, c: harness.NewClient(tr.URL())}, nil
}

func fakeRouters(store *harness.Store, fake *harness.FakeStrapi, secret string) []harness.Router {
	cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(store, secret, extra) }
	return []harness.Router{
		{Host: "a.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"identityHeaders": true})},
		{Host: "b.localhost", Upstream: fake.URL, Plugin: cfg(nil)},
		{Host: "slide.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"idleTimeout": "2s", "sliding": true, "cacheTTL": "0s"})},
		{Host: "fixed.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"idleTimeout": "2s", "sliding": false, "cacheTTL": "0s"})},
		{Host: "plain.localhost", Upstream: fake.URL}, // no middleware: what the fake sees without the proxy
		// features_test.go
		{Host: "locked.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"adminAllowFrom": []string{"10.0.0.0/8"}})},
		{Host: "private.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"requireAuth": true})},
		{Host: "cookie.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"cookie": map[string]any{"enabled": true, "secure": false}})},
		// cacheTTL 0s: a family revoked by refresh-token reuse is refused at once (with a cache, the
		// revoked sessions stay servable from memory up to cacheTTL; see TestFakeRefreshTokens).
		// refreshReuseGrace 0s: every reuse is one (the grace has tests of its own).
		{Host: "sess.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"cacheTTL": "0s", "refreshReuseGrace": "0s"})},
	}
}

func getFakeStack(t *testing.T) *fakeStack {
	t.Helper()
	fakeOnce.Do(func() {
		start := time.Now()
		sharedFake, fakeErr = newFakeStack(sharedEnv, fakeRouters)
		if fakeErr == nil {
			t.Logf("shared Traefik + sessionstore + fake Strapi started in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if fakeErr != nil {
		t.Fatalf("starting Traefik + sessionstore + fake Strapi: %v", fakeErr)
	}
	checkLogAtEnd(t, sharedFake.traefik)
	return sharedFake
}

func echoOf(t *testing.T, r *harness.Response) harness.Echo {
	t.Helper()
	var e harness.Echo
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Path == "" {
		t.Fatalf("expected the fake's echo, got %s", r)
	}
	return e
}

// TestFakeLoginSwapsToken: the client gets the proxy's own HS256 token, never the Strapi JWT.
func TestFakeLoginSwapsToken(t *testing.T) {
	s := getFakeStack(t)
	before := map[string]bool{}
	for _, j := range s.fake.IssuedJWTs() {
		before[j] = true
	}
	token, r := login(t, s.c, "a.localhost", "alice", "alice-pw-1")
	var issued []string
	for _, j := range s.fake.IssuedJWTs() {
		if !before[j] {
			issued = append(issued, j)
		}
	}
	if len(issued) != 1 {
		t.Fatalf("the fake issued %d JWTs during one login, want 1", len(issued))
	}
	if token == issued[0] {
		t.Fatalf("the client got Strapi's JWT itself")
	}
	for _, j := range harness.FindJWTs(r.Everything()) {
		if s.fake.IssuedTo(j) != "" {
			t.Fatalf("the login response carries a Strapi JWT: %s", r.Everything())
		}
	}
	if harness.VerifyHS256(token, s.fake.Secret) {
		t.Fatalf("the proxy token is signed with Strapi's secret")
	}
	c := checkProxyToken(t, token)
	if claim(c, "sub") != "1" {
		t.Fatalf("sub = %q, want alice's Strapi id 1", claim(c, "sub"))
	}
	var body loginBody
	_ = json.Unmarshal(r.Body, &body)
	if body.User["username"] != "alice" || body.User["email"] != "alice@example.com" {
		t.Fatalf("the rest of the login body was not kept: %s", r)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("login response Cache-Control = %q, want no-store", cc)
	}
}

// TestFakeTokenReachesUpstreamAsStrapiJWT: a request with the proxy token is forwarded with the
// Strapi JWT of that login (and the identity headers); a request without a token passes untouched.
func TestFakeTokenReachesUpstreamAsStrapiJWT(t *testing.T) {
	s := getFakeStack(t)
	before := map[string]bool{}
	for _, j := range s.fake.IssuedJWTs() {
		before[j] = true
	}
	token, _ := login(t, s.c, "a.localhost", "alice@example.com", "alice-pw-1")
	var strapiJWT string
	for _, j := range s.fake.IssuedJWTs() {
		if !before[j] {
			strapiJWT = j
		}
	}
	sid := claim(checkProxyToken(t, token), "sid")

	r := do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil, "X-Auth-User-Id", "999")
	expectStatus(t, r, 200, "GET with the proxy token")
	e := echoOf(t, r)
	if e.Authorization != "Bearer "+strapiJWT {
		t.Fatalf("upstream got Authorization %q, want the Strapi JWT of this login", e.Authorization)
	}
	if e.AuthHeaders["X-Auth-User-Id"] != "1" || e.AuthHeaders["X-Auth-Session-Id"] != sid {
		t.Fatalf("identity headers = %v, want user 1 and session %s", e.AuthHeaders, sid)
	}
	if e.Host != "a.localhost" || e.Path != "/api/articles" {
		t.Fatalf("upstream got host %q path %q", e.Host, e.Path)
	}

	// No token: untouched, and the client's identity headers are dropped.
	r = do(t, s.c, "GET", "a.localhost", "/api/articles", "", nil, "X-Auth-User-Id", "999", "X-Auth-Session-Id", "forged")
	expectStatus(t, r, 200, "GET without a token")
	e = echoOf(t, r)
	if e.Authorization != "" || len(e.AuthHeaders) != 0 {
		t.Fatalf("anonymous request reached upstream with Authorization %q, X-Auth-* %v", e.Authorization, e.AuthHeaders)
	}
}

// TestFakeRawStrapiJWTRefused: a Strapi JWT (valid for Strapi) cannot bypass the proxy.
func TestFakeRawStrapiJWTRefused(t *testing.T) {
	s := getFakeStack(t)
	raw := s.fake.IssueJWT(fakeUsers[0])
	n := s.fake.Received()
	for _, host := range []string{"a.localhost", "b.localhost"} {
		r := do(t, s.c, "GET", host, "/api/articles", raw, nil)
		expectError(t, r, 401, "UnauthorizedError", "raw Strapi JWT on "+host)
	}
	// A token in the proxy's shape signed with another key, and garbage, are refused the same way.
	forged := harness.SignHS256(`{"alg":"HS256","typ":"JWT","kid":"0011223344556677"}`,
		`{"iss":"strapi-access-proxy","sub":"1","sid":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","iat":1,"exp":9999999999}`, []byte("not-the-proxy-secret-0123456789abcdef"))
	for _, tok := range []string{forged, "not-a-token"} {
		r := do(t, s.c, "GET", "a.localhost", "/api/articles", tok, nil)
		expectError(t, r, 401, "UnauthorizedError", "forged token")
	}
	if got := s.fake.Received(); got != n {
		t.Fatalf("refused requests reached the upstream: %d new requests", got-n)
	}
	// The same JWT goes through a route without the plugin: the refusal above is the proxy's.
	r := do(t, s.c, "GET", "plain.localhost", "/api/articles", raw, nil)
	expectStatus(t, r, 200, "raw JWT on the plain route")
	if echoOf(t, r).Authorization != "Bearer "+raw {
		t.Fatalf("plain route changed the Authorization header")
	}
}

// TestFakeAudience: a user may log in and send requests only on hosts in their audience.
func TestFakeAudience(t *testing.T) {
	s := getFakeStack(t)
	n := s.fake.Received()

	r := do(t, s.c, "POST", "b.localhost", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "alice-pw-1"})
	expectError(t, r, 403, "ForbiddenError", "alice logging in on b.localhost")
	noJWTKey(t, r, "refused login")
	for _, j := range harness.FindJWTs(r.Everything()) {
		t.Fatalf("a refused login carries a JWT: %s", j)
	}

	tokenA, _ := login(t, s.c, "a.localhost", "alice", "alice-pw-1")
	r = do(t, s.c, "GET", "b.localhost", "/api/articles", tokenA, nil)
	expectError(t, r, 403, "ForbiddenError", "alice's token on b.localhost")
	if got := s.fake.Received(); got != n {
		t.Fatalf("refused requests reached the upstream: %d new", got-n)
	}
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/articles", tokenA, nil), 200, "alice's token on a.localhost")

	// carol has both hosts; dave has *.localhost: one token, both hosts.
	for _, u := range []struct{ id, pw string }{{"carol", "carol-pw-3"}, {"dave", "dave-pw-4"}} {
		tok, _ := login(t, s.c, "b.localhost", u.id, u.pw)
		for _, host := range []string{"a.localhost", "b.localhost"} {
			r := do(t, s.c, "GET", host, "/api/articles", tok, nil)
			expectStatus(t, r, 200, u.id+" on "+host)
			if !strings.HasPrefix(echoOf(t, r).Authorization, "Bearer ey") {
				t.Fatalf("%s on %s: upstream got no Strapi JWT", u.id, host)
			}
		}
	}
	// bob is b only.
	tokB, _ := login(t, s.c, "b.localhost", "bob", "bob-pw-2")
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/articles", tokB, nil), 403, "ForbiddenError", "bob on a.localhost")
}

// TestFakeWrongPassword: Strapi's 400 passes through unchanged.
func TestFakeWrongPassword(t *testing.T) {
	s := getFakeStack(t)
	r := do(t, s.c, "POST", "a.localhost", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "wrong"})
	expectError(t, r, 400, "ValidationError", "wrong password")
	direct := do(t, harness.NewClient(s.fake.URL), "POST", "", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "wrong"})
	if string(r.Body) != string(direct.Body) {
		t.Fatalf("wrong-password body changed by the proxy:\n got  %s\n want %s", r.Body, direct.Body)
	}
}

// TestFakeSlidingExpiry: with idleTimeout 2s, a session in use stays alive; 3s idle ends it.
func TestFakeSlidingExpiry(t *testing.T) {
	t.Parallel()
	s := getFakeStack(t)
	token, _ := login(t, s.c, "slide.localhost", "dave", "dave-pw-4")
	start := time.Now()
	n := 0
	for time.Since(start) < 4*time.Second {
		time.Sleep(700 * time.Millisecond)
		r := do(t, s.c, "GET", "slide.localhost", "/api/articles", token, nil)
		expectStatus(t, r, 200, "use at "+time.Since(start).Round(10*time.Millisecond).String()+" (kept alive by use)")
		n++
	}
	if n < 5 {
		t.Fatalf("only %d uses in 4s", n)
	}
	time.Sleep(3 * time.Second)
	r := do(t, s.c, "GET", "slide.localhost", "/api/articles", token, nil)
	expectError(t, r, 401, "UnauthorizedError", "after 3s idle")
}

// TestFakeFixedExpiry: with sliding off and idleTimeout 2s, the session ends 2s after login
// whatever the use.
func TestFakeFixedExpiry(t *testing.T) {
	t.Parallel()
	s := getFakeStack(t)
	t0 := time.Now()
	token, _ := login(t, s.c, "fixed.localhost", "dave", "dave-pw-4")
	t1 := time.Now()
	ok, expired := 0, 0
	for time.Since(t1) < 3*time.Second {
		sent := time.Now()
		r := do(t, s.c, "GET", "fixed.localhost", "/api/articles", token, nil)
		got := time.Now()
		switch {
		case got.Before(t0.Add(2 * time.Second)):
			expectStatus(t, r, 200, "use within the fixed window ("+got.Sub(t0).String()+" after login)")
			ok++
		case sent.After(t1.Add(2*time.Second + 50*time.Millisecond)):
			expectError(t, r, 401, "UnauthorizedError", "use after the fixed window ("+sent.Sub(t1).String()+" after login)")
			expired++
		default: // at the boundary: either answer is right
			if r.Status != 200 && r.Status != 401 {
				t.Fatalf("at the window's end: %s", r)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if ok < 4 || expired < 2 {
		t.Fatalf("saw %d uses inside and %d after the window, want ≥4 and ≥2", ok, expired)
	}
}

// TestFakeStoreDown: the store killed → 503 and nothing forwarded (fail closed), including logins;
// the store restarted (SIGKILL then SIGTERM) → sessions still valid; Traefik restarted (its cache
// gone) → sessions still valid.
func TestFakeStoreDown(t *testing.T) {
	env := harness.ForTest(t)
	s, err := newFakeStack(env, func(store *harness.Store, fake *harness.FakeStrapi, secret string) []harness.Router {
		return []harness.Router{{Host: "a.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, secret, map[string]any{"cacheTTL": "0s"})}}
	})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := login(t, s.c, "a.localhost", "alice", "alice-pw-1")
	r := do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil)
	expectStatus(t, r, 200, "before the store goes down")
	strapiAuth := echoOf(t, r).Authorization

	s.store.Kill()
	n := s.fake.Received()
	r = do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil)
	expectError(t, r, 503, "ServiceUnavailableError", "store killed")
	if s.fake.Received() != n {
		t.Fatalf("a request was forwarded while the store was down")
	}
	r = do(t, s.c, "POST", "a.localhost", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "alice-pw-1"})
	expectError(t, r, 503, "ServiceUnavailableError", "login while the store is down")
	noJWTKey(t, r, "login while the store is down")
	// Whether the login reached Strapi (and was then refused) or was refused before (the login
	// rate limit also needs the store), no Strapi JWT may reach the client.
	if len(harness.FindJWTs(r.Everything())) != 0 {
		t.Fatalf("the Strapi JWT leaked on the store-down login path: %s", r.Everything())
	}

	if err := s.store.Restart(); err != nil {
		t.Fatal(err)
	}
	r = do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil)
	expectStatus(t, r, 200, "after the store restarted from SIGKILL")
	if echoOf(t, r).Authorization != strapiAuth {
		t.Fatalf("after restart upstream got another Authorization")
	}

	s.store.Stop() // SIGTERM
	if err := s.store.Restart(); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil), 200, "after a SIGTERM restart of the store")

	if err := s.traefik.Restart(); err != nil {
		t.Fatal(err)
	}
	r = do(t, s.c, "GET", "a.localhost", "/api/articles", token, nil)
	expectStatus(t, r, 200, "after a Traefik restart")
	if echoOf(t, r).Authorization != strapiAuth {
		t.Fatalf("after the Traefik restart upstream got another Authorization")
	}
	if err := s.traefik.CheckLog(); err != nil {
		t.Fatal(err)
	}
}

// TestFakeUsersAPIAudienceRefused: a user cannot grant themselves hosts through Strapi's users API,
// also on a warm token (the fast path serves only GETs on /api/users).
func TestFakeUsersAPIAudienceRefused(t *testing.T) {
	s := getFakeStack(t)
	token, _ := login(t, s.c, "a.localhost", "alice", "alice-pw-1")
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil), 200, "warm-up")
	n := s.fake.Received()
	for _, p := range []string{"/api/users/1", "/API/users/1", "/api/users"} {
		r := do(t, s.c, "PUT", "a.localhost", p, token, map[string]string{"audience": "*"})
		expectError(t, r, 400, "ValidationError", "PUT "+p+" setting audience")
	}
	if got := s.fake.Received(); got != n {
		t.Fatalf("%d audience updates reached the upstream", got-n)
	}
	expectStatus(t, do(t, s.c, "PUT", "a.localhost", "/api/users/1", token, map[string]string{"username": "alice2"}), 200, "an ordinary update")
}
