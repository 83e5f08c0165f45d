package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// want is an expected change without its number.
type want struct {
	kind, user string
	at         int64
	ids        []string
}

func (w want) String() string {
	return fmt.Sprintf("%s user=%q at=+%d %v", w.kind, w.user, w.at-t0, w.ids)
}

// noErr returns a function failing t on an error, taking any call's two results: noErr(t)(b.Sweep(…)).
func noErr(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func allChanges(t *testing.T, b store.Backend) store.ChangePage {
	t.Helper()
	page, err := b.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return page
}

// wantChanges asserts the whole feed: exactly ws, in order, numbers strictly increasing, Head
// the last number and Oldest the first.
func wantChanges(t *testing.T, b store.Backend, ws ...want) []store.Change {
	t.Helper()
	page := allChanges(t, b)
	var got []string
	for _, c := range page.Changes {
		got = append(got, want{c.Kind, c.UserID, c.At, c.SessionIDs}.String())
	}
	var exp []string
	for _, w := range ws {
		ids := slices.Clone(w.ids)
		if ids == nil {
			ids = []string{}
		}
		slices.Sort(ids)
		exp = append(exp, want{w.kind, w.user, w.at, ids}.String())
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("changes:\n got  %q\n want %q", got, exp)
	}
	for i, c := range page.Changes {
		if c.SessionIDs == nil {
			t.Fatalf("change %d: SessionIDs nil", c.Seq)
		}
		if i > 0 && c.Seq <= page.Changes[i-1].Seq {
			t.Fatalf("sequence not strictly increasing: %d after %d", c.Seq, page.Changes[i-1].Seq)
		}
	}
	if n := len(page.Changes); n > 0 && (page.Head != page.Changes[n-1].Seq || page.Oldest != page.Changes[0].Seq) {
		t.Fatalf("Head %d Oldest %d, changes %d..%d", page.Head, page.Oldest, page.Changes[0].Seq, page.Changes[n-1].Seq)
	}
	return page.Changes
}

// testChanges: every operation that invalidates a cached session records exactly its change, in
// order; touches, creates, reads, refused operations, grace rotations and sweeps record nothing.
func testChanges(t *testing.T, b store.Backend) {
	if page := allChanges(t, b); page.Head != 0 || page.Oldest != 0 || len(page.Changes) != 0 || page.Changes == nil {
		t.Fatalf("empty feed = %+v", page)
	}
	s1 := newSession("12", t0, 60_000, t0+600_000)
	f1, tok1 := withFamily(s1, t0+600_000)
	mustCreate(t, b, s1, f1, tok1)
	s2 := newSession("12", t0, 60_000, t0+600_000)
	mustCreate(t, b, s2, nil, nil)
	short := newSession("12", t0, 10, t0+600_000)
	mustCreate(t, b, short, nil, nil)
	noErr(t)(b.TouchSession(ctx, s2.ID, store.Touch{Host: "b.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 1}))
	noErr(t)(b.TouchMany(ctx, []store.TouchOne{{ID: s1.ID, Touch: store.Touch{Host: "a.localhost", Now: t0 + 1}}}))
	mustGet(t, b, s1.ID, t0+1)
	noErr(t)(b.Sweep(ctx, t0+100, 100)) // sweeps `short`
	wantChanges(t, b)

	var ws []want
	noErr(t)(b.SetUser(ctx, s1.ID, store.UserUpdate{Audience: []string{"x"}, Now: t0 + 10}))
	ws = append(ws, want{store.ChangeChanged, "12", t0 + 10, []string{s1.ID}})
	up := store.Upstream{ExpectVersion: 1, JWT: []byte("j2"), SealFamily: func(string) ([]byte, []byte, error) { return nil, nil, nil }, Now: t0 + 11}
	noErr(t)(b.SetUpstream(ctx, s2.ID, up))
	ws = append(ws, want{store.ChangeChanged, "12", t0 + 11, []string{s2.ID}})
	wantChangedVersions(t, b, s1.ID, s2.ID, t0+10)
	_, err := b.SetUpstream(ctx, s2.ID, up) // version 1 is gone: a conflict records nothing
	wantErr(t, "stale upstream", err, store.ErrConflict)
	_, err = b.SetUser(ctx, NewID(), store.UserUpdate{Now: t0 + 11})
	wantErr(t, "SetUser absent", err, store.ErrNotFound)

	ws = append(ws, rotationChanges(t, b, tok1.Hash, s1.ID)...)

	// Deletes.
	noErr(t)(b.DeleteSession(ctx, s2.ID, store.Deletion{Now: t0 + 16}))
	ws = append(ws, want{store.ChangeRevoked, "12", t0 + 16, []string{s2.ID}})
	_, err = b.DeleteSession(ctx, s2.ID, store.Deletion{Now: t0 + 16})
	wantErr(t, "delete again", err, store.ErrNotFound)
	fs := newSession("12", t0, 60_000, t0+600_000)
	ff, ftok := withFamily(fs, t0+600_000)
	mustCreate(t, b, fs, ff, ftok)
	noErr(t)(b.DeleteSession(ctx, fs.ID, store.Deletion{WithFamily: true, Now: t0 + 17}))
	ws = append(ws, want{store.ChangeRevoked, "12", t0 + 17, []string{fs.ID}})

	dev := newSession("14", t0, 60_000, t0+600_000)
	dev.DeviceID = "d1"
	mustCreate(t, b, dev, nil, nil)
	if _, err := b.DeleteDeviceSessions(ctx, "14", "d2", t0+18); err != nil { // no match: nothing
		t.Fatal(err)
	}
	noErr(t)(b.DeleteDeviceSessions(ctx, "14", "d1", t0+18))
	ws = append(ws, want{store.ChangeRevoked, "14", t0 + 18, []string{dev.ID}})

	u1, u2 := newSession("15", t0, 60_000, t0+600_000), newSession("15", t0, 60_000, t0+600_000)
	uf, utok := withFamily(u2, t0+600_000)
	mustCreate(t, b, u1, nil, nil)
	mustCreate(t, b, u2, uf, utok)
	noErr(t)(b.DeleteUserSessions(ctx, "15", t0+19))
	ws = append(ws, want{store.ChangeUser, "15", t0 + 19, []string{u1.ID, u2.ID}})
	if _, err := b.DeleteUserSessions(ctx, "nobody", t0+20); err != nil { // recorded even when empty
		t.Fatal(err)
	}
	ws = append(ws, want{store.ChangeUser, "nobody", t0 + 20, nil})
	checkPaging(t, b, wantChanges(t, b, ws...))
}

// rotationChanges rotates the token of session s1: a rotation records the replaced session, a
// grace rotation nothing, a reuse what it revoked, a reuse with nothing left and an unknown token
// nothing. It returns the changes expected.
func rotationChanges(t *testing.T, b store.Backend, tok1, s1 string) []want {
	t.Helper()
	var ws []want
	// A rotation: the replaced session. A grace rotation: nothing. A reuse: what it revoked.
	next := NewHash()
	r1, err := rotateGrace(b, tok1, next, t0+12, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ws = append(ws, want{store.ChangeRevoked, "12", t0 + 12, []string{s1}})
	g, err := rotateGrace(b, tok1, NewHash(), t0+13, 1000)
	if err != nil || !g.Grace {
		t.Fatalf("grace rotation: %+v %v", g, err)
	}
	if _, err := rotateGrace(b, tok1, NewHash(), t0+14, 0); err != store.ErrReused {
		t.Fatalf("reuse: %v", err)
	}
	ws = append(ws, want{store.ChangeRevoked, "12", t0 + 14, []string{r1.Session.ID, g.Session.ID}})
	if _, err := rotateGrace(b, tok1, NewHash(), t0+15, 0); err != store.ErrReused { // nothing left to revoke
		t.Fatalf("second reuse: %v", err)
	}
	_, err = rotateGrace(b, NewHash(), NewHash(), t0+15, 0)
	wantErr(t, "unknown token", err, store.ErrNotFound)

	return ws
}

// checkPaging: since and limit walk the same list as one read; past the head there is nothing.
func checkPaging(t *testing.T, b store.Backend, all []store.Change) {
	t.Helper()
	var walked []store.Change
	for since := int64(0); ; {
		page, err := b.Changes(ctx, since, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) > 3 {
			t.Fatalf("limit 3: %d changes", len(page.Changes))
		}
		if len(page.Changes) == 0 {
			break
		}
		walked = append(walked, page.Changes...)
		since = page.Changes[len(page.Changes)-1].Seq
	}
	if fmt.Sprint(walked) != fmt.Sprint(all) {
		t.Fatalf("paged walk:\n got  %v\n want %v", walked, all)
	}
	last := all[len(all)-1].Seq
	head, err := b.Changes(ctx, 0, 0)
	if err != nil || len(head.Changes) != 0 || head.Head != last || head.Oldest != all[0].Seq {
		t.Fatalf("limit 0 = %+v, %v", head, err)
	}
	if page, err := b.Changes(ctx, last, 10); err != nil || len(page.Changes) != 0 || page.Head != last {
		t.Fatalf("since head = %+v, %v", page, err)
	}
	if page, err := b.Changes(ctx, all[2].Seq, 1); err != nil || len(page.Changes) != 1 || page.Changes[0].Seq != all[3].Seq {
		t.Fatalf("since the third = %+v, %v", page, err)
	}
}

// testChangesTrim: retention by age and by count, in bounded batches, from the oldest end; the
// head never goes back and numbers are never reused.
func testChangesTrim(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 600_000, t0+600_000)
	mustCreate(t, b, s, nil, nil)
	for i := range int64(5) {
		if _, err := b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{}, Now: t0 + i*1000}); err != nil {
			t.Fatal(err)
		}
	}
	all := allChanges(t, b).Changes
	if len(all) != 5 {
		t.Fatalf("%d changes, want 5", len(all))
	}
	trim := func(p store.TrimPlan, wantN int, wantMore bool, wantOldest int64) {
		t.Helper()
		n, more, err := b.TrimChanges(ctx, p)
		if err != nil || n != wantN || more != wantMore {
			t.Fatalf("TrimChanges(%+v) = %d, %v, %v; want %d, %v", p, n, more, err, wantN, wantMore)
		}
		page := allChanges(t, b)
		if page.Oldest != wantOldest || page.Head != all[4].Seq {
			t.Fatalf("after trim: Oldest %d Head %d, want %d %d", page.Oldest, page.Head, wantOldest, all[4].Seq)
		}
	}
	// By age: At < t0+2000 are the first two; a batch of one leaves more.
	trim(store.TrimPlan{Before: t0 + 2000, Limit: 1}, 1, true, all[1].Seq)
	trim(store.TrimPlan{Before: t0 + 2000, Limit: 1}, 1, false, all[2].Seq)
	trim(store.TrimPlan{Before: t0 + 2000, Limit: 10}, 0, false, all[2].Seq)
	// By count: keep 2 (numbers above Head-2).
	trim(store.TrimPlan{Before: math.MinInt64, Keep: 2, Limit: 10}, 1, false, all[3].Seq)
	// Everything: Oldest 0, Head stays.
	trim(store.TrimPlan{Before: math.MaxInt64, Limit: 10}, 2, false, 0)
	if page, err := b.Changes(ctx, all[1].Seq, 10); err != nil || len(page.Changes) != 0 || page.Oldest != 0 || page.Head != all[4].Seq {
		t.Fatalf("trimmed feed = %+v, %v", page, err)
	}
	if _, err := b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{}, Now: t0 + 9000}); err != nil {
		t.Fatal(err)
	}
	if page := allChanges(t, b); len(page.Changes) != 1 || page.Changes[0].Seq <= all[4].Seq || page.Oldest != page.Changes[0].Seq {
		t.Fatalf("after trimming everything, the next change = %+v (last was %d)", page, all[4].Seq)
	}
}

