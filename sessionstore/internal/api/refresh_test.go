package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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

func graceReq(token, next string, graceMs int64) map[string]any {
	q := refreshReq(token, next)
	q["reuseGraceMs"] = graceMs
	return q
}

// TestRefreshGrace: a spent token presented again within reuseGraceMs rotates (200, grace:true)
// without revoking anything; past the grace it is reuse (409) and the family goes, the sessions the
// grace minted included.
func TestRefreshGrace(t *testing.T) {
	e := newEnv(t)
	q := createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour)
	q["deviceId"], q["deviceName"] = "dev-1", "Firefox on macOS"
	s := e.create(q)

	status, raw := e.call("POST", "/v1/refresh", graceReq("rt-1", "rt-2", 10_000))
	var first refreshBody
	if status != 200 || json.Unmarshal(raw, &first) != nil || first.Grace || !strings.Contains(string(raw), `"grace":false`) {
		t.Fatalf("first rotation = %d %s", status, raw)
	}
	// The client lost that answer and retries with the same token.
	status, raw = e.call("POST", "/v1/refresh", graceReq("rt-1", "rt-3", 10_000))
	var retry refreshBody
	if status != 200 || json.Unmarshal(raw, &retry) != nil || !retry.Grace || !strings.Contains(string(raw), `"grace":true`) {
		t.Fatalf("retry within the grace = %d %s", status, raw)
	}
	n := retry.Session
	if n.ID == first.Session.ID || n.FamilyID != s.FamilyID || retry.ReplacedSessionID != s.ID || *n.StrapiJWT != "eyJ.jwt" ||
		n.DeviceID != "dev-1" || n.DeviceName != "Firefox on macOS" || retry.RefreshExpiresAt != first.RefreshExpiresAt {
		t.Fatalf("grace session = %+v (replaced %q)", n, retry.ReplacedSessionID)
	}
	for _, id := range []string{first.Session.ID, n.ID} {
		if st, _ := e.get(id); st != 200 {
			t.Fatalf("session %s after the grace rotation = %d", id, st)
		}
	}
	if e.metric("sessionstore_refresh_grace_total") != "1" || e.metric("sessionstore_refresh_reuse_total") != "0" ||
		e.metric("sessionstore_sessions_revoked_total") != "0" || e.metric("sessionstore_sessions_created_total") != "3" {
		t.Fatalf("metrics after a grace rotation: grace=%s reuse=%s revoked=%s created=%s", e.metric("sessionstore_refresh_grace_total"),
			e.metric("sessionstore_refresh_reuse_total"), e.metric("sessionstore_sessions_revoked_total"), e.metric("sessionstore_sessions_created_total"))
	}
	// The token the grace rotation issued rotates normally.
	var third refreshBody
	e.must("POST", "/v1/refresh", graceReq("rt-3", "rt-4", 10_000), 200, &third)
	if third.Grace || third.ReplacedSessionID != n.ID {
		t.Fatalf("rotating the grace token = %+v", third)
	}

	// Without a grace the same replay is reuse; here, past the grace.
	e.advance(10_001 * time.Millisecond)
	status, raw = e.call("POST", "/v1/refresh", graceReq("rt-1", "rt-5", 10_000))
	var reused reusedBody
	if status != 409 || json.Unmarshal(raw, &reused) != nil || reused.Error.Code != "refresh_reused" ||
		!slices.Equal(reused.Revoked.SessionIDs, sorted(first.Session.ID, third.Session.ID)) || reused.Revoked.FamilyID != s.FamilyID {
		t.Fatalf("replay after the grace = %d %s", status, raw)
	}
	e.wantError("POST", "/v1/refresh", graceReq("rt-4", "rt-6", 10_000), 404, "not_found")
	e.wantError("POST", "/v1/refresh", graceReq("rt-2", "rt-7", 300_000), 404, "not_found")
	if e.metric("sessionstore_refresh_grace_total") != "1" || e.metric("sessionstore_refresh_reuse_total") != "1" {
		t.Fatalf("metrics after reuse: grace=%s reuse=%s", e.metric("sessionstore_refresh_grace_total"), e.metric("sessionstore_refresh_reuse_total"))
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestRefreshGraceConcurrent: concurrent rotations of one token with a grace all answer 200, one
// of them spending it, each with a session of its own.
func TestRefreshGraceConcurrent(t *testing.T) {
	e := newEnv(t)
	e.create(createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour))
	const n = 10
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i], bodies[i] = e.call("POST", "/v1/refresh", graceReq("rt-1", fmt.Sprintf("rt-next-%d", i), 10_000))
		})
	}
	wg.Wait()
	spent, ids := 0, map[string]bool{}
	for i := range n {
		var rb refreshBody
		if statuses[i] != 200 || json.Unmarshal(bodies[i], &rb) != nil {
			t.Fatalf("rotation %d = %d %s", i, statuses[i], bodies[i])
		}
		if !rb.Grace {
			spent++
		}
		ids[rb.Session.ID] = true
	}
	if spent != 1 || len(ids) != n || e.count() != n || e.metric("sessionstore_refresh_grace_total") != fmt.Sprint(n-1) {
		t.Fatalf("spent by %d (want 1), %d sessions (want %d), %d stored, grace_total %s", spent, len(ids), n, e.count(), e.metric("sessionstore_refresh_grace_total"))
	}
}

// TestRefreshGraceLogs: a grace rotation is logged at info, naming the family and session by a
// prefix only, never a token hash.
func TestRefreshGraceLogs(t *testing.T) {
	var logs syncBuffer
	e := newEnvLog(t, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	s := e.create(createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour))
	e.must("POST", "/v1/refresh", graceReq("rt-1", "rt-2", 10_000), 200, nil)
	if strings.Contains(logs.String(), "grace") {
		t.Fatalf("a normal rotation logged a grace: %s", logs.String())
	}
	e.must("POST", "/v1/refresh", graceReq("rt-1", "rt-3", 10_000), 200, nil)
	var line struct {
		Level, Msg, Family string
		ReuseGraceMs       int64
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil || line.Level != "INFO" ||
		!strings.Contains(line.Msg, "reuse grace") || line.Family != shortID(s.FamilyID) || line.ReuseGraceMs != 10_000 {
		t.Fatalf("grace log = %q (%v)", logs.String(), err)
	}
	for _, secret := range []string{hashOf("rt-1"), hashOf("rt-3"), s.FamilyID, "eyJ.jwt"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log contains %q: %s", secret, logs.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
