package e2e

// Revocation is final (e224295 and the store change beside it): a store read in flight when a
// logout is answered cannot bring the token back on that Traefik, and revoking a session ends
// its refresh family whatever state the session is in (idled out, rotated away). On the parity
// stack (strapi_parity_test.go): p-held.localhost reads the store through a tap that can hold an
// answer; p-idle.localhost has 2 s idle sessions.

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// TestStrapiRevocationBeatsInflightRead guards "revocation is final on that Traefik even with a
// store read in flight": with cacheTTL 1 s, a request with token T past its cache entry's
// freshness reads the session from the store; the tap holds the store's answer (a live session)
// for 1.5 s, and meanwhile T's session is revoked through Traefik: by logout, by DELETE
// /api/auth/sessions/<id> from another session, or by logout-all. The held request must be 401
// and T must stay 401. Before e224295 the held answer was cached after the revocation and T
// worked again for up to cacheTTL.
func TestStrapiRevocationBeatsInflightRead(t *testing.T) {
	t.Parallel()
	s := getParityStack(t)
	const host = "p-held.localhost"
	for _, kind := range []string{"logout", "DELETE /api/auth/sessions/<id>", "logout-all"} {
		_, name, email, password := s.registerDirect(t, "held")
		tok, _ := login(t, s.c, host, email, password)
		other, _ := login(t, s.c, host, email, password) // revokes by id; ends with logout-all
		expectStatus(t, s.me(t, host, tok), 200, kind+": right after login")
		time.Sleep(1300 * time.Millisecond) // past cacheTTL: the next use reads the store

		const hold = 1500 * time.Millisecond
		answered := s.storeTap.HoldNext("GET", "/v1/sessions/", hold)
		inflight := make(chan *harness.Response, 1)
		go func() {
			r, err := s.c.Do("GET", host, "/api/users/me", tok, nil)
			if err != nil {
				r = &harness.Response{Status: -1, Body: []byte(err.Error())}
			}
			inflight <- r
		}()
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the request did not read the session from the store (no GET /v1/sessions/… at the tap)", kind)
		}
		// The store has answered "live"; that answer is held. Revoke now.
		revokeAt := time.Now()
		switch kind {
		case "logout":
			expectStatus(t, do(t, s.c, "POST", host, "/api/auth/logout", tok, nil), 200, "logout while a read is in flight")
		case "logout-all":
			expectStatus(t, do(t, s.c, "POST", host, "/api/auth/logout-all", other, nil), 200, "logout-all while a read is in flight")
		default:
			sid := claim(checkProxyToken(t, tok), "sid")
			expectStatus(t, do(t, s.c, "DELETE", host, "/api/auth/sessions/"+sid, other, nil), 200, "DELETE /api/auth/sessions/<id> while a read is in flight")
		}
		if time.Since(revokeAt) > hold/2 {
			t.Fatalf("%s took %v: it waited for the held read, the race was not tested", kind, time.Since(revokeAt))
		}
		var r *harness.Response
		select {
		case r = <-inflight:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the in-flight request never answered", kind)
		}
		expectError(t, r, 401, "UnauthorizedError", kind+": the request whose store read was in flight during the revocation")
		// And T stays refused, well past cacheTTL.
		until := time.Now().Add(2 * time.Second)
		for i := 0; time.Now().Before(until); i++ {
			expectError(t, s.me(t, host, tok), 401, "UnauthorizedError", fmt.Sprintf("%s: %s's revoked token, check %d after the held read", kind, name, i))
			time.Sleep(150 * time.Millisecond)
		}
	}
}

