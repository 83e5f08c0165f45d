package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The audit trail (store.AuditLog): every state change records its event in the same call, with
// what the caller's store.AuditNote said; ListAudit filters and pages newest first; SweepAudit
// removes old events in bounded batches. A backend without the trail skips these cases.

func auditLog(t *testing.T, b store.Backend) store.AuditLog {
	t.Helper()
	a, ok := b.(store.AuditLog)
	if !ok {
		t.Skip("this backend keeps no audit trail (store.AuditLog)")
	}
	return a
}

func noted(reason string) context.Context {
	return store.WithAudit(ctx, store.AuditNote{Host: "a.localhost", ClientAddr: "203.0.113.9",
		UserAgent: "<script>alert(1)</script> on Linux", Reason: reason})
}

// allAudit reads every event matching q, following the cursor with pages of 2.
func allAudit(t *testing.T, a store.AuditLog, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	q.Limit = 2
	var out []store.AuditEvent
	for range 100 {
		page, err := a.ListAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if page.Next == 0 {
			return out
		}
		q.Cursor = page.Next
	}
	t.Fatal("ListAudit paging does not end")
	return nil
}

func kinds(events []store.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Kind
	}
	return out
}

//nolint:gocyclo,funlen // one scenario, every state change then its events, read top to bottom
func testAudit(t *testing.T, b store.Backend) {
	a := auditLog(t, b)
	s1 := newSession("12", t0, 60_000, t0+600_000)
	s1.Username = "<b>alice</b>"
	f1, tok1 := withFamily(s1, t0+600_000)
	f1.Username = s1.Username
	if _, err := b.CreateSession(noted("login"), s1, f1, tok1, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, b, s1.ID, t0)
	if got.Username != "<b>alice</b>" {
		t.Fatalf("username = %q", got.Username)
	}
	// A rotation's session carries the family's username.
	minted := NewID()
	next := NewHash()
	res, err := b.RotateRefresh(noted(""), store.Rotation{TokenHash: tok1.Hash, NewTokenHash: next, Now: t0 + 10, NewSession: rebuild(minted, t0+10, 60_000)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.Username != "<b>alice</b>" || mustGet(t, b, minted, t0+10).Username != "<b>alice</b>" {
		t.Fatalf("minted session's username = %q", res.Session.Username)
	}
	// A replay: refresh_reuse naming the revoked session.
	_, err = b.RotateRefresh(noted(""), store.Rotation{TokenHash: tok1.Hash, NewTokenHash: NewHash(), Now: t0 + 20, NewSession: rebuild(NewID(), t0+20, 60_000)})
	wantErr(t, "replay", err, store.ErrReused)

	s2 := newSession("12", t0+30, 60_000, t0+600_000)
	s3 := newSession("12", t0+31, 60_000, t0+600_000)
	s3.DeviceID = "dev-1"
	for _, s := range []*store.Session{s2, s3} {
		if _, err := b.CreateSession(noted("login"), s, nil, nil, store.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	// At a cap of 2 the least recently used (s2) is evicted.
	s4 := newSession("12", t0+40, 60_000, t0+600_000)
	if _, err := b.CreateSession(noted("login"), s4, nil, nil, store.Limit{Max: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteDeviceSessions(noted("logout"), "12", "dev-1", t0+50); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteSession(noted("logout"), s4.ID, store.Deletion{WithFamily: true, Now: t0 + 60}); err != nil {
		t.Fatal(err)
	}
	s5 := newSession("13", t0+70, 60_000, t0+600_000)
	if _, err := b.CreateSession(noted("login"), s5, nil, nil, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteSession(noted("console"), s5.ID, store.Deletion{Now: t0 + 80}); err != nil {
		t.Fatal(err)
	}
	// Refused calls record nothing.
	if _, err := b.DeleteSession(noted("console"), s5.ID, store.Deletion{Now: t0 + 81}); err == nil {
		t.Fatal("second delete succeeded")
	}
	if _, err := b.DeleteUserSessions(noted("password_change"), "12", t0+90); err != nil {
		t.Fatal(err)
	}
	// Counters record only when the note names a failed login or a lockout.
	failed := store.WithAudit(ctx, store.AuditNote{Kind: store.AuditLoginFailed, Username: "alice", ClientAddr: "203.0.113.9"})
	if _, err := b.IncrCounter(failed, "fail:x", 60_000, 1, t0+100); err != nil {
		t.Fatal(err)
	}
	if _, err := b.IncrCounter(failed, "fail:x", 60_000, 0, t0+101); err != nil { // a read
		t.Fatal(err)
	}
	if _, err := b.IncrCounter(ctx, "rl:x", 60_000, 1, t0+102); err != nil { // no note
		t.Fatal(err)
	}
	locked := store.WithAudit(ctx, store.AuditNote{Kind: store.AuditLockout, Username: "alice"})
	if _, err := b.IncrCounter(locked, "locked:x", 60_000, 1, t0+110); err != nil {
		t.Fatal(err)
	}

	all := allAudit(t, a, store.AuditQuery{})
	want := []string{store.AuditLockout, store.AuditLoginFailed, store.AuditLogoutAll, store.AuditRevoked, store.AuditLogin,
		store.AuditLogout, store.AuditLogout, store.AuditLogin, store.AuditEvicted, store.AuditLogin, store.AuditLogin,
		store.AuditReuse, store.AuditRefresh, store.AuditLogin}
	if !slices.Equal(kinds(all), want) {
		t.Fatalf("kinds = %v\nwant    %v", kinds(all), want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID || all[i].At > all[i-1].At {
			t.Fatalf("events not newest first: %+v before %+v", all[i-1], all[i])
		}
	}
	login := all[len(all)-1]
	if login.UserID != "12" || login.Username != "<b>alice</b>" || login.SessionID != s1.ID || login.Host != "a.localhost" ||
		login.ClientAddr != "203.0.113.9" || login.UserAgent != "<script>alert(1)</script> on Linux" || login.Reason != "login" || login.At != t0 {
		t.Fatalf("login event = %+v", login)
	}
	refresh := all[len(all)-2]
	if refresh.SessionID != minted || !slices.Equal(refresh.SessionIDs, []string{s1.ID}) || refresh.Username != "<b>alice</b>" {
		t.Fatalf("refresh event = %+v", refresh)
	}
	if reuse := all[len(all)-3]; !slices.Equal(reuse.SessionIDs, []string{minted}) || reuse.UserID != "12" {
		t.Fatalf("reuse event = %+v", reuse)
	}
	if ev := all[8]; !slices.Equal(ev.SessionIDs, []string{s2.ID}) {
		t.Fatalf("evicted event = %+v, want %s", ev, s2.ID)
	}
	if lo := all[3]; lo.Kind != store.AuditRevoked || lo.Reason != "console" || lo.UserID != "13" || lo.Username != "" {
		t.Fatalf("console revoke = %+v", lo)
	}
	if lo := all[5]; lo.Kind != store.AuditLogout || !slices.Equal(lo.SessionIDs, []string{s4.ID}) {
		t.Fatalf("logout of s4 = %+v", lo)
	}
	if lk := all[0]; lk.Username != "alice" || lk.UserID != "" || lk.At != t0+110 {
		t.Fatalf("lockout = %+v", lk)
	}

	// Filters.
	if got := kinds(allAudit(t, a, store.AuditQuery{UserID: "13"})); !slices.Equal(got, []string{store.AuditRevoked, store.AuditLogin}) {
		t.Fatalf("user 13: %v", got)
	}
	if got := allAudit(t, a, store.AuditQuery{Kind: store.AuditLogin}); len(got) != 5 {
		t.Fatalf("logins: %d", len(got))
	}
	if got := kinds(allAudit(t, a, store.AuditQuery{Since: t0 + 60, Until: t0 + 100})); !slices.Equal(got,
		[]string{store.AuditLogoutAll, store.AuditRevoked, store.AuditLogin, store.AuditLogout}) {
		t.Fatalf("since/until: %v", got)
	}
	page, err := a.ListAudit(ctx, store.AuditQuery{Limit: 3})
	if err != nil || len(page.Events) != 3 || page.Next != page.Events[2].ID {
		t.Fatalf("first page = %+v, %v", page, err)
	}

	// Retention: the events before t0+50 go, 3 a call.
	n, more, err := a.SweepAudit(ctx, t0+50, 3)
	if err != nil || n != 3 || !more {
		t.Fatalf("SweepAudit = %d, %v, %v", n, more, err)
	}
	total := n
	for more {
		if n, more, err = a.SweepAudit(ctx, t0+50, 3); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 7 {
		t.Fatalf("swept %d, want 7", total)
	}
	if left := allAudit(t, a, store.AuditQuery{}); len(left) != len(all)-7 || left[len(left)-1].At < t0+50 {
		t.Fatalf("after the sweep: %v", kinds(left))
	}
}

// testDirectory: the console's user search and live counts (store.Directory).
func testDirectory(t *testing.T, b store.Backend) {
	d, ok := b.(store.Directory)
	if !ok {
		t.Skip("this backend has no store.Directory")
	}
	mk := func(user, name, host string, at, idle int64) {
		s := newSession(user, at, idle, t0+600_000)
		s.Username, s.Host = name, host
		mustCreate(t, b, s, nil, nil)
	}
	mk("12", "Alice", "a.localhost", t0, 60_000)
	mk("12", "alice2", "b.localhost", t0+1, 60_000)
	mk("13", "bob", "a.localhost", t0, 60_000)
	mk("14", "alison", "a.localhost", t0, 5) // expired at t0+5
	got, err := d.SearchUsers(ctx, "ALI", t0+10, 10)
	if err != nil || len(got) != 1 || got[0] != (store.UserMatch{UserID: "12", Username: "alice2", Sessions: 2}) {
		t.Fatalf("SearchUsers(ALI) = %+v, %v", got, err)
	}
	if got, _ := d.SearchUsers(ctx, "13", t0+10, 10); len(got) != 1 || got[0].Username != "bob" {
		t.Fatalf("SearchUsers(13) = %+v", got)
	}
	if got, _ := d.SearchUsers(ctx, "", t0+10, 1); len(got) != 1 || got[0].UserID != "12" {
		t.Fatalf("SearchUsers('', 1) = %+v", got)
	}
	total, per, err := d.LiveSessions(ctx, t0+10)
	if err != nil || total != 3 || per["a.localhost"] != 2 || per["b.localhost"] != 1 || len(per) != 2 {
		t.Fatalf("LiveSessions = %d %v %v", total, per, err)
	}
}
