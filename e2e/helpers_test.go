package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

func do(t *testing.T, c *harness.Client, method, host, path, token string, body any, headers ...string) *harness.Response {
	t.Helper()
	r, err := c.Do(method, host, path, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	return r
}

func expectStatus(t *testing.T, r *harness.Response, want int, what string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: got %s, want status %d", what, r, want)
	}
}

func expectError(t *testing.T, r *harness.Response, status int, name, what string) {
	t.Helper()
	if err := r.ErrorShape(status, name); err != nil {
		t.Fatalf("%s: %v (response %s)", what, err, r)
	}
}

// loginBody is what a Strapi login answers: jwt and user.
type loginBody struct {
	JWT  string         `json:"jwt"`
	User map[string]any `json:"user"`
}

// login posts credentials to host's /api/auth/local and expects a 200 with a jwt.
func login(t *testing.T, c *harness.Client, host, identifier, password string) (string, *harness.Response) {
	t.Helper()
	r := do(t, c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": identifier, "password": password})
	if r.Status != 200 {
		t.Fatalf("login %s on %s: got %s, want 200", identifier, host, r)
	}
	var b loginBody
	if err := json.Unmarshal(r.Body, &b); err != nil || b.JWT == "" {
		t.Fatalf("login %s on %s: no jwt in %s", identifier, host, r)
	}
	return b.JWT, r
}

// checkProxyToken checks the shape of a token issued by the proxy and returns its claims.
func checkProxyToken(t *testing.T, token string) map[string]any {
	t.Helper()
	h, c, err := harness.DecodeJWT(token)
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	if h["alg"] != "HS256" || h["typ"] != "JWT" {
		t.Fatalf("token header %v: want alg HS256, typ JWT", h)
	}
	if kid, _ := h["kid"].(string); kid == "" {
		t.Fatalf("token header %v: no kid", h)
	}
	for _, k := range []string{"iss", "sub", "sid", "iat", "exp"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("token claims %v: no %s", c, k)
		}
	}
	if sid, _ := c["sid"].(string); len(sid) < 22 { // ≥ 128 bits, base64url
		t.Fatalf("token sid %q is too short", sid)
	}
	exp, _ := c["exp"].(json.Number).Int64()
	if exp <= time.Now().Unix() {
		t.Fatalf("token exp %d is not in the future", exp)
	}
	return c
}

func claim(c map[string]any, k string) string {
	switch v := c[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// noJWTKey checks that a body carries no "jwt" member.
func noJWTKey(t *testing.T, r *harness.Response, what string) {
	t.Helper()
	if m := r.JSON(); m != nil {
		if _, ok := m["jwt"]; ok {
			t.Fatalf("%s: body has a jwt: %s", what, r)
		}
	}
	if strings.Contains(string(r.Body), `"jwt"`) {
		t.Fatalf("%s: body mentions jwt: %s", what, r)
	}
}

// doRaw sends a request with a raw (possibly invalid) body and content type; an empty contentType
// sends none.
func doRaw(t *testing.T, c *harness.Client, method, host, path, contentType string, body []byte, headers ...string) *harness.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// refreshPair is the answer of a login with requestRefresh, or of the proxy's refresh endpoint.
type refreshPair struct {
	JWT          string `json:"jwt"`
	RefreshToken string `json:"refreshToken"`
}

// loginWithRefresh logs in asking for a refresh token and expects both. The refresh token is in
// the body, or (where Strapi answers with its HttpOnly cookie) in the proxy's ap_refresh cookie.
func loginWithRefresh(t *testing.T, c *harness.Client, host, identifier, password string) (refreshPair, *harness.Response) {
	t.Helper()
	r := do(t, c, "POST", host, "/api/auth/local", "", map[string]any{"identifier": identifier, "password": password, "requestRefresh": true})
	expectStatus(t, r, 200, "login with requestRefresh on "+host)
	var p refreshPair
	err := json.Unmarshal(r.Body, &p)
	if p.RefreshToken == "" {
		p.RefreshToken = proxyRefreshCookie(r)
	}
	if err != nil || p.JWT == "" || !strings.HasPrefix(p.RefreshToken, "apr_") {
		t.Fatalf("login with requestRefresh on %s: %s", host, r)
	}
	return p, r
}

// proxyRefreshCookie is the value of the ap_refresh cookie a response sets ("" if none).
func proxyRefreshCookie(r *harness.Response) string {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "ap_refresh" {
			return c.Value
		}
	}
	return ""
}

// refresh posts a refresh token to the proxy's refresh endpoint.
func refreshOn(t *testing.T, c *harness.Client, host, refreshToken string) *harness.Response {
	t.Helper()
	return do(t, c, "POST", host, "/api/auth/local/refresh", "", map[string]string{"refreshToken": refreshToken})
}

// checkLogAtEnd fails the test if the shared Traefik logged a plugin or middleware error while it ran.
func checkLogAtEnd(t *testing.T, tr *harness.Traefik) {
	t.Helper()
	t.Cleanup(func() {
		if err := tr.CheckLog(); err != nil {
			t.Error(err)
		}
	})
}
