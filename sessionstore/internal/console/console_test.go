package console

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
)

const token = "console-token-0123456789abcdef0123456789"

const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

type env struct {
	t       *testing.T
	srv     *httptest.Server
	backend *bolt.Store
	client  *http.Client
	changes []store.Change
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, backend: b}
	c, err := New(Config{Backend: b, Token: token, Recorded: func(ch store.Change, ok bool) {
		if ok {
			e.changes = append(e.changes, ch)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(c)
	t.Cleanup(func() { e.srv.Close(); _ = b.Close() })
	e.client = e.newClient()
	return e
}

func (e *env) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) get(c *http.Client, path string) (int, string) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		e.t.Fatalf("CSP %q", csp)
	}
	return resp.StatusCode, string(body)
}

func (e *env) post(c *http.Client, path string, form url.Values) (int, string, http.Header) {
	e.t.Helper()
	resp, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var reCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := reCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in %s", body)
	}
	return m[1]
}

// signIn signs c in and returns the CSRF token of its console session.
func (e *env) signIn(c *http.Client, tok string) int {
	e.t.Helper()
	_, body := e.get(c, "/login")
	st, _, _ := e.post(c, "/login", url.Values{"csrf": {csrfOf(e.t, body)}, "token": {tok}})
	return st
}

func (e *env) session(user, name, agent string, now int64) *store.Session {
	e.t.Helper()
	id := randomToken()[:43]
	s := &store.Session{ID: id, UserID: user, Username: name, Host: "a.localhost", DeviceName: agent, DeviceID: "dev-" + user,
		JWT: []byte("secret-jwt-value"), LoginAddr: "203.0.113.7", LastAddr: "203.0.113.8", CreatedAt: now, LastSeenAt: now,
		HostsLastSeen: map[string]int64{"a.localhost": now}, IdleTimeoutMs: 3_600_000, Sliding: true, ExpiresAt: now + 3_600_000, AbsoluteExpiresAt: now + 7_200_000}
	ctx := store.WithAudit(e.t.Context(), store.AuditNote{UserAgent: agent, Host: "a.localhost"})
	if _, err := e.backend.CreateSession(ctx, s, nil, nil, store.Limit{}); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/users", "/users?user=12", "/audit"} {
		if st, _ := e.get(e.client, p); st != http.StatusSeeOther {
			t.Fatalf("GET %s signed out: %d", p, st)
		}
	}
	for _, p := range []string{"/users/revoke", "/users/revoke-all", "/logout"} {
		if st, _, _ := e.post(e.client, p, url.Values{"user": {"12"}}); st != http.StatusUnauthorized {
			t.Fatalf("POST %s signed out: %d", p, st)
		}
	}
	if st := e.signIn(e.client, "wrong-"+token); st != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", st)
	}
	if st, _ := e.get(e.client, "/"); st != http.StatusSeeOther {
		t.Fatalf("after a wrong token: %d", st)
	}
	if st := e.signIn(e.client, token); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	u, _ := url.Parse(e.srv.URL)
	var ck *http.Cookie
	for _, c := range e.client.Jar.Cookies(u) {
		if c.Name == cookieSession {
			ck = c
		}
	}
	if ck == nil || ck.Value == token {
		t.Fatalf("session cookie %+v", ck)
	}
	for _, p := range []string{"/", "/users", "/audit"} {
		if st, body := e.get(e.client, p); st != http.StatusOK || strings.Contains(body, token) {
			t.Fatalf("GET %s signed in: %d", p, st)
		}
	}
	// Sign-out ends the console session.
	_, body := e.get(e.client, "/")
	if st, _, _ := e.post(e.client, "/logout", url.Values{"csrf": {csrfOf(t, body)}}); st != http.StatusSeeOther {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := e.get(e.client, "/"); st != http.StatusSeeOther {
		t.Fatalf("after logout: %d", st)
	}
}

