package accessproxy

import (
	"net/http"
	"testing"
	"time"
)

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
