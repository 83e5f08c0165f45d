package api

import (
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/sweep"
)

// TestExpiry: 1 s idle timeouts on the server's clock, moved forward (advance) rather than slept
// through, so a slow machine cannot shift the steps against each other (real time still passes
// between them: a few ms, well inside every margin below).
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	var moved time.Duration
	at := func(ms int) { // ms after the sessions were created
		d := time.Duration(ms)*time.Millisecond - moved
		e.advance(d)
		moved += d
	}
	touch := func(id string, sliding bool) *Session {
		t.Helper()
		var out SessionBody
		e.must("POST", "/v1/sessions/"+id+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 1000, "sliding": sliding}, 200, &out)
		return out.Session
	}
	slide := e.create(createReq("1", "eyJ.s", "", 1000, true, time.Hour))
	fixed := e.create(createReq("1", "eyJ.n", "", 1000, false, time.Hour))
	capped := e.create(createReq("1", "eyJ.c", "", 1000, true, 1400*time.Millisecond))

	at(500)
	if s := touch(slide.ID, true); s.ExpiresAt <= slide.ExpiresAt || s.ExpiresAt != s.LastSeenAt+1000 {
		t.Fatalf("sliding touch did not extend: %d → %d", slide.ExpiresAt, s.ExpiresAt)
	}
	if s := touch(fixed.ID, false); s.ExpiresAt != fixed.ExpiresAt {
		t.Fatalf("non-sliding touch moved the expiry: %d → %d", fixed.ExpiresAt, s.ExpiresAt)
	}
	if s := touch(capped.ID, true); s.ExpiresAt != capped.AbsoluteExpiresAt {
		t.Fatalf("capped touch: expiresAt %d, want the absolute cap %d", s.ExpiresAt, capped.AbsoluteExpiresAt)
	}

	at(1150) // past the first window of all three
	if st, _ := e.get(slide.ID); st != 200 {
		t.Fatalf("sliding session = %d after its first window, want 200", st)
	}
	e.wantError("GET", "/v1/sessions/"+fixed.ID, nil, 404, "not_found")
	e.wantError("POST", "/v1/sessions/"+fixed.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 1000, "sliding": true}, 404, "not_found")
	if s := touch(capped.ID, true); s.ExpiresAt != capped.AbsoluteExpiresAt {
		t.Fatalf("touch passed the absolute cap: %d > %d", s.ExpiresAt, capped.AbsoluteExpiresAt)
	}
	touch(slide.ID, true)

	at(1600) // past the cap
	e.wantError("GET", "/v1/sessions/"+capped.ID, nil, 404, "not_found")
	if st, _ := e.get(slide.ID); st != 200 {
		t.Fatalf("sliding session = %d, want 200", st)
	}
	var list SessionsBody
	e.must("GET", "/v1/users/1/sessions", nil, 200, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != slide.ID {
		t.Fatalf("list shows expired sessions: %+v", list.Sessions)
	}

	// Expired records are still stored until the sweeper runs, which removes exactly them.
	if n := e.count(); n != 3 {
		t.Fatalf("stored before sweep = %d, want 3", n)
	}
	sw := &sweep.Sweeper{Backend: e.backend, Interval: time.Hour, Batch: 1, OnSweep: e.metrics.OnSweep,
		Now: func() time.Time { return time.Now().Add(moved) }}
	res, err := sw.Once(t.Context())
	if err != nil || res.Sessions != 2 {
		t.Fatalf("sweep = %+v, %v; want 2 sessions", res, err)
	}
	if n := e.count(); n != 1 {
		t.Fatalf("stored after sweep = %d, want 1", n)
	}
	if got := e.metric("sessionstore_sessions_expired_total"); got != "2" {
		t.Fatalf("expired metric = %s, want 2", got)
	}
	if got := e.metric("sessionstore_sessions_stored"); got != "1" {
		t.Fatalf("stored gauge = %s, want 1", got)
	}
}
