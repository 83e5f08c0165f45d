package e2e

// Issue 6, edge hardening, through the real Traefik and sessionstore with the fake Strapi: a login
// rate limit shared by two middleware instances, spoofed identity headers, cookie CSRF, key
// rotation, admin path spellings, server-side upstream headers, and the audit log.
// (The real-Strapi parts, lockout and SSO across hosts, are in strapi_edge_test.go.)

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// edgeStack: one Traefik, the fake Strapi, a main store and a second store used only by the two
// rate-limit routers (the login rate counter is per client address and store-wide, so the other
// routers' logins must not count against it).
type edgeStack struct {
	*fakeStack
	rlStore        *harness.Store
	oldKey, newKey string
}

var (
	edgeOnce   sync.Once
	sharedEdge *edgeStack
	edgeErr    error
)

const edgeAPIKey = "ext-api-key-5f1c0e9a7b"

func newEdgeStack(env *harness.Env) (*edgeStack, error) {
	store, err := harness.StartStore(env)
	if err != nil {
		return nil, err
	}
	rlStore, err := harness.StartStore(env)
	if err != nil {
		return nil, err
	}
	fake, err := harness.StartFakeStrapi(env, fakeUsers)
	if err != nil {
		return nil, err
	}
	oldKey, newKey, secret := harness.NewSecret(), harness.NewSecret(), harness.NewSecret()
	cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(store, secret, extra) }
	rl := func() map[string]any {
		return harness.PluginConfig(rlStore, secret, map[string]any{"loginRateLimit": "5/m"})
	}
	routers := []harness.Router{
		{Host: "edge-id.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"identityHeaders": true, "cacheTTL": "0s"})},
		{Host: "edge-noid.localhost", Upstream: fake.URL, Plugin: cfg(nil)},
		{Host: "edge-cookie.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"cookie": map[string]any{"enabled": true, "secure": false}})},
		{Host: "edge-api.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"upstreamHeaders": map[string]string{"X-Api-Key": edgeAPIKey}})},
		{Host: "edge-admin-deny.localhost", Upstream: fake.URL, Plugin: cfg(map[string]any{"adminAllowFrom": []string{"10.99.0.0/16"}})},
		{Host: "edge-admin-allow.localhost", Upstream: fake.URL, Plugin: cfg(nil)},
		// key rotation: three instances on one store; only the secrets differ.
		{Host: "edge-old.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, oldKey, nil)},
		{Host: "edge-rot.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, newKey, map[string]any{"previousSecrets": []string{oldKey}, "cacheTTL": "0s"})},
		{Host: "edge-new.localhost", Upstream: fake.URL, Plugin: harness.PluginConfig(store, newKey, map[string]any{"cacheTTL": "0s"})},
		// one login rate limit shared by two instances (two hosts) through their store.
		{Host: "edge-rl1.localhost", Upstream: fake.URL, Plugin: rl()},
		{Host: "edge-rl2.localhost", Upstream: fake.URL, Plugin: rl()},
	}
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{Routers: routers, AccessLog: true, Name: "traefik-edge"})
	if err != nil {
		return nil, err
	}
	return &edgeStack{
		fakeStack: &fakeStack{store: store, fake: fake, traefik: tr, c: harness.NewClient(tr.URL())},
		rlStore:   rlStore, oldKey: oldKey, newKey: newKey,
	}, nil
}

func getEdgeStack(t *testing.T) *edgeStack {
	t.Helper()
	edgeOnce.Do(func() {
		prestartCookieSessionStrapi() // edge tests run first: give that Strapi its head start
		start := time.Now()
		sharedEdge, edgeErr = newEdgeStack(sharedEnv)
		if edgeErr == nil {
			t.Logf("edge Traefik + 2 sessionstores + fake Strapi started in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if edgeErr != nil {
		t.Fatalf("starting the edge stack: %v", edgeErr)
	}
	checkLogAtEnd(t, sharedEdge.traefik)
	return sharedEdge
}

// keyID is the proxy's kid for a key: the first 8 bytes of sha256("accessproxy-kid:"+key), hex.
func keyID(key string) string {
	sum := sha256.Sum256([]byte("accessproxy-kid:" + key))
	return hex.EncodeToString(sum[:8])
}

// mintProxyToken signs a token in the proxy's exact shape with key, announcing kid.
func mintProxyToken(key, kid, sub, sid string, exp int64) string {
	header := fmt.Sprintf(`{"alg":"HS256","typ":"JWT","kid":%q}`, kid)
	claims := fmt.Sprintf(`{"iss":"strapi-access-proxy","sub":%q,"sid":%q,"iat":%d,"exp":%d}`, sub, sid, time.Now().Unix(), exp)
	return harness.SignHS256(header, claims, []byte(key))
}

// TestFakeEdgeSharedLoginRateLimit: loginRateLimit 5/m is per router (host): 5 logins on one
// host use up that router's allowance, and the 6th is refused there, while the other router's
// allowance is untouched (before, one counter per address served every host).
func TestFakeEdgeSharedLoginRateLimit(t *testing.T) {
	s := getEdgeStack(t)
	for i := 0; i < 5; i++ {
		// A failing login counts too: mix wrong and right passwords.
		pw := "dave-pw-4"
		if i%2 == 1 {
			pw = "wrong"
		}
		r := do(t, s.c, "POST", "edge-rl1.localhost", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": pw})
		if r.Status == 429 {
			t.Fatalf("login %d refused by the rate limit already: %s", i+1, r)
		}
	}
	r := do(t, s.c, "POST", "edge-rl2.localhost", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": "dave-pw-4"})
	expectStatus(t, r, 200, "the other router's first login")
	logins := s.fake.Logins()
	for _, h := range []string{"edge-rl1.localhost"} {
		r := do(t, s.c, "POST", h, "/api/auth/local", "", map[string]string{"identifier": "dave", "password": "dave-pw-4"})
		expectError(t, r, 429, "RateLimitError", "6th login from this address on "+h)
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q on %s, want 1..60 seconds", r.Header.Get("Retry-After"), h)
		}
		noJWTKey(t, r, "rate-limited login")
	}
	if s.fake.Logins() != logins {
		t.Fatalf("a rate-limited login reached Strapi")
	}
	// The counter lives in the store of those two routers: the main store's routers are not limited.
	login(t, s.c, "edge-noid.localhost", "dave", "dave-pw-4")
}

// TestFakeEdgeSpoofedIdentityHeaders: X-Auth-User-Id / X-Auth-Session-Id sent by the client never
// reach the upstream: anonymous requests and requests of a router without identityHeaders carry
// none; with identityHeaders the upstream sees only the real values.
func TestFakeEdgeSpoofedIdentityHeaders(t *testing.T) {
	s := getEdgeStack(t)
	spoof := []string{"X-Auth-User-Id", "1", "X-Auth-Session-Id", "forged-session"}
	for _, h := range []string{"edge-id.localhost", "edge-noid.localhost"} {
		e := echoOf(t, do(t, s.c, "GET", h, "/api/articles", "", nil, spoof...))
		if len(e.AuthHeaders) != 0 || e.Authorization != "" {
			t.Fatalf("anonymous request on %s reached upstream with X-Auth-* %v, Authorization %q", h, e.AuthHeaders, e.Authorization)
		}
	}
	token, _ := login(t, s.c, "edge-id.localhost", "dave", "dave-pw-4")
	sid := claim(checkProxyToken(t, token), "sid")
	e := echoOf(t, do(t, s.c, "GET", "edge-id.localhost", "/api/articles", token, nil, spoof...))
	want := map[string]string{"X-Auth-User-Id": "4", "X-Auth-Session-Id": sid}
	if len(e.AuthHeaders) != 2 || e.AuthHeaders["X-Auth-User-Id"] != want["X-Auth-User-Id"] || e.AuthHeaders["X-Auth-Session-Id"] != sid {
		t.Fatalf("authenticated request with spoofed headers: upstream saw X-Auth-* %v, want exactly %v", e.AuthHeaders, want)
	}
	// Spoofed values in other spellings (lower case, repeated) are gone too.
	e = echoOf(t, do(t, s.c, "GET", "edge-id.localhost", "/api/articles", token, nil, "x-auth-user-id", "1", "X-AUTH-SESSION-ID", "forged"))
	if e.AuthHeaders["X-Auth-User-Id"] != "4" || e.AuthHeaders["X-Auth-Session-Id"] != sid {
		t.Fatalf("upstream saw X-Auth-* %v, want the real ones", e.AuthHeaders)
	}
	e = echoOf(t, do(t, s.c, "GET", "edge-noid.localhost", "/api/articles", token, nil, spoof...))
	if len(e.AuthHeaders) != 0 {
		t.Fatalf("authenticated request on a router without identityHeaders: upstream saw X-Auth-* %v, want none", e.AuthHeaders)
	}
	if s.fake.IssuedTo(strings.TrimPrefix(e.Authorization, "Bearer ")) != "dave" {
		t.Fatalf("authenticated request forwarded Authorization %q", e.Authorization)
	}
}

// TestFakeEdgeCookieCSRF: a state-changing request authenticated by the cookie needs an Origin (or
// Referer) in the account's audience; the same request with a bearer token needs none; safe
// methods need none.
func TestFakeEdgeCookieCSRF(t *testing.T) {
	s := getEdgeStack(t)
	// dave (*.localhost): check origins in and out of that audience.
	token, _ := login(t, s.c, "edge-cookie.localhost", "dave", "dave-pw-4")
	ck := "ap_session=" + token
	n := s.fake.Received()
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		for _, hdr := range [][]string{
			{},
			{"Origin", "https://evil.example"},
			{"Origin", "null"},
			{"Referer", "https://evil.example/page"},
			{"Origin", "http://localhost.evil.example"},
		} {
			r := do(t, s.c, m, "edge-cookie.localhost", "/api/articles/1", "", map[string]string{"x": "y"}, append([]string{"Cookie", ck}, hdr...)...)
			expectError(t, r, 403, "ForbiddenError", fmt.Sprintf("%s with the cookie and %v", m, hdr))
		}
	}
	if s.fake.Received() != n {
		t.Fatalf("a cross-site cookie request reached the upstream")
	}
	for _, hdr := range [][]string{
		{"Origin", "http://edge-cookie.localhost"},
		{"Origin", "https://other-app.localhost"}, // another host of the audience (*.localhost)
		{"Referer", "http://edge-cookie.localhost/form"},
	} {
		r := do(t, s.c, "POST", "edge-cookie.localhost", "/api/articles", "", map[string]string{"x": "y"}, append([]string{"Cookie", ck}, hdr...)...)
		expectStatus(t, r, 200, fmt.Sprintf("POST with the cookie and %v", hdr))
		if e := echoOf(t, r); s.fake.IssuedTo(strings.TrimPrefix(e.Authorization, "Bearer ")) != "dave" || e.Method != "POST" {
			t.Fatalf("trusted cookie POST forwarded %+v", e)
		}
	}
	expectStatus(t, do(t, s.c, "GET", "edge-cookie.localhost", "/api/articles", "", nil, "Cookie", ck, "Origin", "https://evil.example"), 200, "GET with the cookie from a foreign origin (safe method)")
	expectStatus(t, do(t, s.c, "POST", "edge-cookie.localhost", "/api/articles", token, map[string]string{"x": "y"}), 200, "POST with a bearer token and no Origin")
}

// TestFakeEdgeKeyRotation: a router with secret NEW and previousSecrets [OLD] accepts a real token
// issued by a router that signs with OLD (same store); a router with only NEW refuses it; tokens
// signed with an unknown key, or announcing one key's kid and signed with another, are refused.
func TestFakeEdgeKeyRotation(t *testing.T) {
	s := getEdgeStack(t)
	oldTok, _ := login(t, s.c, "edge-old.localhost", "dave", "dave-pw-4")
	h, c, err := harness.DecodeJWT(oldTok)
	if err != nil {
		t.Fatal(err)
	}
	if h["kid"] != keyID(s.oldKey) {
		t.Fatalf("token of the OLD router has kid %v, want %s", h["kid"], keyID(s.oldKey))
	}
	if !harness.VerifyHS256(oldTok, []byte(s.oldKey)) {
		t.Fatalf("token of the OLD router is not signed with OLD")
	}
	r := do(t, s.c, "GET", "edge-rot.localhost", "/api/articles", oldTok, nil)
	expectStatus(t, r, 200, "token signed with the previous secret on the rotated router")
	if s.fake.IssuedTo(strings.TrimPrefix(echoOf(t, r).Authorization, "Bearer ")) != "dave" {
		t.Fatalf("rotated router forwarded %q", echoOf(t, r).Authorization)
	}
	expectError(t, do(t, s.c, "GET", "edge-new.localhost", "/api/articles", oldTok, nil), 401, "UnauthorizedError", "OLD token on a router that only knows NEW")

	// The rotated router signs with NEW.
	newTok, _ := login(t, s.c, "edge-rot.localhost", "dave", "dave-pw-4")
	if nh, _, _ := harness.DecodeJWT(newTok); nh["kid"] != keyID(s.newKey) || !harness.VerifyHS256(newTok, []byte(s.newKey)) {
		t.Fatalf("token of the rotated router: header %v, want kid %s and a NEW signature", nh, keyID(s.newKey))
	}
	expectStatus(t, do(t, s.c, "GET", "edge-new.localhost", "/api/articles", newTok, nil), 200, "NEW token on the NEW router")

	// Hand-minted tokens for the live session of oldTok.
	sub, sid := claim(c, "sub"), claim(c, "sid")
	exp := time.Now().Add(time.Hour).Unix()
	good := mintProxyToken(s.oldKey, keyID(s.oldKey), sub, sid, exp)
	expectStatus(t, do(t, s.c, "GET", "edge-rot.localhost", "/api/articles", good, nil), 200, "token minted with OLD and its kid")
	unknown := harness.NewSecret()
	for name, tok := range map[string]string{
		"unknown key, its own kid":     mintProxyToken(unknown, keyID(unknown), sub, sid, exp),
		"unknown key, OLD's kid":       mintProxyToken(unknown, keyID(s.oldKey), sub, sid, exp),
		"unknown key, NEW's kid":       mintProxyToken(unknown, keyID(s.newKey), sub, sid, exp),
		"NEW key announcing OLD's kid": mintProxyToken(s.newKey, keyID(s.oldKey), sub, sid, exp),
		"alg none":                     strings.Join(strings.Split(mintProxyToken(s.oldKey, keyID(s.oldKey), sub, sid, exp), ".")[:2], ".") + ".",
	} {
		n := s.fake.Received()
		expectError(t, do(t, s.c, "GET", "edge-rot.localhost", "/api/articles", tok, nil), 401, "UnauthorizedError", name)
		if s.fake.Received() != n {
			t.Fatalf("%s: the request reached the upstream", name)
		}
	}
}

// TestFakeEdgeAdminSpellings: every spelling of a blocked path is 403 from an address outside
// adminAllowFrom, and reaches the upstream on a router whose adminAllowFrom has loopback.
func TestFakeEdgeAdminSpellings(t *testing.T) {
	s := getEdgeStack(t)
	paths := []string{"/admin", "/Admin", "//admin", "/%61dmin", "/%2561dmin", "/admin/", "/ADMIN/auth/login", "/api/../admin",
		"/./admin", "/Content-Manager/x", "/%75pload", "/users-permissions/roles"}
	token, _ := login(t, s.c, "edge-admin-deny.localhost", "dave", "dave-pw-4")
	n := s.fake.Received()
	for _, p := range paths {
		expectError(t, do(t, s.c, "GET", "edge-admin-deny.localhost", p, "", nil), 403, "ForbiddenError", "GET "+p+" from 127.0.0.1 (allowed: 10.99.0.0/16)")
		expectError(t, do(t, s.c, "POST", "edge-admin-deny.localhost", p, token, map[string]string{}), 403, "ForbiddenError", "POST "+p+" with a token from 127.0.0.1")
	}
	if s.fake.Received() != n {
		t.Fatalf("a blocked path reached the upstream (%d requests)", s.fake.Received()-n)
	}
	// Segment boundaries: /administrator is not /admin.
	expectStatus(t, do(t, s.c, "GET", "edge-admin-deny.localhost", "/administrator", "", nil), 200, "/administrator")
	for _, p := range []string{"/admin", "/Admin", "//admin", "/%61dmin"} {
		r := do(t, s.c, "GET", "edge-admin-allow.localhost", p, "", nil)
		expectStatus(t, r, 200, p+" from loopback with the default adminAllowFrom")
		if e := echoOf(t, r); !strings.EqualFold(strings.TrimLeft(e.Path, "/"), "admin") {
			t.Fatalf("%s reached the upstream as %q", p, e.Path)
		}
	}
}

// TestFakeEdgeUpstreamHeaders: upstreamHeaders are added to authenticated requests only; a value
// sent by the client is replaced by the configured one.
func TestFakeEdgeUpstreamHeaders(t *testing.T) {
	s := getEdgeStack(t)
	e := echoOf(t, do(t, s.c, "GET", "edge-api.localhost", "/weather", "", nil))
	if v, ok := e.Headers["X-Api-Key"]; ok {
		t.Fatalf("anonymous request reached the external API with X-Api-Key %q", v)
	}
	token, _ := login(t, s.c, "edge-api.localhost", "dave", "dave-pw-4")
	e = echoOf(t, do(t, s.c, "GET", "edge-api.localhost", "/weather", token, nil))
	if e.Headers["X-Api-Key"] != edgeAPIKey {
		t.Fatalf("authenticated request: upstream X-Api-Key %q, want the configured key", e.Headers["X-Api-Key"])
	}
	e = echoOf(t, do(t, s.c, "GET", "edge-api.localhost", "/weather", token, nil, "X-Api-Key", "client-chosen"))
	if e.Headers["X-Api-Key"] != edgeAPIKey {
		t.Fatalf("authenticated request with its own X-Api-Key: upstream got %q, want only the configured key", e.Headers["X-Api-Key"])
	}
	// A bad token is refused, never forwarded with the key.
	n := s.fake.Received()
	expectError(t, do(t, s.c, "GET", "edge-api.localhost", "/weather", "garbage", nil), 401, "UnauthorizedError", "bad token on the API route")
	if s.fake.Received() != n {
		t.Fatalf("a refused request reached the external API")
	}
}

// auditEvents reads the plugin's audit lines from a Traefik log: JSON objects with
// "plugin":"accessproxy", either as the whole line or as the message of a Traefik log line.
func auditEvents(t *testing.T, path string) ([]map[string]any, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, `{`)
		if i < 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line[i:]), &m) != nil {
			continue
		}
		if m["plugin"] == "accessproxy" && m["event"] != nil {
			out = append(out, m)
			continue
		}
		// Traefik wraps a plugin's output: the audit line is the "message" (or "msg").
		for _, k := range []string{"message", "msg"} {
			if s, ok := m[k].(string); ok {
				var inner map[string]any
				if j := strings.Index(s, "{"); j >= 0 && json.Unmarshal([]byte(strings.TrimSpace(s[j:])), &inner) == nil &&
					inner["plugin"] == "accessproxy" && inner["event"] != nil {
					out = append(out, inner)
				}
			}
		}
	}
	return out, string(raw)
}

// TestFakeEdgeAuditLog: auth events show up in Traefik's log (at its default INFO level) as JSON
// lines with "plugin":"accessproxy"; no proxy token, refresh token, Strapi JWT or password does.
func TestFakeEdgeAuditLog(t *testing.T) {
	s := getEdgeStack(t)
	if s.traefik.Opts.LogLevel != "INFO" {
		t.Fatalf("the edge Traefik runs at log level %q, want the default INFO", s.traefik.Opts.LogLevel)
	}
	const wrongPW = "Wr0ng-audit-password"
	r := do(t, s.c, "POST", "edge-noid.localhost", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": wrongPW})
	expectStatus(t, r, 400, "wrong password")
	// alice's audience is a.localhost: refused here (denied).
	expectError(t, do(t, s.c, "POST", "edge-noid.localhost", "/api/auth/local", "", map[string]string{"identifier": "alice", "password": "alice-pw-1"}), 403, "ForbiddenError", "alice logging in on edge-noid.localhost")
	r = do(t, s.c, "POST", "edge-noid.localhost", "/api/auth/local", "", map[string]any{"identifier": "dave", "password": "dave-pw-4", "requestRefresh": true})
	expectStatus(t, r, 200, "login")
	var lb struct {
		JWT          string `json:"jwt"`
		RefreshToken string `json:"refreshToken"`
	}
	_ = json.Unmarshal(r.Body, &lb)
	sid := claim(checkProxyToken(t, lb.JWT), "sid")
	e := echoOf(t, do(t, s.c, "GET", "edge-noid.localhost", "/api/articles", lb.JWT, nil))
	strapiJWT := strings.TrimPrefix(e.Authorization, "Bearer ")
	expectError(t, do(t, s.c, "GET", "edge-noid.localhost", "/api/articles", "garbage.token.here", nil), 401, "UnauthorizedError", "garbage token")
	expectStatus(t, do(t, s.c, "POST", "edge-noid.localhost", "/api/auth/logout", lb.JWT, nil), 200, "logout")

	want := map[string]bool{"login_ok": false, "login_failed": false, "denied": false, "logout": false}
	var events []map[string]any
	var log string
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, log = auditEvents(t, s.traefik.LogPath)
		for k := range want {
			want[k] = false
		}
		for _, ev := range events {
			name, _ := ev["event"].(string)
			if _, ok := want[name]; ok && (ev["sessionId"] == sid || name == "login_failed" || name == "denied") {
				want[name] = true
			}
		}
		all := true
		for _, ok := range want {
			all = all && ok
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("Traefik's log (level INFO) has no audit line for %s (of session %s); the plugin's audit lines found: %d", k, sid, len(events))
		}
	}
	for name, secret := range map[string]string{"proxy token": lb.JWT, "refresh token": lb.RefreshToken, "Strapi JWT": strapiJWT, "password": wrongPW, "right password": "dave-pw-4"} {
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("Traefik's log contains the %s", name)
		}
	}
	for _, j := range harness.FindJWTs(log) {
		t.Errorf("Traefik's log contains a JWT: %s", j)
	}
	if t.Failed() {
		t.Logf("Traefik log tail:\n%s", tail(log, 30))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var _ = http.StatusOK
