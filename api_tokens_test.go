package accessproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Strapi API tokens (apiTokenAllowFrom). httptest requests come from 192.0.2.1.

// testAPIToken is shaped like a Strapi 5 API token: 256 hex characters.
var testAPIToken = strings.Repeat("0123456789abcdef", 16)

func apiTokenHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	return newHarness(t, func(c *Config) {
		c.APITokenAllowFrom = []string{"192.0.2.0/24", "2001:db8::/32"}
		if mutate != nil {
			mutate(c)
		}
	})
}

// doFrom sends a request with an Authorization header as given, from a client address.
func (hs *harness) doFrom(remote, method, host, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	req.RemoteAddr = remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// strapiSaw returns the Authorization header the fake Strapi echoed.
func strapiSaw(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var echo map[string]interface{}
	if err := json.Unmarshal(rec.Body.Bytes(), &echo); err != nil {
		t.Fatalf("not the fake Strapi's echo: %d %s", rec.Code, rec.Body.String())
	}
	got, _ := echo["authorization"].(string)
	return got
}

func expectUnauthorized(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusUnauthorized || e.Error.Status != 401 || e.Error.Name != "UnauthorizedError" {
		t.Errorf("%s: %d %s, want Strapi's 401 UnauthorizedError", what, rec.Code, rec.Body.String())
	}
}

func TestAPITokenFromAllowedNetworkPassesUntouched(t *testing.T) {
	for _, mode := range []string{"default", "requireAuth", "careful"} {
		hs := apiTokenHarness(t, func(c *Config) {
			c.RequireAuth = mode == "requireAuth"
			if mode == "careful" {
				c.IdentityHeaders = true
				c.UpstreamHeaders = map[string]string{"X-Api-Key": "server-side-key"}
			}
		})
		auth := "Bearer " + testAPIToken
		for _, remote := range []string{"192.0.2.1:1234", "[2001:db8::7]:1234"} {
			for i := 0; i < 3; i++ { // again and again: never remembered, always the slow path
				rec := hs.doFrom(remote, http.MethodGet, "a.localhost", "/api/articles", auth, "")
				if rec.Code != http.StatusOK {
					t.Fatalf("%s from %s: %d %s", mode, remote, rec.Code, rec.Body.String())
				}
				if got := strapiSaw(t, rec); got != auth {
					t.Fatalf("%s: Strapi saw Authorization %q, want the API token untouched", mode, got)
				}
				var echo map[string]string
				_ = json.Unmarshal(rec.Body.Bytes(), &echo)
				if echo["userId"] != "" || echo["apiKey"] != "" {
					t.Fatalf("%s: identity or upstream headers on an API-token request: %v", mode, echo)
				}
			}
		}
		// Writes other than the users API pass too: Strapi checks the token's type.
		if rec := hs.doFrom("192.0.2.1:1", http.MethodPost, "a.localhost", "/api/articles", auth, `{"data":{"title":"x"}}`); rec.Code != http.StatusOK || strapiSaw(t, rec) != auth {
			t.Fatalf("%s: POST with an API token: %d %s", mode, rec.Code, rec.Body.String())
		}
		m := mwOf(hs.h)
		m.fastMu.RLock()
		for k := range m.fastEntries {
			if strings.Contains(k, testAPIToken) {
				t.Fatalf("%s: an API token is in the fast map", mode)
			}
		}
		m.fastMu.RUnlock()
		if hs.store.count("create") != 0 {
			t.Fatalf("%s: an API token made a session", mode)
		}
	}
}

func TestAPITokenRefusedOutsideTheList(t *testing.T) {
	hs := apiTokenHarness(t, nil)
	auth := "Bearer " + testAPIToken
	for _, remote := range []string{"203.0.113.9:1234", "[2001:db9::1]:80", "garbage"} {
		expectUnauthorized(t, "API token from "+remote, hs.doFrom(remote, http.MethodGet, "a.localhost", "/api/articles", auth, ""))
		expectUnauthorized(t, "GraphQL API token from "+remote, hs.doFrom(remote, http.MethodPost, "a.localhost", "/graphql", auth, gqlBody("{ articles { title } }", nil)))
	}
	// Without the key (the default), an API token is refused from everywhere, loopback too.
	def := newHarness(t, nil)
	for _, remote := range []string{"192.0.2.1:1234", "127.0.0.1:5"} {
		expectUnauthorized(t, "API token with apiTokenAllowFrom unset", def.doFrom(remote, http.MethodGet, "a.localhost", "/api/articles", auth, ""))
	}
	if len(hs.strapi.seen)+len(def.strapi.seen) != 0 {
		t.Fatal("a refused API token reached Strapi")
	}
}

// A JWT-shaped bearer, or anything that is not a plain token, is never an API token: from the
// allowed network too it is refused as every foreign bearer.
func TestAPITokenJWTShapedRefusedFromAllowedNetwork(t *testing.T) {
	hs := apiTokenHarness(t, nil)
	_, refresh := hs.loginWithRefresh("a.localhost")
	seen := len(hs.strapi.seen)
	for _, v := range []string{
		hs.strapi.jwt,              // a raw Strapi JWT
		"aGVhZA.cGF5bG9hZA.c2ln",   // three base64url segments
		"aGVhZA.cGF5bG9hZA.",       // no signature (jsonwebtoken reads it)
		"a.b",                      // any dot
		testAPIToken + ".x",        // a token with a dot
		testAPIToken + " eyJh.b.c", // Strapi splits on whitespace
		"abc%2Edef",                // no escapes
		refresh,                    // the proxy's refresh token is no API token
		strings.Repeat("a", maxAPITokenLen+1),
	} {
		expectUnauthorized(t, "bearer "+v, hs.doFrom("192.0.2.1:1", http.MethodGet, "a.localhost", "/api/articles", "Bearer "+v, ""))
	}
	expectUnauthorized(t, "Basic", hs.doFrom("192.0.2.1:1", http.MethodGet, "a.localhost", "/api/articles", "Basic "+testAPIToken, ""))
	expectUnauthorized(t, "GraphQL raw Strapi JWT", hs.doFrom("192.0.2.1:1", http.MethodPost, "a.localhost", "/graphql", "Bearer "+hs.strapi.jwt, gqlBody("{ me { id } }", nil)))
	if len(hs.strapi.seen) != seen {
		t.Fatal("a JWT-shaped foreign bearer reached Strapi")
	}
	// The proxy's own tokens still work from that network.
	tok := hs.login("a.localhost")
	if rec := hs.doFrom("192.0.2.1:1", http.MethodGet, "a.localhost", "/api/users/me", "Bearer "+tok, ""); rec.Code != http.StatusOK || strapiSaw(t, rec) != "Bearer "+hs.strapi.jwt {
		t.Fatalf("proxy token from the API-token network: %d %s", rec.Code, rec.Body.String())
	}
}

// In cookie mode the proxy's cookie is a proxy credential only: an API token in it is refused.
func TestAPITokenNeverFromTheCookie(t *testing.T) {
	hs := apiTokenHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set("Cookie", "ap_session="+testAPIToken)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	expectUnauthorized(t, "API token in the session cookie", rec)
}

// The proxy's own routes never take an API token as a session: logins drop it (and never send it
// on), the session endpoints answer 401.
func TestAPITokenIsNeverASession(t *testing.T) {
	var buf bytes.Buffer
	auditOutput = &buf
	defer func() { auditOutput = discard }()
	hs := apiTokenHarness(t, nil)
	auth := "Bearer " + testAPIToken
	for _, path := range []string{"/api/auth/local", "/api/auth/local/register"} {
		rec := hs.doFrom("192.0.2.1:1", http.MethodPost, "a.localhost", path, auth, `{"identifier":"ann","username":"ann","email":"a@b.c","password":"right"}`)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s with an API token: %d %s", path, rec.Code, rec.Body.String())
		}
		if got := hs.strapi.last().Header.Get("Authorization"); got != "" {
			t.Fatalf("%s: Strapi got Authorization %q, want none (a login drops any credential)", path, got)
		}
	}
	created := hs.store.count("create")
	seen := len(hs.strapi.seen)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/auth/local/refresh", `{"refreshToken":"` + testAPIToken + `"}`},
		{http.MethodPost, "/api/auth/local/refresh", ""},
		{http.MethodPost, "/api/auth/refresh", ""},
		{http.MethodPost, "/api/auth/logout", ""},
		{http.MethodPost, "/api/auth/logout-all", ""},
		{http.MethodGet, "/api/auth/sessions", ""},
		{http.MethodDelete, "/api/auth/sessions/abc", ""},
		{http.MethodPost, "/api/auth/change-password", `{"currentPassword":"right","password":"new","passwordConfirmation":"new"}`},
	} {
		rec := hs.doFrom("192.0.2.1:1", c.method, "a.localhost", c.path, auth, c.body)
		if rec.Code < 400 || rec.Code == http.StatusTooManyRequests || rec.Code >= 500 {
			t.Errorf("%s %s with an API token: %d %s, want it refused", c.method, c.path, rec.Code, rec.Body.String())
		}
	}
	if hs.store.count("create") != created || len(hs.strapi.seen) != seen {
		t.Fatal("an API token on the proxy's own routes made a session or reached Strapi")
	}
	if strings.Contains(buf.String(), `"event":"api_token"`) {
		t.Fatalf("the proxy's own routes treated an API token as one:\n%s", buf.String())
	}
}

