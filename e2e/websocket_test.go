package e2e

// Issue 15, live connections end with their session: websockets through the real Traefik to an
// echo backend, authenticated by sessions of the real Strapi.

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const (
	wsCacheTTL = 5 * time.Second // the plugin's default
	wsIdle     = 3 * time.Second // idle.localhost's idleTimeout
)

// TestStrapiWebsocketEndsWithSession: carol and dave log in against the real Strapi and open a
// websocket each (b.localhost, in both audiences). Carol's session is logged out from another
// client: her socket is closed within cacheTTL + 2 s (the bound; the time is logged),
// dave's still echoes, and an upgrade with her revoked token gets 401 and never reaches the
// backend. A socket on a host with a 3 s idle window, which sends no requests, is closed once it
// idles out.
func TestStrapiWebsocketEndsWithSession(t *testing.T) {
	t.Parallel()
	st := needStrapi(t)
	env := harness.ForTest(t)
	echo, err := harness.StartWSEcho(env)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStrapiStack(env, st, func(store *harness.Store, up, secret string) []harness.Router {
		cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(store, secret, extra) }
		return []harness.Router{
			{Host: "a.localhost", Upstream: up, Plugin: cfg(nil)},
			{Host: "b.localhost", Upstream: echo.URL, Plugin: cfg(nil)},
			{Host: "idle.localhost", Upstream: echo.URL, Plugin: cfg(map[string]any{"idleTimeout": wsIdle.String()})},
		}
	})
	if err != nil {
		t.Fatalf("Traefik + sessionstore in front of Strapi and the echo backend: %v", err)
	}
	checkLogAtEnd(t, s.traefik)

	carol, _ := login(t, s.c, "a.localhost", "carol", "Carol-passw0rd")
	dave, _ := login(t, s.c, "a.localhost", "dave", "Dave-passw0rd")
	wsA := dialWS(t, s, "b.localhost", carol)
	defer wsA.Close()
	wsB := dialWS(t, s, "b.localhost", dave)
	defer wsB.Close()
	for i, ws := range []*harness.WSConn{wsA, wsB} {
		if err := ws.Echo(fmt.Sprintf("hello %d", i), 5*time.Second); err != nil {
			t.Fatalf("socket %d before the logout: %v", i, err)
		}
	}
	// The backend got Strapi's JWT for each upgrade, never the proxy's token.
	for _, auth := range echo.Upgrades() {
		if !harness.VerifyHS256(trimBearer(auth), []byte(s.strapi.JWTSecret)) {
			t.Fatalf("upgrade reached the backend with %q, want Strapi's JWT", auth)
		}
	}

	other := harness.NewClient(s.traefik.URL())
	expectStatus(t, do(t, other, "POST", "a.localhost", "/api/auth/logout", carol, nil), 200, "carol's logout from another client")
	loggedOut := time.Now()
	waitClosed(t, wsA, loggedOut.Add(wsCacheTTL+2*time.Second), "carol's socket after her logout")
	closedIn := time.Since(loggedOut)
	t.Logf("carol's socket closed %v after the logout (bound: cacheTTL + 2 s = %v)", closedIn.Round(time.Millisecond), wsCacheTTL+2*time.Second)
	if err := wsB.Echo("still here", 5*time.Second); err != nil {
		t.Fatalf("dave's socket after carol's logout: %v", err)
	}

	n := len(echo.Upgrades())
	ws, r, err := harness.DialWS(s.traefik.URL(), "b.localhost", "/chat", carol)
	if err != nil || ws != nil {
		t.Fatalf("upgrade with the revoked token: %v (upgraded: %v)", err, ws != nil)
	}
	expectError(t, r, 401, "UnauthorizedError", "upgrade with the revoked token")
	if len(echo.Upgrades()) != n {
		t.Fatal("an upgrade with a revoked token reached the backend")
	}

	// Idle expiry: a socket is no use of the session, so idle.localhost's window runs out.
	dave2, _ := login(t, s.c, "a.localhost", "dave", "Dave-passw0rd")
	opened := time.Now()
	wsC := dialWS(t, s, "idle.localhost", dave2)
	defer wsC.Close()
	if err := wsC.Echo("idle soon", 2*time.Second); err != nil {
		t.Fatalf("idle.localhost socket: %v", err)
	}
	waitClosed(t, wsC, opened.Add(wsIdle+wsCacheTTL+2*time.Second), "the socket of a session idle on its host")
	el := time.Since(opened)
	t.Logf("the idle socket closed %v after it opened (idleTimeout %v, bound idleTimeout + cacheTTL + 2 s)", el.Round(time.Millisecond), wsIdle)
	if el < wsIdle-500*time.Millisecond {
		t.Fatalf("closed after %v, before the %v idle window ended", el, wsIdle)
	}
	if err := wsB.Echo("and still", 5*time.Second); err != nil {
		t.Fatalf("dave's first socket after the idle one: %v", err)
	}
	// Closed on the backend's side too (Traefik closes both ends).
	deadline := time.Now().Add(5 * time.Second)
	for echo.Open() != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if o := echo.Open(); o != 1 {
		t.Fatalf("%d backend connections open, want dave's first only", o)
	}
}

func dialWS(t *testing.T, s *strapiStack, host, token string) *harness.WSConn {
	t.Helper()
	ws, r, err := harness.DialWS(s.traefik.URL(), host, "/chat", token)
	if err != nil {
		t.Fatalf("websocket on %s: %v", host, err)
	}
	if ws == nil {
		t.Fatalf("websocket on %s refused: %s", host, r)
	}
	return ws
}

// waitClosed reads until the peer closes the socket; a message meanwhile, or the deadline, fails.
func waitClosed(t *testing.T, ws *harness.WSConn, deadline time.Time, what string) {
	t.Helper()
	_, err := ws.ReadMessage(deadline)
	var ne net.Error
	switch {
	case errors.Is(err, harness.ErrWSClosed):
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("%s: still open at the deadline", what)
	case err == nil:
		t.Fatalf("%s: a message instead of the close", what)
	default:
		t.Fatalf("%s: %v", what, err)
	}
}

func trimBearer(auth string) string {
	if len(auth) > 7 && auth[:7] == "Bearer " {
		return auth[7:]
	}
	return auth
}
