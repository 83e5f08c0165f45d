package e2e

// The behaviours of commit e224295 against the real Strapi 5, in the real Traefik: a login is
// always possible, one credential per request, identity and upstream headers in every spelling,
// users write only themselves, and bodies read as Strapi reads them. The other jobs of that commit
// have files of their own on the same stack: admin_channel_test.go, login_limits_test.go,
// revalidate_test.go, revocation_test.go.
//
// The stack: a Strapi of its own (an admin user, the Authenticated role allowed
// users-permissions user.update, register accepting `audience` so that the proxy is the only
// guard), one sessionstore, one Traefik with a router per scenario. Between Traefik and Strapi a
// tap records what reaches Strapi; between one router and the store a second tap can hold a
// store read in flight.

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const (
	parityAdminEmail    = "e2e-admin@example.com"
	parityAdminPassword = "E2e-Admin-passw0rd-7"
	parityAPIKey        = "parity-upstream-key-3b9d"
	parityMarkHeader    = "X-E2e-Mark" // tells one test's requests from the others' at the tap
)

// The fixture users of the parity Strapi; self-registered users get *.localhost.
var parityUsers = []harness.StrapiUser{
	{Username: "pa-alice", Email: "pa-alice@example.com", Password: "Pa-alice-passw0rd", Audience: "*.localhost", Confirmed: true},
	{Username: "pa-bob", Email: "pa-bob@example.com", Password: "Pa-bob-passw0rd", Audience: "*.localhost", Confirmed: true},
	{Username: "pa-carl", Email: "pa-carl@example.com", Password: "Pa-carl-passw0rd", Audience: "p-reval.localhost", Confirmed: true},
	{Username: "pa-dora", Email: "pa-dora@example.com", Password: "Pa-dora-passw0rd", Audience: "p-reval.localhost", Confirmed: true},
	{Username: "pa-rl", Email: "pa-rl@example.com", Password: "Pa-rl-passw0rd", Audience: "*.localhost", Confirmed: true},
	{Username: "pa-lock", Email: "pa-lock@example.com", Password: "Pa-lock-passw0rd", Audience: "*.localhost", Confirmed: true},
	{Username: "pa-ivy", Email: "pa-ivy@example.com", Password: "Pa-ivy-passw0rd", Audience: "*.localhost", Confirmed: true},
}

func parityUser(name string) harness.StrapiUser {
	for _, u := range parityUsers {
		if u.Username == name {
			return u
		}
	}
	panic("no parity user " + name)
}

type parityStack struct {
	strapi    *harness.Strapi
	strapiTap *harness.Tap // Traefik → tap → Strapi: what reaches Strapi
	store     *harness.Store
	storeTap  *harness.Tap // p-held.localhost → tap → store
	traefik   *harness.Traefik
	c         *harness.Client   // through Traefik
	direct    *harness.Client   // straight to Strapi
	admin     *harness.AdminAPI // Strapi's admin API, straight to Strapi
	secret    string
}

var (
	parityOnce   sync.Once
	parityShared *parityStack
	parityErr    error
)

