package accessproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSessionMode answers like Strapi 5 with jwtManagement 'refresh': short access JWTs
// ({userId, sessionId, type: "access"}), rotating refresh tokens, server-side logout.
type fakeSessionMode struct {
	mu        sync.Mutex
	lifespan  time.Duration
	refreshes int
	current   string // the live refresh token
	refuse    bool
	loggedOut []string // logout bodies seen
	authSeen  []string // Authorization of protected requests
	clock     *clock   // the plugin's: Strapi's tokens age with it
}

func (f *fakeSessionMode) now() time.Time {
	if f.clock == nil {
		return time.Now()
	}
	return f.clock.now()
}

func (f *fakeSessionMode) access() string {
	now := f.now()
	payload := fmt.Sprintf(`{"userId":"7","sessionId":"s1","type":"access","iat":%d,"exp":%d}`, now.Unix(), now.Add(f.lifespan).Unix())
	return forge(`{"alg":"HS256","typ":"JWT"}`, payload, []byte("strapi-own-secret")) + fmt.Sprint(now.UnixNano()%1000)
}

func (f *fakeSessionMode) serve(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/auth/local":
		f.current = fmt.Sprintf("strapi-refresh-%d", time.Now().UnixNano())
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"jwt": f.access(), "refreshToken": f.current, "user": map[string]interface{}{"id": 7, "audience": "a.localhost"}})
	case "/api/auth/refresh":
		var in struct {
			RefreshToken string `json:"refreshToken"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		time.Sleep(50 * time.Millisecond) // a real round trip: lets concurrent requests overlap
		if f.refuse || in.RefreshToken != f.current {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"data":null,"error":{"status":401,"name":"UnauthorizedError","message":"Invalid refresh token"}}`))
			return true
		}
		f.refreshes++
		f.current = fmt.Sprintf("strapi-refresh-%d", time.Now().UnixNano())
		_ = json.NewEncoder(w).Encode(map[string]string{"jwt": f.access(), "refreshToken": f.current})
	case "/api/auth/logout":
		raw := make([]byte, 512)
		n, _ := r.Body.Read(raw)
		f.loggedOut = append(f.loggedOut, r.Header.Get("Authorization")+" "+string(raw[:n]))
		_, _ = w.Write([]byte(`{"ok":true}`))
	default:
		f.authSeen = append(f.authSeen, r.Header.Get("Authorization"))
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		up, err := readUpstreamJWT(auth[:strings.LastIndex(auth, ".")] + ".x")
		if err != nil || f.now().Unix() >= up.exp {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		_, _ = w.Write([]byte(`{"id":7}`))
	}
	return true
}

func TestSessionModeRenewsUpstreamAndNeverLeaksRefresh(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "0s" })
	hs.strapi.session = &fakeSessionMode{lifespan: 2 * time.Second, clock: mwOf(hs.h).clock}
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "strapi-refresh") {
		t.Fatalf("login: %d %s", rec.Code, rec.Body.String())
	}
	tok := decodeMap(t, rec)["jwt"].(string)
	c, _ := mustRing(t, testSecret).verify(tok, time.Now())
	if time.Until(time.Unix(c.Exp, 0)) < time.Hour {
		t.Fatal("session mode: the cap must not be the access token's short exp")
	}
	// Well past several access lifetimes, every request reaches Strapi with a valid JWT.
	for i := 0; i < 10; i++ {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body.String())
		}
		hs.advance(500 * time.Millisecond)
	}
	if n := hs.strapi.session.refreshes; n < 2 {
		t.Fatalf("only %d upstream renewals in 5 s of 2 s tokens", n)
	}
	// Strapi's refresh path is the proxy's: Strapi's own refresh credential is worth nothing there.
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/refresh", "", `{"refreshToken":"x"}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("Strapi refresh through the proxy: %d", rec.Code)
	}
	// Logout ends Strapi's session with the stored credential.
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout: %d", rec.Code)
	}
	lo := hs.strapi.session.loggedOut
	if len(lo) != 1 || !strings.Contains(lo[0], hs.strapi.session.current) || !strings.HasPrefix(lo[0], "Bearer ") {
		t.Fatalf("upstream logout: %q", lo)
	}
}

func TestSessionModeConcurrentRenewalCallsStrapiOnce(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "0s" })
	// 2 s tokens: exp is whole seconds, so a 1 s token issued late in a second would be expired
	// before the second request forwards it.
	hs.strapi.session = &fakeSessionMode{lifespan: 2 * time.Second, clock: mwOf(hs.h).clock}
	tok := hs.login("a.localhost")
	hs.advance(2100 * time.Millisecond) // the access JWT has expired
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go hs.getInto(&wg, codes, i, tok)
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("codes %v", codes)
	}
	if n := hs.strapi.session.refreshes; n != 1 {
		t.Fatalf("%d upstream refreshes for two concurrent requests, want 1", n)
	}
}

func (hs *harness) getInto(wg *sync.WaitGroup, codes []int, i int, tok string) {
	defer wg.Done()
	rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "")
	codes[i] = rec.Code
	if rec.Code != http.StatusOK {
		hs.t.Logf("request %d: %d %s", i, rec.Code, rec.Body.String())
	}
}

func TestSessionModeRefusedRenewalEndsSession(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.CacheTTL = "0s" })
	hs.strapi.session = &fakeSessionMode{lifespan: 1 * time.Second, clock: mwOf(hs.h).clock}
	tok := hs.login("a.localhost")
	hs.strapi.session.refuse = true
	hs.advance(1100 * time.Millisecond)
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after Strapi refused: %d", rec.Code)
	}
	if hs.store.live() != 0 {
		t.Fatal("the proxy session must end with Strapi's")
	}
}

func TestSessionModeCookieVariant(t *testing.T) {
	hs := newHarness(t, nil)
	hs.strapi.refreshCookie = true
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	assertNoStrapiSecrets(t, hs, rec)
	if s := hs.store.only(); s == nil || s.StrapiRefresh != "secret-refresh" {
		t.Fatalf("the refresh cookie must be kept in the session: %+v", s)
	}
}
