package accessproxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
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
	if strings.HasPrefix(lower, "/api/auth/local") || strings.HasPrefix(lower, "/v2/auth/local") || strings.HasSuffix(lower, "/callback") || strings.HasSuffix(lower, "/change-password") || strings.HasSuffix(lower, "/reset-password") {
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
	// A path of its own per harness: the plugin shares a backend (cache, feed) per store URL, and a
	// port the OS hands out again must not join a finished test's backend.
	cfg.StoreURL = store.srv.URL + store.prefix
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
	m.cache.revoked(nil) // fast-path deadlines are in system time: none survives a jump
}

func (hs *harness) do(method, host, path, token, body string) *httptest.ResponseRecorder {
	return hs.doWith(method, host, path, token, body, nil)
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