// testChangesConcurrent: concurrent writers each get a number of their own; the feed lists every
// change once, in strictly increasing, gap-free order (bolt: one transaction at a time; mongo:
// numbered and inserted under one lock per process, and the number is the record's unique _id).
func testChangesConcurrent(t *testing.T, b store.Backend) {
	const writers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	ids := make([][]string, writers)
	for w := range writers {
		for range each {
			s := newSession(fmt.Sprint("u", w), t0, 600_000, t0+600_000)
			mustCreate(t, b, s, nil, nil)
			ids[w] = append(ids[w], s.ID)
		}
	}
	for w := range writers {
		wg.Go(func() {
			for i, id := range ids[w] {
				var err error
				if i%2 == 0 {
					_, err = b.SetUser(ctx, id, store.UserUpdate{Audience: []string{}, Now: t0 + 1})
				} else {
					_, err = b.DeleteSession(ctx, id, store.Deletion{Now: t0 + 1})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page := allChanges(t, b)
	if len(page.Changes) != writers*each {
		t.Fatalf("%d changes, want %d", len(page.Changes), writers*each)
	}
	seen := map[string]bool{}
	for i, c := range page.Changes {
		if i > 0 && c.Seq != page.Changes[i-1].Seq+1 {
			t.Fatalf("numbers %d then %d: not strictly increasing by one", page.Changes[i-1].Seq, c.Seq)
		}
		if len(c.SessionIDs) != 1 || seen[c.SessionIDs[0]] {
			t.Fatalf("change %+v: not one new session", c)
		}
		seen[c.SessionIDs[0]] = true
	}
	if page.Head != page.Changes[len(page.Changes)-1].Seq {
		t.Fatalf("Head %d", page.Head)
	}
}

// testTouchMany: each touch as TouchSession, in order (a repeated id sees the earlier one), nil
// for absent and expired sessions; the result is what is stored.
func testTouchMany(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 1000, t0+60_000)
	gone := newSession("12", t0, 10, t0+60_000)
	mustCreate(t, b, s, nil, nil)
	mustCreate(t, b, gone, nil, nil)
	now := t0 + 500
	got, err := b.TouchMany(ctx, []store.TouchOne{
		{ID: s.ID, Touch: store.Touch{Host: "b.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: now}},
		{ID: gone.ID, Touch: store.Touch{Host: "b.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: now}},
		{ID: NewID(), Touch: store.Touch{Host: "b.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: now}},
		{ID: s.ID, Touch: store.Touch{Host: "c.localhost", IdleTimeoutMs: 5000, Sliding: true, Now: now}},
	})
	if err != nil || len(got) != 4 || got[1] != nil || got[2] != nil || got[0] == nil || got[3] == nil {
		t.Fatalf("TouchMany = %v, %v", got, err)
	}
	if got[0].ExpiresAt != now+1000 || got[0].HostsLastSeen["b.localhost"] != now {
		t.Fatalf("first touch: %+v", got[0])
	}
	if got[3].ExpiresAt != now+5000 || got[3].HostsLastSeen["b.localhost"] != now || got[3].HostsLastSeen["c.localhost"] != now {
		t.Fatalf("second touch of the same session: %+v", got[3])
	}
	equalSession(t, mustGet(t, b, s.ID, now+4999), got[3])
	if _, err := b.GetSession(ctx, gone.ID, now); err != store.ErrNotFound {
		t.Fatalf("expired session after TouchMany: %v", err)
	}
	if out, err := b.TouchMany(ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("empty TouchMany = %v, %v", out, err)
	}
}

// wantChangedVersions: a "changed" record carries the session's versions after the change (here
// SetUser of userSid at revalidatedAt, SetUpstream of upSid to version 2), so the replica that
// made the change can keep its own fresh copy.
func wantChangedVersions(t *testing.T, b store.Backend, userSid, upSid string, revalidatedAt int64) {
	t.Helper()
	pg, err := b.Changes(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var sawUser, sawUpstream bool
	for _, c := range pg.Changes {
		if c.Kind == store.ChangeChanged && c.SessionIDs[0] == userSid && c.RevalidatedAt == revalidatedAt {
			sawUser = true
		}
		if c.Kind == store.ChangeChanged && c.SessionIDs[0] == upSid && c.UpstreamVersion == 2 {
			sawUpstream = true
		}
	}
	if !sawUser || !sawUpstream {
		t.Fatalf("changed records without the versions after the change (user %v, upstream %v): %+v", sawUser, sawUpstream, pg.Changes)
	}
}
