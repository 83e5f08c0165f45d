package accessproxy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// loginOn posts a login to h and returns the answer.
func loginOn(h http.Handler, host string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://"+host+"/api/auth/local", strings.NewReader(`{"identifier":"ann","password":"right"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestLoginRateLimitSharedAcrossReplicasPerRouter(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.LoginRateLimit = "3/m" })
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken, cfg.LoginRateLimit = testSecret, hs.store.srv.URL, testStoreToken, "3/m"
	replica, err := New(context.Background(), hs.strapi, cfg, "test") // the same router on another Traefik
	if err != nil {
		t.Fatal(err)
	}
	otherRouter, err := New(context.Background(), hs.strapi, cfg, "other-host")
	if err != nil {
		t.Fatal(err)
	}
	codes := []int{}
	for i := 0; i < 4; i++ {
		h := hs.h
		if i%2 == 1 {
			h = replica
		}
		rec := loginOn(h, "a.localhost")
		codes = append(codes, rec.Code)
		if i == 3 && (rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "RateLimitError") || !strings.Contains(rec.Body.String(), "from your address")) {
			t.Fatalf("429 without Retry-After or a message naming the rate limit: %v %s", rec.Header(), rec.Body.String())
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("codes %v", codes)
	}
	// Another router's allowance is its own: the first host's logins spent none of it.
	if rec := loginOn(otherRouter, "a.localhost"); rec.Code != http.StatusOK {
		t.Fatalf("another router's first login: %d %s", rec.Code, rec.Body.String())
	}
}

func TestLockoutAndSuccessClearsFailures(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.LockoutThreshold = 3; c.LockoutDuration = "400ms"; c.LoginRateLimit = "100/m" })
	fail := func() int {
		return hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"Ann","password":"wrong"}`).Code
	}
	right := func() int {
		return hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`).Code
	}
	for i, want := range []int{400, 400} {
		if code := fail(); code != want {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := right(); code != 200 {
		t.Fatalf("success after two failures: %d", code)
	}
	// The success cleared them: three more failures are needed to lock.
	for i := 0; i < 3; i++ {
		if code := fail(); code != 400 {
			t.Fatalf("failure %d before the lock must pass Strapi's 400 through: %d", i, code)
		}
	}
	seen := len(hs.strapi.seen)
	if code := right(); code != http.StatusTooManyRequests {
		t.Fatalf("right password on a locked account: %d", code)
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("a locked attempt reached Strapi")
	}
	hs.advance(500 * time.Millisecond)
	if code := right(); code != 200 {
		t.Fatalf("after the lock ended: %d", code)
	}
}

func TestRegisterCannotSetAudience(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/register", "", `{"username":"x","email":"x@x.io","password":"right","audience":"*"}`)
	if rec.Code != http.StatusBadRequest || len(hs.strapi.seen) != 0 {
		t.Fatalf("%d, reached Strapi %d times", rec.Code, len(hs.strapi.seen))
	}
	hs = newHarness(t, func(c *Config) { c.AllowAudienceOnRegister = true })
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/register", "", `{"username":"x","email":"x@x.io","password":"right","audience":"a.localhost"}`); rec.Code != http.StatusOK {
		t.Fatalf("opt-in: %d %s", rec.Code, rec.Body.String())
	}
}

func TestBlockedPathsAndSpellings(t *testing.T) {
	hs := newHarness(t, nil)
	for _, p := range []string{"/admin", "/Admin", "//admin", "/%61dmin", "/admin/", "/ADMIN/login", "/x/../admin", "/%2561dmin", "/content-manager/collection-types", "/upload"} {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/", nil)
		req.URL.Path = p
		req.URL.RawPath = ""
		if strings.Contains(p, "%") {
			req = httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		}
		req.RemoteAddr = "203.0.113.9:5555"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s from outside: %d", p, rec.Code)
		}
		req.RemoteAddr = "127.0.0.1:5555"
		rec = httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s from loopback: %d", p, rec.Code)
		}
	}
	for _, p := range []string{"/administrator", "/api/admin-notes", "/uploads/a.png"} {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		req.RemoteAddr = "203.0.113.9:5555"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s is not an admin path: %d", p, rec.Code)
		}
	}
}

func TestCookieModeAndCSRF(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	var cookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "ap_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.MaxAge <= 0 {
		t.Fatalf("cookie %+v", cookie)
	}
	if cookie.Value != decodeMap(t, rec)["jwt"] {
		t.Fatal("cookie must carry the proxy token")
	}
	send := func(method, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://a.localhost/api/articles", nil)
		req.AddCookie(cookie)
		req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	rec = send(http.MethodGet, "")
	if rec.Code != http.StatusOK || decodeMap(t, rec)["authorization"] != "Bearer "+hs.strapi.jwt {
		t.Fatalf("GET with cookie: %d %s", rec.Code, rec.Body.String())
	}
	last := hs.strapi.seen[len(hs.strapi.seen)-1]
	if strings.Contains(last.Header.Get("Cookie"), "ap_session") || !strings.Contains(last.Header.Get("Cookie"), "theme=dark") {
		t.Fatalf("upstream Cookie header %q", last.Header.Get("Cookie"))
	}
	if rec := send(http.MethodPost, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("POST by cookie without Origin: %d", rec.Code)
	}
	if rec := send(http.MethodPost, "https://evil.example.org"); rec.Code != http.StatusForbidden {
		t.Fatalf("POST by cookie from a foreign origin: %d", rec.Code)
	}
	if rec := send(http.MethodPost, "https://a.localhost"); rec.Code != http.StatusOK {
		t.Fatalf("POST by cookie from the audience: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/logout", nil)
	req.AddCookie(cookie)
	rec = httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout by cookie: %d %v", rec.Code, rec.Header())
	}
}

