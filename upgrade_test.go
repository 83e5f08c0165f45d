package accessproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Live connections end with their session (upgrade.go). The watcher's decision (step) is driven
// with the plugin's clock; one test runs the real goroutine around a blocking upstream.

func pollingHarness(t *testing.T) *harness {
	// No feed: whether it vouches would depend on its goroutine; cacheTTL (5s) applies.
	return newHarness(t, func(c *Config) { c.ChangeFeed = false })
}

// watch authenticates tok on a.localhost and returns a watcher for it, as serveUpgraded makes.
func (hs *harness) watch(tok string) *upgradeWatch {
	hs.t.Helper()
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
		hs.t.Fatalf("token before the upgrade: %d %s", rec.Code, rec.Body.String())
	}
	m := mwOf(hs.h)
	e := m.cache.get(tok)
	if e == nil {
		hs.t.Fatal("an authenticated token is not cached")
	}
	return m.newUpgradeWatch(tok, "a.localhost", e)
}

// open is one decision of the watcher now: false ends the connection.
func (w *upgradeWatch) open() bool {
	return w.step(context.Background(), w.m.clock.nowMs())
}

func (hs *harness) sidOf(tok string) string {
	hs.t.Helper()
	c, err := mustRing(hs.t, testSecret).verify(tok, mwOf(hs.h).clock.now())
	if err != nil {
		hs.t.Fatal(err)
	}
	return c.Sid
}

func TestUpgradeWatchEndsWithLogout(t *testing.T) {
	hs := pollingHarness(t)
	a, b := hs.login("a.localhost"), hs.login("a.localhost")
	wa, wb := hs.watch(a), hs.watch(b)
	if !wa.open() || !wb.open() {
		t.Fatal("live sessions end their connections")
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", a, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body.String())
	}
	gets := hs.store.count("get")
	hs.store.setDown(true) // a revocation seen here needs no store
	if wa.open() {
		t.Fatal("the logged-out session's connection stays open")
	}
	if !wb.open() {
		t.Fatal("another session's connection ended with the logout")
	}
	if n := hs.store.count("get") - gets; n != 0 {
		t.Fatalf("%d store reads to end a revoked session's connection", n)
	}
	hs.store.setDown(false)
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout-all", b, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout-all: %d %s", rec.Code, rec.Body.String())
	}
	if wb.open() {
		t.Fatal("the connection outlives logout-all")
	}
}

func TestUpgradeWatchEndsWithRevocationElsewhere(t *testing.T) {
	hs := feedHarness(t)
	a, b := hs.login("a.localhost"), hs.login("a.localhost")
	wa, wb := hs.watch(a), hs.watch(b)
	// Another replica logs a out: the store records it and this replica's feed applies it.
	hs.store.mu.Lock()
	delete(hs.store.sessions, hs.sidOf(a))
	hs.store.record("revoked", "7", []string{hs.sidOf(a)})
	hs.store.mu.Unlock()
	hs.feedStep()
	if wa.open() {
		t.Fatal("a session revoked on another replica keeps its connection")
	}
	if !wb.open() {
		t.Fatal("another session's connection ended")
	}
}

func TestUpgradeWatchIdleExpiry(t *testing.T) {
	hs := pollingHarness(t) // idleTimeout 30m
	a, c := hs.login("a.localhost"), hs.login("a.localhost")
	wa, wc := hs.watch(a), hs.watch(c)
	hs.advance(29 * time.Minute) // an open socket sends no requests: nothing touches the session
	gets := hs.store.count("get")
	if !wa.open() || !wc.open() {
		t.Fatal("ended before the idle window")
	}
	if n := hs.store.count("get") - gets; n != 2 {
		t.Fatalf("stale copies past cacheTTL: %d store reads, want one per watcher", n)
	}
	// Another replica used c on this host meanwhile.
	now := mwOf(hs.h).clock.nowMs()
	hs.store.mu.Lock()
	s := hs.store.sessions[hs.sidOf(c)]
	s.HostsLastSeen = map[string]int64{"a.localhost": now}
	s.LastSeenAt, s.ExpiresAt = now, now+30*60*1000
	hs.store.mu.Unlock()
	hs.advance(2 * time.Minute)
	if wa.open() {
		t.Fatal("an idled-out session keeps its connection")
	}
	if !wc.open() {
		t.Fatal("a session extended elsewhere lost its connection")
	}
}

