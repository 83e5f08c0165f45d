package accessproxy

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func queuedTouches(hs *harness) int {
	t := mwOf(hs.h).b.touches
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func TestTouchesBatched(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "10m" }) // touched every minute of use
	var toks []string
	for i := 0; i < 5; i++ {
		toks = append(toks, hs.login("a.localhost"))
	}
	hs.advance(61 * time.Second)
	hs.feedStep()
	for round := 0; round < 3; round++ { // repeated use before a flush queues one touch each
		for _, tok := range toks {
			if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
				t.Fatalf("use: %d", rec.Code)
			}
		}
	}
	if n := queuedTouches(hs); n != 5 || hs.store.count("touch") != 0 {
		t.Fatalf("%d queued touches, %d single store touches; want 5 and 0", n, hs.store.count("touch"))
	}
	calls := hs.store.count("touches")
	if sent := mwOf(hs.h).b.flushTouches(context.Background()); sent != 5 || hs.store.count("touches") != calls+1 {
		t.Fatalf("a flush sent %d touches in %d calls", sent, hs.store.count("touches")-calls)
	}
	if hs.store.touched < 5 {
		t.Fatalf("the store applied %d touches", hs.store.touched)
	}
	// A session the store no longer has ends here when the touch's answer says so.
	c, _ := mustRing(t, testSecret).verify(toks[0], mwOf(hs.h).clock.now())
	hs.store.mu.Lock()
	delete(hs.store.sessions, c.Sid)
	hs.store.mu.Unlock()
	hs.advance(61 * time.Second)
	hs.feedStep()
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", toks[0], "") // queues its touch
	mwOf(hs.h).b.flushTouches(context.Background())
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", toks[0], ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a session the touch found missing: %d", rec.Code)
	}
}

func TestTouchesKeptWhileStoreDown(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "10m" })
	tok := hs.login("a.localhost")
	hs.advance(61 * time.Second)
	hs.feedStep()
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	hs.store.setDown(true)
	mwOf(hs.h).b.flushTouches(context.Background())
	if n := queuedTouches(hs); n != 1 {
		t.Fatalf("a failed flush kept %d touches, want 1", n)
	}
	hs.store.setDown(false)
	mwOf(hs.h).b.flushTouches(context.Background())
	if n := queuedTouches(hs); n != 0 || hs.store.touched != 1 {
		t.Fatalf("after the store is back: %d queued, %d applied", n, hs.store.touched)
	}
}

func TestApplyTouchIsTheStoresRule(t *testing.T) {
	s := &storeSession{ExpiresAt: 1000, AbsoluteExpiresAt: 5000, HostsLastSeen: map[string]int64{"a": 1}}
	got := applyTouch(s, "b", 3000, true, 2500)
	if got.ExpiresAt != 5000 || got.HostsLastSeen["b"] != 2500 || got.HostsLastSeen["a"] != 1 || got.LastSeenAt != 2500 {
		t.Fatalf("sliding touch: %+v", got)
	}
	if _, changed := s.HostsLastSeen["b"]; changed || s.ExpiresAt != 1000 {
		t.Fatal("applyTouch changed the cached copy in place")
	}
	if got := applyTouch(s, "a", 3000, false, 2500); got.ExpiresAt != 1000 {
		t.Fatalf("a fixed window is not extended: %d", got.ExpiresAt)
	}
	// Never shortened: a touch older than the expiry another replica set leaves it.
	if got := applyTouch(&storeSession{ExpiresAt: 9000, AbsoluteExpiresAt: 99999}, "a", 1000, true, 2000); got.ExpiresAt != 9000 {
		t.Fatalf("shortened to %d", got.ExpiresAt)
	}
}

func TestTouchesFallBackToSingleCalls(t *testing.T) {
	// A store without POST /v1/touches (404): the batch goes one session per call.
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = "10m" })
	tok := hs.login("a.localhost")
	hs.advance(61 * time.Second)
	hs.feedStep()
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	hs.store.mu.Lock()
	hs.store.noTouches = true
	hs.store.mu.Unlock()
	mwOf(hs.h).b.flushTouches(context.Background())
	if n := hs.store.count("touch"); n != 1 || queuedTouches(hs) != 0 {
		t.Fatalf("%d single touches, %d still queued", n, queuedTouches(hs))
	}
}
