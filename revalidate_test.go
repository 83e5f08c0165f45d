package accessproxy

import (
	"net/http"
	"testing"
	"time"
)

// ageSessions moves every session's login and last re-check back by d: the next request finds
// its revalidation due, without the test sleeping.
func ageSessions(hs *harness, d time.Duration) {
	hs.store.mu.Lock()
	for _, s := range hs.store.sessions {
		s.CreatedAt -= d.Milliseconds()
		if s.RevalidatedAt > 0 {
			s.RevalidatedAt -= d.Milliseconds()
		}
	}
	hs.store.mu.Unlock()
	for _, f := range hs.h.(*Middleware).cache.fastMaps {
		f.reset()
	}
	hs.h.(*Middleware).cache.dropAll()
}

// Strapi stays the source of truth: a user Strapi blocks, or whose audience no longer holds the
// host, loses access at the next re-check.
func TestRevalidationFollowsStrapi(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.RevalidateEvery = "1m" })
	tok := hs.login("a.localhost")
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("first use: %d", rec.Code)
	}
	if n := hs.strapi.count("/api/users/me"); n != 0 {
		t.Fatalf("re-checked %d times within revalidateEvery of login", n)
	}

	// The audience shrinks in Strapi: a.localhost is no longer the user's.
	hs.strapi.mu.Lock()
	hs.strapi.audience = "b.localhost"
	hs.strapi.mu.Unlock()
	ageSessions(hs, 2*time.Minute)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("after the audience changed in Strapi: %d %s", rec.Code, rec.Body.String())
	}
	if hs.strapi.count("/api/users/me") != 1 || hs.store.count("user") != 1 {
		t.Fatalf("users/me %d, store user updates %d", hs.strapi.count("/api/users/me"), hs.store.count("user"))
	}
	if rec := hs.do(http.MethodGet, "b.localhost", "/api/articles", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("the new audience's host: %d %s", rec.Code, rec.Body.String())
	}
	if hs.strapi.count("/api/users/me") != 1 {
		t.Fatal("re-checked again within revalidateEvery")
	}

	// Strapi blocks the user: the session and its family end.
	hs.strapi.mu.Lock()
	hs.strapi.blocked = true
	hs.strapi.mu.Unlock()
	ageSessions(hs, 2*time.Minute)
	if rec := hs.do(http.MethodGet, "b.localhost", "/api/articles", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("blocked in Strapi: %d %s", rec.Code, rec.Body.String())
	}
	if hs.store.live() != 0 {
		t.Fatal("the blocked user's session is still in the store")
	}
}

func TestRevalidationFailsClosed(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.RevalidateEvery = "1m" })
	tok := hs.login("a.localhost")
	hs.strapi.mu.Lock()
	hs.strapi.meStatus = http.StatusInternalServerError
	hs.strapi.mu.Unlock()
	ageSessions(hs, 2*time.Minute)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""); rec.Code != http.StatusBadGateway {
		t.Fatalf("Strapi failing the re-check: %d", rec.Code)
	}
	if hs.store.live() != 1 {
		t.Fatal("a failed re-check must not end the session")
	}
	hs.strapi.mu.Lock()
	hs.strapi.meStatus = http.StatusUnauthorized
	hs.strapi.mu.Unlock()
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("Strapi refusing the JWT: %d", rec.Code)
	}
}

func TestRefreshRevalidates(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.RevalidateEvery = "1h" })
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right","requestRefresh":true}`)
	refresh, _ := decodeMap(t, rec)["refreshToken"].(string)
	if refresh == "" {
		t.Fatalf("no refresh token: %s", rec.Body.String())
	}
	hs.strapi.mu.Lock()
	hs.strapi.blocked = true
	hs.strapi.mu.Unlock()
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+refresh+`"}`)
	if rec.Code != http.StatusUnauthorized || hs.strapi.count("/api/users/me") != 1 {
		t.Fatalf("refresh of a user Strapi blocked: %d %s", rec.Code, rec.Body.String())
	}
	if hs.store.live() != 0 {
		t.Fatal("the blocked user's refreshed session survived")
	}
}
