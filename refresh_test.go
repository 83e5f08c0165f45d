package accessproxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func (hs *harness) loginWithRefresh(host string) (string, string) {
	hs.t.Helper()
	rec := hs.do(http.MethodPost, host, "/api/auth/local", "", `{"identifier":"ann","password":"right","requestRefresh":true}`)
	if rec.Code != http.StatusOK {
		hs.t.Fatalf("login: %d %s", rec.Code, rec.Body.String())
	}
	body := decodeMap(hs.t, rec)
	tok, _ := body["jwt"].(string)
	ref, _ := body["refreshToken"].(string)
	if tok == "" || !validRefreshShape(ref) {
		hs.t.Fatalf("login body: %v", body)
	}
	return tok, ref
}

func TestRefreshOnlyWhenAskedAndBodyReachesStrapiUnchanged(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if _, ok := decodeMap(t, rec)["refreshToken"]; ok {
		t.Fatal("refresh token without requestRefresh")
	}
	_, ref := hs.loginWithRefresh("a.localhost")
	if !strings.HasPrefix(ref, "apr_") {
		t.Fatalf("refresh token %q", ref)
	}
	hs = newHarness(t, func(c *Config) { c.RefreshTokens = "off" })
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right","requestRefresh":true}`)
	if _, ok := decodeMap(t, rec)["refreshToken"]; ok {
		t.Fatal("refresh token with refreshTokens off")
	}
	hs = newHarness(t, func(c *Config) { c.RefreshTokens = "always" })
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if _, ok := decodeMap(t, rec)["refreshToken"].(string); !ok {
		t.Fatal("no refresh token with refreshTokens always")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.RefreshReuseGrace = "0s" })
	tok, ref := hs.loginWithRefresh("a.localhost")
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref+`"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body.String())
	}
	pair := decodeMap(t, rec)
	tok2, _ := pair["jwt"].(string)
	ref2, _ := pair["refreshToken"].(string)
	if tok2 == "" || tok2 == tok || ref2 == ref || !validRefreshShape(ref2) {
		t.Fatalf("pair %v", pair)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok2, ""); rec.Code != http.StatusOK {
		t.Fatalf("new token: %d", rec.Code)
	}
	// The session the spent refresh token came with ends at once, even with a warm cache.
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("old token after refresh: %d", rec.Code)
	}
	// The spent token again: the whole family goes, the newest session included.
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref+`"}`)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("reuse: %d", rec.Code)
	}
	if hs.store.live() != 0 {
		t.Fatalf("%d sessions left after reuse", hs.store.live())
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref2+`"}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("refresh of a revoked family: %d", rec.Code)
	}
}

func TestParallelRefreshOneWinner(t *testing.T) {
	// Rotation alone: with revalidation on, the winner's re-check may find the family already
	// revoked by a loser's reuse (TestRefreshRevalidates covers the re-check).
	hs := newHarness(t, func(c *Config) { c.RevalidateEvery = "0s"; c.RefreshReuseGrace = "0s" })
	_, ref := hs.loginWithRefresh("a.localhost")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go hs.refreshInto(&wg, &mu, codes, ref)
	}
	wg.Wait()
	if codes[http.StatusOK] != 1 || codes[http.StatusUnauthorized] != 19 {
		t.Fatalf("codes %v, want exactly one 200", codes)
	}
}

func (hs *harness) refreshInto(wg *sync.WaitGroup, mu *sync.Mutex, codes map[int]int, ref string) {
	defer wg.Done()
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref+`"}`)
	mu.Lock()
	codes[rec.Code]++
	mu.Unlock()
}

func TestRefreshBadInput(t *testing.T) {
	hs := newHarness(t, nil)
	cases := []struct {
		method, body string
		want         int
	}{
		{http.MethodPost, ``, http.StatusBadRequest},
		{http.MethodPost, `not json`, http.StatusBadRequest},
		{http.MethodPost, `{"refreshToken":12}`, http.StatusBadRequest},
		{http.MethodPost, `{"refreshToken":"nope"}`, http.StatusUnauthorized},
		{http.MethodPost, `{"refreshToken":"apr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, http.StatusUnauthorized},
		{http.MethodGet, ``, http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		if rec := hs.do(tc.method, "a.localhost", "/api/auth/local/refresh", "", tc.body); rec.Code != tc.want {
			t.Errorf("%s %q: %d, want %d", tc.method, tc.body, rec.Code, tc.want)
		}
	}
	if hs.store.count("refresh") != 1 || len(hs.strapi.seen) != 0 {
		t.Fatalf("bad input reached the store (%d) or Strapi (%d)", hs.store.count("refresh"), len(hs.strapi.seen))
	}
}

func TestStrapiRefreshPathIsTheProxys(t *testing.T) {
	// Strapi's own refresh path is answered by the proxy: a Strapi refresh token (which a client
	// never holds anyway) is not a proxy one, and nothing reaches Strapi.
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	for _, p := range []string{"/api/auth/refresh", "/API/auth/refresh/"} {
		if rec := hs.do(http.MethodPost, "a.localhost", p, tok, `{"refreshToken":"x"}`); rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d", p, rec.Code)
		}
	}
	if n := hs.strapi.count("/api/auth/refresh"); n != 0 {
		t.Fatalf("%d refresh calls reached Strapi", n)
	}
}
