package accessproxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testStoreToken = "st0re-T0ken-for-unit-tests-9f8e7d6c5b4a"

// strapiJWT makes a token shaped like Strapi's (the proxy reads its payload, never its signature).
func strapiJWT(id int, exp time.Time) string {
	payload := fmt.Sprintf(`{"id":%d,"iat":%d,"exp":%d}`, id, time.Now().Unix(), exp.Unix())
	return forge(`{"alg":"HS256","typ":"JWT"}`, payload, []byte("strapi-own-secret"))
}

// fakeStrapi answers like Strapi's users-permissions login and echoes what protected routes receive.
type fakeStrapi struct {
	audience      string
	jwt           string
	gzip          bool
	refreshCookie bool // answer logins with Strapi 5's httpOnly refresh cookie
	extra         map[string]interface{}
	seen          []*http.Request
	session       *fakeSessionMode // Strapi 5 session mode, when set
	blocked       bool             // users/me says the user is blocked
	meStatus      int              // users/me answers this status instead, when set
	mu            sync.Mutex
}

// last is the last request Strapi received.
func (s *fakeStrapi) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return nil
	}
	return s.seen[len(s.seen)-1]
}

// count says how many requests Strapi received for path.
func (s *fakeStrapi) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.seen {
		if r.URL.Path == path {
			n++
		}
	}
	return n
}

func (s *fakeStrapi) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen = append(s.seen, r)
	s.mu.Unlock()
	if s.session != nil && s.session.serve(w, r) {
		return
	}
	lower := strings.ToLower(r.URL.Path)
	if strings.HasSuffix(lower, "/users/me") && r.Method == http.MethodGet {
		s.mu.Lock()
		status, blocked, aud := s.meStatus, s.blocked, s.audience
		s.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"id": 7, "username": "ann", "blocked": blocked, "audience": aud, "authorization": r.Header.Get("Authorization")})
		return
	}
	if strings.HasPrefix(lower, "/api/auth/local") || strings.HasPrefix(lower, "/v2/auth/local") || strings.HasSuffix(lower, "/callback") || strings.HasSuffix(lower, "/change-password") {
		var in struct {
			Identifier string `json:"identifier"`
			Password   string `json:"password"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Password != "right" && r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"data":null,"error":{"status":400,"name":"ValidationError","message":"Invalid identifier or password"}}`))
			return
		}
		body := map[string]interface{}{"jwt": s.jwt, "user": map[string]interface{}{"id": 7, "username": "ann", "audience": s.audience}}
		for k, v := range s.extra {
			body[k] = v
		}
		raw, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("ETag", `W/"abc"`)
		if s.refreshCookie {
			w.Header().Add("Set-Cookie", "strapi_up_refresh=secret-refresh; HttpOnly")
			w.Header().Add("Set-Cookie", "strapi_up_refresh.sig=sig; HttpOnly")
		}
		w.Header().Add("Set-Cookie", "theme=dark")
		if s.gzip {
			// Some upstreams compress whatever was asked for: the proxy must cope.
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			_, _ = zw.Write(raw)
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			raw = zb.Bytes()
		}
		_, _ = w.Write(raw)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"authorization": r.Header.Get("Authorization"),
		"userId":        r.Header.Get(headerUserID),
		"sessionId":     r.Header.Get(headerSessionID),
		"apiKey":        r.Header.Get("X-Api-Key"),
		"cookie":        r.Header.Get("Cookie"),
	})
}

