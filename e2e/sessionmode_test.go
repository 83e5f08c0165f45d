package e2e

// Issue 7: the proxy in front of Strapi 5 in session mode (jwtManagement: 'refresh', 3 s access
// JWTs), in both of Strapi's variants: the refresh token in the body (the session-mode Strapi of
// main_test.go) and as the HttpOnly strapi_up_refresh cookie (a third Strapi started here with
// STRAPI_SESSIONS_HTTPONLY=true). Between Traefik and Strapi sits a small spy (a Go reverse
// proxy) that counts Strapi refresh calls, checks every JWT the proxy forwards and records the
// refresh credentials Strapi hands out, so that the test can look for them in what the client gets
// and use them straight at Strapi.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// ---- a third Strapi: session mode with the HttpOnly refresh cookie ----

var (
	cookieStrapiOnce sync.Once
	cookieStrapiDone = make(chan struct{})
	cookieStrapi     *harness.Strapi
	cookieStrapiErr  error
)

func startCookieSessionStrapi() {
	cookieStrapiOnce.Do(func() {
		defer close(cookieStrapiDone)
		env, err := harness.NewEnv(filepath.Join(sharedEnv.Dir, "cookie-session-strapi"), nil)
		if err != nil {
			cookieStrapiErr = err
			return
		}
		sharedEnv.OnClose(env.Close)
		cookieStrapi, cookieStrapiErr = harness.StartStrapi(env, harness.StrapiOptions{
			Users:           strapiUsers,
			DefaultAudience: "a.localhost",
			ScriptLog:       os.Stderr,
			ExtraEnv: []string{"STRAPI_JWT_MANAGEMENT=refresh", "STRAPI_SESSIONS_HTTPONLY=true",
				fmt.Sprintf("STRAPI_ACCESS_LIFESPAN=%d", sessionAccessLifespan)},
		})
	})
}

// prestartCookieSessionStrapi starts the cookie-variant Strapi in the background early in the run
// (from the first tests), when the -run filter selects Strapi tests, as TestMain does for the others.
func prestartCookieSessionStrapi() {
	if run := flag.Lookup("test.run").Value.String(); run == "" || strings.Contains(strings.ToLower(run), "strapi") {
		go startCookieSessionStrapi()
	}
}

func needCookieSessionStrapi(t *testing.T) *harness.Strapi {
	t.Helper()
	go startCookieSessionStrapi()
	<-cookieStrapiDone
	if cookieStrapiErr != nil {
		t.Fatalf("the real Strapi 5 (session mode, HttpOnly refresh cookie) could not be started: %v", cookieStrapiErr)
	}
	return cookieStrapi
}

// ---- the spy between Traefik and Strapi ----

type strapiSpy struct {
	URL    string
	secret []byte

	refreshCalls atomic.Int64 // POST /api/auth/refresh
	logoutCalls  atomic.Int64 // POST /api/auth/logout

	mu         sync.Mutex
	badBearers []string          // forwarded JWTs Strapi would not accept (bad signature, expired)
	bearers    map[string]bool   // every access JWT forwarded
	lastBearer string            // the last access JWT forwarded
	refreshes  []string          // every Strapi refresh token Strapi answered (body or cookie), in order
	bySession  map[string]string // Strapi sessionId -> the newest refresh token of that session
}

