package accessproxy

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestAuditLinesCarryNoToken(t *testing.T) {
	var buf bytes.Buffer
	auditOutput = &buf
	defer func() { auditOutput = discard }()
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	hs.do(http.MethodGet, "b.localhost", "/api/users/me", tok, "")
	hs.do(http.MethodPost, "a.localhost", "/api/auth/local", "", `{"identifier":"ann","password":"wrong"}`)
	hs.do(http.MethodPost, "a.localhost", "/api/auth/logout", tok, "")
	out := buf.String()
	for _, event := range []string{`"event":"login_ok"`, `"event":"denied"`, `"event":"login_failed"`, `"event":"logout"`} {
		if !strings.Contains(out, event) {
			t.Errorf("no %s line in:\n%s", event, out)
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, hs.strapi.jwt) || strings.Contains(out, "right") {
		t.Fatalf("audit leaks a credential:\n%s", out)
	}
}
