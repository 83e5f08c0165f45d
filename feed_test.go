package accessproxy

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// The change feed (feed.go), stepped by hand: the goroutine a request starts may step it too,
// which only applies the same changes sooner.

func (hs *harness) feedStep() {
	hs.t.Helper()
	if err := mwOf(hs.h).b.feedStep(context.Background()); err != nil {
		hs.t.Fatalf("feed step: %v", err)
	}
}

// feedHarness is a harness whose feed covers what is read from now on.
func feedHarness(t *testing.T) *harness {
	hs := newHarness(t, nil) // cacheTTL 5s
	hs.feedStep()            // the head: the feed covers reads from here on
	return hs
}

func TestFeedVouchesPastCacheTTL(t *testing.T) {
	hs := feedHarness(t)
	tok := hs.login("a.localhost")
	gets := hs.store.count("get")
	for i := 0; i < 4; i++ { // 12 s: more than twice cacheTTL, the feed answering throughout
		hs.advance(3 * time.Second)
		hs.feedStep()
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("step %d: %d", i, rec.Code)
		}
	}
	if n := hs.store.count("get") - gets; n != 0 {
		t.Fatalf("%d session reads while the feed vouched for the session", n)
	}
}

func TestFeedDropsWhatChanged(t *testing.T) {
	hs := feedHarness(t)
	tok := hs.login("a.localhost")
	other := hs.login("a.localhost")
	c, _ := mustRing(t, testSecret).verify(tok, mwOf(hs.h).clock.now())
	// Another replica logs the session out: the store records it, and this replica's feed drops it
	// at once, well inside cacheTTL.
	hs.store.mu.Lock()
	delete(hs.store.sessions, c.Sid)
	hs.store.record("revoked", c.Sub, []string{c.Sid})
	hs.store.mu.Unlock()
	hs.feedStep()
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked elsewhere: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", other, ""); rec.Code != http.StatusOK {
		t.Fatalf("an untouched session: %d", rec.Code)
	}
	// A "user" change drops every session of the user, even one the event does not list.
	hs.store.mu.Lock()
	hs.store.sessions = map[string]*storeSession{}
	hs.store.record("user", c.Sub, nil)
	hs.store.mu.Unlock()
	hs.feedStep()
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", other, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the user's logout-all elsewhere: %d", rec.Code)
	}
}

func TestFeedResyncDropsTheCache(t *testing.T) {
	hs := feedHarness(t)
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	gets := hs.store.count("get")
	hs.store.mu.Lock()
	hs.store.resyncNext = true
	hs.store.mu.Unlock()
	hs.feedStep()
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK || hs.store.count("get") != gets+1 {
		t.Fatalf("after a resync the session is read again: %d, %d reads", rec.Code, hs.store.count("get")-gets)
	}
}

func TestFeedDownFallsBackToCacheTTL(t *testing.T) {
	hs := feedHarness(t)
	tok := hs.login("a.localhost")
	hs.advance(3 * time.Second)
	hs.feedStep()
	// The feed stops answering: past its slack it vouches for nothing, and cacheTTL applies.
	hs.advance(4 * time.Second) // 7 s after the read, more than cacheTTL
	gets := hs.store.count("get")
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK || hs.store.count("get") != gets+1 {
		t.Fatalf("without the feed the session is read again past cacheTTL: %d, %d reads", rec.Code, hs.store.count("get")-gets)
	}
	// And the store down still fails closed.
	hs.store.setDown(true)
	hs.advance(6 * time.Second)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("store down: %d", rec.Code)
	}
	if err := mwOf(hs.h).b.feedStep(context.Background()); err == nil {
		t.Fatal("a feed step against a store that is down succeeded")
	}
	m := mwOf(hs.h)
	if m.feed.covers(m.clock.nowMs(), m.clock.nowMs()) {
		t.Fatal("a failed step left the feed vouching")
	}
}

func TestFeedDoesNotCoverEarlierReads(t *testing.T) {
	// A session read before the feed took the store's head may have missed changes: cacheTTL.
	hs := newHarness(t, nil)
	hs.store.mu.Lock()
	hs.store.noFeed = true // keep the request's own goroutine from starting the feed first
	hs.store.mu.Unlock()
	tok := hs.login("a.localhost")
	hs.store.mu.Lock()
	hs.store.noFeed = false
	hs.store.mu.Unlock()
	hs.advance(time.Millisecond)
	hs.feedStep()
	hs.advance(6 * time.Second)
	hs.feedStep()
	gets := hs.store.count("get")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	if hs.store.count("get") != gets+1 {
		t.Fatal("an entry read before the feed began was trusted past cacheTTL")
	}
}