func startStrapiSpy(t *testing.T, env *harness.Env, strapi *harness.Strapi) *strapiSpy {
	t.Helper()
	target, _ := url.Parse(strapi.URL)
	s := &strapiSpy{secret: []byte(strapi.JWTSecret), bearers: map[string]bool{}, bySession: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = s.inspectResponse
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inspectRequest(r)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	env.OnClose(func() { _ = srv.Close() })
	s.URL = "http://" + ln.Addr().String()
	return s
}

func (s *strapiSpy) inspectRequest(r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/api/auth/refresh" {
		s.refreshCalls.Add(1)
	}
	if r.Method == http.MethodPost && r.URL.Path == "/api/auth/logout" {
		s.logoutCalls.Add(1)
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return
	}
	tok := strings.TrimPrefix(auth, "Bearer ")
	bad := ""
	if !harness.VerifyHS256(tok, s.secret) {
		bad = "not signed by Strapi"
	} else if _, c, err := harness.DecodeJWT(tok); err != nil {
		bad = err.Error()
	} else if exp, _ := strconv.ParseInt(claim(c, "exp"), 10, 64); exp <= time.Now().Unix() {
		bad = fmt.Sprintf("expired %ds ago", time.Now().Unix()-exp)
	} else if claim(c, "type") != "access" {
		bad = "type " + claim(c, "type")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if bad != "" {
		s.badBearers = append(s.badBearers, r.Method+" "+r.URL.Path+": "+bad)
	}
	s.bearers[tok] = true
	s.lastBearer = tok
}

func (s *strapiSpy) inspectResponse(resp *http.Response) error {
	var found []string
	for _, c := range resp.Cookies() {
		if c.Name == "strapi_up_refresh" && c.Value != "" {
			found = append(found, c.Value)
		}
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		plain := raw
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
				plain, _ = io.ReadAll(zr)
			}
		}
		var m struct {
			RefreshToken string `json:"refreshToken"`
		}
		if json.Unmarshal(plain, &m) == nil && m.RefreshToken != "" {
			found = append(found, m.RefreshToken)
		}
	}
	if len(found) > 0 {
		s.mu.Lock()
		for _, rt := range found {
			s.refreshes = append(s.refreshes, rt)
			if _, c, err := harness.DecodeJWT(rt); err == nil {
				s.bySession[claim(c, "sessionId")] = rt
			}
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *strapiSpy) snapshot() (bad []string, bearers int, last string, refreshes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.badBearers...), len(s.bearers), s.lastBearer, append([]string(nil), s.refreshes...)
}

func (s *strapiSpy) refreshOf(sessionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySession[sessionID]
}

// ---- the tests ----

// sessionModeVariant runs the whole session-mode scenario against one Strapi.
type sessionModeVariant struct {
	name   string
	strapi func(t *testing.T) *harness.Strapi
	cookie bool // Strapi answers its refresh token as the HttpOnly cookie
}

// TestStrapiSessionModeVariants: for the body and the HttpOnly-cookie variants of Strapi 5's
// session mode: (1) no response the client sees carries Strapi's refresh token or cookie (register,
// login, proxy refresh, requests, logout, logout-all); (2) a proxy session stays usable over more
// than 4 access-token lifetimes, each request reaching Strapi with a valid access JWT; (3) two
// (then six) concurrent requests with an expired access JWT cause exactly one Strapi refresh; (4)
// Strapi's refresh path is answered by the proxy, never by Strapi; (5) logout ends the Strapi session
// (Strapi's own session list loses it, its refresh token is dead) and logout-all ends every Strapi
// session of the user.
func TestStrapiSessionModeVariants(t *testing.T) {
	go startCookieSessionStrapi()
	t.Parallel()
	for _, v := range []sessionModeVariant{
		{name: "body", strapi: needSessionStrapi},
		{name: "cookie", strapi: needCookieSessionStrapi, cookie: true},
	} {
		v := v
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			runSessionModeVariant(t, v)
		})
	}
}

