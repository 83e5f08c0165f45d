package e2e

// Issue 4: the plugin in the real Traefik with a real sessionstore, in front of the real Strapi 5
// app of e2e/strapi (users-permissions, sqlite), seeded with fixture users.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

type strapiStack struct {
	strapi  *harness.Strapi
	store   *harness.Store
	traefik *harness.Traefik
	c       *harness.Client // through Traefik
	direct  *harness.Client // straight to Strapi, bypassing Traefik
}

var (
	strapiStackOnce sync.Once
	sharedStrapiSt  *strapiStack
	strapiStackErr  error
)

func newStrapiStack(env *harness.Env, st *harness.Strapi, routers func(store *harness.Store, upstream, secret string) []harness.Router) (*strapiStack, error) {
	store, err := harness.StartStore(env)
	if err != nil {
		return nil, err
	}
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{Routers: routers(store, st.URL, harness.NewSecret()), AccessLog: true})
	if err != nil {
		return nil, err
	}
	return &strapiStack{strapi: st, store: store, traefik: tr, c: harness.NewClient(tr.URL()), direct: harness.NewClient(st.URL)}, nil
}

// lazyStack is a Traefik and a store of a test file's own in front of the shared legacy Strapi,
// started by the first test that asks for it.
type lazyStack struct {
	once sync.Once
	st   *strapiStack
	err  error
}

func (l *lazyStack) get(t *testing.T, what string, routers func(store *harness.Store, upstream, secret string) []harness.Router) *strapiStack {
	t.Helper()
	st := needStrapi(t)
	l.once.Do(func() { l.st, l.err = newStrapiStack(sharedEnv, st, routers) })
	if l.err != nil {
		t.Fatalf("starting Traefik + sessionstore for %s: %v", what, l.err)
	}
	checkLogAtEnd(t, l.st.traefik)
	return l.st
}

func getStrapiStack(t *testing.T) *strapiStack {
	t.Helper()
	st := needStrapi(t)
	strapiStackOnce.Do(func() {
		sharedStrapiSt, strapiStackErr = newStrapiStack(sharedEnv, st, func(store *harness.Store, up, secret string) []harness.Router {
			cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(store, secret, extra) }
			return []harness.Router{
				// No rotation grace: TestStrapiLifecycle's reuse right after a refresh revokes the login.
				{Host: "a.localhost", Upstream: up, Plugin: cfg(map[string]any{"refreshReuseGrace": "0s"})},
				{Host: "b.localhost", Upstream: up, Plugin: cfg(nil)},
				{Host: "short.localhost", Upstream: up, Plugin: cfg(map[string]any{"idleTimeout": "2s", "cacheTTL": "0s"})},
				{Host: "long.localhost", Upstream: up, Plugin: cfg(map[string]any{"idleTimeout": "30s", "cacheTTL": "0s"})},
				// strapi_edge_test.go: lockout (short, on its own host; audienceCheck off so that a user
				// registered for the test may log in here), and SSO: one central auth host and two app
				// hosts, one middleware instance each, same secret and store, all on this one Strapi.
				{Host: "lock.localhost", Upstream: up, Plugin: cfg(map[string]any{"lockoutThreshold": 5, "lockoutDuration": "4s", "audienceCheck": false})},
				{Host: "sso-auth.localhost", Upstream: up, Plugin: cfg(map[string]any{"cacheTTL": "0s"})},
				{Host: "sso-app1.localhost", Upstream: up, Plugin: cfg(map[string]any{"cacheTTL": "0s", "idleTimeout": "10m"})},
				{Host: "sso-app2.localhost", Upstream: up, Plugin: cfg(map[string]any{"cacheTTL": "0s", "idleTimeout": "1h"})},
			}
		})
	})
	if strapiStackErr != nil {
		t.Fatalf("starting Traefik + sessionstore in front of Strapi: %v", strapiStackErr)
	}
	checkLogAtEnd(t, sharedStrapiSt.traefik)
	return sharedStrapiSt
}

// directLogin logs in at Strapi itself (bypassing Traefik) and returns Strapi's own JWT.
func (s *strapiStack) directLogin(t *testing.T, identifier, password string) string {
	t.Helper()
	r := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": identifier, "password": password})
	expectStatus(t, r, 200, "direct login at Strapi")
	var b loginBody
	_ = json.Unmarshal(r.Body, &b)
	if !harness.VerifyHS256(b.JWT, []byte(s.strapi.JWTSecret)) {
		t.Fatalf("direct login: %q is not a Strapi JWT signed with its jwtSecret", b.JWT)
	}
	return b.JWT
}

