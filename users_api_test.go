package accessproxy

import (
	"net/http"
	"testing"
)

// With Strapi's `update` permission a user may write any user; the proxy holds writes to the
// caller's own record (the fake Strapi's user is id 7).
func TestUsersAPISelfOnly(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	seen := len(hs.strapi.seen)
	for _, path := range []string{"/api/users/8", "/api/users/07", "/api/users/%38", "/API/users/8/", "/api/users/7%20"} {
		for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			if rec := hs.do(method, "a.localhost", path, tok, `{"username":"x"}`); rec.Code != http.StatusForbidden {
				t.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
			}
		}
	}
	if rec := hs.do(http.MethodPut, "a.localhost", "/api/users/8", "", `{"username":"x"}`); rec.Code != http.StatusForbidden {
		t.Errorf("anonymous PUT on a user: %d", rec.Code)
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("a write to another user reached Strapi")
	}
	if rec := hs.do(http.MethodPut, "a.localhost", "/api/users/7", tok, `{"username":"ann2"}`); rec.Code != http.StatusOK {
		t.Fatalf("own record: %d %s", rec.Code, rec.Body.String())
	}

	open := newHarness(t, func(c *Config) { c.UsersAPISelfOnly = false })
	tok = open.login("a.localhost")
	if rec := open.do(http.MethodPut, "a.localhost", "/api/users/8", tok, `{"username":"x"}`); rec.Code != http.StatusOK {
		t.Fatalf("usersApiSelfOnly false: %d", rec.Code)
	}
	if rec := open.do(http.MethodPut, "a.localhost", "/api/users/8", tok, `{"audience":"*"}`); rec.Code != http.StatusBadRequest {
		t.Fatalf("the audience stays out of reach with usersApiSelfOnly false: %d", rec.Code)
	}
}

func TestUsersAPICannotChangeAudience(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, "") // warm: the fast path must not skip the check
	seen := len(hs.strapi.seen)
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/users/7", `{"audience":"*"}`},
		{http.MethodPut, "/API/Users/7", `{"username":"x","audience":"*.localhost"}`},
		{http.MethodPost, "/api/users", `{"username":"y","audience":"*"}`},
	} {
		if rec := hs.do(tc.method, "a.localhost", tc.path, tok, tc.body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s %s: %d", tc.method, tc.path, rec.Code)
		}
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("an audience change reached Strapi")
	}
	if rec := hs.do(http.MethodPut, "a.localhost", "/api/users/7", tok, `{"username":"ann2"}`); rec.Code != http.StatusOK {
		t.Fatalf("an ordinary profile update: %d", rec.Code)
	}
	if rec := hs.do(http.MethodGet, "a.localhost", "/api/users/me", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("GET on the users API: %d", rec.Code)
	}
}
