package accessproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Fuzz targets run briefly in `make test` (go test -fuzz); Yaegi has no testing.F, so
// scripts/yaegi-test.sh leaves this file out.

func FuzzVerify(f *testing.F) {
	r, err := newKeyRing(testSecret, []string{testSecretPrev})
	if err != nil {
		f.Fatal(err)
	}
	prevRing, err := newKeyRing(testSecretPrev, nil)
	if err != nil {
		f.Fatal(err)
	}
	// A fixed time: every fuzz worker process runs this setup again, and tokens signed a second
	// apart in two processes would be two spellings of one session.
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	good, _ := r.sign(validClaims(now))
	prevGood, _ := prevRing.sign(validClaims(now))
	f.Add(good)
	f.Add(prevGood)
	f.Add(strayBit(good)) // the same MAC, with a stray padding bit in the signature's last character
	f.Add(good[:len(good)-2])
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := r.verify(token, now)
		if err != nil {
			return
		}
		// The fuzzer cannot forge a MAC, so the only strings that may verify are the two tokens
		// signed above, spelled exactly as they were issued: one token, one spelling.
		if token != good && token != prevGood {
			t.Fatalf("accepted a second spelling of a token: %q (issued %q)", token, good)
		}
		if c.Iss != tokenIssuer || c.Sid == "" || c.Exp*1000 <= now.Add(-jwtLeeway).UnixMilli() {
			t.Fatalf("accepted bad claims %+v", c)
		}
	})
}

func FuzzSwapLoginBody(f *testing.F) {
	jwt := strapiJWT(7, time.Now().Add(time.Hour))
	f.Add(`{"jwt":"` + jwt + `","user":{"id":7,"audience":"a.localhost"}}`)
	f.Add(`{"jwt":"` + jwt + `","refreshToken":"r","user":{"audience":["a.localhost"]}}`)
	f.Add(`{"jwt":12}`)
	f.Add(`[]`)
	f.Add(``)
	f.Add(`{"user":{}}`)
	store := newFakeStore(&testing.T{})
	defer store.srv.Close()
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, store.srv.URL+store.prefix, testStoreToken
	h, err := New(context.Background(), http.NotFoundHandler(), cfg, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	m := h.(*Middleware)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/api/auth/local", nil)
		res, status, _ := m.swapLoginBody(req, []byte(body), loginOptions{wantRefresh: true}, "")
		out := res.body
		if status != 0 {
			if out != nil || res.sess != nil {
				t.Fatal("an error must not carry a body to forward")
			}
			return
		}
		// A body that goes out unchanged carried no credentials; a rewritten one carries none of Strapi's.
		if res.sess == nil && strings.Contains(string(out), `"refreshToken"`) {
			t.Fatalf("refreshToken left in %q", out)
		}
		if res.sess != nil {
			var obj map[string]interface{}
			if err := json.Unmarshal(out, &obj); err != nil {
				t.Fatalf("rewritten body is not JSON: %q", out)
			}
			if r, ok := obj["refreshToken"]; ok && !strings.HasPrefix(fmt.Sprint(r), refreshPrefix) {
				t.Fatalf("Strapi's refreshToken left in %q", out)
			}
		}
		if string(out) != body && strings.Contains(string(out), jwt) {
			t.Fatalf("Strapi JWT left in %q", out)
		}
	})
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/api/auth/local", "//Admin", "/%61dmin", "/a/../admin/", "/%2561dmin", "\\admin", "/admin%2f", "/api/articles/1", "/.well-known/x", "/admin"} {
		f.Add(s)
	}
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://x", testStoreToken
	cfg.RefreshPath, cfg.LogoutPath, cfg.LogoutAllPath, cfg.SessionsPath = "/api/r", "/api/l", "/api/la", "/api/s"
	s, err := parseConfig(cfg)
	if err != nil {
		f.Fatal(err)
	}
	m := &Middleware{s: s, routed: regexp.MustCompile(routedPattern(s.routes, s.ownPaths(), s.blockedPaths))}
	f.Fuzz(func(t *testing.T, p string) {
		// The fast path's two regexps must agree with the slow path's normalize-then-route.
		if plainPath.MatchString(p) {
			if normalizePath(p) != p {
				t.Fatalf("plainPath matched %q, which normalizes to %q", p, normalizePath(p))
			}
			if !m.routed.MatchString(p) && (m.blocked(p) || strings.HasPrefix(p, "/api/auth/") || hasPathPrefix(p, "/graphql") || s.loginPaths[p] || p == s.refreshPath || p == s.logoutPath || p == s.logoutAllPath || hasPathPrefix(p, s.sessionsPath)) {
				t.Fatalf("%q is routed but the fast path would skip it", p)
			}
		}
		n := normalizePath(p)
		if !isNormalPath(n) && n != "/" {
			// Decoding may leave characters that need another pass; the result must be stable.
			if normalizePath(n) != n && !strings.Contains(n, "%") {
				t.Fatalf("normalizePath(%q) = %q is not stable", p, n)
			}
		}
		if !strings.HasPrefix(n, "/") {
			t.Fatalf("normalizePath(%q) = %q is not absolute", p, n)
		}
		if strings.Contains(n, "//") {
			t.Fatalf("normalizePath(%q) = %q keeps a double slash", p, n)
		}
	})
}
