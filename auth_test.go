package accessproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A store read in flight when a logout is answered must not bring the session back: before the
// fix the late answer re-filled the cache and the token worked again for cacheTTL.
func TestRevocationWinsOverReadInFlight(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "1h" })
	tok := hs.login("a.localhost")
	hs.h.(*Middleware).cache.remove(tok) // the next use must read the store
	held, release := hs.store.holdReads()

	done := make(chan int, 1)
	go func() { done <- hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, "").Code }()
	select {
	case <-held: // the store answered the read; the answer is on its way
	case <-time.After(5 * time.Second):
		t.Fatal("the request never read the store")
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body.String())
	}
	release()
	if code := <-done; code != http.StatusUnauthorized {
		t.Fatalf("the request whose read predates the logout got %d, want 401", code)
	}
	if hs.h.(*Middleware).cache.get(tok) != nil {
		t.Fatal("the late read re-filled the cache")
	}
	for i := 0; i < 3; i++ {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("after logout, use %d: %d (the late read re-filled the cache)", i, rec.Code)
		}
	}
}

// The fast path is filled only by a request whose read no revocation overtook.
func TestRememberSkipsRevokedEntry(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "1h" })
	tok := hs.login("a.localhost")
	m := hs.h.(*Middleware)
	e := m.cache.get(tok)
	m.cache.removeSession(e.claims.Sid)
	req, _ := http.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	m.remember(req, tok, e)
	m.fastMu.RLock()
	n := len(m.fastEntries)
	m.fastMu.RUnlock()
	if n != 0 {
		t.Fatal("an entry read before its session's revocation was remembered on the fast path")
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
	// Without a change feed (a session gone with no event), cacheTTL bounds what memory serves.
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "200ms" })
	hs.store.mu.Lock()
	hs.store.noFeed = true
	hs.store.mu.Unlock()
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