func runSessionModeVariant(root *testing.T, v sessionModeVariant) {
	// t is the test of the step running now: the steps below run in order as subtests, and the
	// helpers that close over t report to the step that called them.
	t := root
	step := func(name string, f func()) bool {
		return root.Run(name, func(st *testing.T) {
			t = st
			defer func() { t = root }()
			f()
		})
	}
	st := v.strapi(t)
	env := harness.ForTest(t)
	spy := startStrapiSpy(t, env, st)
	s, err := newStrapiStack(env, st, func(store *harness.Store, _, secret string) []harness.Router {
		return []harness.Router{{Host: "a.localhost", Upstream: spy.URL, Plugin: harness.PluginConfig(store, secret, map[string]any{"cacheTTL": "0s"})}}
	})
	if err != nil {
		t.Fatal(err)
	}
	const host = "a.localhost"
	lifespan := time.Duration(sessionAccessLifespan) * time.Second

	// Everything a client sees is checked against every Strapi refresh token seen so far.
	clean := func(r *harness.Response, what string) {
		t.Helper()
		s.noStrapiJWT(t, r, "", what)
		all := r.Everything()
		if strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Set-Cookie"), "\n")), "strapi_up_refresh") {
			t.Fatalf("%s: Strapi's refresh cookie reached the client: %q", what, r.Header.Values("Set-Cookie"))
		}
		_, _, _, refreshes := spy.snapshot()
		for _, rt := range refreshes {
			if strings.Contains(all, rt) {
				t.Fatalf("%s: a Strapi refresh token reached the client", what)
			}
		}
		if m := r.JSON(); m != nil {
			if rt, ok := m["refreshToken"]; ok {
				if s, _ := rt.(string); !strings.HasPrefix(s, "apr_") {
					t.Fatalf("%s: refreshToken %v is not the proxy's own", what, rt)
				}
			}
		}
	}
	me := func(token, what string) *harness.Response {
		t.Helper()
		r := do(t, s.c, "GET", host, "/api/users/me", token, nil)
		clean(r, what)
		return r
	}

	// What the steps hand on to later ones.
	var (
		name, email, password, regToken, tokenA, directRT string
		pB2                                               refreshPair
		directAccess                                      func() string
		strapiSessions                                    func() map[string]bool
	)

	// (1) Register and log in through the proxy; the spy must have seen Strapi's refresh tokens
	// (so the checks above are not vacuous).
	if !step("1 register and log in", func() {
		name = fmt.Sprintf("sm%s%d", v.name, time.Now().UnixNano()%1e9)
		email, password = name+"@example.com", "Sm-passw0rd-"+name
		r := do(t, s.c, "POST", host, "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
		expectStatus(t, r, 200, "register through the proxy")
		clean(r, "register")
		regToken, _ = r.JSON()["jwt"].(string)
		checkProxyToken(t, regToken)
		tokenA, r = login(t, s.c, host, email, password)
		clean(r, "login")
		if v.cookie {
			// The variant is real: Strapi answered the login with its cookie (seen by the spy), not the body.
			direct := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
			if !strings.Contains(strings.Join(direct.Header.Values("Set-Cookie"), "\n"), "strapi_up_refresh=") || direct.JSON()["refreshToken"] != nil {
				t.Fatalf("the cookie-variant Strapi answered a direct login without its refresh cookie: %s %q", direct, direct.Header.Values("Set-Cookie"))
			}
		}
		pB, r := loginWithRefresh(t, s.c, host, email, password)
		clean(r, "login with requestRefresh")
		if _, _, _, rts := spy.snapshot(); len(rts) < 3 {
			t.Fatalf("the spy saw %d Strapi refresh tokens after register + 2 logins, want ≥ 3", len(rts))
		}
		r = refreshOn(t, s.c, host, pB.RefreshToken)
		expectStatus(t, r, 200, "proxy refresh")
		clean(r, "proxy refresh")
		_ = json.Unmarshal(r.Body, &pB2)
		checkProxyToken(t, pB2.JWT)
		clean(me(regToken, "/api/users/me with the register token"), "register token")
	}) {
		return
	}

	// (2) Over more than 4 access-token lifetimes, one proxy token keeps working; every request
	// reaches Strapi with a valid access JWT, renewed by the proxy.
	if !step("2 one proxy token over 4 access lifetimes", func() {
		refreshBefore := spy.refreshCalls.Load()
		_, bearersBefore, _, _ := spy.snapshot()
		start := time.Now()
		uses := 0
		for time.Since(start) < 4*lifespan+time.Second {
			r := me(tokenA, fmt.Sprintf("/api/users/me %v after the first use", time.Since(start).Round(100*time.Millisecond)))
			expectStatus(t, r, 200, fmt.Sprintf("/api/users/me %v into the loop (Strapi's access JWT lives %v)", time.Since(start).Round(100*time.Millisecond), lifespan))
			if r.JSON()["username"] != name {
				t.Fatalf("/api/users/me: %s", r)
			}
			uses++
			time.Sleep(600 * time.Millisecond)
		}
		bad, bearersAfter, _, _ := spy.snapshot()
		renewals := spy.refreshCalls.Load() - refreshBefore
		if len(bad) > 0 {
			t.Fatalf("the proxy forwarded access JWTs Strapi would refuse: %v", bad)
		}
		if renewals < 4 || bearersAfter-bearersBefore < 4 {
			t.Fatalf("over %v (%d uses) the proxy renewed %d times and forwarded %d distinct access JWTs, want ≥ 4 of each", time.Since(start).Round(time.Millisecond), uses, renewals, bearersAfter-bearersBefore)
		}
		t.Logf("%d uses over %v: %d Strapi refreshes, %d access JWTs", uses, time.Since(start).Round(time.Millisecond), renewals, bearersAfter-bearersBefore)
	}) {
		return
	}

	// (3) pB2's access JWT (from the login) has long expired: concurrent requests renew it once.
	if !step("3 concurrent requests at expiry renew once", func() {
		for round, n := range []int{2, 6} {
			if round > 0 {
				time.Sleep(lifespan + 1200*time.Millisecond) // let the renewed JWT expire again
			}
			before := spy.refreshCalls.Load()
			var wg sync.WaitGroup
			res := make([]*harness.Response, n)
			errs := make([]error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					res[i], errs[i] = s.c.Do("GET", host, "/api/users/me", pB2.JWT, nil)
				}(i)
			}
			wg.Wait()
			for i := range res {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				expectStatus(t, res[i], 200, fmt.Sprintf("concurrent request %d of %d with an expired access JWT", i+1, n))
				clean(res[i], "concurrent request")
			}
			if got := spy.refreshCalls.Load() - before; got != 1 {
				t.Fatalf("%d concurrent requests at expiry caused %d Strapi refreshes, want exactly 1", n, got)
			}
		}

	}) {
		return
	}

	// (4) Strapi's refresh path is the proxy's own: a real Strapi refresh token of a direct login,
	// in the body or as Strapi's cookie, is no proxy refresh token (401) and never reaches Strapi.
	if !step("4 Strapi's refresh path answered by the proxy", func() {
		dr := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
		expectStatus(t, dr, 200, "direct login")
		directRT = strapiRefreshOf(t, dr)
		before := spy.refreshCalls.Load()
		for _, hdr := range [][]string{nil, {"Cookie", "strapi_up_refresh=" + directRT}} {
			r := do(t, s.c, "POST", host, "/api/auth/refresh", "", map[string]string{"refreshToken": directRT}, hdr...)
			expectError(t, r, 401, "UnauthorizedError", fmt.Sprintf("a Strapi refresh token at /api/auth/refresh through the proxy (%v)", hdr))
			clean(r, "Strapi's refresh endpoint through the proxy")
			r = do(t, s.c, "POST", host, "/api/auth/refresh", tokenA, map[string]string{"refreshToken": directRT}, hdr...)
			expectError(t, r, 401, "UnauthorizedError", "a Strapi refresh token at /api/auth/refresh through the proxy with a proxy token")
		}
		if spy.refreshCalls.Load() != before {
			t.Fatalf("a client's call to /api/auth/refresh reached Strapi")
		}
		// A fresh access JWT for looking at Strapi's own session list directly (the direct login's
		// own refresh token is still good: the calls above never reached Strapi).
		directAccess = func() string {
			t.Helper()
			r := do(t, s.direct, "POST", "", "/api/auth/refresh", "", map[string]string{"refreshToken": directRT})
			expectStatus(t, r, 200, "direct refresh at Strapi")
			directRT = strapiRefreshOf(t, r)
			j, _ := r.JSON()["jwt"].(string)
			return j
		}
		strapiSessions = func() map[string]bool {
			t.Helper()
			r := do(t, s.direct, "GET", "", "/api/auth/sessions", directAccess(), nil)
			expectStatus(t, r, 200, "Strapi's session list")
			var out struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatalf("Strapi's session list: %v: %s", err, r)
			}
			ids := map[string]bool{}
			for _, x := range out.Data {
				ids[x.ID] = true
			}
			return ids
		}

	}) {
		return
	}

	// (5) Logout: the Strapi session behind tokenA is in Strapi's list before, gone after, and its
	// refresh token is dead.
	if !step("5 logout ends the Strapi session", func() {
		expectStatus(t, me(tokenA, "before logout"), 200, "before logout")
		_, _, lastBearer, _ := spy.snapshot()
		_, lc, _ := harness.DecodeJWT(lastBearer)
		strapiSID := claim(lc, "sessionId")
		strapiRT := spy.refreshOf(strapiSID)
		if strapiSID == "" || strapiRT == "" {
			t.Fatalf("the spy has no Strapi session/refresh token for tokenA (session %q)", strapiSID)
		}
		if !strapiSessions()[strapiSID] {
			t.Fatalf("Strapi's own session list lacks the proxy's session %s before logout", strapiSID)
		}
		logouts := spy.logoutCalls.Load()
		r := do(t, s.c, "POST", host, "/api/auth/logout", tokenA, nil)
		expectStatus(t, r, 200, "logout")
		clean(r, "logout")
		expectError(t, me(tokenA, "after logout"), 401, "UnauthorizedError", "tokenA after logout")
		if spy.logoutCalls.Load() != logouts+1 {
			t.Fatalf("proxy logout made %d Strapi logout calls, want 1", spy.logoutCalls.Load()-logouts)
		}
		if strapiSessions()[strapiSID] {
			t.Fatalf("Strapi's own session list still has the proxy's session %s after logout", strapiSID)
		}
		r = do(t, s.direct, "POST", "", "/api/auth/refresh", "", map[string]string{"refreshToken": strapiRT})
		expectStatus(t, r, 401, "the proxy's Strapi refresh token after logout, straight at Strapi")

	}) {
		return
	}

	// (6) Logout everywhere (from the register session) ends every Strapi session of the user, the
	// direct one included; a new direct login then sees only itself.
	step("6 logout-all ends every Strapi session", func() {
		expectStatus(t, me(pB2.JWT, "before logout-all"), 200, "pB2 before logout-all")
		r := do(t, s.c, "POST", host, "/api/auth/logout-all", regToken, nil)
		expectStatus(t, r, 200, "logout-all")
		clean(r, "logout-all")
		for _, tok := range []string{regToken, pB2.JWT} {
			expectError(t, me(tok, "after logout-all"), 401, "UnauthorizedError", "a session after logout-all")
		}
		r = do(t, s.direct, "POST", "", "/api/auth/refresh", "", map[string]string{"refreshToken": directRT})
		expectStatus(t, r, 401, "the direct login's refresh token after the proxy's logout-all")
		dr := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
		expectStatus(t, dr, 200, "direct login after logout-all")
		directRT = strapiRefreshOf(t, dr)
		if ids := strapiSessions(); len(ids) != 1 {
			t.Fatalf("Strapi lists %d sessions for the user after the proxy's logout-all and one new direct login, want 1", len(ids))
		}
		if bad, _, _, _ := spy.snapshot(); len(bad) > 0 {
			t.Fatalf("the proxy forwarded access JWTs Strapi would refuse: %v", bad)
		}
		if err := s.traefik.CheckLog(); err != nil {
			t.Fatal(err)
		}
	})
}

// strapiRefreshOf returns the refresh token of a Strapi login/refresh answer (body or cookie).
func strapiRefreshOf(t *testing.T, r *harness.Response) string {
	t.Helper()
	if rt, _ := r.JSON()["refreshToken"].(string); rt != "" {
		return rt
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "strapi_up_refresh" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("no Strapi refresh token in %s %q", r, r.Header.Values("Set-Cookie"))
	return ""
}