func TestKeyRotationThroughTheMiddleware(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Secret = testSecretPrev })
	oldTok := hs.login("a.localhost")
	cfg := CreateConfig()
	cfg.Secret, cfg.PreviousSecrets, cfg.StoreURL, cfg.StoreToken = testSecret, []string{testSecretPrev}, hs.store.srv.URL, testStoreToken
	rotated, err := New(context.Background(), hs.strapi, cfg, "rotated")
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, tok string) int {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get(rotated, oldTok); code != http.StatusOK {
		t.Fatalf("token of the previous secret: %d", code)
	}
	cfg.PreviousSecrets = nil
	dropped, _ := New(context.Background(), hs.strapi, cfg, "dropped")
	if code := get(dropped, oldTok); code != http.StatusUnauthorized {
		t.Fatalf("token of a dropped secret: %d", code)
	}
}

func TestIdentityAndSecretHeaders(t *testing.T) {
	hs := newHarness(t, func(c *Config) {
		c.UpstreamHeaders = map[string]string{"X-Api-Key": "server-side-key"}
	})
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set(headerUserID, "1")
	req.Header.Set(headerSessionID, "forged")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	echo := decodeMap(t, rec)
	if echo["apiKey"] != "" || echo["userId"] != "" || echo["sessionId"] != "" {
		t.Fatalf("anonymous request got %v", echo)
	}
	tok := hs.login("a.localhost")
	echo = decodeMap(t, hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""))
	if echo["apiKey"] != "server-side-key" || echo["userId"] != "" {
		t.Fatalf("authenticated request got %v (identity headers are off)", echo)
	}
}

func TestAuditLinesCarryNoToken(t *testing.T) {
	var buf bytes.Buffer
	auditOutput = &buf
	defer func() { auditOutput = discard }()
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "b.localhost", "/api/users/me", tok, "")
	hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"wrong"}`)
	hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, "")
	out := buf.String()
	for _, event := range []string{`"event":"login_ok"`, `"event":"denied"`, `"event":"login_failed"`, `"event":"logout"`} {
		if !strings.Contains(out, event) {
			t.Errorf("no %s line in:\n%s", event, out)
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, hs.strapi.jwt) || strings.Contains(out, "right") {
		t.Fatalf("audit leaks a credential:\n%s", out)
	}
}

func TestDeepAndRootBlockedPaths(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.BlockedPaths = []string{"/api/internal/", "/Metrics"} })
	cases := map[string]int{"/api/internal": 403, "/api/internal/x": 403, "/api/INTERNAL//x": 403, "/metrics": 403, "/api/internals": 200, "/api/articles": 200, "/admin": 200}
	for p, want := range cases {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		req.RemoteAddr = "198.51.100.7:1000"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", p, rec.Code, want)
		}
	}
}

func TestRegisterAudienceInAnyEncoding(t *testing.T) {
	hs := newHarness(t, nil)
	send := func(contentType, body string) int {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local/register", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec.Code
	}
	cases := []struct {
		ct, body string
		want     int
	}{
		{"application/x-www-form-urlencoded", "username=x&email=x%40x.io&password=right&audience=*", 400},
		{"application/x-www-form-urlencoded", "username=x&audience%5B0%5D=*", 400},
		{"application/json; charset=utf-8", `{"username":"x","audience":["*"]}`, 400},
		{"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"audience\"\r\n\r\n*\r\n--b--\r\n", 415},
		{"text/plain", "audience=*", 415},
	}
	for _, tc := range cases {
		if code := send(tc.ct, tc.body); code != tc.want {
			t.Errorf("%s %q: %d, want %d", tc.ct, tc.body, code, tc.want)
		}
	}
	if len(hs.strapi.seen) != 0 {
		t.Fatalf("%d refused registrations reached Strapi", len(hs.strapi.seen))
	}
	// A form login still names its identifier for the lockout.
	hs = newHarness(t, func(c *Config) { c.LockoutThreshold = 1; c.LoginRateLimit = "100/m" })
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local", strings.NewReader("identifier=ann&password=wrong"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hs.h.ServeHTTP(httptest.NewRecorder(), req)
	if code := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`).Code; code != http.StatusTooManyRequests {
		t.Fatalf("a failed form login must count toward the lockout: %d", code)
	}
}

func TestUsersAPICannotChangeAudience(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // warm: the fast path must not skip the check
	seen := len(hs.strapi.seen)
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/users/7", `{"audience":"*"}`},
		{http.MethodPut, "/API/Users/7", `{"username":"x","audience":"*.localhost"}`},
		{http.MethodPost, "/api/users", `{"username":"y","audience":"*"}`},
	} {
		if rec := hs.do(tc.method, "a.localhost", tc.path, tok, tc.body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s %s: %d", tc.method, tc.path, rec.Code)
		}
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("an audience change reached Strapi")
	}
	if rec := hs.do(http.MethodPut, "a.localhost", "/api/users/7", tok, `{"username":"ann2"}`); rec.Code != http.StatusOK {
		t.Fatalf("an ordinary profile update: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("GET on the users API: %d", rec.Code)
	}
}