// noStrapiJWT fails if a response the client sees carries a JWT signed by Strapi, or the given one.
func (s *strapiStack) noStrapiJWT(t *testing.T, r *harness.Response, strapiJWT, what string) {
	t.Helper()
	all := r.Everything()
	if strapiJWT != "" && strings.Contains(all, strapiJWT) {
		t.Fatalf("%s: the Strapi JWT reached the client: %s", what, all)
	}
	for _, j := range harness.FindJWTs(all) {
		if harness.VerifyHS256(j, []byte(s.strapi.JWTSecret)) {
			t.Fatalf("%s: a Strapi-signed JWT reached the client: %s", what, j)
		}
	}
}

// TestStrapiRegisterLoginAndMe: register and log in through the proxy; the client only ever holds
// the proxy's token, which works for /api/users/me; Strapi's own JWT is refused through Traefik.
func TestStrapiRegisterLoginAndMe(t *testing.T) {
	s := getStrapiStack(t)
	name := fmt.Sprintf("reg%d", time.Now().UnixNano()%1e9)
	email, password := name+"@example.com", "Reg-passw0rd-"+name

	r := do(t, s.c, "POST", "a.localhost", "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
	expectStatus(t, r, 200, "register through the proxy")
	var reg loginBody
	if err := json.Unmarshal(r.Body, &reg); err != nil || reg.JWT == "" {
		t.Fatalf("register: no jwt in %s", r)
	}
	if reg.User["username"] != name || reg.User["email"] != email {
		t.Fatalf("register: user %v, want %s", reg.User, name)
	}
	if reg.User["audience"] != "a.localhost" {
		t.Fatalf("register: audience %v, want DEFAULT_AUDIENCE a.localhost", reg.User["audience"])
	}
	regClaims := checkProxyToken(t, reg.JWT)
	s.noStrapiJWT(t, r, "", "register response")
	userID := fmt.Sprint(reg.User["id"])
	if claim(regClaims, "sub") != userID {
		t.Fatalf("register token sub %q, want the Strapi user id %s", claim(regClaims, "sub"), userID)
	}

	token, lr := login(t, s.c, "a.localhost", email, password)
	strapiJWT := s.directLogin(t, email, password)
	if token == strapiJWT || reg.JWT == strapiJWT {
		t.Fatalf("the client got Strapi's JWT")
	}
	claims := checkProxyToken(t, token)
	if claim(claims, "sid") == claim(regClaims, "sid") {
		t.Fatalf("login and register share a session id")
	}
	if harness.VerifyHS256(token, []byte(s.strapi.JWTSecret)) {
		t.Fatalf("the proxy token is signed with Strapi's secret")
	}
	s.noStrapiJWT(t, lr, strapiJWT, "login response")

	for _, tok := range []string{token, reg.JWT} {
		me := do(t, s.c, "GET", "a.localhost", "/api/users/me", tok, nil)
		expectStatus(t, me, 200, "GET /api/users/me with the proxy token")
		m := me.JSON()
		if fmt.Sprint(m["id"]) != userID || m["username"] != name || m["email"] != email {
			t.Fatalf("/api/users/me answered %s, want user %s (%s)", me, userID, name)
		}
		s.noStrapiJWT(t, me, strapiJWT, "/api/users/me response")
	}

	// Strapi's own JWT is good at Strapi (the refusal below is the proxy's doing) ...
	expectStatus(t, do(t, s.direct, "GET", "", "/api/users/me", strapiJWT, nil), 200, "Strapi JWT straight at Strapi")
	// ... and refused through Traefik.
	r = do(t, s.c, "GET", "a.localhost", "/api/users/me", strapiJWT, nil)
	expectError(t, r, 401, "UnauthorizedError", "raw Strapi JWT through Traefik")
	// Without a token Strapi answers as the public role (the proxy lets it through untouched).
	r = do(t, s.c, "GET", "a.localhost", "/api/users/me", "", nil)
	if r.Status != 401 && r.Status != 403 {
		t.Fatalf("anonymous /api/users/me: %s, want Strapi's own 401/403", r)
	}
	// A new user's default audience does not include b.localhost.
	expectError(t, do(t, s.c, "GET", "b.localhost", "/api/users/me", token, nil), 403, "ForbiddenError", "new user on b.localhost")
}

// TestStrapiAudience: alice (a.localhost) gets in on a and is refused on b, at login and per request.
func TestStrapiAudience(t *testing.T) {
	s := getStrapiStack(t)
	r := do(t, s.c, "POST", "b.localhost", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "Alice-passw0rd"})
	expectError(t, r, 403, "ForbiddenError", "alice logging in on b.localhost")
	noJWTKey(t, r, "refused login")
	s.noStrapiJWT(t, r, "", "refused login")

	token, _ := login(t, s.c, "a.localhost", "alice", "Alice-passw0rd")
	me := do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil)
	expectStatus(t, me, 200, "alice on a.localhost")
	if me.JSON()["username"] != "alice" {
		t.Fatalf("/api/users/me: %s", me)
	}
	expectError(t, do(t, s.c, "GET", "b.localhost", "/api/users/me", token, nil), 403, "ForbiddenError", "alice's token on b.localhost")

	// carol has both hosts.
	tc, _ := login(t, s.c, "b.localhost", "carol", "Carol-passw0rd")
	for _, h := range []string{"a.localhost", "b.localhost"} {
		me := do(t, s.c, "GET", h, "/api/users/me", tc, nil)
		expectStatus(t, me, 200, "carol on "+h)
		if me.JSON()["username"] != "carol" {
			t.Fatalf("carol on %s: %s", h, me)
		}
	}
}