func TestAPITokenUsersAPIWritesRefused(t *testing.T) {
	hs := apiTokenHarness(t, nil)
	auth := "Bearer " + testAPIToken
	seen := len(hs.strapi.seen)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/users/7", `{"username":"x"}`},
		{http.MethodPut, "/API/Users/7/", `{"audience":"*"}`},
		{http.MethodPost, "/api/users", `{"username":"y","email":"y@x.z","password":"p"}`},
		{http.MethodDelete, "/api/users/8", ""},
		{http.MethodPatch, "/api/users/%37", `{}`},
	} {
		rec := hs.doFrom("192.0.2.1:1", c.method, "a.localhost", c.path, auth, c.body)
		refused(t, c.method+" "+c.path+" with an API token", rec, http.StatusForbidden, "API tokens", "users API")
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("a users-API write with an API token reached Strapi")
	}
	if rec := hs.doFrom("192.0.2.1:1", http.MethodGet, "a.localhost", "/api/users?filters[username]=ann", auth, ""); rec.Code != http.StatusOK || strapiSaw(t, rec) != auth {
		t.Fatalf("users-API read with an API token: %d %s", rec.Code, rec.Body.String())
	}
}

func TestAPITokenGraphQL(t *testing.T) {
	hs := apiTokenHarness(t, nil)
	auth := "Bearer " + testAPIToken
	gql := func(query string, vars map[string]interface{}) *httptest.ResponseRecorder {
		return hs.doFrom("192.0.2.1:1", http.MethodPost, "a.localhost", "/graphql", auth, gqlBody(query, vars))
	}
	rec := gql("{ articles { title } }", nil)
	if rec.Code != http.StatusOK || strapiSaw(t, rec) != auth {
		t.Fatalf("GraphQL query with an API token: %d %s", rec.Code, rec.Body.String())
	}
	seen := len(hs.strapi.seen)
	refused(t, "login mutation", gql(`mutation { login(input: {identifier: "ann", password: "right"}) { jwt } }`, nil), http.StatusForbidden, "Strapi's JWT")
	refused(t, "jwt selected", gql(`{ articles { title jwt } }`, nil), http.StatusForbidden)
	for _, q := range []string{
		`mutation { updateUsersPermissionsUser(id: 7, data: {username: "x"}) { data { id } } }`,
		`mutation { deleteUsersPermissionsUser(id: 8) { data { id } } }`,
		`mutation { createUsersPermissionsUser(data: {username: "y", email: "y@x.z", password: "p"}) { data { id } } }`,
		`mutation M { ...F } fragment F on Mutation { u: updateUsersPermissionsUser(id: 7, data: {audience: "*"}) { data { id } } }`,
	} {
		refused(t, q, gql(q, nil), http.StatusForbidden, "API tokens")
	}
	if len(hs.strapi.seen) != seen {
		t.Fatal("a refused GraphQL document with an API token reached Strapi")
	}
}