func TestCookieFlags(t *testing.T) {
	e := newEnv(t)
	_, body := e.get(e.client, "/login")
	_, _, hdr := e.post(e.client, "/login", url.Values{"csrf": {csrfOf(t, body)}, "token": {token}})
	found := false
	for _, h := range hdr.Values("Set-Cookie") {
		if strings.HasPrefix(h, cookieSession+"=") {
			found = true
			if !strings.Contains(h, "HttpOnly") || !strings.Contains(h, "SameSite=Strict") {
				t.Fatalf("cookie %q", h)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

func TestCSRFEnforced(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	s := e.session("12", "alice", "Firefox 133 on Linux", now)
	// The sign-in form needs its own token.
	if st, _, _ := e.post(e.client, "/login", url.Values{"token": {token}}); st != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF: %d", st)
	}
	e.signIn(e.client, token)
	for _, f := range []url.Values{{"user": {"12"}, "session": {s.ID}}, {"user": {"12"}, "session": {s.ID}, "csrf": {"forged"}}} {
		if st, _, _ := e.post(e.client, "/users/revoke", f); st != http.StatusForbidden {
			t.Fatalf("revoke with %v: %d", f, st)
		}
		if st, _, _ := e.post(e.client, "/users/revoke-all", f); st != http.StatusForbidden {
			t.Fatalf("revoke-all with %v: %d", f, st)
		}
	}
	if _, err := e.backend.GetSession(t.Context(), s.ID, now); err != nil {
		t.Fatalf("a forged revoke removed the session: %v", err)
	}
	// Another console session's token is not this one's.
	other := e.newClient()
	e.signIn(other, token)
	_, body := e.get(other, "/users?user=12")
	if st, _, _ := e.post(e.client, "/users/revoke", url.Values{"user": {"12"}, "session": {s.ID}, "csrf": {csrfOf(t, body)}}); st != http.StatusForbidden {
		t.Fatalf("revoke with another session's CSRF token: %d", st)
	}
}

func TestRevokeAndRevokeAll(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	s1 := e.session("12", "alice", "Firefox 133 on Linux", now)
	s2 := e.session("12", "alice", "Chrome 131 on Android", now+1)
	s3 := e.session("12", "alice", "Safari 18 on iOS", now+2)
	e.signIn(e.client, token)
	st, body := e.get(e.client, "/users?q=ALI")
	if st != http.StatusOK || !strings.Contains(body, `href="/users?user=12"`) || !strings.Contains(body, "alice") {
		t.Fatalf("search: %d %s", st, body)
	}
	_, body = e.get(e.client, "/users?user=12")
	for _, s := range []*store.Session{s1, s2, s3} {
		if !strings.Contains(body, s.DeviceName) || !strings.Contains(body, `data-session="`+s.ID+`"`) {
			t.Fatalf("user page lacks %s", s.DeviceName)
		}
	}
	if strings.Contains(body, "secret-jwt-value") {
		t.Fatal("a secret in the page")
	}
	st, _, hdr := e.post(e.client, "/users/revoke", url.Values{"user": {"12"}, "session": {s1.ID}, "csrf": {csrfOf(t, body)}})
	if st != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "done=revoked") {
		t.Fatalf("revoke: %d %s", st, hdr.Get("Location"))
	}
	if _, err := e.backend.GetSession(t.Context(), s1.ID, now); err == nil {
		t.Fatal("revoked session still live")
	}
	if len(e.changes) != 1 || e.changes[0].SessionIDs[0] != s1.ID {
		t.Fatalf("changes told: %+v", e.changes)
	}
	// Another user's id as owner revokes nothing.
	e.post(e.client, "/users/revoke", url.Values{"user": {"13"}, "session": {s2.ID}, "csrf": {csrfOf(t, body)}})
	if _, err := e.backend.GetSession(t.Context(), s2.ID, now); err != nil {
		t.Fatal("the owner guard did not hold")
	}
	if st, _, _ := e.post(e.client, "/users/revoke", url.Values{"user": {"12"}, "session": {"../x"}, "csrf": {csrfOf(t, body)}}); st != http.StatusBadRequest {
		t.Fatalf("bad id: %d", st)
	}
	if st, _, _ := e.post(e.client, "/users/revoke-all", url.Values{"user": {"12"}, "csrf": {csrfOf(t, body)}}); st != http.StatusSeeOther {
		t.Fatalf("revoke-all: %d", st)
	}
	if l, _ := e.backend.ListUserSessions(t.Context(), "12", now); len(l) != 0 {
		t.Fatalf("left: %d", len(l))
	}
	// The audit page shows the console's revocations.
	_, body = e.get(e.client, "/audit?user=12&kind=revoked")
	if !strings.Contains(body, "console") || !strings.Contains(body, "revoked") {
		t.Fatalf("audit page: %s", body)
	}
	_, body = e.get(e.client, "/audit?kind=logout_all&since=1h")
	if !strings.Contains(body, "logout_all") {
		t.Fatal("logout_all not in the audit page")
	}
	_, body = e.get(e.client, "/audit?kind=<b>")
	if !strings.Contains(body, "Unknown kind.") {
		t.Fatal("bad kind accepted")
	}
}

func TestHostileTextEscaped(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.session("12", hostile, hostile, now)
	fail := store.WithAudit(t.Context(), store.AuditNote{Kind: store.AuditLoginFailed, Username: hostile, UserAgent: hostile})
	if _, err := e.backend.IncrCounter(fail, "fail:x", 60_000, 1, now); err != nil {
		t.Fatal(err)
	}
	e.signIn(e.client, token)
	for _, p := range []string{"/", "/users?q=" + url.QueryEscape("<script>"), "/users?user=12", "/audit", "/users?q=" + url.QueryEscape(hostile)} {
		st, body := e.get(e.client, p)
		if st != http.StatusOK {
			t.Fatalf("%s: %d", p, st)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") || strings.Contains(body, "onerror=alert") && !strings.Contains(body, "&lt;img") {
			t.Fatalf("%s renders hostile text unescaped:\n%s", p, body)
		}
		if p != "/" && !strings.Contains(body, "&lt;script&gt;") {
			t.Fatalf("%s does not show the hostile text escaped", p)
		}
	}
}

func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		if st := e.signIn(e.client, "wrong"); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, st)
		}
	}
	if st := e.signIn(e.client, "wrong"); st != http.StatusTooManyRequests {
		t.Fatalf("6th failure: %d", st)
	}
	// Even the right token waits out the window.
	if st := e.signIn(e.client, token); st != http.StatusTooManyRequests {
		t.Fatalf("right token while limited: %d", st)
	}
}

func TestLimiterWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(2, time.Minute, 3, func() time.Time { return now })
	l.fail("a")
	l.fail("a")
	if !l.blocked("a") || l.blocked("b") {
		t.Fatal("per address")
	}
	l.fail("b")
	if !l.blocked("c") {
		t.Fatal("total")
	}
	now = now.Add(time.Minute)
	if l.blocked("a") {
		t.Fatal("window did not roll")
	}
}

func TestSessionExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAuthenticator(token, time.Hour, func() time.Time { return now })
	id, _ := a.start()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: cookieSession, Value: id})
	if _, s := a.lookup(r); s == nil {
		t.Fatal("fresh session not found")
	}
	now = now.Add(time.Hour)
	if _, s := a.lookup(r); s != nil {
		t.Fatal("expired session accepted")
	}
}

func TestChart(t *testing.T) {
	now := int64(100 * 3_600_000)
	c := buildChart([]store.AuditEvent{{Kind: store.AuditLogin, At: now - 1}, {Kind: store.AuditLogin, At: now - 2}, {Kind: store.AuditLockout, At: now - 23*3_600_000 - 1},
		{Kind: store.AuditLogin, At: now - 25*3_600_000}, {Kind: store.AuditRevoked, At: now - 1}}, now)
	if c.Series[0].Total != 2 || c.Series[0].Counts[23] != 2 || c.Series[2].Counts[0] != 1 || c.Max != 2 {
		t.Fatalf("chart %+v", c.Series)
	}
}
