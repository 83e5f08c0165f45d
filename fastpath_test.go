package accessproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The fast path must give exactly the answers of the full checks.

func TestFastPathKeepsSlidingWindowWithCache(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "1s"; c.CacheTTL = "5s" })
	tok := hs.login("a.localhost")
	for i := 0; i < 8; i++ {
		hs.advance(300 * time.Millisecond)
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("use %d inside the window: %d", i, rec.Code)
		}
		assertFastEntriesWithinChecks(t, hs)
		// The touches are queued, and sent by the backend's flusher (every second of real time;
		// here, with the clock jumping, after each step).
		mwOf(hs.h).b.flushTouches(context.Background())
	}
	c, _ := mustRing(t, testSecret).verify(tok, mwOf(hs.h).clock.now())
	hs.store.mu.Lock()
	s, touched := hs.store.sessions[c.Sid], hs.store.touched
	hs.store.mu.Unlock()
	if s == nil || s.ExpiresAt < mwOf(hs.h).clock.nowMs()+700 || touched < 3 || hs.store.count("touch") != 0 {
		t.Fatalf("%d batched touches (and %d single ones) in 2.4 s of a 1 s window; the store's session: %+v", touched, hs.store.count("touch"), s)
	}
	hs.advance(1200 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the idle window, with a warm cache: %d", rec.Code)
	}
}

func TestFastPathDoesNotSkipRoutesHostsOrHeaders(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdentityHeaders = true })
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // warm

	// A login route with a valid token is still swapped.
	for _, p := range []string{"/API/auth/local", "/api/auth/change-password"} {
		rec := hs.do(http.MethodPost, "a.localhost", p, tok, `{"identifier":"ann","password":"right"}`)
		if strings.Contains(rec.Body.String(), hs.strapi.jwt) {
			t.Fatalf("%s leaked the Strapi JWT on a warm token", p)
		}
	}
	// (change-password ended the user's sessions: revokeOnPasswordChange.)
	tok = hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // warm
	// Another host is checked against the audience.
	if rec := hs.do(http.MethodGet, "b.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("other host on a warm token: %d", rec.Code)
	}
	// Admin paths stay blocked.
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/Admin", nil)
	req.RemoteAddr = "203.0.113.1:9"
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("admin path on a warm token: %d", rec.Code)
	}
	// Spoofed identity headers are replaced.
	req = httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(headerUserID, "1")
	rec = httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if echo := decodeMap(t, rec); echo["userId"] != "7" || echo["authorization"] != "Bearer "+hs.strapi.jwt {
		t.Fatalf("warm request upstream saw %v", echo)
	}
}

