package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func cappedReq(user, jwt, refreshToken string, maxSessions int, limit string) map[string]any {
	q := createReq(user, jwt, refreshToken, 60_000, true, time.Hour)
	q["maxSessions"] = maxSessions
	if limit != "" {
		q["sessionLimit"] = limit
	}
	return q
}

// createCapped creates and returns the session and what the cap evicted.
func (e *env) createCapped(q map[string]any) (*Session, []string) {
	e.t.Helper()
	status, raw := e.call("POST", "/v1/sessions", q)
	var out CreatedBody
	if status != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Session == nil || out.Evicted == nil {
		e.t.Fatalf("create = %d %s, want 201 with session and evicted", status, raw)
	}
	return out.Session, out.Evicted
}

// TestSessionLimitEvictOldest: the third login at cap 2 revokes the least recently used session
// with its refresh family, names it in "evicted", counts it and puts it in the change feed.
func TestSessionLimitEvictOldest(t *testing.T) {
	e := newEnv(t)
	head := e.changes("").Seq
	a, ev := e.createCapped(cappedReq("12", "eyJ.a", "rt-a", 2, ""))
	if len(ev) != 0 {
		t.Fatalf("first create evicted %v", ev)
	}
	b, _ := e.createCapped(cappedReq("12", "eyJ.b", "", 2, "evictOldest"))
	e.advance(time.Second) // b is used after a: a is the least recently used
	e.must("POST", "/v1/sessions/"+b.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 60_000, "sliding": true}, 200, nil)
	c, ev := e.createCapped(cappedReq("12", "eyJ.c", "", 2, ""))
	if !slices.Equal(ev, []string{a.ID}) {
		t.Fatalf("evicted %v, want [%s]", ev, a.ID)
	}
	if st, _ := e.get(a.ID); st != 404 {
		t.Fatalf("evicted session = %d", st)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-a", "rt-a2"), 404, "not_found") // its family went too
	for _, s := range []*Session{b, c} {
		if st, _ := e.get(s.ID); st != 200 {
			t.Fatalf("session %s = %d", s.ID, st)
		}
	}
	got := e.changes(fmt.Sprintf("?since=%d", head))
	if len(got.Changes) != 1 || got.Changes[0].Kind != "revoked" || got.Changes[0].UserID != "12" || !slices.Equal(got.Changes[0].SessionIDs, []string{a.ID}) {
		t.Fatalf("changes = %+v", got.Changes)
	}
	if e.metric("sessionstore_sessions_evicted_total") != "1" || e.metric("sessionstore_sessions_revoked_total") != "1" {
		t.Fatalf("evicted_total %s, revoked_total %s", e.metric("sessionstore_sessions_evicted_total"), e.metric("sessionstore_sessions_revoked_total"))
	}
	// Without a cap, "evicted" is still there, empty.
	status, raw := e.call("POST", "/v1/sessions", createReq("12", "eyJ.d", "", 60_000, true, time.Hour))
	if status != 201 || !strings.Contains(string(raw), `"evicted":[]`) {
		t.Fatalf("uncapped create = %d %s", status, raw)
	}
}

// TestSessionLimitRefuse: at the cap with "refuse" the login is 409 session_limit in the error
// shape, and nothing is created or revoked.
func TestSessionLimitRefuse(t *testing.T) {
	e := newEnv(t)
	e.createCapped(cappedReq("12", "eyJ.a", "", 2, "refuse"))
	e.createCapped(cappedReq("12", "eyJ.b", "", 2, "refuse"))
	n := e.count()
	status, raw := e.call("POST", "/v1/sessions", cappedReq("12", "eyJ.c", "rt-c", 2, "refuse"))
	if status != http.StatusConflict || strings.TrimSpace(string(raw)) !=
		`{"error":{"code":"session_limit","message":"This account already has the maximum number of sessions"}}` {
		t.Fatalf("create at the cap = %d %s", status, raw)
	}
	if e.count() != n {
		t.Fatalf("a refused create stored a session: %d, want %d", e.count(), n)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-c", "rt-c2"), 404, "not_found")
	if e.metric("sessionstore_session_limit_refused_total") != "1" || e.metric("sessionstore_sessions_created_total") != "2" {
		t.Fatalf("refused_total %s, created_total %s", e.metric("sessionstore_session_limit_refused_total"), e.metric("sessionstore_sessions_created_total"))
	}
	// A refresh rotation is not a login: it is not refused at the cap.
	e.createCapped(cappedReq("13", "eyJ.d", "rt-d", 1, "refuse"))
	e.must("POST", "/v1/refresh", refreshReq("rt-d", "rt-d2"), 200, nil)
	if len(e.changes("?since=0").Changes) != 1 { // the rotation's replaced session only
		t.Fatalf("changes = %+v", e.changes("?since=0").Changes)
	}
}

func TestSessionLimitBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		field string
		value any
	}{
		{"negative cap", "maxSessions", -1},
		{"cap too large", "maxSessions", 10_001},
		{"cap not an integer", "maxSessions", 1.5},
		{"cap a string", "maxSessions", "2"},
		{"unknown limit", "sessionLimit", "evictNewest"},
		{"limit in another case", "sessionLimit", "Refuse"},
		{"limit not a string", "sessionLimit", true},
	} {
		q := cappedReq("12", "eyJ.x", "", 2, "")
		q[tc.field] = tc.value
		status, raw := e.call("POST", "/v1/sessions", q)
		if status != 400 || !strings.Contains(string(raw), `"code":"bad_request"`) {
			t.Errorf("%s: %d %s, want 400 bad_request", tc.name, status, raw)
		}
	}
	if e.count() != 0 {
		t.Fatalf("a refused create stored a session")
	}
	for _, ok := range []map[string]any{cappedReq("12", "eyJ.x", "", 0, "refuse"), cappedReq("12", "eyJ.y", "", 10_000, "evictOldest")} {
		e.createCapped(ok)
	}
}