type harness struct {
	t      *testing.T
	store  *fakeStore
	strapi *fakeStrapi
	h      http.Handler
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	store := newFakeStore(t)
	strapi := &fakeStrapi{audience: "a.localhost, *.example.com", jwt: strapiJWT(7, time.Now().Add(30*24*time.Hour))}
	cfg := CreateConfig()
	cfg.Secret = testSecret
	cfg.StoreURL = store.srv.URL
	cfg.StoreToken = testStoreToken
	if mutate != nil {
		mutate(cfg)
	}
	h, err := New(context.Background(), strapi, cfg, "test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	store.mu.Lock()
	store.clock = mwOf(h).clock
	store.mu.Unlock()
	return &harness{t: t, store: store, strapi: strapi, h: h}
}

// mwOf is the Middleware behind a handler New returned.
func mwOf(h http.Handler) *Middleware {
	if c, ok := h.(carefulMiddleware); ok {
		return c.Middleware
	}
	return h.(*Middleware)
}

// advance moves the plugin's and the store's clock forward: the test equivalent of waiting.
func (hs *harness) advance(d time.Duration) {
	m := mwOf(hs.h)
	atomic.AddInt64(&m.clock.offsetMs, d.Milliseconds())
	m.cache.revoked() // fast-path deadlines are in system time: none survives a jump
}

func (hs *harness) do(method, host, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

func decodeMap(t *testing.T, rec *httptest.ResponseRecorder) map[string]interface{} {
	t.Helper()
	var m map[string]interface{}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

// login logs in on host and returns the proxy token.
func (hs *harness) login(host string) string {
	hs.t.Helper()
	rec := hs.do(http.MethodPost, host, "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK {
		hs.t.Fatalf("login on %s: %d %s", host, rec.Code, rec.Body.String())
	}
	tok, _ := decodeMap(hs.t, rec)["jwt"].(string)
	if tok == "" {
		hs.t.Fatalf("login without jwt: %s", rec.Body.String())
	}
	return tok
}

func assertNoStrapiSecrets(t *testing.T, hs *harness, rec *httptest.ResponseRecorder) {
	t.Helper()
	all := rec.Body.String()
	for k, v := range rec.Header() {
		all += k + ": " + strings.Join(v, ",") + "\n"
	}
	for _, secret := range []string{hs.strapi.jwt, "secret-refresh", "strapi_up_refresh", "strapi-refresh-body"} {
		if strings.Contains(all, secret) {
			t.Fatalf("client response leaks %q:\n%s", secret, all)
		}
	}
}

func TestLoginSwapsTokenAndForwardsStrapiJWT(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdentityHeaders = true })
	hs.strapi.extra = map[string]interface{}{"refreshToken": "strapi-refresh-body"}
	hs.strapi.refreshCookie = true
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body.String())
	}
	assertNoStrapiSecrets(t, hs, rec)
	if rec.Header().Get("Etag") != "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", rec.Header())
	}
	if got := rec.Header().Values("Set-Cookie"); len(got) != 1 || got[0] != "theme=dark" {
		t.Fatalf("Set-Cookie = %q, want only the unrelated cookie", got)
	}
	if rec.Header().Get("Content-Length") != fmt.Sprint(rec.Body.Len()) {
		t.Fatalf("Content-Length %s for %d bytes", rec.Header().Get("Content-Length"), rec.Body.Len())
	}
	body := decodeMap(t, rec)
	user, _ := body["user"].(map[string]interface{})
	if user["username"] != "ann" {
		t.Fatalf("rest of the body must be kept: %v", body)
	}
	if _, ok := body["refreshToken"]; ok {
		t.Fatal("Strapi's refresh token must not reach the client")
	}
	tok := body["jwt"].(string)
	claims, err := mustRing(t, testSecret).verify(tok, time.Now())
	if err != nil || claims.Sub != "7" {
		t.Fatalf("proxy token: %+v %v", claims, err)
	}
	s := hs.store.only()
	if s == nil || s.StrapiJwt != hs.strapi.jwt || s.StrapiRefresh != "strapi-refresh-body" || s.Host != "a.localhost" {
		t.Fatalf("stored session: %+v", s)
	}

	rec = hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("protected: %d %s", rec.Code, rec.Body.String())
	}
	echo := decodeMap(t, rec)
	if echo["authorization"] != "Bearer "+hs.strapi.jwt || echo["userId"] != "7" || echo["sessionId"] != s.ID {
		t.Fatalf("upstream saw %v", echo)
	}
}

func TestRawStrapiJWTAndForeignBearerRefused(t *testing.T) {
	hs := newHarness(t, nil)
	for _, auth := range []string{"Bearer " + hs.strapi.jwt, "bearer " + hs.strapi.jwt, "Bearer garbage", "Basic YTpi", "Bearer "} {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%q: %d", auth, rec.Code)
		}
		var e errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Name != "UnauthorizedError" || e.Error.Status != 401 {
			t.Errorf("%q: error body %s", auth, rec.Body.String())
		}
	}
	if len(hs.strapi.seen) != 0 {
		t.Fatalf("refused requests reached upstream: %d", len(hs.strapi.seen))
	}
}