// parityRouters: one router per scenario, all with the same secret and store.
func parityRouters(st *parityStack, up string) []harness.Router {
	cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(st.store, st.secret, extra) }
	limited := func(extra map[string]any) map[string]any {
		c := cfg(extra)
		c["loginRateLimit"] = "3/m"
		return c
	}
	return []harness.Router{
		{Host: "p.localhost", Upstream: up, Plugin: cfg(nil)},
		{Host: "p-cookie.localhost", Upstream: up, Plugin: cfg(map[string]any{"cookie": map[string]any{"enabled": true, "secure": false}})},
		{Host: "p-id.localhost", Upstream: up, Plugin: cfg(map[string]any{"identityHeaders": true, "upstreamHeaders": map[string]string{"X-Api-Key": parityAPIKey}})},
		{Host: "p-open.localhost", Upstream: up, Plugin: cfg(map[string]any{"usersApiSelfOnly": false})},
		{Host: "p-noadmin.localhost", Upstream: up, Plugin: cfg(map[string]any{"adminAllowFrom": []string{"10.99.0.0/16"}})},
		{Host: "p-reval.localhost", Upstream: up, Plugin: cfg(map[string]any{"revalidateEvery": "2s"})},
		// login_limits_test.go: two routers with 3 logins a minute each; two more for the lockout.
		{Host: "p-rl-a.localhost", Upstream: up, Plugin: limited(nil)},
		{Host: "p-rl-b.localhost", Upstream: up, Plugin: limited(nil)},
		{Host: "p-lock-a.localhost", Upstream: up, Plugin: limited(map[string]any{"lockoutThreshold": 3, "lockoutDuration": "1m"})},
		{Host: "p-lock-b.localhost", Upstream: up, Plugin: limited(map[string]any{"lockoutThreshold": 3, "lockoutDuration": "1m"})},
		// revocation_test.go: store reads through the holding tap (storeTimeout above the hold), and
		// short idle sessions with refresh tokens.
		// changeFeed off: sessions are re-read every cacheTTL, so a read can be held in flight.
		{Host: "p-held.localhost", Upstream: up, Plugin: cfg(map[string]any{"storeURL": st.storeTap.URL, "storeTimeout": "5s", "cacheTTL": "1s", "changeFeed": false})},
		{Host: "p-idle.localhost", Upstream: up, Plugin: cfg(map[string]any{"idleTimeout": "2s", "cacheTTL": "0s"})},
	}
}

func startParityStack() (*parityStack, error) {
	env, err := harness.NewEnv(filepath.Join(sharedEnv.Dir, "parity-strapi"), nil)
	if err != nil {
		return nil, err
	}
	sharedEnv.OnClose(env.Close)
	st := &parityStack{secret: harness.NewSecret()}
	// Store and taps first: cheap, and Strapi starts meanwhile from the same goroutine anyway.
	if st.store, err = harness.StartStore(env); err != nil {
		return nil, err
	}
	if st.storeTap, err = harness.StartTap(env, st.store.URL); err != nil {
		return nil, err
	}
	st.strapi, err = harness.StartStrapi(env, harness.StrapiOptions{
		Users:               parityUsers,
		DefaultAudience:     "*.localhost",
		ScriptLog:           os.Stderr,
		AdminEmail:          parityAdminEmail,
		AdminPassword:       parityAdminPassword,
		AuthenticatedGrants: []string{"plugin::users-permissions.user.update"},
		// Strapi itself would take an audience at registration: the proxy is the only guard.
		ExtraEnv: []string{"STRAPI_REGISTER_ALLOWED_FIELDS=audience"},
	})
	if err != nil {
		return nil, err
	}
	if st.strapiTap, err = harness.StartTap(env, st.strapi.URL); err != nil {
		return nil, err
	}
	if st.traefik, err = harness.StartTraefik(env, harness.TraefikOptions{Routers: parityRouters(st, st.strapiTap.URL), AccessLog: true, Name: "traefik-parity"}); err != nil {
		return nil, err
	}
	st.c, st.direct = harness.NewClient(st.traefik.URL()), harness.NewClient(st.strapi.URL)
	token, _, err := harness.AdminLogin(st.direct, "", parityAdminEmail, parityAdminPassword)
	if err != nil {
		return nil, fmt.Errorf("the bootstrap admin (E2E_ADMIN_EMAIL) cannot log in at Strapi: %v", err)
	}
	st.admin = &harness.AdminAPI{C: st.direct, Token: token}
	return st, nil
}