func TestAPITokenAuditLineWithoutTheToken(t *testing.T) {
	var buf bytes.Buffer
	auditOutput = &buf
	defer func() { auditOutput = discard }()
	hs := apiTokenHarness(t, nil)
	auth := "Bearer " + testAPIToken
	hs.doFrom("192.0.2.1:1", http.MethodGet, "a.localhost", "/api/articles", auth, "")
	hs.doFrom("192.0.2.1:1", http.MethodPost, "a.localhost", "/graphql", auth, gqlBody("{ articles { title } }", nil))
	hs.doFrom("203.0.113.9:1", http.MethodGet, "a.localhost", "/api/articles", auth, "")
	hs.doFrom("192.0.2.1:1", http.MethodPut, "a.localhost", "/api/users/7", auth, `{"username":"x"}`)
	out := buf.String()
	if strings.Count(out, `"event":"api_token"`) != 2 {
		t.Errorf("want 2 api_token lines (REST and GraphQL):\n%s", out)
	}
	for _, want := range []string{`"client":"192.0.2.1"`, `"path":"/api/articles"`, `apiTokenAllowFrom`, `users API write`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in the audit:\n%s", want, out)
		}
	}
	if strings.Contains(out, testAPIToken) || strings.Contains(out, testAPIToken[:32]) {
		t.Fatalf("the audit holds the API token:\n%s", out)
	}
}

func TestAPITokenAllowFromValidated(t *testing.T) {
	for _, bad := range []string{"10.0.0.5", "10.0.0.0/33", "nonsense", "", "2001:db8::/129"} {
		cfg := CreateConfig()
		cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		cfg.APITokenAllowFrom = []string{"10.0.0.0/8", bad}
		_, err := New(context.Background(), http.NotFoundHandler(), cfg, "t")
		if err == nil || !strings.Contains(err.Error(), "apiTokenAllowFrom[1]") || !strings.Contains(err.Error(), "not a CIDR") {
			t.Errorf("apiTokenAllowFrom %q: %v", bad, err)
		}
	}
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
	cfg.APITokenAllowFrom = []string{"10.0.0.0/8", " 127.0.0.1/32", "::1/128"}
	if _, err := New(context.Background(), http.NotFoundHandler(), cfg, "t"); err != nil {
		t.Fatalf("good CIDRs: %v", err)
	}
}
