package accessproxy

import (
	"net/http"
	"strings"
	"testing"
)

func TestLogoutAndLogoutAll(t *testing.T) {
	hs := newHarness(t, nil)
	tok1, ref1 := hs.loginWithRefresh("a.localhost")
	tok2 := hs.login("a.localhost")
	rec := hs.do(http.MethodGet, "a.localhost", "/api/auth/sessions", tok1, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), hs.strapi.jwt) || strings.Count(rec.Body.String(), `"id"`) != 2 || strings.Count(rec.Body.String(), `"current":true`) != 1 {
		t.Fatalf("list: %s", rec.Body.String())
	}
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok1, "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"ok":true}` {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok1, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", rec.Code)
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/local/refresh", "", `{"refreshToken":"`+ref1+`"}`); rec.Code != http.StatusUnauthorized {
		t.Fatalf("refresh after logout: %d", rec.Code)
	}
	tok3 := hs.login("a.localhost")
	rec = hs.do(http.MethodPost, "a.localhost", "/api/auth/logout-all", tok3, "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"ok":true,"revoked":2}` {
		t.Fatalf("logout-all: %d %s", rec.Code, rec.Body.String())
	}
	for _, tok := range []string{tok2, tok3} {
		if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("after logout-all: %d", rec.Code)
		}
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", "", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("logout without a token: %d", rec.Code)
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", "garbage", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("logout with garbage: %d", rec.Code)
	}
	for _, r := range hs.strapi.seen { // legacy mode: nothing to end upstream
		if strings.Contains(r.URL.Path, "logout") || strings.Contains(r.URL.Path, "sessions") {
			t.Fatalf("proxy endpoint reached Strapi: %s", r.URL.Path)
		}
	}
}

func TestRevokeOwnSessionOnly(t *testing.T) {
	hs := newHarness(t, nil)
	tokA := hs.login("a.localhost")
	tokB := hs.login("a.localhost")
	cB, _ := mustRing(t, testSecret).verify(tokB, timeNow())
	// A session of another user: same store, other user id.
	hs.strapi.jwt = strapiJWT(8, timeNow().Add(3600e9))
	tokOther := hs.login("a.localhost")
	cOther, _ := mustRing(t, testSecret).verify(tokOther, timeNow())

	if rec := hs.do(http.MethodDelete, "a.localhost", "/api/auth/sessions/"+cOther.Sid, tokA, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("another user's session: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tokOther, ""); rec.Code != http.StatusOK {
		t.Fatalf("other user's session must survive: %d", rec.Code)
	}
	if rec := hs.do(http.MethodDelete, "a.localhost", "/api/auth/sessions/"+cB.Sid, tokA, ""); rec.Code != http.StatusOK {
		t.Fatalf("own session: %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tokB, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked session: %d", rec.Code)
	}
	if rec := hs.do(http.MethodDelete, "a.localhost", "/api/auth/sessions/"+cB.Sid, tokA, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("already revoked: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/auth/sessions", "", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("list without a token: %d", rec.Code)
	}
}
