package accessproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Every spelling an upstream could read as an identity header or an upstreamHeaders key is the
// proxy's alone, on anonymous and authenticated requests, slow and fast path.
func TestSpoofedIdentityHeadersStripped(t *testing.T) {
	hs := newHarness(t, func(c *Config) {
		c.IdentityHeaders = true
		c.UpstreamHeaders = map[string]string{"X-Api-Key": "k-secret"}
	})
	tok := hs.login("a.localhost")
	spoofs := []string{"X-Auth-User-Id", "x-auth-user-id", "X_Auth_User_Id", "x_auth-user_id", "X-Auth_Session-Id", "X_AUTH_SESSION_ID", "x_api_key", "X-Api_Key"}
	for _, token := range []string{"", tok, tok} { // anonymous, slow path, fast path
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for _, k := range spoofs {
			req.Header[http.CanonicalHeaderKey(k)] = []string{"forged"}
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		for k, v := range hs.strapi.last().Header {
			if len(v) > 0 && v[0] == "forged" {
				t.Errorf("token %v: client-sent %s reached the upstream", token != "", k)
			}
		}
	}
}

func TestSeparatorSpellings(t *testing.T) {
	got := spoofableHeaders(map[string]string{"X-A": "v"})
	want := map[string]bool{"X-Auth-User-Id": true, "X_auth_user_id": true, "X-Auth_user-Id": true, "X-A": true, "X_a": true}
	have := map[string]bool{}
	for _, k := range got {
		have[k] = true
	}
	for k := range want {
		if !have[k] {
			t.Errorf("%s missing from %v", k, got)
		}
	}
	if len(got) != 8+8+2 {
		t.Errorf("%d spellings: %v", len(got), got)
	}
}

func TestIdentityAndSecretHeaders(t *testing.T) {
	hs := newHarness(t, func(c *Config) {
		c.UpstreamHeaders = map[string]string{"X-Api-Key": "server-side-key"}
	})
	req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/articles", nil)
	req.Header.Set(headerUserID, "1")
	req.Header.Set(headerSessionID, "forged")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	echo := decodeMap(t, rec)
	if echo["apiKey"] != "" || echo["userId"] != "" || echo["sessionId"] != "" {
		t.Fatalf("anonymous request got %v", echo)
	}
	tok := hs.login("a.localhost")
	echo = decodeMap(t, hs.do(http.MethodGet, "a.localhost", "/api/articles", tok, ""))
	if echo["apiKey"] != "server-side-key" || echo["userId"] != "" {
		t.Fatalf("authenticated request got %v (identity headers are off)", echo)
	}
}
