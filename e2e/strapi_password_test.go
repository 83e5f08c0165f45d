package e2e

import (
	"encoding/json"
	"testing"
)

// TestStrapiChangePassword: change-password is a login path that needs the caller's session. The
// proxy token is swapped for Strapi's JWT on the way in, and Strapi's answer (a new Strapi JWT) is
// swapped for a new proxy token on the way out; the new password then works, the old one does not,
// and every session of the user from before the change has ended (revokeOnPasswordChange).
func TestStrapiChangePassword(t *testing.T) {
	t.Parallel()
	s := getStrapiStack(t)
	_, email, password := s.registerDirect(t, "chpw")
	token, _ := login(t, s.c, "a.localhost", email, password)
	other, _ := login(t, s.c, "a.localhost", email, password) // another device
	newPassword := password + "-new"

	// A raw Strapi JWT cannot be used for it either.
	strapiJWT := s.directLogin(t, email, password)
	r := do(t, s.c, "POST", "a.localhost", "/api/auth/change-password", strapiJWT,
		map[string]string{"currentPassword": password, "password": newPassword, "passwordConfirmation": newPassword})
	expectError(t, r, 401, "UnauthorizedError", "change-password with a raw Strapi JWT")

	r = do(t, s.c, "POST", "a.localhost", "/api/auth/change-password", token,
		map[string]string{"currentPassword": password, "password": newPassword, "passwordConfirmation": newPassword})
	expectStatus(t, r, 200, "change-password through the proxy")
	s.noStrapiJWT(t, r, strapiJWT, "change-password response")
	var b loginBody
	if err := json.Unmarshal(r.Body, &b); err != nil || b.JWT == "" || b.User["email"] != email {
		t.Fatalf("change-password answer: %s", r)
	}
	claims := checkProxyToken(t, b.JWT)
	if claim(claims, "sid") == claim(checkProxyToken(t, token), "sid") {
		t.Fatal("change-password must issue a new session")
	}
	me := do(t, s.c, "GET", "a.localhost", "/api/users/me", b.JWT, nil)
	expectStatus(t, me, 200, "the token from change-password")
	// revokeOnPasswordChange (default true): every earlier session of the user ended, the caller's too.
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", token, nil), 401, "UnauthorizedError", "the caller's token from before the change")
	expectError(t, do(t, s.c, "GET", "a.localhost", "/api/users/me", other, nil), 401, "UnauthorizedError", "another device's token from before the change")

	r = do(t, s.c, "POST", "a.localhost", "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
	expectStatus(t, r, 400, "the old password after the change")
	login(t, s.c, "a.localhost", email, newPassword)
}
