package api

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSetUser: PUT …/user stores the audience Strapi answered and when, on the session and its
// family, so a later refresh mints a session with them.
func TestSetUser(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	if s.RevalidatedAt != 0 {
		t.Fatalf("new session revalidatedAt = %d", s.RevalidatedAt)
	}
	status, raw := e.call("GET", "/v1/sessions/"+s.ID, nil)
	if status != 200 || !strings.Contains(string(raw), `"revalidatedAt":0`) {
		t.Fatalf("get = %d %s", status, raw)
	}
	e.advance(5 * time.Second)
	before := e.serverNow()
	aud := []string{"b.localhost", "*.example.org"}
	var up SessionBody
	e.must("PUT", "/v1/sessions/"+s.ID+"/user", map[string]any{"audience": aud}, 200, &up)
	u := up.Session
	if !slices.Equal(u.Audience, aud) || u.RevalidatedAt < before || u.RevalidatedAt > e.serverNow() ||
		u.StrapiJWT == nil || *u.StrapiJWT != "eyJ.a" || *u.StrapiRefresh != "up-eyJ.a" ||
		u.ExpiresAt != s.ExpiresAt || u.LastSeenAt != s.LastSeenAt || u.UpstreamVersion != 1 {
		t.Fatalf("after PUT user: %+v (created %+v)", u, s)
	}
	if st, got := e.get(s.ID); st != 200 || !slices.Equal(got.Audience, aud) || got.RevalidatedAt != u.RevalidatedAt {
		t.Fatalf("get after PUT user = %d %+v", st, got)
	}

	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	if !slices.Equal(rot.Session.Audience, aud) || rot.Session.RevalidatedAt != u.RevalidatedAt {
		t.Fatalf("rotated session: audience %v revalidatedAt %d, want %v %d", rot.Session.Audience, rot.Session.RevalidatedAt, aud, u.RevalidatedAt)
	}
	e.wantError("PUT", "/v1/sessions/"+s.ID+"/user", map[string]any{"audience": aud}, 404, "not_found") // rotated away
	e.must("PUT", "/v1/sessions/"+rot.Session.ID+"/user", `{"audience":[]}`, 200, &up)
	if up.Session.Audience == nil || len(up.Session.Audience) != 0 {
		t.Fatalf("empty audience: %+v", up.Session.Audience)
	}
	e.wantError("PUT", "/v1/sessions/"+strings.Repeat("A", 43)+"/user", `{"audience":[]}`, 404, "not_found")
	e.advance(2 * time.Minute) // past the idle window
	e.wantError("PUT", "/v1/sessions/"+rot.Session.ID+"/user", `{"audience":[]}`, 404, "not_found")
}
