package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// callHeaders is call with extra request headers.
func (e *env) callHeaders(method, path string, body any, h map[string]string) int {
	e.t.Helper()
	buf, _ := json.Marshal(body)
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(buf))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestAuditHeadersAndList: the X-Audit-* headers reach the events the store records; GET
// /v1/audit filters and pages; bad parameters are 400, no token 401.
func TestAuditHeadersAndList(t *testing.T) {
	e := newEnv(t)
	q := createReq("12", "jwt-1", "", 60_000, true, time.Hour)
	q["username"] = "<script>alert(1)</script>"
	q["clientAddr"] = "203.0.113.7"
	h := map[string]string{HeaderAuditHost: "a.localhost", HeaderAuditAgent: "Firefox 133 on macOS", HeaderAuditReason: "login"}
	if st := e.callHeaders("POST", "/v1/sessions", q, h); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	var list SessionsBody
	e.must("GET", "/v1/users/12/sessions", nil, http.StatusOK, &list)
	sid := list.Sessions[0].ID
	if st := e.callHeaders("DELETE", "/v1/sessions/"+sid, nil, map[string]string{HeaderAuditReason: "logout"}); st != http.StatusOK {
		t.Fatalf("delete: %d", st)
	}
	// A failed login recorded through the counter call.
	fail := map[string]string{HeaderAuditKind: store.AuditLoginFailed, HeaderAuditUsername: "alice", HeaderAuditAddr: "bogus"}
	if st := e.callHeaders("POST", "/v1/counters/fail:abc/incr", map[string]int64{"windowMs": 60_000, "by": 1}, fail); st != http.StatusOK {
		t.Fatalf("incr: %d", st)
	}
	var page AuditBody
	e.must("GET", "/v1/audit", nil, http.StatusOK, &page)
	if len(page.Events) != 3 || page.Next != 0 {
		t.Fatalf("audit = %+v", page)
	}
	f, lo, in := page.Events[0], page.Events[1], page.Events[2]
	if f.Kind != store.AuditLoginFailed || f.Username != "alice" || f.ClientAddr != "" {
		t.Fatalf("failed login = %+v", f)
	}
	if lo.Kind != store.AuditLogout || lo.UserID != "12" || len(lo.SessionIDs) != 1 || lo.SessionIDs[0] != sid {
		t.Fatalf("logout = %+v", lo)
	}
	if in.Kind != store.AuditLogin || in.Username != "<script>alert(1)</script>" || in.UserAgent != "Firefox 133 on macOS" ||
		in.ClientAddr != "203.0.113.7" || in.Host != "a.localhost" || in.Reason != "login" || in.SessionID != sid {
		t.Fatalf("login = %+v", in)
	}
	e.must("GET", "/v1/audit?user=12&kind=login", nil, http.StatusOK, &page)
	if len(page.Events) != 1 {
		t.Fatalf("user+kind: %+v", page)
	}
	e.must("GET", "/v1/audit?limit=1", nil, http.StatusOK, &page)
	if len(page.Events) != 1 || page.Next != page.Events[0].ID {
		t.Fatalf("limit 1: %+v", page)
	}
	e.must("GET", "/v1/audit?limit=5&cursor="+strconv.FormatInt(page.Next, 10), nil, http.StatusOK, &page)
	if len(page.Events) != 2 || page.Next != 0 {
		t.Fatalf("second page: %+v", page)
	}
	e.must("GET", "/v1/audit?since="+strconv.FormatInt(e.serverNow()+1000, 10), nil, http.StatusOK, &page)
	if len(page.Events) != 0 {
		t.Fatalf("since the future: %+v", page)
	}
	for _, bad := range []string{"?kind=nope", "?user=a%20b", "?since=x", "?limit=0", "?limit=501", "?cursor=-1", "?user=1&user=2"} {
		e.wantError("GET", "/v1/audit"+bad, nil, http.StatusBadRequest, "bad_request")
	}
	if st, _ := e.callAuth("GET", "/v1/audit", nil, ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	// A hostile username is refused only when it is not text.
	q = createReq("12", "jwt-2", "", 60_000, true, time.Hour)
	q["username"] = "a\x00b"
	e.wantError("POST", "/v1/sessions", q, http.StatusBadRequest, "bad_request")
}

// noAudit is a backend without the trail.
type noAudit struct{ store.Backend }

func TestAuditNotImplemented(t *testing.T) {
	sealer, _ := crypto.New(bytes.Repeat([]byte{7}, 32))
	reg := prometheus.NewRegistry()
	srv := New(Config{Backend: noAudit{}, Sealer: sealer, Token: testToken, Registry: reg, Metrics: NewMetrics(reg, nil)})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "not_implemented") {
		t.Fatalf("GET /v1/audit on a backend without the trail: %d %s", rec.Code, rec.Body)
	}
}
