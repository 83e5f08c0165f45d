package accessproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAuditText(t *testing.T) {
	cases := map[string]string{
		"Firefox 133 on macOS":      "Firefox 133 on macOS",
		"a\x00b\nc\x7fd":            "abcd",
		"bad\xffutf8":               "badutf8",
		strings.Repeat("é", 200):    strings.Repeat("é", 127),
		"<script>alert(1)</script>": "<script>alert(1)</script>",
	}
	for in, want := range cases {
		if got := auditText(in); got != want {
			t.Errorf("auditText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStoreAuditHeaders: a store call made with storeAudit's context carries the request's host,
// client address, user-agent summary and reason; withAuditKind adds the kind and the name typed.
func TestStoreAuditHeaders(t *testing.T) {
	got := make(chan http.Header, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"count":1,"resetAt":1}`))
	}))
	defer srv.Close()
	c := newStoreClient(srv.Client(), srv.URL, "tok", 2*time.Second)
	req := httptest.NewRequest("POST", "http://a.localhost/api/auth/local", nil)
	req.RemoteAddr = "203.0.113.7:4321"
	req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:133.0) Gecko/20100101 Firefox/133.0")
	ctx := withAuditKind(storeAudit(req, "login"), "lockout", "ali\x01ce")
	if _, err := c.incrCounter(ctx, "locked:x", time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	h := <-got
	for k, want := range map[string]string{"X-Audit-Host": "a.localhost", "X-Audit-Client-Addr": "203.0.113.7",
		"X-Audit-User-Agent": deviceName(req), "X-Audit-Reason": "login", "X-Audit-Kind": "lockout", "X-Audit-Username": "alice"} {
		if h.Get(k) != want || want == "" {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if _, err := c.incrCounter(context.Background(), "rl:x", time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("X-Audit-Host") != "" {
		t.Errorf("a call without a note sent %v", h)
	}
}

func TestLoginUsername(t *testing.T) {
	if got := loginUsername(map[string]interface{}{"username": "alice\n", "id": 1.0}); got != "alice" {
		t.Fatalf("got %q", got)
	}
	if got := loginUsername(map[string]interface{}{"username": 3.0}); got != "" {
		t.Fatalf("got %q", got)
	}
}