// TestStrapiIdleTimeoutPerHost: one session, two routers with idle timeouts of 2s and 30s: after
// 3s idle it is over on the first and alive on the second.
func TestStrapiIdleTimeoutPerHost(t *testing.T) {
	t.Parallel()
	s := getStrapiStack(t)
	token, _ := login(t, s.c, "long.localhost", "erin", "Erin-passw0rd")
	for _, h := range []string{"short.localhost", "long.localhost"} {
		expectStatus(t, do(t, s.c, "GET", h, "/api/users/me", token, nil), 200, "erin on "+h+" right after login")
	}
	time.Sleep(3 * time.Second)
	expectError(t, do(t, s.c, "GET", "short.localhost", "/api/users/me", token, nil), 401, "UnauthorizedError", "3s idle on the 2s host")
	me := do(t, s.c, "GET", "long.localhost", "/api/users/me", token, nil)
	expectStatus(t, me, 200, "3s idle on the 30s host")
	if me.JSON()["username"] != "erin" {
		t.Fatalf("/api/users/me on long.localhost: %s", me)
	}
}

// TestStrapiWrongPassword: Strapi's 400 passes through the proxy unchanged.
func TestStrapiWrongPassword(t *testing.T) {
	s := getStrapiStack(t)
	body := map[string]string{"identifier": "bob", "password": "not-bobs-password"}
	r := do(t, s.c, "POST", "b.localhost", "/api/auth/local", "", body)
	expectError(t, r, 400, "ValidationError", "wrong password through the proxy")
	direct := do(t, s.direct, "POST", "", "/api/auth/local", "", body)
	expectStatus(t, direct, 400, "wrong password at Strapi")
	var got, want any
	_ = json.Unmarshal(r.Body, &got)
	_ = json.Unmarshal(direct.Body, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the proxy changed Strapi's 400:\n got  %s\n want %s", r.Body, direct.Body)
	}
	if r.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
		t.Fatalf("Content-Type %q, Strapi said %q", r.Header.Get("Content-Type"), direct.Header.Get("Content-Type"))
	}
}