func TestUpgradeWatchTokenExpiry(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.ChangeFeed = false; c.AccessTokenTTL = "1m" })
	w := hs.watch(hs.login("a.localhost"))
	hs.advance(30 * time.Second)
	if !w.open() {
		t.Fatal("ended before the token's expiry")
	}
	hs.advance(31 * time.Second)
	if w.open() {
		t.Fatal("an expired token keeps its connection")
	}
}

func TestUpgradeWatchStoreDownFailsClosed(t *testing.T) {
	hs := pollingHarness(t)
	w := hs.watch(hs.login("a.localhost"))
	hs.store.setDown(true)
	hs.advance(time.Second)
	if !w.open() {
		t.Fatal("a copy within cacheTTL needs no store, as for requests")
	}
	hs.advance(5 * time.Second)
	if w.open() {
		t.Fatal("the store unreachable past cacheTTL must end the connection")
	}
}

func TestUpgradeWatchEvictionAsksTheStore(t *testing.T) {
	hs := pollingHarness(t)
	tok := hs.login("a.localhost")
	w := hs.watch(tok)
	m := mwOf(hs.h)
	gets := hs.store.count("get")
	m.cache.remove(tok) // evicted for space: no tombstone
	if !w.open() {
		t.Fatal("an entry evicted from the cache ended its connection")
	}
	if n := hs.store.count("get") - gets; n != 1 || m.cache.get(tok) == nil {
		t.Fatalf("eviction: %d store reads (want 1), cached again: %v", n, m.cache.get(tok) != nil)
	}
	m.cache.remove(tok)
	if !w.open() || hs.store.count("get")-gets != 1 {
		t.Fatalf("store reads within cacheTTL: %d, want 1 (bounded polling)", hs.store.count("get")-gets)
	}
	// A dropAll names no session: the store decides.
	m.cache.dropAll()
	hs.advance(5 * time.Second)
	if !w.open() {
		t.Fatal("dropAll ended a live session's connection")
	}
	// Gone from the store without this replica hearing of it: the next read ends it.
	hs.store.mu.Lock()
	delete(hs.store.sessions, hs.sidOf(tok))
	hs.store.mu.Unlock()
	m.cache.remove(tok)
	hs.advance(5 * time.Second)
	if w.open() {
		t.Fatal("a session the store no longer has keeps its connection")
	}
}

// upgradeUpstream holds an upgraded request until its context ends, as Traefik's proxy holds the
// connection.
type upgradeUpstream struct {
	next   http.Handler
	opened chan string // the Authorization each upgrade arrived with
}

func (u *upgradeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		u.next.ServeHTTP(w, r)
		return
	}
	u.opened <- r.Header.Get("Authorization")
	<-r.Context().Done()
}

func upgradeRequest(host, tok string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://"+host+"/ws", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	return req
}

// waitFor is a guard against a hang, not a latency bound.
func waitFor(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never happened", what)
	}
	return ""
}

func TestUpgradeEndsTheConnectionContext(t *testing.T) {
	saved := upgradeCheckEvery
	upgradeCheckEvery = 5 * time.Millisecond
	defer func() { upgradeCheckEvery = saved }()
	hs := pollingHarness(t)
	up := &upgradeUpstream{next: hs.strapi, opened: make(chan string, 4)}
	mwOf(hs.h).next = up
	a, b := hs.login("a.localhost"), hs.login("a.localhost")

	ended := make(chan string, 2)
	clientB, closeB := context.WithCancel(context.Background())
	defer closeB()
	go func() {
		hs.h.ServeHTTP(httptest.NewRecorder(), upgradeRequest("a.localhost", a))
		ended <- "a"
	}()
	if auth := waitFor(t, up.opened, "a's upgrade"); auth != "Bearer "+hs.strapi.jwt {
		t.Fatalf("upgrade forwarded with %q, want Strapi's JWT", auth)
	}
	go func() {
		hs.h.ServeHTTP(httptest.NewRecorder(), upgradeRequest("a.localhost", b).WithContext(clientB))
		ended <- "b"
	}()
	waitFor(t, up.opened, "b's upgrade")

	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", a, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d", rec.Code)
	}
	if who := waitFor(t, ended, "the end of a's connection"); who != "a" {
		t.Fatalf("%s's connection ended at a's logout", who)
	}
	// A revoked token is refused before any upgrade.
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, upgradeRequest("a.localhost", a))
	if rec.Code != http.StatusUnauthorized || len(up.opened) != 0 {
		t.Fatalf("upgrade with a revoked token: %d, upgrades passed %d", rec.Code, len(up.opened))
	}
	closeB() // b's client goes away: its request, and its watcher, end
	if who := waitFor(t, ended, "the end of b's connection"); who != "b" {
		t.Fatalf("unexpected end %s", who)
	}
}
