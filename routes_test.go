package accessproxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// Every Strapi path derives from apiPrefix: with Strapi's REST prefix at /v2, the login there is
// swapped, the users API there guarded, and the defaults follow without being configured again.
func TestAPIPrefix(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.APIPrefix = "/v2" })
	rec := hs.do(http.MethodPost, "a.localhost", "/v2/auth/local", "", `{"identifier":"ann","password":"right"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("login under /v2: %d %s", rec.Code, rec.Body.String())
	}
	assertNoStrapiSecrets(t, hs, rec)
	tok, _ := decodeMap(t, rec)["jwt"].(string)
	if rec := hs.do(http.MethodGet, "a.localhost", "/v2/articles", tok, ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), hs.strapi.jwt) {
		t.Fatalf("protected call: %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(http.MethodPut, "a.localhost", "/v2/users/7", tok, `{"audience":"*"}`); rec.Code != http.StatusBadRequest {
		t.Fatalf("users API under /v2: %d", rec.Code)
	}
	if rec := hs.do(http.MethodPost, "a.localhost", "/v2/auth/logout", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("logout under /v2: %d", rec.Code)
	}
}

func TestNewRefusesPathsItCannotServe(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"login path outside the prefix":   func(c *Config) { c.LoginPaths = append(c.LoginPaths, "/auth/local") },
		"refresh path outside the prefix": func(c *Config) { c.RefreshPath = "/refresh" },
		"no login paths":                  func(c *Config) { c.LoginPaths = nil },
		"local login missing":             func(c *Config) { c.LoginPaths = []string{"/api/auth/local/register"} },
		"one path, two jobs":              func(c *Config) { c.LogoutAllPath = c.LogoutPath },
		"prefix not a path":               func(c *Config) { c.APIPrefix = "api" },
		"prefix the root":                 func(c *Config) { c.APIPrefix = "/" },
		"prefix with a trailing slash":    func(c *Config) { c.APIPrefix = "/api/" },
		"login path inside graphql":       func(c *Config) { c.GraphQLPath = "/api/auth" },
		"bad revalidateEvery":             func(c *Config) { c.RevalidateEvery = "often" },
	} {
		cfg := CreateConfig()
		cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		mutate(cfg)
		if _, err := New(context.Background(), http.NotFoundHandler(), cfg, "t"); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