// getParityStack returns the shared parity stack, starting it on first use. A Strapi that cannot
// be started fails the test.
func getParityStack(t *testing.T) *parityStack {
	t.Helper()
	parityOnce.Do(func() {
		start := time.Now()
		parityShared, parityErr = startParityStack()
		if parityErr == nil {
			t.Logf("parity stack (Strapi with an admin, store, taps, Traefik) started in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if parityErr != nil {
		t.Fatalf("starting the parity stack: %v", parityErr)
	}
	checkLogAtEnd(t, parityShared.traefik)
	return parityShared
}

// mark returns a fresh value for parityMarkHeader.
func mark(prefix string) string { return prefix + "-" + harness.RandomString(6) }

// send sends a request built by the caller (several Authorization headers, cookies, raw bodies).
func send(t *testing.T, c *harness.Client, req *http.Request) *harness.Response {
	t.Helper()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", req.Method, req.Host, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// newReq builds a request to host through c; header values are set as given (a key may repeat).
func newReq(t *testing.T, c *harness.Client, method, host, path string, body []byte, header http.Header) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	return req
}

func jsonBody(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// cookieValue returns the value of the named cookie in the response's Set-Cookie headers.
func cookieValue(r *harness.Response, name string) string {
	resp := &http.Response{Header: r.Header}
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// userOf returns id and username of a login answer's user.
func userOf(t *testing.T, r *harness.Response) (id, username string) {
	t.Helper()
	u, _ := r.JSON()["user"].(map[string]any)
	if u == nil {
		t.Fatalf("no user in %s", r)
	}
	return fmt.Sprint(u["id"]), fmt.Sprint(u["username"])
}

// me asks /api/users/me on host with token and returns the answer.
func (s *parityStack) me(t *testing.T, host, token string) *harness.Response {
	t.Helper()
	return do(t, s.c, "GET", host, "/api/users/me", token, nil)
}

// registerDirect creates a user straight at Strapi (audience *.localhost) and returns its id.
func (s *parityStack) registerDirect(t *testing.T, prefix string) (id, name, email, password string) {
	t.Helper()
	name = fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
	email, password = name+"@example.com", "Pw-"+name+"-0"
	r := do(t, s.direct, "POST", "", "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
	expectStatus(t, r, 200, "register straight at Strapi")
	id, _ = userOf(t, r)
	return id, name, email, password
}

// directMe is the user Strapi itself has for a login (straight at Strapi, no proxy).
func (s *parityStack) directMe(t *testing.T, identifier, password string) map[string]any {
	t.Helper()
	r := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": identifier, "password": password})
	expectStatus(t, r, 200, "direct login at Strapi "+identifier)
	me := do(t, s.direct, "GET", "", "/api/users/me", r.JSON()["jwt"].(string), nil)
	expectStatus(t, me, 200, "/api/users/me straight at Strapi")
	return me.JSON()
}

// TestStrapiParityLoginWithStaleCredential guards "a login is always possible" (e224295): a login
// carrying a revoked proxy bearer, or in cookie mode a revoked session cookie, is an ordinary
// login: 200 with a fresh proxy token, and the stale credential never reaches Strapi. Before, the
// stale credential was authenticated first and the login refused with 401.
func TestStrapiParityLoginWithStaleCredential(t *testing.T) {
	s := getParityStack(t)
	u := parityUser("pa-alice")
	creds := jsonBody(map[string]string{"identifier": u.Email, "password": u.Password})

	// Bearer: a token whose session was logged out.
	stale, _ := login(t, s.c, "p.localhost", u.Email, u.Password)
	expectStatus(t, do(t, s.c, "POST", "p.localhost", "/api/auth/logout", stale, nil), 200, "logout")
	expectError(t, s.me(t, "p.localhost", stale), 401, "UnauthorizedError", "the logged-out token")
	m := mark("stale-bearer")
	r := send(t, s.c, newReq(t, s.c, "POST", "p.localhost", "/api/auth/local", creds, http.Header{
		"Content-Type": {"application/json"}, "Authorization": {"Bearer " + stale}, parityMarkHeader: {m}}))
	expectStatus(t, r, 200, "login carrying a revoked proxy bearer")
	fresh, _ := r.JSON()["jwt"].(string)
	if fresh == "" || fresh == stale {
		t.Fatalf("login with a stale bearer: jwt %q, want a fresh proxy token", fresh)
	}
	checkProxyToken(t, fresh)
	if me := s.me(t, "p.localhost", fresh); me.Status != 200 || me.JSON()["username"] != u.Username {
		t.Fatalf("the fresh token: %s", me)
	}
	// A bearer that is no proxy token at all (garbage) is dropped the same way.
	r = send(t, s.c, newReq(t, s.c, "POST", "p.localhost", "/api/auth/local", creds, http.Header{
		"Content-Type": {"application/json"}, "Authorization": {"Bearer not-a-token"}, parityMarkHeader: {m}}))
	expectStatus(t, r, 200, "login carrying a garbage bearer")
	arrived := s.strapiTap.WithHeader(parityMarkHeader, m)
	if len(arrived) != 2 {
		t.Fatalf("%d marked logins reached Strapi, want 2", len(arrived))
	}
	for _, a := range arrived {
		if v := a.Header.Values("Authorization"); len(v) > 0 {
			t.Fatalf("a login's stale bearer reached Strapi: Authorization %q", v)
		}
	}

	// Cookie mode: the session cookie of a logged-out session.
	r = do(t, s.c, "POST", "p-cookie.localhost", "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	expectStatus(t, r, 200, "cookie-mode login")
	cookie := cookieValue(r, "ap_session")
	if cookie == "" {
		t.Fatalf("cookie-mode login set no ap_session cookie: %v", r.Header.Values("Set-Cookie"))
	}
	expectStatus(t, do(t, s.c, "POST", "p-cookie.localhost", "/api/auth/logout", cookie, nil), 200, "cookie-mode logout")
	m = mark("stale-cookie")
	r = send(t, s.c, newReq(t, s.c, "POST", "p-cookie.localhost", "/api/auth/local", creds, http.Header{
		"Content-Type": {"application/json"}, "Cookie": {"ap_session=" + cookie + "; theme=dark"},
		"Origin": {"http://p-cookie.localhost"}, parityMarkHeader: {m}}))
	expectStatus(t, r, 200, "cookie-mode login carrying a revoked session cookie")
	next := cookieValue(r, "ap_session")
	if next == "" || next == cookie {
		t.Fatalf("login with a stale cookie: cookie %q, want a fresh one", next)
	}
	if me := s.me(t, "p-cookie.localhost", next); me.Status != 200 {
		t.Fatalf("the fresh cookie token: %s", me)
	}
	arrived = s.strapiTap.WithHeader(parityMarkHeader, m)
	if len(arrived) != 1 {
		t.Fatalf("%d marked cookie logins reached Strapi, want 1", len(arrived))
	}
	if got := arrived[0].Header.Get("Cookie"); strings.Contains(got, "ap_session") || !strings.Contains(got, "theme=dark") {
		t.Fatalf("Strapi got Cookie %q on the login: want theme=dark only, never ap_session", got)
	}
}

// TestStrapiParityOneCredential guards "one credential per request" (e224295): two Authorization
// headers are 400, in cookie mode a bearer and a different session cookie are 400, and none of
// those reaches Strapi; the proxy's cookie never reaches Strapi (the other cookies do). Before,
// the first header won and the cookie went upstream with the request.
func TestStrapiParityOneCredential(t *testing.T) {
	s := getParityStack(t)
	u := parityUser("pa-alice")
	tok, _ := login(t, s.c, "p.localhost", u.Email, u.Password)
	other, _ := login(t, s.c, "p.localhost", u.Email, u.Password)
	m := mark("two-auth")
	for _, pair := range [][]string{{"Bearer " + tok, "Bearer not-a-token"}, {"Bearer " + tok, "Bearer " + other}, {"Bearer " + tok, "Bearer " + tok}} {
		r := send(t, s.c, newReq(t, s.c, "GET", "p.localhost", "/api/users/me", nil, http.Header{"Authorization": pair, parityMarkHeader: {m}}))
		expectError(t, r, 400, "ValidationError", fmt.Sprintf("two Authorization headers %.20q…", pair[1]))
	}
	// Also on a proxy endpoint and a login-less write.
	r := send(t, s.c, newReq(t, s.c, "POST", "p.localhost", "/api/auth/logout", nil, http.Header{"Authorization": {"Bearer " + tok, "Bearer " + other}, parityMarkHeader: {m}}))
	expectError(t, r, 400, "ValidationError", "logout with two Authorization headers")
	expectStatus(t, s.me(t, "p.localhost", tok), 200, "the token after the refused requests")
	if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
		t.Fatalf("%d requests with two Authorization headers reached Strapi, want 0", n)
	}

	// Cookie mode.
	host := "p-cookie.localhost"
	r = do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	expectStatus(t, r, 200, "cookie-mode login")
	c1 := cookieValue(r, "ap_session")
	r = do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	c2 := cookieValue(r, "ap_session")
	if c1 == "" || c2 == "" || c1 == c2 {
		t.Fatalf("cookie-mode logins: cookies %q and %q", c1, c2)
	}
	m = mark("bearer-cookie")
	r = send(t, s.c, newReq(t, s.c, "GET", host, "/api/users/me", nil, http.Header{
		"Authorization": {"Bearer " + c1}, "Cookie": {"ap_session=" + c2}, parityMarkHeader: {m}}))
	expectError(t, r, 400, "ValidationError", "a bearer and a different session cookie")
	r = send(t, s.c, newReq(t, s.c, "GET", host, "/api/users/me", nil, http.Header{
		"Cookie": {"ap_session=" + c1 + "; ap_session=" + c2}, parityMarkHeader: {m}}))
	expectError(t, r, 400, "ValidationError", "the session cookie twice with different values")
	if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
		t.Fatalf("%d ambiguous cookie-mode requests reached Strapi, want 0", n)
	}
	// One credential, however sent: the cookie alone, or a bearer with the same cookie. The
	// proxy's cookie is taken off; the others reach Strapi.
	m = mark("cookie-strip")
	for _, h := range []http.Header{
		{"Cookie": {"theme=dark; ap_session=" + c1 + "; lang=fr"}},
		{"Cookie": {"theme=dark; ap_session=" + c1 + "; lang=fr"}, "Authorization": {"Bearer " + c1}},
	} {
		h[parityMarkHeader] = []string{m}
		r = send(t, s.c, newReq(t, s.c, "GET", host, "/api/users/me", nil, h))
		expectStatus(t, r, 200, "one credential in cookie mode")
		if r.JSON()["username"] != u.Username {
			t.Fatalf("cookie-mode /api/users/me: %s", r)
		}
	}
	arrived := s.strapiTap.WithHeader(parityMarkHeader, m)
	if len(arrived) != 2 {
		t.Fatalf("%d cookie requests reached Strapi, want 2", len(arrived))
	}
	for _, a := range arrived {
		cookie := a.Header.Get("Cookie")
		if strings.Contains(cookie, "ap_session") || strings.Contains(cookie, c1) || !strings.Contains(cookie, "theme=dark") || !strings.Contains(cookie, "lang=fr") {
			t.Fatalf("Strapi got Cookie %q: want theme and lang, never the proxy's cookie", cookie)
		}
		if auth := a.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || strings.Contains(auth, c1) {
			t.Fatalf("Strapi got Authorization %q: want Strapi's JWT, not the proxy token", auth)
		}
	}
}

// spoofSpellings are client-sent copies of the headers the proxy sets (identity headers and the
// configured upstreamHeaders key), in spellings an upstream could read as them.
var spoofSpellings = map[string][]string{
	"X-Auth-User-Id":    {"X-Auth-User-Id", "x_auth_user_id", "X_Auth-User_Id", "x-auth_user-id"},
	"X-Auth-Session-Id": {"X-Auth-Session-Id", "X_Auth-Session_Id", "x_auth_session_id"},
	"X-Api-Key":         {"X-Api-Key", "x_api_key", "X-API_KEY"},
}

// TestStrapiParitySpoofedHeaders guards the header stripping of e224295: client-sent identity
// headers and copies of upstreamHeaders, in any case and with '_' for '-', are dropped on
// anonymous and authenticated requests; Strapi sees only the proxy's own values. Before, only the
// exact dash spellings were dropped, so `x_auth_user_id: 1` reached the upstream.
func TestStrapiParitySpoofedHeaders(t *testing.T) {
	s := getParityStack(t)
	const host = "p-id.localhost"
	u := parityUser("pa-bob")
	tok, lr := login(t, s.c, host, u.Email, u.Password)
	uid, _ := userOf(t, lr)
	sid := claim(checkProxyToken(t, tok), "sid")

	spoofed := func(m string) http.Header {
		h := http.Header{parityMarkHeader: {m}}
		for _, spellings := range spoofSpellings {
			for _, k := range spellings {
				h[k] = append(h[k], "spoofed-"+k) // raw keys: sent exactly so
			}
		}
		return h
	}
	check := func(what string, a harness.TapRequest, want map[string]string) {
		t.Helper()
		for name := range spoofSpellings {
			got := harness.HeaderSpellings(a.Header, name)
			w, set := want[name]
			if !set {
				if len(got) > 0 {
					t.Fatalf("%s: a client-sent %s reached Strapi: %v", what, name, got)
				}
				continue
			}
			if len(got) != 1 || len(got[name]) != 1 || got[name][0] != w {
				t.Fatalf("%s: Strapi got %s = %v, want exactly the proxy's %q", what, name, got, w)
			}
		}
	}

	// Anonymous (the fast path's anonymous pass) and authenticated (slow, then fast path).
	m := mark("spoof-anon")
	r := send(t, s.c, newReq(t, s.c, "GET", host, "/api/users/me", nil, spoofed(m)))
	if r.Status != 401 && r.Status != 403 {
		t.Fatalf("anonymous /api/users/me: %s, want Strapi's own refusal", r)
	}
	m2 := mark("spoof-auth")
	for i := 0; i < 3; i++ {
		h := spoofed(m2)
		h["Authorization"] = []string{"Bearer " + tok}
		r = send(t, s.c, newReq(t, s.c, "GET", host, "/api/users/me", nil, h))
		expectStatus(t, r, 200, "authenticated request with spoofed headers")
	}
	anon := s.strapiTap.WithHeader(parityMarkHeader, m)
	auth := s.strapiTap.WithHeader(parityMarkHeader, m2)
	if len(anon) != 1 || len(auth) != 3 {
		t.Fatalf("marked requests at Strapi: %d anonymous, %d authenticated; want 1 and 3", len(anon), len(auth))
	}
	check("anonymous request", anon[0], nil)
	for i, a := range auth {
		check(fmt.Sprintf("authenticated request %d", i+1), a, map[string]string{
			"X-Auth-User-Id": uid, "X-Auth-Session-Id": sid, "X-Api-Key": parityAPIKey})
	}
}

// TestStrapiParityUsersAPISelfOnly guards usersApiSelfOnly (e224295, default true): with the
// Authenticated role allowed users-permissions user.update, Strapi lets any user rewrite any
// user; through the proxy a user may write only their own record. The router with
// usersApiSelfOnly false shows the hole is real (Strapi applies the write to another user).
func TestStrapiParityUsersAPISelfOnly(t *testing.T) {
	s := getParityStack(t)
	selfID, selfName, selfEmail, selfPw := s.registerDirect(t, "self")
	victimID, victimName, victimEmail, victimPw := s.registerDirect(t, "victim")
	tok, _ := login(t, s.c, "p.localhost", selfEmail, selfPw)

	for _, id := range []string{victimID, "0" + victimID, victimID + "%20"} {
		r := do(t, s.c, "PUT", "p.localhost", "/api/users/"+id, tok, map[string]string{"username": "owned-" + victimName})
		expectError(t, r, 403, "ForbiddenError", "PUT /api/users/"+id+" (another user) by "+selfName)
	}
	if got := s.directMe(t, victimEmail, victimPw)["username"]; got != victimName {
		t.Fatalf("the victim's username is %v in Strapi, want %s unchanged", got, victimName)
	}
	// Anonymous writes to a record are refused as well.
	expectError(t, do(t, s.c, "PUT", "p.localhost", "/api/users/"+victimID, "", map[string]string{"username": "anon-" + victimName}), 403, "ForbiddenError", "anonymous PUT /api/users/:id")

	// One's own record: allowed, and Strapi applies it.
	renamed := selfName + "x"
	r := do(t, s.c, "PUT", "p.localhost", "/api/users/"+selfID, tok, map[string]string{"username": renamed})
	expectStatus(t, r, 200, "PUT /api/users/<own id>")
	if me := s.me(t, "p.localhost", tok); me.Status != 200 || me.JSON()["username"] != renamed {
		t.Fatalf("/api/users/me after renaming oneself: %s, want username %s", me, renamed)
	}

	// usersApiSelfOnly: false: the write to another user reaches Strapi, which applies it.
	otherID, otherName, otherEmail, otherPw := s.registerDirect(t, "other")
	tok2, _ := login(t, s.c, "p-open.localhost", selfEmail, selfPw)
	r = do(t, s.c, "PUT", "p-open.localhost", "/api/users/"+otherID, tok2, map[string]string{"username": "owned-" + otherName})
	expectStatus(t, r, 200, "PUT /api/users/<another id> with usersApiSelfOnly false (Strapi allows it)")
	if got := s.directMe(t, otherEmail, otherPw)["username"]; got != "owned-"+otherName {
		t.Fatalf("without the guard the write did not reach Strapi: username %v, want owned-%s", got, otherName)
	}
	// The audience stays out of every write, guard or not.
	r = do(t, s.c, "PUT", "p-open.localhost", "/api/users/"+selfID, tok2, map[string]string{"audience": "*"})
	expectError(t, r, 400, "ValidationError", "PUT /api/users/<own id> setting audience")
}

func gzipped(raw []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(raw)
	_ = w.Close()
	return b.Bytes()
}

func deflated(raw []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, _ = w.Write(raw)
	_ = w.Close()
	return b.Bytes()
}

// deepJSON is a register body with an extra member nested n deep.
func deepJSON(fields map[string]string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("{")
	for k, v := range fields {
		fmt.Fprintf(&b, "%q:%q,", k, v)
	}
	b.WriteString(`"x":`)
	b.WriteString(strings.Repeat("[", n))
	b.WriteString(strings.Repeat("]", n))
	b.WriteString("}")
	return b.Bytes()
}

// TestStrapiParityRegisterBodies guards "bodies as Strapi reads them" (e224295) on the real
// Strapi, which here would accept an audience at registration: a register body the proxy cannot
// read exactly as Strapi's koa-body/qs does is refused by the proxy (it never reaches Strapi), so
// nobody registers with audience "*": gzip/deflate (415: Strapi would inflate them), a UTF-8 BOM
// before the JSON (400: Strapi skips it), form keys qs reads as the audience field (400), JSON
// nested deeper than Go decodes (400). Strapi's user table is checked after each. Before
// e224295 the proxy let the gzip, deflate, BOM and `.audience=*` bodies through and each created
// a user with audience "*" (Strapi 5.54 inflates, skips the BOM, reads `.audience` with
// allowDots), and passed the deep body on to Strapi.
func TestStrapiParityRegisterBodies(t *testing.T) {
	s := getParityStack(t)
	noStar := func(what string) {
		t.Helper()
		users, err := s.admin.FindUPUsers("audience", "*")
		if err != nil {
			t.Fatal(err)
		}
		if len(users) > 0 {
			t.Fatalf("%s: Strapi has a user with audience \"*\": %v", what, users[0]["username"])
		}
	}
	noStar("before")
	n := 0
	fields := func() (map[string]string, string) {
		n++
		name := fmt.Sprintf("star%d%d", time.Now().UnixNano()%1e8, n)
		return map[string]string{"username": name, "email": name + "@example.com", "password": "Pw-" + name + "-0", "audience": "*"}, name
	}
	type variant struct {
		what, contentType, encoding string
		body                        []byte
		status                      int
	}
	var vs []variant
	f, _ := fields()
	vs = append(vs, variant{"gzip-encoded JSON", "application/json", "gzip", gzipped(jsonBody(f)), 415})
	f, _ = fields()
	vs = append(vs, variant{"deflate-encoded JSON", "application/json", "deflate", deflated(jsonBody(f)), 415})
	f, _ = fields()
	vs = append(vs, variant{"BOM-prefixed JSON", "application/json", "", append([]byte("\xef\xbb\xbf"), jsonBody(f)...), 400})
	f, _ = fields()
	vs = append(vs, variant{"BOM-prefixed JSON (charset)", "application/json; charset=utf-8", "", append([]byte("\xef\xbb\xbf"), jsonBody(f)...), 400})
	for _, key := range []string{"audience[0]", "audience[]", "audience%5B0%5D", ".audience", "audience.0"} {
		f, _ = fields()
		form := fmt.Sprintf("username=%s&email=%s&password=%s&%s=*", f["username"], strings.ReplaceAll(f["email"], "@", "%40"), f["password"], key)
		vs = append(vs, variant{"urlencoded " + key + "=*", "application/x-www-form-urlencoded", "", []byte(form), 400})
	}
	f, _ = fields()
	vs = append(vs, variant{"JSON nested 20000 deep", "application/json", "", deepJSON(f, 20000), 400})

	for _, v := range vs {
		m := mark("body")
		h := http.Header{"Content-Type": {v.contentType}, parityMarkHeader: {m}}
		if v.encoding != "" {
			h["Content-Encoding"] = []string{v.encoding}
		}
		r := send(t, s.c, newReq(t, s.c, "POST", "p.localhost", "/api/auth/local/register", v.body, h))
		if r.Status != v.status {
			t.Errorf("register with %s: got %s, want %d from the proxy", v.what, r, v.status)
		}
		if jwt, _ := r.JSON()["jwt"].(string); jwt != "" {
			t.Errorf("register with %s: a jwt came back: the registration went through", v.what)
		}
		// Refused by the proxy itself, not by Strapi: the body never reached Strapi.
		if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
			t.Errorf("register with %s reached Strapi (%d request(s)): the proxy let a body it cannot read through", v.what, n)
		}
		noStar("after register with " + v.what)
	}
	// The proxy still registers a plain body (the refusals above are about the bodies).
	name := fmt.Sprintf("plain%d", time.Now().UnixNano()%1e9)
	r := do(t, s.c, "POST", "p.localhost", "/api/auth/local/register", "", map[string]string{"username": name, "email": name + "@example.com", "password": "Pw-" + name + "-0"})
	expectStatus(t, r, 200, "plain register through the proxy")
	if u, _ := r.JSON()["user"].(map[string]any); u == nil || u["audience"] != "*.localhost" {
		t.Fatalf("plain register: %s, want the default audience", r)
	}
	// And the plain audience member is refused too (the rule these bodies try to get around).
	f, _ = fields()
	expectError(t, do(t, s.c, "POST", "p.localhost", "/api/auth/local/register", "", f), 400, "ValidationError", "register with a plain audience member")
	noStar("at the end")
}