// TestStrapiRevocationEndsRefreshFamily guards "revocation ends the refresh family whatever
// state the session is in": logins with requestRefresh on p-idle.localhost (idleTimeout 2 s).
//   - control: a session that idled out is renewed by its refresh token (the family is alive);
//   - idled out, then logged out with its token: the refresh token is 401;
//   - idled out, then revoked with DELETE /api/auth/sessions/<id> from another session: 401;
//   - rotated away by a refresh, then logged out with the old token: the new refresh token and
//     the new token are 401;
//   - rotated away, then revoked by DELETE /api/auth/sessions/<old id>: the same.
//
// Before, the family outlived such a revocation and the refresh minted a new session.
func TestStrapiRevocationEndsRefreshFamily(t *testing.T) {
	t.Parallel()
	s := getParityStack(t)
	const host = "p-idle.localhost"
	u := parityUser("pa-ivy")
	sid := func(tok string) string { return claim(checkProxyToken(t, tok), "sid") }

	control, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)
	idleLogout, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)
	idleDelete, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)
	time.Sleep(3 * time.Second) // past idleTimeout 2s
	for _, p := range []refreshPair{control, idleLogout, idleDelete} {
		expectError(t, s.me(t, host, p.JWT), 401, "UnauthorizedError", "a session idle for 3s (idleTimeout 2s)")
	}

	// Control: the idle session's family is alive, its refresh token works.
	r := refreshOn(t, s.c, host, control.RefreshToken)
	expectStatus(t, r, 200, "refresh of an idled-out session (control)")

	// Idled out, then logout with its own token.
	expectStatus(t, do(t, s.c, "POST", host, "/api/auth/logout", idleLogout.JWT, nil), 200, "logout of an idled-out session")
	expectError(t, refreshOn(t, s.c, host, idleLogout.RefreshToken), 401, "UnauthorizedError", "refresh after the logout of an idled-out session")

	// Idled out, then revoked from another (live) session of the same user.
	live, _ := login(t, s.c, host, u.Email, u.Password)
	r = do(t, s.c, "DELETE", host, "/api/auth/sessions/"+sid(idleDelete.JWT), live, nil)
	expectStatus(t, r, 200, "DELETE /api/auth/sessions/<idled-out session>")
	expectError(t, refreshOn(t, s.c, host, idleDelete.RefreshToken), 401, "UnauthorizedError", "refresh after revoking an idled-out session")

	// Rotated away, then logout with the old token.
	first, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)
	r = refreshOn(t, s.c, host, first.RefreshToken)
	expectStatus(t, r, 200, "refresh (rotation)")
	var second refreshPair
	if err := json.Unmarshal(r.Body, &second); err != nil || second.JWT == "" || second.RefreshToken == "" {
		t.Fatalf("refresh answer: %s", r)
	}
	expectStatus(t, s.me(t, host, second.JWT), 200, "the rotated-in token")
	expectStatus(t, do(t, s.c, "POST", host, "/api/auth/logout", first.JWT, nil), 200, "logout with the rotated-away token")
	expectError(t, refreshOn(t, s.c, host, second.RefreshToken), 401, "UnauthorizedError", "refresh after logging out the rotated-away session")
	expectError(t, s.me(t, host, second.JWT), 401, "UnauthorizedError", "the rotated-in token after logging out the rotated-away session")

	// Rotated away, then revoked by id from another session.
	a, _ := loginWithRefresh(t, s.c, host, u.Email, u.Password)
	r = refreshOn(t, s.c, host, a.RefreshToken)
	expectStatus(t, r, 200, "refresh (rotation)")
	var b refreshPair
	if err := json.Unmarshal(r.Body, &b); err != nil || b.JWT == "" {
		t.Fatalf("refresh answer: %s", r)
	}
	live, _ = login(t, s.c, host, u.Email, u.Password)
	r = do(t, s.c, "DELETE", host, "/api/auth/sessions/"+sid(a.JWT), live, nil)
	expectStatus(t, r, 200, "DELETE /api/auth/sessions/<rotated-away session>")
	expectError(t, refreshOn(t, s.c, host, b.RefreshToken), 401, "UnauthorizedError", "refresh after revoking the rotated-away session")
	expectError(t, s.me(t, host, b.JWT), 401, "UnauthorizedError", "the rotated-in token after revoking the rotated-away session")
	// The other session, outside those families, lives on.
	expectStatus(t, s.me(t, host, live), 200, "an unrelated session of the same user")
}
