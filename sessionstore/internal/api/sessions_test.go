package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	before := nowMs()
	s := e.create(createReq("12", "eyJ.jwt-one", "", 60_000, true, time.Hour))
	if !validID(s.ID) || s.UserID != "12" || s.Host != "a.localhost" || s.FamilyID != "" || s.UpstreamVersion != 1 ||
		s.StrapiJWT == nil || *s.StrapiJWT != "eyJ.jwt-one" || *s.StrapiRefresh != "up-eyJ.jwt-one" ||
		s.CreatedAt < before || s.LastSeenAt != s.CreatedAt || s.HostsLastSeen["a.localhost"] != s.CreatedAt ||
		s.ExpiresAt != s.CreatedAt+60_000 || len(s.Audience) != 2 || !s.Sliding || s.IdleTimeoutMs != 60_000 {
		t.Fatalf("created: %+v", s)
	}
	// Secrets are encrypted at rest.
	stored, err := e.backend.GetSession(t.Context(), s.ID, nowMs())
	if err != nil || strings.Contains(string(stored.JWT), "jwt-one") || len(stored.JWT) == 0 {
		t.Fatalf("stored jwt not sealed: %q %v", stored.JWT, err)
	}

	status, got := e.get(s.ID)
	if status != 200 || *got.StrapiJWT != "eyJ.jwt-one" || got.ExpiresAt != s.ExpiresAt {
		t.Fatalf("get = %d %+v", status, got)
	}

	var touched SessionBody
	e.must("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "b.localhost", "idleTimeoutMs": 120_000, "sliding": true}, 200, &touched)
	if ts := touched.Session; ts.HostsLastSeen["b.localhost"] < s.CreatedAt || ts.ExpiresAt < s.CreatedAt+120_000 || *ts.StrapiJWT != "eyJ.jwt-one" {
		t.Fatalf("touched: %+v", ts)
	}

	var up SessionBody
	e.must("PUT", "/v1/sessions/"+s.ID+"/upstream", map[string]any{"strapiJwt": "eyJ.jwt-two", "strapiRefresh": "", "expectVersion": 1, "absoluteExpiresAt": 0}, 200, &up)
	if up.Session.UpstreamVersion != 2 || *up.Session.StrapiJWT != "eyJ.jwt-two" || *up.Session.StrapiRefresh != "" {
		t.Fatalf("upstream: %+v", up.Session)
	}
	e.wantError("PUT", "/v1/sessions/"+s.ID+"/upstream", map[string]any{"strapiJwt": "eyJ.jwt-3", "expectVersion": 1}, 409, "conflict")
	if _, got = e.get(s.ID); *got.StrapiJWT != "eyJ.jwt-two" {
		t.Fatalf("conflicting CAS changed the jwt: %q", *got.StrapiJWT)
	}

	status, raw := e.call("GET", "/v1/users/12/sessions", nil)
	if status != 200 || strings.Contains(string(raw), "strapiJwt") || strings.Contains(string(raw), "strapiRefresh") || strings.Contains(string(raw), "jwt-two") {
		t.Fatalf("list = %d %s (must carry no secrets)", status, raw)
	}
	var list SessionsBody
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Sessions) != 1 || list.Sessions[0].ID != s.ID {
		t.Fatalf("list: %s", raw)
	}

	var del DeletedBody
	e.must("DELETE", "/v1/sessions/"+s.ID, nil, 200, &del)
	if del.Deleted != 1 {
		t.Fatalf("deleted = %d", del.Deleted)
	}
	e.wantError("GET", "/v1/sessions/"+s.ID, nil, 404, "not_found")
	e.wantError("DELETE", "/v1/sessions/"+s.ID, nil, 404, "not_found")
	e.wantError("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 1, "sliding": true}, 404, "not_found")
	e.must("GET", "/v1/users/12/sessions", nil, 200, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("list after delete: %d", len(list.Sessions))
	}
	if e.metric("sessionstore_sessions_created_total") != "1" || e.metric("sessionstore_sessions_revoked_total") != "1" {
		t.Fatalf("metrics: created=%s revoked=%s", e.metric("sessionstore_sessions_created_total"), e.metric("sessionstore_sessions_revoked_total"))
	}
}

func TestUpstreamUpdatesFamilyAndCap(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.old", "rt-1", 60_000, true, time.Hour))
	newCap := nowMs() + 30_000
	var up SessionBody
	e.must("PUT", "/v1/sessions/"+s.ID+"/upstream", map[string]any{"strapiJwt": "eyJ.new", "strapiRefresh": "up-new", "expectVersion": 1, "absoluteExpiresAt": newCap}, 200, &up)
	if up.Session.AbsoluteExpiresAt != newCap || up.Session.ExpiresAt > newCap {
		t.Fatalf("cap not applied: %+v", up.Session)
	}
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	if *rot.Session.StrapiJWT != "eyJ.new" || *rot.Session.StrapiRefresh != "up-new" {
		t.Fatalf("rotation did not use the family's updated credentials: %+v", rot.Session)
	}
}