func TestNoTokenPassesThroughOrRequiresAuth(t *testing.T) {
	hs := newHarness(t, nil)
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set(headerUserID, "1")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || decodeMap(t, rec)["userId"] != "" {
		t.Fatalf("public request: %d %s", rec.Code, rec.Body.String())
	}
	hs = newHarness(t, func(c *Config) { c.RequireAuth = true })
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", "", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("requireAuth: %d", rec.Code)
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`); rec.Code != http.StatusOK {
		t.Fatalf("login must stay open with requireAuth: %d", rec.Code)
	}
}

func TestWrongPasswordPassesThrough(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"wrong"}`)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Invalid identifier or password") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if hs.store.count("create") != 0 {
		t.Fatal("no session on a failed login")
	}
}

func TestLoginPathSpellingsAreSwapped(t *testing.T) {
	hs := newHarness(t, nil)
	for _, p := range []string{"/api/auth/local/", "/API/Auth/Local", "//api/auth/local", "/api/auth/%6cocal", "/api/auth/x/../local", "/api/auth/github/callback"} {
		method := http.MethodPost
		if strings.HasSuffix(p, "callback") {
			method = http.MethodGet
		}
		rec := hs.do(method, "a.localhost", p, "", `{"identifier":"ann","password":"right"}`)
		if strings.Contains(rec.Body.String(), hs.strapi.jwt) {
			t.Errorf("%s leaked the Strapi JWT", p)
		}
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body.String())
		}
	}
}

func TestGzipLoginResponseIsRewritten(t *testing.T) {
	hs := newHarness(t, nil)
	hs.strapi.gzip = true
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	assertNoStrapiSecrets(t, hs, rec)
	if _, ok := decodeMap(t, rec)["jwt"].(string); !ok {
		t.Fatal("no proxy token")
	}
}

