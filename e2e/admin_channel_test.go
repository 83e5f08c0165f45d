package e2e

// The admin channel of e224295 with the real Strapi admin (created at bootstrap from
// E2E_ADMIN_EMAIL/E2E_ADMIN_PASSWORD, super admin): on blockedPaths, requests from adminAllowFrom
// networks pass untouched, so the Strapi admin panel's own JWTs work through the middleware; from
// anywhere else they are 403. On the parity stack (strapi_parity_test.go).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// TestStrapiAdminChannel guards the admin channel: from 127.0.0.1 (in the default adminAllowFrom)
// POST /admin/login through Traefik gives an admin JWT, and that JWT works on /admin/users/me and
// on the content-manager API, reaching Strapi exactly as sent. Before e224295 every admin API call
// carrying it got 401 (it is no proxy token). On a router whose adminAllowFrom excludes
// 127.0.0.1 the same calls are 403 and reach nothing.
func TestStrapiAdminChannel(t *testing.T) {
	s := getParityStack(t)
	const host = "p.localhost"
	tok, lr, err := harness.AdminLogin(s.c, host, parityAdminEmail, parityAdminPassword)
	if err != nil {
		t.Fatalf("admin login through Traefik from 127.0.0.1: %v", err)
	}
	s.noStrapiJWT(t, lr, "admin login") // an admin JWT, not a users-permissions one
	if _, _, err := harness.DecodeJWT(tok); err != nil {
		t.Fatalf("admin token %q: %v", tok, err)
	}

	m := mark("admin")
	me := send(t, s.c, newReq(t, s.c, "GET", host, "/admin/users/me", nil, http.Header{"Authorization": {"Bearer " + tok}, parityMarkHeader: {m}}))
	expectStatus(t, me, 200, "GET /admin/users/me with the admin JWT through Traefik")
	data, _ := me.JSON()["data"].(map[string]any)
	if data == nil || data["email"] != parityAdminEmail {
		t.Fatalf("/admin/users/me: %s, want the admin %s", me, parityAdminEmail)
	}
	list := send(t, s.c, newReq(t, s.c, "GET", host, "/content-manager/collection-types/"+harness.UPUserModel+"?pageSize=1", nil,
		http.Header{"Authorization": {"Bearer " + tok}, parityMarkHeader: {m}}))
	expectStatus(t, list, 200, "content-manager list of users with the admin JWT through Traefik")
	if _, ok := list.JSON()["results"]; !ok {
		t.Fatalf("content-manager list: %s", list)
	}
	arrived := s.strapiTap.WithHeader(parityMarkHeader, m)
	if len(arrived) != 2 {
		t.Fatalf("%d admin requests reached Strapi, want 2", len(arrived))
	}
	for _, a := range arrived {
		if got := a.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+tok {
			t.Fatalf("Strapi got Authorization %q on %s, want the admin JWT untouched", got, a.Path)
		}
	}
	// The admin JWT is no proxy token: the Content API still refuses it.
	expectError(t, do(t, s.c, "GET", host, "/api/users/me", tok, nil), 401, "UnauthorizedError", "the admin JWT on the Content API")

	// From a network not in adminAllowFrom: 403, and nothing reaches Strapi.
	m = mark("noadmin")
	const deny = "p-noadmin.localhost"
	creds := jsonBody(map[string]string{"email": parityAdminEmail, "password": parityAdminPassword})
	for _, c := range []struct {
		method, path string
		body         []byte
		auth         string
	}{
		{"POST", "/admin/login", creds, ""},
		{"GET", "/admin/users/me", nil, tok},
		{"GET", "/content-manager/collection-types/" + url.PathEscape(harness.UPUserModel), nil, tok},
		{"GET", "/Admin/users/me", nil, tok},
	} {
		h := http.Header{parityMarkHeader: {m}, "Content-Type": {"application/json"}}
		if c.auth != "" {
			h["Authorization"] = []string{"Bearer " + c.auth}
		}
		r := send(t, s.c, newReq(t, s.c, c.method, deny, c.path, c.body, h))
		expectError(t, r, 403, "ForbiddenError", c.method+" "+c.path+" from outside adminAllowFrom")
		noJWTKey(t, r, c.path+" from outside adminAllowFrom")
	}
	if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
		t.Fatalf("%d admin requests from outside adminAllowFrom reached Strapi, want 0", n)
	}
}

// noStrapiJWT fails if the response carries a JWT signed with the parity Strapi's
// users-permissions secret.
func (s *parityStack) noStrapiJWT(t *testing.T, r *harness.Response, what string) {
	t.Helper()
	for _, j := range harness.FindJWTs(r.Everything()) {
		if harness.VerifyHS256(j, []byte(s.strapi.JWTSecret)) {
			t.Fatalf("%s: a users-permissions JWT reached the client: %s", what, j)
		}
	}
}

// TestStrapiAdminChannelCookieMode guards "the proxy's cookie never reaches upstream" on the
// admin channel: in cookie mode a browser sends the proxy's session cookie with every request to
// the host, the admin panel's calls included. From an adminAllowFrom network the admin call
// itself passes (its admin JWT reaches Strapi as sent), but the proxy's cookie must be taken off
// like on every other request; the other cookies stay.
func TestStrapiAdminChannelCookieMode(t *testing.T) {
	s := getParityStack(t)
	const host = "p-cookie.localhost"
	u := parityUser("pa-alice")
	r := do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	expectStatus(t, r, 200, "cookie-mode login")
	cookie := cookieValue(r, "ap_session")
	if cookie == "" {
		t.Fatalf("no ap_session cookie: %v", r.Header.Values("Set-Cookie"))
	}
	admin, _, err := harness.AdminLogin(s.c, host, parityAdminEmail, parityAdminPassword)
	if err != nil {
		t.Fatalf("admin login through the cookie-mode router: %v", err)
	}
	m := mark("admin-cookie")
	me := send(t, s.c, newReq(t, s.c, "GET", host, "/admin/users/me", nil, http.Header{
		"Authorization": {"Bearer " + admin}, "Cookie": {"theme=dark; ap_session=" + cookie}, parityMarkHeader: {m}}))
	expectStatus(t, me, 200, "GET /admin/users/me in cookie mode")
	arrived := s.strapiTap.WithHeader(parityMarkHeader, m)
	if len(arrived) != 1 {
		t.Fatalf("%d admin requests reached Strapi, want 1", len(arrived))
	}
	if got := arrived[0].Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+admin {
		t.Fatalf("Strapi got Authorization %q, want the admin JWT untouched", got)
	}
	if c := arrived[0].Header.Get("Cookie"); strings.Contains(c, "ap_session") || strings.Contains(c, cookie) || !strings.Contains(c, "theme=dark") {
		t.Fatalf("the admin call reached Strapi with Cookie %q: want theme=dark, never the proxy's session cookie", c)
	}
}
