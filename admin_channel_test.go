package accessproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBlockedPathsAndSpellings(t *testing.T) {
	hs := newHarness(t, nil)
	for _, p := range []string{"/admin", "/Admin", "//admin", "/%61dmin", "/admin/", "/ADMIN/login", "/x/../admin", "/%2561dmin", "/content-manager/collection-types", "/upload"} {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/", nil)
		req.URL.Path = p
		req.URL.RawPath = ""
		if strings.Contains(p, "%") {
			req = httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		}
		req.RemoteAddr = "203.0.113.9:5555"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s from outside: %d", p, rec.Code)
		}
		req.RemoteAddr = "127.0.0.1:5555"
		rec = httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s from loopback: %d", p, rec.Code)
		}
	}
	for _, p := range []string{"/administrator", "/api/admin-notes", "/uploads/a.png"} {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		req.RemoteAddr = "203.0.113.9:5555"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s is not an admin path: %d", p, rec.Code)
		}
	}
}

func TestDeepAndRootBlockedPaths(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.BlockedPaths = []string{"/api/internal/", "/Metrics"} })
	cases := map[string]int{"/api/internal": 403, "/api/internal/x": 403, "/api/INTERNAL//x": 403, "/metrics": 403, "/api/internals": 200, "/api/articles": 200, "/admin": 200}
	for p, want := range cases {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost"+p, nil)
		req.RemoteAddr = "198.51.100.7:1000"
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", p, rec.Code, want)
		}
	}
}

// The admin channel passes Strapi's admin JWTs untouched, but never the proxy's cookie.
func TestAdminChannelUntouchedButForTheCookie(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	tok := hs.login("a.localhost")
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/admin/users/me", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	req.Header.Set("Authorization", "Bearer admin-jwt-of-strapi")
	req.Header.Set("Cookie", "ap_session="+tok+"; theme=dark")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	up := hs.strapi.last()
	if rec.Code != http.StatusOK || up.Header.Get("Authorization") != "Bearer admin-jwt-of-strapi" {
		t.Fatalf("admin call: %d, upstream Authorization %q", rec.Code, up.Header.Get("Authorization"))
	}
	if c := up.Header.Get("Cookie"); strings.Contains(c, "ap_session") || !strings.Contains(c, "theme=dark") {
		t.Fatalf("upstream Cookie %q", c)
	}
	req = httptest.NewRequest(http.MethodGet, "http://a.localhost/admin/users/me", nil)
	req.RemoteAddr = "192.0.2.7:4000"
	rec = httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("admin path from outside adminAllowFrom: %d", rec.Code)
	}
}
