package e2e

// Issue 13, Strapi API tokens (apiTokenAllowFrom) against the real Strapi 5: real API tokens created
// through Strapi's admin API, read with the official @strapi/client (pinned, installed by
// scripts/ensure-strapi-client.sh) through Traefik and the plugin. On the parity stack's Strapi
// (it has the bootstrap admin) and store, behind a Traefik of its own with two routers: one whose
// apiTokenAllowFrom holds 127.0.0.1, one whose list excludes it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// The article collection (e2e/strapi/src/api/article): no public permission.
const apiTokenCollection = "articles"

func TestStrapiAPITokens(t *testing.T) {
	s := getParityStack(t)
	env, err := harness.NewEnv(filepath.Join(sharedEnv.Dir, "api-token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	const allow, deny = "tok.localhost", "tok-deny.localhost"
	cfg := func(nets []string) map[string]any {
		return harness.PluginConfig(s.store, s.secret, map[string]any{"apiTokenAllowFrom": nets})
	}
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{Name: "traefik-apitoken", Routers: []harness.Router{
		{Host: allow, Upstream: s.strapiTap.URL, Plugin: cfg([]string{"127.0.0.1/32", "::1/128"})},
		{Host: deny, Upstream: s.strapiTap.URL, Plugin: cfg([]string{"10.99.0.0/16"})},
	}})
	if err != nil {
		t.Fatalf("starting Traefik: %v", err)
	}
	checkLogAtEnd(t, tr)
	c := harness.NewClient(tr.URL())

	ro, err := s.admin.CreateAPIToken("e2e-read-"+harness.RandomString(6), "read-only")
	if err != nil {
		t.Fatalf("creating a read-only API token: %v", err)
	}
	full, err := s.admin.CreateAPIToken("e2e-full-"+harness.RandomString(6), "full-access")
	if err != nil {
		t.Fatalf("creating a full-access API token: %v", err)
	}
	t.Logf("Strapi API tokens: %d and %d characters", len(ro), len(full))
	bearer := func(tok string) string { return "Bearer " + tok }
	// arrived returns the requests marked m that reached Strapi, checking each one's Authorization.
	arrived := func(m, wantAuth string) []harness.TapRequest {
		t.Helper()
		got := s.strapiTap.WithHeader(parityMarkHeader, m)
		for _, a := range got {
			if v := a.Header.Values("Authorization"); wantAuth == "" && len(v) != 0 || wantAuth != "" && (len(v) != 1 || v[0] != wantAuth) {
				t.Fatalf("%s %s reached Strapi with Authorization %q, want %q", a.Method, a.Path, v, wantAuth)
			}
		}
		return got
	}

	t.Run("public read is off", func(t *testing.T) {
		expectError(t, do(t, c, "GET", allow, "/api/"+apiTokenCollection, "", nil), 403, "ForbiddenError", "the collection without a credential")
	})

	title := "e2e article " + harness.RandomString(6)
	t.Run("full-access token writes through the proxy", func(t *testing.T) {
		m := mark("tok-create")
		r := do(t, c, "POST", allow, "/api/"+apiTokenCollection, full, map[string]any{"data": map[string]any{"title": title}}, parityMarkHeader, m)
		if r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Fatalf("create with a full-access API token from 127.0.0.1: %s", r)
		}
		if n := len(arrived(m, bearer(full))); n != 1 {
			t.Fatalf("%d create requests reached Strapi, want 1", n)
		}
	})

	t.Run("@strapi/client from an allowed network", func(t *testing.T) {
		m := mark("tok-client")
		res, err := harness.StrapiClientFind(os.Stderr, fmt.Sprintf("http://%s:%d/api", allow, tr.WebPort), ro, apiTokenCollection, map[string]string{parityMarkHeader: m})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Status != 200 {
			t.Fatalf("client.collection(%q).find() through the proxy: %s", apiTokenCollection, res.Raw)
		}
		found := false
		for _, d := range res.Data {
			found = found || d["title"] == title
		}
		if !found {
			t.Fatalf("find() did not return the article %q: %s", title, res.Raw)
		}
		if n := len(arrived(m, bearer(ro))); n != 1 {
			t.Fatalf("%d client requests reached Strapi, want 1 with the API token untouched", n)
		}
		// Strapi checks the token itself: a read-only token may not write.
		expectError(t, do(t, c, "POST", allow, "/api/"+apiTokenCollection, ro, map[string]any{"data": map[string]any{"title": "no"}}), 403, "ForbiddenError", "create with a read-only API token")
	})

	t.Run("@strapi/client from a network not in apiTokenAllowFrom", func(t *testing.T) {
		m := mark("tok-deny")
		res, err := harness.StrapiClientFind(os.Stderr, fmt.Sprintf("http://%s:%d/api", deny, tr.WebPort), ro, apiTokenCollection, map[string]string{parityMarkHeader: m})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK || res.Status != 401 {
			t.Fatalf("find() on a router whose apiTokenAllowFrom excludes 127.0.0.1: %s, want 401", res.Raw)
		}
		if e, _ := res.Body["error"].(map[string]any); e == nil || e["name"] != "UnauthorizedError" {
			t.Fatalf("refusal not in Strapi's error shape: %s", res.Raw)
		}
		expectError(t, do(t, c, "GET", deny, "/api/"+apiTokenCollection, full, nil, parityMarkHeader, m), 401, "UnauthorizedError", "full-access token outside apiTokenAllowFrom")
		if n := len(arrived(m, "")); n != 0 {
			t.Fatalf("%d requests with a refused API token reached Strapi", n)
		}
	})

	t.Run("JWT-shaped bearers stay refused from the allowed network", func(t *testing.T) {
		u := parityUser("pa-ivy")
		lr := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
		expectStatus(t, lr, 200, "direct login at Strapi")
		strapiJWT, _ := lr.JSON()["jwt"].(string)
		m := mark("tok-jwt")
		for _, v := range []string{strapiJWT, "aGVhZA.cGF5bG9hZA.c2ln", "aGVhZA.cGF5bG9hZA."} {
			expectError(t, do(t, c, "GET", allow, "/api/users/me", v, nil, parityMarkHeader, m), 401, "UnauthorizedError", "JWT-shaped bearer "+v)
		}
		if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
			t.Fatalf("%d JWT-shaped bearers reached Strapi", n)
		}
	})

	t.Run("an API token never becomes a session", func(t *testing.T) {
		m := mark("tok-session")
		for _, p := range []struct{ method, path string }{
			{"GET", "/api/auth/sessions"}, {"POST", "/api/auth/logout"}, {"POST", "/api/auth/logout-all"}, {"DELETE", "/api/auth/sessions/x"},
		} {
			expectError(t, do(t, c, p.method, allow, p.path, full, nil, parityMarkHeader, m), 401, "UnauthorizedError", p.method+" "+p.path+" with an API token")
		}
		for _, p := range []string{"/api/auth/local/refresh", "/api/auth/refresh", "/api/auth/change-password"} {
			r := do(t, c, "POST", allow, p, full, map[string]string{"refreshToken": full, "currentPassword": "x", "password": "Yy-passw0rd-1", "passwordConfirmation": "Yy-passw0rd-1"}, parityMarkHeader, m)
			if r.Status < 400 || r.Status >= 500 {
				t.Fatalf("POST %s with an API token: %s, want it refused", p, r)
			}
			noJWTKey(t, r, p)
		}
		if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
			t.Fatalf("%d requests to the proxy's own routes with an API token reached Strapi", n)
		}
		// A login with a stale API token in Authorization is a plain login: the token is dropped.
		u := parityUser("pa-ivy")
		lr := do(t, c, "POST", allow, "/api/auth/local", full, map[string]string{"identifier": u.Email, "password": u.Password}, parityMarkHeader, m)
		expectStatus(t, lr, 200, "login carrying an API token")
		tok, _ := lr.JSON()["jwt"].(string)
		if !harness.VerifyHS256(tok, []byte(s.secret)) {
			t.Fatalf("login answer carries %q, want a proxy token", tok)
		}
		if n := len(arrived(m, "")); n != 1 {
			t.Fatalf("%d login requests reached Strapi, want 1 without Authorization", n)
		}
		// The users API: no session user, so no writes (Strapi's full access notwithstanding).
		m = mark("tok-users")
		expectError(t, do(t, c, "PUT", allow, "/api/users/1", full, map[string]string{"username": "x"}, parityMarkHeader, m), 403, "ForbiddenError", "users-API write with an API token")
		expectError(t, do(t, c, "POST", allow, "/api/users", full, map[string]string{"username": "y", "email": "y@example.com", "password": "Yy-passw0rd-1", "audience": "*"}, parityMarkHeader, m), 403, "ForbiddenError", "users-API create with an API token")
		if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
			t.Fatalf("%d users-API writes with an API token reached Strapi", n)
		}
	})

	t.Run("GraphQL with an API token", func(t *testing.T) {
		m := mark("tok-gql")
		q := do(t, c, "POST", allow, "/graphql", ro, map[string]string{"query": "{ articles { title } }"}, parityMarkHeader, m)
		expectStatus(t, q, 200, "GraphQL query with a read-only API token")
		if !strings.Contains(string(q.Body), title) {
			t.Fatalf("GraphQL articles: %s, want %q", q, title)
		}
		if n := len(arrived(m, bearer(ro))); n != 1 {
			t.Fatalf("%d GraphQL requests reached Strapi, want 1 with the API token untouched", n)
		}
		m = mark("tok-gql-deny")
		for _, doc := range []string{
			`mutation { login(input: {identifier: "pa-ivy", password: "x"}) { jwt } }`,
			`mutation { updateUsersPermissionsUser(id: 1, data: {username: "x"}) { data { id } } }`,
			`mutation { createUsersPermissionsUser(data: {username: "z", email: "z@example.com", password: "Zz-passw0rd-1"}) { data { id } } }`,
		} {
			expectError(t, do(t, c, "POST", allow, "/graphql", full, map[string]string{"query": doc}, parityMarkHeader, m), 403, "ForbiddenError", doc)
		}
		if n := len(s.strapiTap.WithHeader(parityMarkHeader, m)); n != 0 {
			t.Fatalf("%d refused GraphQL documents reached Strapi", n)
		}
	})

	t.Run("audit", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			events, raw := auditEvents(t, tr.LogPath)
			n, denied := 0, 0
			for _, ev := range events {
				switch {
				case ev["event"] == "api_token":
					n++
				case ev["event"] == "denied" && strings.Contains(fmt.Sprint(ev["reason"]), "apiTokenAllowFrom"):
					denied++
				}
			}
			if strings.Contains(raw, ro) || strings.Contains(raw, full) || strings.Contains(raw, ro[:32]) {
				t.Fatal("Traefik's log holds an API token")
			}
			if n >= 4 && denied >= 2 {
				line, _ := json.Marshal(events[len(events)-1])
				t.Logf("%d api_token and %d denied audit lines; last: %s", n, denied, line)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("want ≥ 4 api_token and ≥ 2 apiTokenAllowFrom denied audit lines, got %d and %d", n, denied)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