func TestDeleteUserSessions(t *testing.T) {
	e := newEnv(t)
	a := e.create(createReq("7", "eyJ.a", "rt-a", 60_000, true, time.Hour))
	e.create(createReq("7", "eyJ.b", "", 60_000, true, time.Hour))
	e.create(createReq("7", "eyJ.c", "", 60_000, true, time.Hour))
	other := e.create(createReq("70", "eyJ.d", "", 60_000, true, time.Hour))
	var del DeletedBody
	e.must("DELETE", "/v1/users/7/sessions", nil, 200, &del)
	if del.Deleted != 3 {
		t.Fatalf("deleted = %d, want 3", del.Deleted)
	}
	if st, _ := e.get(a.ID); st != 404 {
		t.Fatalf("session of user after delete-all: %d", st)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-a", "rt-a2"), 404, "not_found")
	if st, _ := e.get(other.ID); st != 200 {
		t.Fatalf("other user's session: %d", st)
	}
	e.must("DELETE", "/v1/users/7/sessions", nil, 200, &del)
	if del.Deleted != 0 {
		t.Fatalf("second delete-all = %d", del.Deleted)
	}
}

func TestDeleteWithFamily(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("7", "eyJ.a", "rt-a", 60_000, true, time.Hour))
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-a", "rt-b"), 200, &rot)
	if st, _ := e.get(s.ID); st != 404 {
		t.Fatal("rotated-away session still there")
	}
	e.wantError("DELETE", "/v1/sessions/"+rot.Session.ID+"?family=maybe", nil, 400, "bad_request")
	var del DeletedBody
	e.must("DELETE", "/v1/sessions/"+rot.Session.ID+"?family=1", nil, 200, &del)
	if del.Deleted != 1 {
		t.Fatalf("deleted = %d", del.Deleted)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-b", "rt-c"), 404, "not_found")
}

func TestCountersAPI(t *testing.T) {
	e := newEnv(t)
	var c counterBody
	for i := int64(1); i <= 3; i++ {
		e.must("POST", "/v1/counters/login:ip:10.0.0.1/incr", map[string]any{"windowMs": 60_000, "by": 1}, 200, &c)
		if c.Count != i || c.ResetAt < nowMs()+50_000 {
			t.Fatalf("incr %d: %+v", i, c)
		}
	}
	e.must("POST", "/v1/counters/login:ip:10.0.0.1/incr", map[string]any{"windowMs": 60_000, "by": 0}, 200, &c)
	if c.Count != 3 {
		t.Fatalf("read: %+v", c)
	}
	var del DeletedBody
	e.must("DELETE", "/v1/counters/login:ip:10.0.0.1", nil, 200, &del)
	if del.Deleted != 1 {
		t.Fatalf("delete: %+v", del)
	}
	e.must("DELETE", "/v1/counters/login:ip:10.0.0.1", nil, 200, &del)
	if del.Deleted != 0 {
		t.Fatalf("second delete: %+v", del)
	}
	// A short window restarts.
	e.must("POST", "/v1/counters/w/incr", map[string]any{"windowMs": 50, "by": 2}, 200, &c)
	time.Sleep(80 * time.Millisecond)
	e.must("POST", "/v1/counters/w/incr", map[string]any{"windowMs": 50, "by": 1}, 200, &c)
	if c.Count != 1 {
		t.Fatalf("after window: %+v", c)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	status, raw := e.callAuth("GET", "/healthz", nil, "")
	if status != 200 || strings.TrimSpace(string(raw)) != `{"ok":true}` {
		t.Fatalf("healthz = %d %s", status, raw)
	}
	s := e.create(createReq("12", "eyJ.x", "", 60_000, true, time.Hour))
	e.get(s.ID)
	e.get(s.ID)
	_, metrics := e.callAuth("GET", "/metrics", nil, "")
	text := string(metrics)
	for _, want := range []string{
		`sessionstore_http_requests_total{code="200",route="GET /v1/sessions/{id}"} 2`,
		`sessionstore_http_requests_total{code="201",route="POST /v1/sessions"} 1`,
		`sessionstore_http_request_duration_seconds_bucket{code="200",route="GET /v1/sessions/{id}",le="+Inf"} 2`,
		`sessionstore_sessions_stored 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, s.ID) {
		t.Error("/metrics contains a raw session id")
	}
	// Unavailable once the backend is closed.
	if err := e.backend.Close(); err != nil {
		t.Fatal(err)
	}
	e.wantError("GET", "/healthz", nil, 503, "unavailable")
	e.wantError("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 1, "sliding": true}, 503, "unavailable")
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.x", "", 60_000, true, time.Hour))
	routes := [][2]string{
		{"POST", "/v1/sessions"}, {"GET", "/v1/sessions/" + s.ID}, {"POST", "/v1/sessions/" + s.ID + "/touch"},
		{"PUT", "/v1/sessions/" + s.ID + "/upstream"}, {"PUT", "/v1/sessions/" + s.ID + "/user"}, {"DELETE", "/v1/sessions/" + s.ID},
		{"GET", "/v1/users/12/sessions"}, {"DELETE", "/v1/users/12/sessions"}, {"POST", "/v1/refresh"},
		{"POST", "/v1/counters/k/incr"}, {"DELETE", "/v1/counters/k"}, {"GET", "/v1/nope"},
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + testToken, "Bearer " + testToken + "x", "Bearer " + testToken[:len(testToken)-1]} {
		for _, rt := range routes {
			status, raw := e.callAuth(rt[0], rt[1], `{}`, auth)
			if status != 401 || !strings.Contains(string(raw), `"code":"unauthorized"`) {
				t.Fatalf("%s %s with %q = %d %s, want 401", rt[0], rt[1], auth, status, raw)
			}
		}
	}
	// Nothing happened: the session is intact.
	if st, got := e.get(s.ID); st != 200 || got.LastSeenAt != s.LastSeenAt {
		t.Fatalf("unauthorized requests changed state: %d %+v", st, got)
	}
	// The scheme is case-insensitive, as in RFC 9110.
	if status, _ := e.callAuth("GET", "/v1/sessions/"+s.ID, nil, "bearer "+testToken); status != 200 {
		t.Fatalf("lower-case scheme = %d", status)
	}
	for _, open := range []string{"/healthz", "/metrics"} {
		if status, _ := e.callAuth("GET", open, nil, ""); status != 200 {
			t.Fatalf("%s without token = %d", open, status)
		}
	}
}
