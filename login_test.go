package accessproxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRegisterCannotSetAudience(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/register", "", `{"username":"x","email":"x@x.io","password":"right","audience":"*"}`)
	if rec.Code != http.StatusBadRequest || len(hs.strapi.seen) != 0 {
		t.Fatalf("%d, reached Strapi %d times", rec.Code, len(hs.strapi.seen))
	}
	hs = newHarness(t, func(c *Config) { c.AllowAudienceOnRegister = true })
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/register", "", `{"username":"x","email":"x@x.io","password":"right","audience":"a.localhost"}`); rec.Code != http.StatusOK {
		t.Fatalf("opt-in: %d %s", rec.Code, rec.Body.String())
	}
}

func TestRegisterAudienceInAnyEncoding(t *testing.T) {
	hs := newHarness(t, nil)
	send := func(contentType, body string) int {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local/register", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec.Code
	}
	cases := []struct {
		ct, body string
		want     int
	}{
		{"application/x-www-form-urlencoded", "username=x&email=x%40x.io&password=right&audience=*", 400},
		{"application/x-www-form-urlencoded", "username=x&audience%5B0%5D=*", 400},
		{"application/json; charset=utf-8", `{"username":"x","audience":["*"]}`, 400},
		{"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"audience\"\r\n\r\n*\r\n--b--\r\n", 415},
		{"text/plain", "audience=*", 415},
	}
	for _, tc := range cases {
		if code := send(tc.ct, tc.body); code != tc.want {
			t.Errorf("%s %q: %d, want %d", tc.ct, tc.body, code, tc.want)
		}
	}
	if len(hs.strapi.seen) != 0 {
		t.Fatalf("%d refused registrations reached Strapi", len(hs.strapi.seen))
	}
	// A form login still names its identifier for the lockout.
	hs = newHarness(t, func(c *Config) { c.LockoutThreshold = 1; c.LoginRateLimit = "100/m" })
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local", strings.NewReader("identifier=ann&password=wrong"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hs.h.ServeHTTP(httptest.NewRecorder(), req)
	if code := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`).Code; code != http.StatusTooManyRequests {
		t.Fatalf("a failed form login must count toward the lockout: %d", code)
	}
}

func TestLoginSwapsTokenAndForwardsStrapiJWT(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdentityHeaders = true })
	hs.strapi.extra = map[string]interface{}{"refreshToken": "strapi-refresh-body"}
	hs.strapi.refreshCookie = true
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body.String())
	}
	assertNoStrapiSecrets(t, hs, rec)
	if rec.Header().Get("Etag") != "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", rec.Header())
	}
	// Strapi's refresh cookies are gone; where Strapi set one, the proxy's own is set instead.
	if got := rec.Header().Values("Set-Cookie"); len(got) != 2 || got[0] != "theme=dark" || !strings.HasPrefix(got[1], "ap_refresh=apr_") ||
		!strings.Contains(got[1], "; Path=/api/auth;") || !strings.Contains(got[1], "; HttpOnly") {
		t.Fatalf("Set-Cookie = %q, want the unrelated cookie and the proxy's refresh cookie", got)
	}
	if rec.Header().Get("Content-Length") != fmt.Sprint(rec.Body.Len()) {
		t.Fatalf("Content-Length %s for %d bytes", rec.Header().Get("Content-Length"), rec.Body.Len())
	}
	body := decodeMap(t, rec)
	user, _ := body["user"].(map[string]interface{})
	if user["username"] != "ann" {
		t.Fatalf("rest of the body must be kept: %v", body)
	}
	if _, ok := body["refreshToken"]; ok {
		t.Fatal("Strapi's refresh token must not reach the client")
	}
	tok := body["jwt"].(string)
	claims, err := mustRing(t, testSecret).verify(tok, time.Now())
	if err != nil || claims.Sub != "7" {
		t.Fatalf("proxy token: %+v %v", claims, err)
	}
	s := hs.store.only()
	if s == nil || s.StrapiJwt != hs.strapi.jwt || s.StrapiRefresh != "strapi-refresh-body" || s.Host != "a.localhost" {
		t.Fatalf("stored session: %+v", s)
	}

	rec = hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("protected: %d %s", rec.Code, rec.Body.String())
	}
	echo := decodeMap(t, rec)
	if echo["authorization"] != "Bearer "+hs.strapi.jwt || echo["userId"] != "7" || echo["sessionId"] != s.ID {
		t.Fatalf("upstream saw %v", echo)
	}
}

func TestWrongPasswordPassesThrough(t *testing.T) {
	hs := newHarness(t, nil)
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"wrong"}`)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Invalid identifier or password") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if hs.store.count("create") != 0 {
		t.Fatal("no session on a failed login")
	}
}

func TestLoginPathSpellingsAreSwapped(t *testing.T) {
	hs := newHarness(t, nil)
	for _, p := range []string{"/api/auth/local/", "/API/Auth/Local", "//api/auth/local", "/api/auth/%6cocal", "/api/auth/x/../local", "/api/auth/github/callback"} {
		method := http.MethodPost
		if strings.HasSuffix(p, "callback") {
			method = http.MethodGet
		}
		rec := hs.do(method, "a.localhost", p, "", `{"identifier":"ann","password":"right"}`)
		if strings.Contains(rec.Body.String(), hs.strapi.jwt) {
			t.Errorf("%s leaked the Strapi JWT", p)
		}
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body.String())
		}
	}
}

func TestGzipLoginResponseIsRewritten(t *testing.T) {
	hs := newHarness(t, nil)
	hs.strapi.gzip = true
	rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	assertNoStrapiSecrets(t, hs, rec)
	if _, ok := decodeMap(t, rec)["jwt"].(string); !ok {
		t.Fatal("no proxy token")
	}
}

func TestUnusableLoginResponsesFailClosed(t *testing.T) {
	for name, mutate := range map[string]func(*fakeStrapi){
		"jwt not a string": func(s *fakeStrapi) { s.extra = map[string]interface{}{"jwt": 12} },
		"jwt unreadable":   func(s *fakeStrapi) { s.jwt = "not-a-jwt" },
		"jwt expired":      func(s *fakeStrapi) { s.jwt = strapiJWT(7, time.Now().Add(-time.Hour)) },
		"huge":             func(s *fakeStrapi) { s.extra = map[string]interface{}{"pad": strings.Repeat("x", maxLoginBody)} },
	} {
		hs := newHarness(t, nil)
		mutate(hs.strapi)
		rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"right"}`)
		if rec.Code != http.StatusBadGateway {
			t.Errorf("%s: %d", name, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "eyJ") {
			t.Errorf("%s: a token left: %s", name, rec.Body.String())
		}
	}
}
