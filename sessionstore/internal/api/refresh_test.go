package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour))
	if s.FamilyID == "" || !validID(s.FamilyID) {
		t.Fatalf("no family: %+v", s)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("unknown", "rt-x"), 404, "not_found")

	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	n := rot.Session
	if n.ID == s.ID || n.FamilyID != s.FamilyID || n.Host != "b.localhost" || n.UserID != "12" || *n.StrapiJWT != "eyJ.jwt" ||
		*n.StrapiRefresh != "up-eyJ.jwt" || n.AbsoluteExpiresAt > rot.RefreshExpiresAt || n.AbsoluteExpiresAt > n.CreatedAt+3_600_000 ||
		n.ExpiresAt != n.CreatedAt+60_000 || len(n.Audience) != 2 {
		t.Fatalf("rotated session: %+v (refreshExpiresAt %d)", n, rot.RefreshExpiresAt)
	}
	if st, _ := e.get(s.ID); st != 404 || rot.ReplacedSessionID != s.ID {
		t.Fatalf("old session after rotation: %d (replacedSessionId %q)", st, rot.ReplacedSessionID)
	}
	if st, got := e.get(n.ID); st != 200 || *got.StrapiJWT != "eyJ.jwt" {
		t.Fatalf("new session: %d", st)
	}

	// Replaying rt-1 revokes the family, the legitimate new session included.
	e.wantError("POST", "/v1/refresh", refreshReq("rt-1", "rt-3"), 409, "refresh_reused")
	if st, _ := e.get(n.ID); st != 404 {
		t.Fatalf("session of a revoked family: %d", st)
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-2", "rt-4"), 404, "not_found")
	e.wantError("POST", "/v1/refresh", refreshReq("rt-1", "rt-5"), 409, "refresh_reused")
	if e.metric("sessionstore_refresh_reuse_total") != "2" || e.metric("sessionstore_sessions_revoked_total") != "1" {
		t.Fatalf("metrics: reuse=%s revoked=%s", e.metric("sessionstore_refresh_reuse_total"), e.metric("sessionstore_sessions_revoked_total"))
	}
}

// TestConcurrency: 20 concurrent rotations of one token → exactly one 200, nineteen 409
// refresh_reused, and the reuse revokes the family, so the winner's session is gone too. Alongside,
// other clients create, touch and delete sessions.
func TestConcurrency(t *testing.T) {
	e := newEnv(t)
	e.create(createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour))

	const rotations = 20
	statuses := make([]int, rotations)
	bodies := make([][]byte, rotations)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range rotations {
		wg.Go(func() {
			<-start
			statuses[i], bodies[i] = e.call("POST", "/v1/refresh", refreshReq("rt-1", fmt.Sprintf("rt-next-%d", i)))
		})
	}
	const workers, each = 6, 15
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range each {
				var out SessionBody
				status, raw := e.call("POST", "/v1/sessions", createReq(fmt.Sprintf("w%d", w), "eyJ.w", "", 60_000, true, time.Hour))
				if status != 201 || json.Unmarshal(raw, &out) != nil {
					t.Errorf("create = %d %s", status, raw)
					return
				}
				if status, raw := e.call("POST", "/v1/sessions/"+out.Session.ID+"/touch", map[string]any{"host": "c.localhost", "idleTimeoutMs": 90_000, "sliding": true}); status != 200 {
					t.Errorf("touch = %d %s", status, raw)
					return
				}
				if i%3 == 0 {
					if status, raw := e.call("DELETE", "/v1/sessions/"+out.Session.ID, nil); status != 200 {
						t.Errorf("delete = %d %s", status, raw)
						return
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()

	var winner *Session
	reused := 0
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			var rb refreshBody
			if err := json.Unmarshal(bodies[i], &rb); err != nil {
				t.Fatal(err)
			}
			if winner != nil {
				t.Fatal("two rotations of one token succeeded")
			}
			winner = rb.Session
		case http.StatusConflict:
			var eb errorBody
			if err := json.Unmarshal(bodies[i], &eb); err != nil || eb.Error.Code != "refresh_reused" {
				t.Fatalf("409 body: %s", bodies[i])
			}
			reused++
		default:
			t.Fatalf("rotation %d = %d %s", i, st, bodies[i])
		}
	}
	if winner == nil || reused != rotations-1 {
		t.Fatalf("winners=%v reused=%d, want exactly one 200 and %d × 409", winner != nil, reused, rotations-1)
	}
	if st, _ := e.get(winner.ID); st != 404 {
		t.Fatalf("winner's session after reuse = %d, want 404 (family revoked)", st)
	}
	total := 0
	for w := range workers {
		var list SessionsBody
		e.must("GET", fmt.Sprintf("/v1/users/w%d/sessions", w), nil, 200, &list)
		total += len(list.Sessions)
	}
	if want := workers * (each - each/3); total != want {
		t.Fatalf("live sessions = %d, want %d", total, want)
	}
	if got := e.count(); got != int64(total) {
		t.Fatalf("stored count = %d, want %d", got, total)
	}
}
