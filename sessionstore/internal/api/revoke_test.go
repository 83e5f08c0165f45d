package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// revoke decodes a DELETE answer and also reports which top-level keys it had.
func (e *env) revoke(path string) (RevokedBody, map[string]json.RawMessage) {
	e.t.Helper()
	var keys map[string]json.RawMessage
	var out RevokedBody
	status, raw := e.call("DELETE", path, nil)
	if status != 200 || json.Unmarshal(raw, &keys) != nil || json.Unmarshal(raw, &out) != nil {
		e.t.Fatalf("DELETE %s = %d %s", path, status, raw)
	}
	return out, keys
}

func wantRevoked(t *testing.T, what string, got RevokedBody, deleted int, user string, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	if ids == nil {
		ids = []string{}
	}
	if got.Deleted != deleted || got.UserID != user || got.SessionIDs == nil || !slices.Equal(got.SessionIDs, ids) {
		t.Fatalf("%s = %+v, want deleted %d of user %q, sessionIds %v", what, got, deleted, user, ids)
	}
}

// TestRevokeExpiredSessionEndsFamily: the plugin's logout of a session that idled out still ends its
// refresh family, so the browser's refresh token mints nothing.
func TestRevokeExpiredSessionEndsFamily(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	e.advance(61 * time.Second)
	if st, _ := e.get(s.ID); st != 404 {
		t.Fatalf("idle-expired session = %d", st)
	}
	e.wantError("DELETE", "/v1/sessions/"+s.ID, nil, 404, "not_found") // alone: nothing to revoke
	got, _ := e.revoke("/v1/sessions/" + s.ID + "?family=1")
	wantRevoked(t, "revoke with family", got, 0, "12", s.ID) // its record was still stored
	e.wantError("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 404, "not_found")
	e.wantError("DELETE", "/v1/sessions/"+s.ID+"?family=1", nil, 404, "not_found")
	if e.metric("sessionstore_sessions_revoked_total") != "0" {
		t.Fatalf("an expired session counted as revoked: %s", e.metric("sessionstore_sessions_revoked_total"))
	}
}

// TestRevokeRotatedAwaySessionEndsFamily: a session id replaced by a refresh (the browser's cookie
// still names it) revokes the family, the successor session included.
func TestRevokeRotatedAwaySessionEndsFamily(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	e.wantError("DELETE", "/v1/sessions/"+s.ID, nil, 404, "not_found")
	got, _ := e.revoke("/v1/sessions/" + s.ID + "?family=true")
	wantRevoked(t, "revoke rotated-away with family", got, 1, "12", rot.Session.ID)
	if st, _ := e.get(rot.Session.ID); st != 404 {
		t.Fatalf("successor after revoke = %d", st)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-2", "rt-3"), 404, "not_found")
	e.wantError("DELETE", "/v1/sessions/"+s.ID+"?family=1", nil, 404, "not_found")
	e.wantError("DELETE", "/v1/sessions/"+strings.Repeat("Q", 43)+"?family=1", nil, 404, "not_found")
}

// TestRevokeOwnerGuard: DELETE …?userId= revokes only that user's session or, for one that
// already ended, that user's refresh family; another user's answers like an unknown id and
// changes nothing (the plugin revokes by id on a user's behalf and cannot see whose an ended
// session was).
func TestRevokeOwnerGuard(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	path := "/v1/sessions/" + s.ID
	e.wantError("DELETE", path+"?family=1&userId=13", nil, 404, "not_found")
	e.wantError("DELETE", path+"?userId=13", nil, 404, "not_found")
	e.wantError("DELETE", path+"?family=1&userId=1%202", nil, 400, "bad_request")
	if st, _ := e.get(s.ID); st != 200 {
		t.Fatalf("live session after refused revokes = %d", st)
	}

	e.advance(61 * time.Second) // idled out; the family lives on
	e.wantError("DELETE", path+"?family=1&userId=13", nil, 404, "not_found")
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot) // the family still mints
	// Rotated away now: the family is the only record left that says whose it is.
	e.wantError("DELETE", path+"?family=1&userId=13", nil, 404, "not_found")
	if st, _ := e.get(rot.Session.ID); st != 200 {
		t.Fatalf("successor after refused revoke = %d", st)
	}

	got, _ := e.revoke(path + "?family=1&userId=12")
	wantRevoked(t, "owner revokes", got, 1, "12", rot.Session.ID)
	e.wantError("POST", "/v1/refresh", refreshReq("rt-2", "rt-3"), 404, "not_found")
	if e.metric("sessionstore_sessions_revoked_total") != "1" {
		t.Fatalf("revoked_total = %s, want 1", e.metric("sessionstore_sessions_revoked_total"))
	}
}

// TestDeleteNamesSessions: both revocations say exactly which sessions they removed.
func TestDeleteNamesSessions(t *testing.T) {
	e := newEnv(t)
	e.create(createReq("7", "eyJ.a", "rt-a", 60_000, true, time.Hour))
	b := e.create(createReq("7", "eyJ.b", "", 60_000, true, time.Hour))
	c := e.create(createReq("7", "eyJ.c", "", 60_000, true, time.Hour))
	e.create(createReq("70", "eyJ.d", "", 60_000, true, time.Hour))

	got, keys := e.revoke("/v1/sessions/" + b.ID)
	wantRevoked(t, "delete one", got, 1, "7", b.ID)
	if len(keys) != 3 {
		t.Fatalf("delete one: keys %v, want deleted, sessionIds, userId", keys)
	}
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-a", "rt-a2"), 200, &rot)
	got, keys = e.revoke("/v1/users/7/sessions")
	wantRevoked(t, "delete user", got, 2, "", rot.Session.ID, c.ID)
	if _, ok := keys["userId"]; ok || len(keys) != 2 {
		t.Fatalf("delete user: keys %v, want deleted, sessionIds", keys)
	}
	status, raw := e.call("DELETE", "/v1/users/7/sessions", nil)
	if status != 200 || strings.TrimSpace(string(raw)) != `{"deleted":0,"sessionIds":[]}` {
		t.Fatalf("second delete user = %d %s", status, raw)
	}
}

// TestReuseNamesRevokedSessions: a 409 refresh_reused says whose family ended and which sessions,
// on the first replay and (with no sessions left) on every later one.
func TestReuseNamesRevokedSessions(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	type reused struct {
		Error   errorDetail `json:"error"`
		Revoked *revokedSet `json:"revoked"`
	}
	replay := func(next string) reused {
		t.Helper()
		status, raw := e.call("POST", "/v1/refresh", refreshReq("rt-1", next))
		var out reused
		if status != 409 || json.Unmarshal(raw, &out) != nil || out.Error.Code != "refresh_reused" || out.Error.Message == "" || out.Revoked == nil {
			t.Fatalf("replay = %d %s", status, raw)
		}
		return out
	}
	first := replay("rt-3")
	if r := first.Revoked; r.UserID != "12" || r.FamilyID != s.FamilyID || !slices.Equal(r.SessionIDs, []string{rot.Session.ID}) {
		t.Fatalf("first replay revoked %+v, want user 12, family %s, session %s", r, s.FamilyID, rot.Session.ID)
	}
	later := replay("rt-4")
	if r := later.Revoked; r.UserID != "12" || r.FamilyID != s.FamilyID || r.SessionIDs == nil || len(r.SessionIDs) != 0 {
		t.Fatalf("later replay revoked %+v", r)
	}
	// Other errors carry no "revoked".
	status, raw := e.call("POST", "/v1/refresh", refreshReq("rt-2", "rt-5"))
	if status != 404 || strings.Contains(string(raw), "revoked") {
		t.Fatalf("unknown token = %d %s", status, raw)
	}
}