func TestUnusableLoginResponsesFailClosed(t *testing.T) {
	for name, mutate := range map[string]func(*fakeStrapi){
		"jwt not a string": func(s *fakeStrapi) { s.extra = map[string]interface{}{"jwt": 12} },
		"jwt unreadable":   func(s *fakeStrapi) { s.jwt = "not-a-jwt" },
		"jwt expired":      func(s *fakeStrapi) { s.jwt = strapiJWT(7, time.Now().Add(-time.Hour)) },
		"huge":             func(s *fakeStrapi) { s.extra = map[string]interface{}{"pad": strings.Repeat("x", maxLoginBody)} },
	} {
		hs := newHarness(t, nil)
		mutate(hs.strapi)
		rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
		if rec.Code != http.StatusBadGateway {
			t.Errorf("%s: %d", name, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "eyJ") {
			t.Errorf("%s: a token left: %s", name, rec.Body.String())
		}
	}
}

func TestAudienceAtLoginAndOnRequest(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "b.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "eyJ") {
		t.Fatalf("login on a host outside the audience: %d %s", rec.Code, rec.Body.String())
	}
	if hs.store.count("create") != 0 {
		t.Fatal("no session for a refused login")
	}
	tok := hs.login("a.localhost")
	if rec := hs.do(http.MethodGet, "b.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("request on another host: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "app.example.com:8443", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("wildcard host: %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(http.MethodGet, "a.b.example.com", "/api/users/me", tok, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("wildcard covers one label only: %d", rec.Code)
	}
	hs.strapi.audience = ""
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`); rec.Code != http.StatusForbidden {
		t.Fatalf("empty audience must be denied: %d", rec.Code)
	}
	hs2 := newHarness(t, func(c *Config) { c.AudienceCheck = false })
	hs2.strapi.audience = ""
	hs2.login("anything.localhost")
}

func TestSlidingExpiryAndTouchThrottle(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "1s"; c.CacheTTL = "0s" })
	tok := hs.login("a.localhost")
	for i := 0; i < 5; i++ {
		hs.advance(300 * time.Millisecond)
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("use %d within the window: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	hs.advance(1200 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the idle window: %d", rec.Code)
	}

	// A burst inside a tenth of the window costs no store write.
	hs = newHarness(t, func(c *Config) { c.IdleTimeout = "1h" })
	tok = hs.login("a.localhost")
	for i := 0; i < 50; i++ {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatal(rec.Code)
		}
	}
	if n := hs.store.count("touch") + hs.store.count("get"); n != 0 {
		t.Fatalf("a warm burst called the store %d times", n)
	}
}

func TestNonSlidingExpiry(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "1500ms"; c.Sliding = false; c.CacheTTL = "0s" })
	tok := hs.login("a.localhost")
	for i := 0; i < 3; i++ {
		hs.advance(300 * time.Millisecond)
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("use %d: %d", i, rec.Code)
		}
	}
	hs.advance(900 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("use kept a non-sliding session alive: %d", rec.Code)
	}
}

func TestMaxLifetimeCapsTokenAndNeverPassesStrapiExp(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.MaxLifetime = "1h" })
	hs.strapi.jwt = strapiJWT(7, time.Now().Add(10*time.Minute))
	tok := hs.login("a.localhost")
	c, _ := mustRing(t, testSecret).verify(tok, time.Now())
	if d := time.Until(time.Unix(c.Exp, 0)); d > 10*time.Minute || d < 9*time.Minute {
		t.Fatalf("exp in %v, want the Strapi JWT's 10m", d)
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "0s" })
	tok := hs.login("a.localhost")
	hs.store.setDown(true)
	seen := len(hs.strapi.seen)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("request with the store down: %d", rec.Code)
	}
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), hs.strapi.jwt) {
		t.Fatalf("login with the store down: %d %s", rec.Code, rec.Body.String())
	}
	if len(hs.strapi.seen) != seen { // without rate-limit counters not even the login attempt goes through
		t.Fatalf("a request was forwarded with the store down")
	}
}

func TestStoreSlowFailsClosed(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
	}))
	defer slow.Close()
	hs := newHarness(t, func(c *Config) { c.StoreTimeout = "100ms" })
	tok := hs.login("a.localhost")
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken, cfg.StoreTimeout = testSecret, slow.URL, testStoreToken, "100ms"
	h, err := New(context.Background(), hs.strapi, cfg, "slow")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || time.Since(start) > 400*time.Millisecond {
		t.Fatalf("%d after %v", rec.Code, time.Since(start))
	}
}

func TestRevokedSessionRefusedAfterCacheTTL(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "200ms" })
	tok := hs.login("a.localhost")
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	hs.store.mu.Lock()
	hs.store.sessions = map[string]*storeSession{}
	hs.store.mu.Unlock()
	hs.advance(250 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked session: %d", rec.Code)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	base := func() *Config {
		c := CreateConfig()
		c.Secret, c.StoreURL, c.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		return c
	}
	cases := map[string]func(*Config){
		"short secret":       func(c *Config) { c.Secret = "short" },
		"placeholder secret": func(c *Config) { c.Secret = "changeme-changeme-changeme-changeme-123" },
		"repetitive secret":  func(c *Config) { c.Secret = strings.Repeat("ab", 20) },
		"short previous":     func(c *Config) { c.PreviousSecrets = []string{"x"} },
		"no store":           func(c *Config) { c.StoreURL = "" },
		"bad store url":      func(c *Config) { c.StoreURL = "ftp://x" },
		"short store token":  func(c *Config) { c.StoreToken = "t" },
		"bad duration":       func(c *Config) { c.IdleTimeout = "30" },
		"zero idle":          func(c *Config) { c.IdleTimeout = "0s" },
		"bad refresh mode":   func(c *Config) { c.RefreshTokens = "sometimes" },
		"bad cidr":           func(c *Config) { c.AdminAllowFrom = []string{"10.0.0.0"} },
		"bad header":         func(c *Config) { c.UpstreamHeaders = map[string]string{"X-Key": "a\r\nb"} },
	}
	for name, mutate := range cases {
		c := base()
		mutate(c)
		if _, err := New(context.Background(), http.NotFoundHandler(), c, "x"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), base(), "x"); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestCatalogTestDataBuilds(t *testing.T) {
	raw, err := io.ReadAll(mustOpen(t, ".traefik.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := CreateConfig()
	inTestData := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "testData:") {
			inTestData = true
			continue
		}
		if !inTestData || !strings.HasPrefix(line, "  ") {
			continue
		}
		kv := strings.SplitN(strings.TrimSpace(line), ":", 2)
		v := strings.Trim(strings.TrimSpace(kv[1]), `"`)
		switch kv[0] {
		case "secret":
			cfg.Secret = v
		case "storeURL":
			cfg.StoreURL = v
		case "storeToken":
			cfg.StoreToken = v
		case "idleTimeout":
			cfg.IdleTimeout = v
		case "maxLifetime":
			cfg.MaxLifetime = v
		default:
			t.Fatalf("testData key %q not handled by this test", kv[0])
		}
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), cfg, "catalog"); err != nil {
		t.Fatalf("New from testData: %v", err)
	}
}