func TestLogoutEndsFastPathOfOtherInstances(t *testing.T) {
	hs := newHarness(t, nil) // cacheTTL 5s
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, hs.store.srv.URL+hs.store.prefix, testStoreToken
	other, err := New(context.Background(), hs.strapi, cfg, "other")
	if err != nil {
		t.Fatal(err)
	}
	tok := hs.login("a.localhost")
	get := func(h http.Handler) int {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; i < 2; i++ {
		if code := get(other); code != http.StatusOK {
			t.Fatalf("warm-up %d: %d", i, code)
		}
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d", rec.Code)
	}
	if code := get(other); code != http.StatusUnauthorized {
		t.Fatalf("another instance in the same Traefik after logout: %d", code)
	}
}

// assertFastEntriesWithinChecks: no fast-path entry outlives what the full checks would allow
// (its session's liveness on the host, its next touch, the cache's freshness), the deadlines
// compared in system time as the hot path compares them.
func assertFastEntriesWithinChecks(t *testing.T, hs *harness) {
	t.Helper()
	m := mwOf(hs.h)
	m.fastMu.RLock()
	defer m.fastMu.RUnlock()
	for _, f := range m.fastEntries {
		host := requestHost(f.host)
		limit := earlier(m.aliveUntil(f.e.sess, host), m.touchAt(f.e.sess, host))
		if !m.feedVouches(f.e, m.clock.nowMs()) {
			limit = earlier(limit, f.e.fetchedMs+m.cacheTTLms) // without the feed's word, cacheTTL
		}
		if f.until.UnixMilli() > m.clock.systemMs(limit) {
			t.Fatalf("fast entry until %d outlives the checks' %d", f.until.UnixMilli(), m.clock.systemMs(limit))
		}
	}
}

func TestIssuedTokenRememberedForItsHost(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	m := mwOf(hs.h)
	m.fastMu.RLock()
	f := m.fastEntries["Bearer "+tok]
	m.fastMu.RUnlock()
	if f == nil || f.host != "a.localhost" || f.e.claims.Sid == "" {
		t.Fatalf("the login's token is not on the fast path of its host: %+v", f)
	}
	assertFastEntriesWithinChecks(t, hs)
	// Another host still takes the full checks (and its audience rule).
	if rec := hs.do(http.MethodGet, "b.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("the issued token on another host: %d", rec.Code)
	}
}

// dueCopy puts back, due, the fast entry a login left for tok on host (advance empties the fast
// maps, since their deadlines are in system time): the state of a remembered token whose next
// sliding touch has come.
func dueCopy(t *testing.T, hs *harness, f *fastEntry) *fastEntry {
	t.Helper()
	m := mwOf(hs.h)
	due := *f
	due.until = time.Now().Add(-time.Millisecond)
	m.fastMu.Lock()
	m.fast.putLocked(f.key, &due)
	m.fastMu.Unlock()
	return &due
}

func fastEntryOf(t *testing.T, hs *harness, tok string) *fastEntry {
	t.Helper()
	m := mwOf(hs.h)
	m.fastMu.RLock()
	f := m.fastEntries["Bearer "+tok]
	m.fastMu.RUnlock()
	if f == nil {
		t.Fatal("the login left no fast entry for its token")
	}
	return f
}

// A touch due on a remembered token is queued by serveDue without the slow path (which would
// have extended the cached session in memory); the store's answer then moves the cached copy.
func TestServeDueQueuesTouchOffTheSlowPath(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "1h"; c.IdleTimeout = "10m" })
	tok := hs.login("a.localhost")
	m := mwOf(hs.h)
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // the path is known plain
	f := fastEntryOf(t, hs, tok)
	before := m.cache.get(tok)
	hs.advance(61 * time.Second) // a touch is due after a tenth of the idle window
	dueCopy(t, hs, f)
	rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	if rec.Code != http.StatusOK || decodeMap(t, rec)["authorization"] != "Bearer "+hs.strapi.jwt {
		t.Fatalf("due request: %d %s", rec.Code, rec.Body.String())
	}
	if m.cache.get(tok) != before {
		t.Fatal("the due request took the slow path (the cached session was replaced in memory)")
	}
	nf := fastEntryOf(t, hs, tok)
	if time.Until(nf.until) < 50*time.Second || nf.hardMs != f.hardMs {
		t.Fatalf("fast entry after the touch: until in %v, hard %d (was %d)", time.Until(nf.until), nf.hardMs, f.hardMs)
	}
	m.b.touches.mu.Lock()
	n := len(m.b.touches.pending)
	m.b.touches.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d touches queued, want 1", n)
	}
	m.b.flushTouches(context.Background())
	if e := m.cache.get(tok); e == nil || e.sess.HostsLastSeen["a.localhost"] < m.clock.nowMs()-1000 {
		t.Fatal("the store's answer to the touch did not reach the cached session")
	}
	// The client's address, worked out by the flusher (httptest's RemoteAddr is 192.0.2.1:1234).
	hs.store.mu.Lock()
	addr := hs.store.sessions[f.sid()].LastAddr
	hs.store.mu.Unlock()
	if addr != "192.0.2.1" {
		t.Fatalf("the touch's client address: %q", addr)
	}
}

// Past the entry's hard deadline (here the idle window) serveDue leaves the decision to the
// slow path: expired.
func TestServeDuePastHardDeadlineTakesTheSlowPath(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "1h"; c.IdleTimeout = "10m" })
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // the path is known plain
	f := fastEntryOf(t, hs, tok)
	hs.advance(11 * time.Minute)
	dueCopy(t, hs, f)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("past the idle window: %d %s", rec.Code, rec.Body.String())
	}
}

// A revocation between the fast map's read and serveDue's write is not undone by the write.
func TestServeDueDoesNotRestoreARevokedEntry(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "1h"; c.IdleTimeout = "10m" })
	tok := hs.login("a.localhost")
	m := mwOf(hs.h)
	f := fastEntryOf(t, hs, tok)
	hs.advance(61 * time.Second)
	due := dueCopy(t, hs, f)
	m.cache.removeSession(f.sid())
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	m.serveDue(httptest.NewRecorder(), req, due)
	m.fastMu.RLock()
	back := m.fastEntries["Bearer "+tok]
	m.fastMu.RUnlock()
	if back != nil {
		t.Fatal("serveDue put a revoked token back on the fast path")
	}
}
