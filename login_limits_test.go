package accessproxy

import (
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
	cfg.Secret, cfg.StoreURL, cfg.StoreToken, cfg.LoginRateLimit = testSecret, hs.store.srv.URL+hs.store.prefix, testStoreToken, "3/m"
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