// TestStrapiStoreRestart: sessions survive a sessionstore restart (SIGTERM, start again).
func TestStrapiStoreRestart(t *testing.T) {
	st := needStrapi(t)
	env := harness.ForTest(t)
	s, err := newStrapiStack(env, st, func(store *harness.Store, up, secret string) []harness.Router {
		return []harness.Router{{Host: "a.localhost", Upstream: up, Plugin: harness.PluginConfig(store, secret, map[string]any{"cacheTTL": "0s"})}}
	})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := login(t, s.c, "a.localhost", "dave", "Dave-passw0rd")
	expectStatus(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil), 200, "before the restart")
	s.store.Stop()
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil), 503, "ServiceUnavailableError", "store stopped")
	if err := s.store.Restart(); err != nil {
		t.Fatal(err)
	}
	me := do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil)
	expectStatus(t, me, 200, "after the store restart")
	if me.JSON()["username"] != "dave" {
		t.Fatalf("/api/users/me after restart: %s", me)
	}
	if err := s.traefik.CheckLog(); err != nil {
		t.Fatal(err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestStrapiLogout: logout through the proxy ends the session; the token is refused after.
func TestStrapiLogout(t *testing.T) {
	s := getStrapiStack(t)
	token, _ := login(t, s.c, "b.localhost", "bob", "Bob-passw0rd")
	expectStatus(t, do(t, s.c, "GET", "b.localhost", "/api/users/me", token, nil), 200, "before logout")
	r := do(t, s.c, "POST", "b.localhost", "/api/auth/logout", token, nil)
	expectStatus(t, r, 200, "logout")
	if r.JSON()["ok"] != true {
		t.Fatalf("logout answered %s", r)
	}
	expectError(t, do(t, s.c, "GET", "b.localhost", "/api/users/me", token, nil), 401, "UnauthorizedError", "after logout")
}

// TestStrapiSessionMode: Strapi 5 with jwtManagement 'refresh' (short access JWTs + a refresh
// token): neither Strapi credential reaches the client, and the proxy session outlives Strapi's
// access JWT (the proxy renews it with the refresh token it keeps).
func TestStrapiSessionMode(t *testing.T) {
	st := needSessionStrapi(t)
	env := harness.ForTest(t)
	s, err := newStrapiStack(env, st, func(store *harness.Store, up, secret string) []harness.Router {
		return []harness.Router{{Host: "a.localhost", Upstream: up, Plugin: harness.PluginConfig(store, secret, map[string]any{"cacheTTL": "0s"})}}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Strapi itself answers with its access JWT and a refresh token.
	direct := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "Alice-passw0rd"})
	expectStatus(t, direct, 200, "direct login in session mode")
	if rt, _ := direct.JSON()["refreshToken"].(string); rt == "" {
		t.Fatalf("Strapi in session mode gave no refreshToken: %s", direct)
	}
	// ... whose access JWT really lives sessionAccessLifespan seconds (so the wait below outlives it).
	_, dc, err := harness.DecodeJWT(fmt.Sprint(direct.JSON()["jwt"]))
	if err != nil {
		t.Fatal(err)
	}
	if iat, exp := claim(dc, "iat"), claim(dc, "exp"); iat == "" || exp == "" || mustAtoi(t, exp)-mustAtoi(t, iat) != sessionAccessLifespan {
		t.Fatalf("Strapi access JWT iat %s exp %s: want a %ds lifetime", iat, exp, sessionAccessLifespan)
	}

	r := do(t, s.c, "POST", "a.localhost", "/api/auth/local", "", map[string]any{"identifier": "alice", "password": "Alice-passw0rd"})
	expectStatus(t, r, 200, "login through the proxy")
	s.noStrapiJWT(t, r, "", "session-mode login")
	// Strapi's answer carried its refresh token: the proxy's goes in its place, unasked.
	if rt, _ := r.JSON()["refreshToken"].(string); !strings.HasPrefix(rt, "apr_") {
		t.Fatalf("session-mode login without the proxy's refresh token where Strapi put its own: %s", r)
	}
	if strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "strapi_up_refresh") {
		t.Fatalf("Strapi's refresh cookie reached the client")
	}
	token, _ := r.JSON()["jwt"].(string)
	checkProxyToken(t, token)

	r = do(t, s.c, "POST", "a.localhost", "/api/auth/local", "", map[string]any{"identifier": "alice", "password": "Alice-passw0rd", "requestRefresh": true})
	expectStatus(t, r, 200, "login with requestRefresh")
	s.noStrapiJWT(t, r, "", "session-mode login with requestRefresh")
	if rt, _ := r.JSON()["refreshToken"].(string); !strings.HasPrefix(rt, "apr_") {
		t.Fatalf("refreshToken %q is not the proxy's own", rt)
	}

	me := do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil)
	expectStatus(t, me, 200, "/api/users/me")
	s.noStrapiJWT(t, me, "", "/api/users/me")
	// Past Strapi's access JWT lifetime the same proxy token still works.
	time.Sleep((sessionAccessLifespan + 1) * time.Second)
	me = do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil)
	expectStatus(t, me, 200, fmt.Sprintf("/api/users/me %ds after login (Strapi's access JWT lives %ds)", sessionAccessLifespan+1, sessionAccessLifespan))
	if me.JSON()["username"] != "alice" {
		t.Fatalf("/api/users/me: %s", me)
	}
	s.noStrapiJWT(t, me, "", "/api/users/me after renewal")

	r = do(t, s.c, "POST", "a.localhost", "/api/auth/logout", token, nil)
	expectStatus(t, r, 200, "logout")
	s.noStrapiJWT(t, r, "", "logout")
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil), 401, "UnauthorizedError", "after logout")
}
