// Package storetest is the conformance suite every store.Backend must pass. A backend's test calls
// Run with a constructor; the suite drives it with explicit clocks, so no case sleeps.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// NewFunc returns an empty backend; the suite closes it.
type NewFunc func(t *testing.T) store.Backend

// Run runs every conformance case against backends made by newBackend.
func Run(t *testing.T, newBackend NewFunc) {
	cases := []struct {
		name string
		fn   func(*testing.T, store.Backend)
	}{
		{"CreateGet", testCreateGet},
		{"Touch", testTouch},
		{"TouchHostsCap", testTouchHostsCap},
		{"SetUpstream", testSetUpstream},
		{"DeleteSession", testDeleteSession},
		{"RevokeIdleExpired", testRevokeIdleExpired},
		{"RevokeRotatedAway", testRevokeRotatedAway},
		{"RevokeOwner", testRevokeOwner},
		{"SetUser", testSetUser},
		{"SetUserConcurrent", testSetUserConcurrent},
		{"ListAndDeleteUser", testListAndDeleteUser},
		{"Rotate", testRotate},
		{"RotateReuse", testRotateReuse},
		{"RotateConcurrent", testRotateConcurrent},
		{"RotateGrace", testRotateGrace},
		{"RotateGraceEnds", testRotateGraceEnds},
		{"RotateConcurrentGrace", testRotateConcurrentGrace},
		{"Device", testDevice},
		{"DeleteDevice", testDeleteDevice},
		{"Counters", testCounters},
		{"Sweep", testSweep},
		{"ConcurrentMixed", testConcurrentMixed},
		{"LiteralValues", testLiteralValues},
		{"Changes", testChanges},
		{"ChangesTrim", testChangesTrim},
		{"ChangesConcurrent", testChangesConcurrent},
		{"TouchMany", testTouchMany},
		{"LimitEvict", testLimitEvict},
		{"LimitRefuse", testLimitRefuse},
		{"LimitConcurrent", testLimitConcurrent},
		{"Addresses", testAddresses},
		{"RememberMe", testRememberMe},
		{"DeleteUserEndsEveryFamily", testDeleteUserEndsEveryFamily},
		{"Audit", testAudit},
		{"Directory", testDirectory},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, b)
		})
	}
}

var ctx = context.Background()

const t0 = int64(1_700_000_000_000)

// NewID returns an id of the production shape (32 random bytes, base64url).
func NewID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewHash returns a random token hash of the production shape.
func NewHash() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newSession(user string, now, idle, abs int64) *store.Session {
	id := NewID()
	return &store.Session{
		ID: id, UserID: user, Host: "a.localhost", Audience: []string{"a.localhost", "*.example.com"},
		JWT: []byte("sealed-jwt-" + id), Refresh: []byte("sealed-refresh"), UpstreamVersion: 1,
		CreatedAt: now, LastSeenAt: now, HostsLastSeen: map[string]int64{"a.localhost": now},
		IdleTimeoutMs: idle, Sliding: true, ExpiresAt: min(now+idle, abs), AbsoluteExpiresAt: abs,
	}
}

// withFamily gives s a family (expiring at famExp) and a first token, as a create with refresh does.
func withFamily(s *store.Session, famExp int64) (*store.Family, *store.RefreshToken) {
	f := &store.Family{ID: NewID(), UserID: s.UserID, Host: s.Host, Audience: s.Audience, DeviceID: s.DeviceID, DeviceName: s.DeviceName,
		LoginAddr: s.LoginAddr, RememberMe: s.RememberMe, JWT: []byte("family-jwt"), Refresh: []byte("family-refresh"), CreatedAt: s.CreatedAt, ExpiresAt: famExp}
	s.FamilyID = f.ID
	return f, &store.RefreshToken{Hash: NewHash(), FamilyID: f.ID, UserID: s.UserID, SessionID: s.ID, ExpiresAt: famExp}
}

func mustCreate(t *testing.T, b store.Backend, s *store.Session, f *store.Family, tok *store.RefreshToken) {
	t.Helper()
	if err := create(b, s, f, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

// create is an uncapped CreateSession.
func create(b store.Backend, s *store.Session, f *store.Family, tok *store.RefreshToken) error {
	_, err := b.CreateSession(ctx, s, f, tok, store.Limit{})
	return err
}

func mustGet(t *testing.T, b store.Backend, id string, now int64) *store.Session {
	t.Helper()
	s, err := b.GetSession(ctx, id, now)
	if err != nil {
		t.Fatalf("GetSession(%s) at +%dms: %v", id, now-t0, err)
	}
	return s
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func wantCount(t *testing.T, b store.Backend, want int64) {
	t.Helper()
	if n, err := b.SessionCount(ctx); err != nil || n != want {
		t.Fatalf("SessionCount = %d, %v; want %d", n, err, want)
	}
}

func equalSession(t *testing.T, got, want *store.Session) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", *want)
	if g != w {
		t.Fatalf("session differs:\n got  %s\n want %s", g, w)
	}
}

// rebuild is the NewSession a rotation uses in these tests: the family's data under a new id, as
// the API builds it (store.Family.MintSession, the family's secrets as they are).
func rebuild(id string, now, idle int64) func(f *store.Family) (*store.Session, error) {
	return mint(id, now, idle, "")
}

// mint is rebuild for a rotating client at addr ("" = not given).
func mint(id string, now, idle int64, addr string) func(f *store.Family) (*store.Session, error) {
	return func(f *store.Family) (*store.Session, error) {
		s := f.MintSession(store.Mint{ID: id, Host: "a.localhost", IdleTimeoutMs: idle, Sliding: true,
			MaxLifetimeMs: f.ExpiresAt - now, ClientAddr: addr, Now: now})
		s.JWT, s.Refresh = f.JWT, f.Refresh
		return s, nil
	}
}

// revoked reports whether rev names user and family and exactly ids (in any order), live of them live.
func revoked(rev store.Revocation, user, family string, live int, ids ...string) bool {
	if ids == nil {
		ids = []string{}
	}
	slices.Sort(ids)
	return rev.UserID == user && rev.FamilyID == family && rev.Live == live && rev.SessionIDs != nil && slices.Equal(rev.SessionIDs, ids)
}

func testCreateGet(t *testing.T, b store.Backend) {
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	wantCount(t, b, 0)
	s := newSession("12", t0, 1000, t0+60_000)
	mustCreate(t, b, s, nil, nil)
	equalSession(t, mustGet(t, b, s.ID, t0+999), s)
	wantCount(t, b, 1)

	_, err := b.GetSession(ctx, s.ID, t0+1000)
	wantErr(t, "get at expiresAt", err, store.ErrNotFound)
	_, err = b.GetSession(ctx, NewID(), t0)
	wantErr(t, "get absent", err, store.ErrNotFound)

	// RevalidatedAt and the device are stored as given.
	checked := newSession("12", t0, 1000, t0+60_000)
	checked.RevalidatedAt = t0 - 5
	checked.DeviceID, checked.DeviceName = "8f14e45f-ceea-467f-a1b2-c3d4e5f6a7b8", "Ana’s iPhone 15 — Safari"
	mustCreate(t, b, checked, nil, nil)
	equalSession(t, mustGet(t, b, checked.ID, t0), checked)
	if _, err := b.DeleteSession(ctx, checked.ID, store.Deletion{Now: t0}); err != nil {
		t.Fatal(err)
	}

	dup := newSession("13", t0, 1000, t0+60_000)
	dup.ID = s.ID
	wantErr(t, "duplicate id", create(b, dup, nil, nil), store.ErrConflict)
	equalSession(t, mustGet(t, b, s.ID, t0), s)

	// With a family: a duplicate token hash is a conflict and stores nothing.
	s2 := newSession("12", t0, 1000, t0+60_000)
	f, tok := withFamily(s2, t0+120_000)
	mustCreate(t, b, s2, f, tok)
	s3 := newSession("12", t0, 1000, t0+60_000)
	f3, tok3 := withFamily(s3, t0+120_000)
	tok3.Hash = tok.Hash
	wantErr(t, "duplicate token", create(b, s3, f3, tok3), store.ErrConflict)
	_, err = b.GetSession(ctx, s3.ID, t0)
	wantErr(t, "session of failed create", err, store.ErrNotFound)
	wantCount(t, b, 2)
}

func testTouch(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 1000, t0+2500)
	mustCreate(t, b, s, nil, nil)

	got, err := b.TouchSession(ctx, s.ID, store.Touch{Host: "b.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: t0 + 800})
	if err != nil {
		t.Fatal(err)
	}
	if got.ExpiresAt != t0+1800 || got.LastSeenAt != t0+800 || got.HostsLastSeen["b.localhost"] != t0+800 || got.HostsLastSeen["a.localhost"] != t0 {
		t.Fatalf("sliding touch: %+v", got)
	}
	equalSession(t, mustGet(t, b, s.ID, t0+1700), got)

	// A shorter window from another host never pulls the expiry back.
	got, err = b.TouchSession(ctx, s.ID, store.Touch{Host: "c.localhost", IdleTimeoutMs: 100, Sliding: true, Now: t0 + 900})
	if err != nil || got.ExpiresAt != t0+1800 {
		t.Fatalf("shorter window: expiresAt=%d err=%v", got.ExpiresAt-t0, err)
	}
	// Non-sliding: use is recorded, expiry unchanged.
	got, err = b.TouchSession(ctx, s.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 1000, Sliding: false, Now: t0 + 1700})
	if err != nil || got.ExpiresAt != t0+1800 || got.LastSeenAt != t0+1700 {
		t.Fatalf("non-sliding touch: %+v %v", got, err)
	}
	// The absolute cap is never passed.
	got, err = b.TouchSession(ctx, s.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: t0 + 1750})
	if err != nil || got.ExpiresAt != t0+2500 {
		t.Fatalf("capped touch: expiresAt=+%d err=%v", got.ExpiresAt-t0, err)
	}
	_, err = b.GetSession(ctx, s.ID, t0+2500)
	wantErr(t, "get at absolute cap", err, store.ErrNotFound)
	_, err = b.TouchSession(ctx, s.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: t0 + 2500})
	wantErr(t, "touch expired", err, store.ErrNotFound)
	_, err = b.TouchSession(ctx, NewID(), store.Touch{Host: "a.localhost", IdleTimeoutMs: 1000, Sliding: true, Now: t0})
	wantErr(t, "touch absent", err, store.ErrNotFound)

	// The expiry index moved with the touch: a sweep at the old expiry keeps the session.
	s2 := newSession("12", t0, 1000, t0+60_000)
	mustCreate(t, b, s2, nil, nil)
	if _, err := b.TouchSession(ctx, s2.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 5000, Sliding: true, Now: t0 + 500}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sweep(ctx, t0+1000, 100); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, s2.ID, t0+1000)
}

func testTouchHostsCap(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+60_000)
	mustCreate(t, b, s, nil, nil)
	var got *store.Session
	var err error
	for i := range store.MaxHostsSeen + 5 {
		got, err = b.TouchSession(ctx, s.ID, store.Touch{Host: fmt.Sprintf("h%d.localhost", i), IdleTimeoutMs: 1000, Sliding: true, Now: t0 + 1 + int64(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got.HostsLastSeen) != store.MaxHostsSeen {
		t.Fatalf("hosts kept = %d, want %d", len(got.HostsLastSeen), store.MaxHostsSeen)
	}
	if _, ok := got.HostsLastSeen["a.localhost"]; ok {
		t.Fatal("oldest host was not dropped")
	}
	if _, ok := got.HostsLastSeen[fmt.Sprintf("h%d.localhost", store.MaxHostsSeen+4)]; !ok {
		t.Fatal("newest host missing")
	}
}

func testSetUpstream(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	sealFamily := func(id string) ([]byte, []byte, error) {
		return []byte("family-jwt-2-" + id), nil, nil
	}
	u := store.Upstream{ExpectVersion: 1, JWT: []byte("jwt-2"), Refresh: nil, SealFamily: sealFamily, AbsoluteExpiresAt: t0 + 5000, Now: t0 + 10}
	got, err := b.SetUpstream(ctx, s.ID, u)
	if err != nil {
		t.Fatal(err)
	}
	if got.UpstreamVersion != 2 || string(got.JWT) != "jwt-2" || got.Refresh != nil || got.AbsoluteExpiresAt != t0+5000 || got.ExpiresAt != t0+5000 {
		t.Fatalf("after CAS: %+v", got)
	}
	equalSession(t, mustGet(t, b, s.ID, t0+10), got)

	_, err = b.SetUpstream(ctx, s.ID, u) // version 1 is stale now
	wantErr(t, "stale version", err, store.ErrConflict)
	if v := mustGet(t, b, s.ID, t0+10); string(v.JWT) != "jwt-2" || v.UpstreamVersion != 2 {
		t.Fatalf("conflict changed the session: %+v", v)
	}
	_, err = b.SetUpstream(ctx, NewID(), u)
	wantErr(t, "absent", err, store.ErrNotFound)

	// The family copy was updated: a rotation mints a session with it.
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: t0 + 20, NewSession: rebuild(NewID(), t0+20, 1000)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Session.JWT) != "family-jwt-2-"+f.ID || res.Session.Refresh != nil {
		t.Fatalf("family copy not updated: jwt=%q refresh=%q", res.Session.JWT, res.Session.Refresh)
	}
}

func testDeleteSession(t *testing.T, b store.Backend) {
	_, err := b.DeleteSession(ctx, NewID(), store.Deletion{Now: t0})
	wantErr(t, "delete absent", err, store.ErrNotFound)

	plain := newSession("12", t0, 10_000, t0+60_000)
	mustCreate(t, b, plain, nil, nil)
	if rev, err := b.DeleteSession(ctx, plain.ID, store.Deletion{WithFamily: true, Now: t0}); err != nil || !revoked(rev, "12", "", 1, plain.ID) {
		t.Fatalf("delete without family = %+v, %v", rev, err)
	}
	_, err = b.GetSession(ctx, plain.ID, t0)
	wantErr(t, "get deleted", err, store.ErrNotFound)

	// A family with two sessions (after one rotation) and a bystander session of the same user.
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	other := newSession("12", t0, 10_000, t0+60_000)
	mustCreate(t, b, other, nil, nil)
	next := NewHash()
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next, Now: t0 + 1, NewSession: rebuild(NewID(), t0+1, 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	// Only the rotated session remains in the family; without ?family it alone goes.
	second := newSession("12", t0, 10_000, t0+60_000)
	mustCreate(t, b, second, nil, nil)
	if rev, err := b.DeleteSession(ctx, second.ID, store.Deletion{Now: t0 + 2}); err != nil || !revoked(rev, "12", "", 1, second.ID) {
		t.Fatalf("delete one = %+v, %v", rev, err)
	}
	if rev, err := b.DeleteSession(ctx, res.Session.ID, store.Deletion{WithFamily: true, Now: t0 + 2}); err != nil || !revoked(rev, "12", f.ID, 1, res.Session.ID) {
		t.Fatalf("delete with family = %+v, %v", rev, err)
	}
	_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 3, NewSession: rebuild(NewID(), t0+3, 10_000)})
	wantErr(t, "rotate after family delete", err, store.ErrNotFound)
	mustGet(t, b, other.ID, t0+3)
	wantCount(t, b, 1)

	expired := newSession("12", t0, 10, t0+60_000)
	mustCreate(t, b, expired, nil, nil)
	_, err = b.DeleteSession(ctx, expired.ID, store.Deletion{Now: t0 + 10})
	wantErr(t, "delete expired", err, store.ErrNotFound)
}

// testRevokeIdleExpired: a session that idled out (swept or not) still names its refresh family;
// revoking it with the family ends the family, so its live token can mint nothing any more.
func testRevokeIdleExpired(t *testing.T, b store.Backend) {
	bystander := newSession("12", t0, 60_000, t0+60_000)
	mustCreate(t, b, bystander, nil, nil)
	for _, swept := range []bool{false, true} {
		s := newSession("12", t0, 1000, t0+60_000)
		f, tok := withFamily(s, t0+120_000)
		mustCreate(t, b, s, f, tok)
		now := t0 + 1000 // the session's idle expiry; the family lives on
		want := []string{s.ID}
		if swept {
			if _, err := b.Sweep(ctx, now, 100); err != nil {
				t.Fatal(err)
			}
			want = nil
		}
		// Without the family there is nothing to revoke (and nothing is written).
		_, err := b.DeleteSession(ctx, s.ID, store.Deletion{Now: now})
		wantErr(t, fmt.Sprintf("revoke expired session alone (swept=%v)", swept), err, store.ErrNotFound)

		rev, err := b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Now: now})
		if err != nil || !revoked(rev, "12", f.ID, 0, want...) {
			t.Fatalf("revoke expired session with family (swept=%v) = %+v, %v; want family %s, sessions %v", swept, rev, err, f.ID, want)
		}
		_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: now + 1, NewSession: rebuild(NewID(), now+1, 10_000)})
		wantErr(t, fmt.Sprintf("refresh after revoking an expired session (swept=%v)", swept), err, store.ErrNotFound)
		_, err = b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Now: now + 1})
		wantErr(t, "second revoke", err, store.ErrNotFound)
	}

	// A session and a family that both expired are not found, and stay for the sweeper.
	s := newSession("12", t0, 1000, t0+60_000)
	f, tok := withFamily(s, t0+2000)
	mustCreate(t, b, s, f, tok)
	_, err := b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Now: t0 + 2000})
	wantErr(t, "revoke with an expired family", err, store.ErrNotFound)
	_, err = b.DeleteSession(ctx, NewID(), store.Deletion{WithFamily: true, Now: t0})
	wantErr(t, "revoke an id never seen", err, store.ErrNotFound)
	mustGet(t, b, bystander.ID, t0+2000)
	wantCount(t, b, 2) // the bystander and the last, expired session
}

// testRevokeRotatedAway: a session id that rotations replaced (its record deleted) still revokes
// its family: the current successor session ends and every token of the family is dead.
func testRevokeRotatedAway(t *testing.T, b store.Backend) {
	a := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(a, t0+120_000)
	mustCreate(t, b, a, f, tok)
	bystander := newSession("12", t0, 10_000, t0+60_000)
	mf, mtok := withFamily(bystander, t0+120_000)
	mustCreate(t, b, bystander, mf, mtok)

	next1, next2 := NewHash(), NewHash()
	r1, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next1, Now: t0 + 1, NewSession: rebuild(NewID(), t0+1, 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: next1, NewTokenHash: next2, Now: t0 + 2, NewSession: rebuild(NewID(), t0+2, 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.GetSession(ctx, a.ID, t0+3)
	wantErr(t, "rotated-away session", err, store.ErrNotFound)
	_, err = b.DeleteSession(ctx, a.ID, store.Deletion{Now: t0 + 3})
	wantErr(t, "revoke rotated-away session alone", err, store.ErrNotFound)
	mustGet(t, b, r2.Session.ID, t0+3) // the 404 wrote nothing

	rev, err := b.DeleteSession(ctx, a.ID, store.Deletion{WithFamily: true, Now: t0 + 3})
	if err != nil || !revoked(rev, "12", f.ID, 1, r2.Session.ID) {
		t.Fatalf("revoke rotated-away session with family = %+v, %v; want family %s, session %s", rev, err, f.ID, r2.Session.ID)
	}
	_, err = b.GetSession(ctx, r2.Session.ID, t0+3)
	wantErr(t, "successor after revoke", err, store.ErrNotFound)
	for _, h := range []string{next2, next1, tok.Hash} {
		_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: h, NewTokenHash: NewHash(), Now: t0 + 4, NewSession: rebuild(NewID(), t0+4, 10_000)})
		wantErr(t, "refresh after revoke", err, store.ErrNotFound)
	}
	for _, id := range []string{a.ID, r1.Session.ID, r2.Session.ID} {
		_, err = b.DeleteSession(ctx, id, store.Deletion{WithFamily: true, Now: t0 + 4})
		wantErr(t, "revoke again", err, store.ErrNotFound)
	}
	// The user's other login is untouched.
	mustGet(t, b, bystander.ID, t0+4)
	if _, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: mtok.Hash, NewTokenHash: NewHash(), Now: t0 + 4, NewSession: rebuild(NewID(), t0+4, 10_000)}); err != nil {
		t.Fatalf("other family after revoke: %v", err)
	}
	wantCount(t, b, 1)
}

// testRevokeOwner: with an owner, DeleteSession revokes only a session of that user or, for one
// that is gone, a family of that user. Another user's answers ErrNotFound and writes nothing: its
// session stays, its family's refresh token still mints.
func testRevokeOwner(t *testing.T, b store.Backend) {
	rotate := func(h string, now int64) (store.RotateResult, error) {
		return b.RotateRefresh(ctx, store.Rotation{TokenHash: h, NewTokenHash: NewHash(), Now: now, NewSession: rebuild(NewID(), now, 10_000)})
	}
	// Another user's live session: not found, with or without the family.
	live := newSession("12", t0, 60_000, t0+60_000)
	lf, ltok := withFamily(live, t0+120_000)
	mustCreate(t, b, live, lf, ltok)
	for _, fam := range []bool{false, true} {
		_, err := b.DeleteSession(ctx, live.ID, store.Deletion{WithFamily: fam, Owner: "13", Now: t0 + 1})
		wantErr(t, fmt.Sprintf("revoke another user's live session (family=%v)", fam), err, store.ErrNotFound)
	}
	equalSession(t, mustGet(t, b, live.ID, t0+1), live)

	// Another user's idled-out session (record stored or swept): not found, and its family lives
	// on; then, rotated away, still not found; its owner revokes it with the same id.
	for _, swept := range []bool{false, true} {
		s := newSession("12", t0, 1000, t0+60_000)
		f, tok := withFamily(s, t0+120_000)
		mustCreate(t, b, s, f, tok)
		now := t0 + 1000
		if swept {
			if _, err := b.Sweep(ctx, now, 100); err != nil {
				t.Fatal(err)
			}
		}
		_, err := b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Owner: "13", Now: now})
		wantErr(t, fmt.Sprintf("revoke another user's idled-out session (swept=%v)", swept), err, store.ErrNotFound)
		res, err := rotate(tok.Hash, now+1)
		if err != nil {
			t.Fatalf("refresh after a refused revoke (swept=%v): %v", swept, err)
		}
		_, err = b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Owner: "13", Now: now + 2})
		wantErr(t, fmt.Sprintf("revoke another user's rotated-away session (swept=%v)", swept), err, store.ErrNotFound)
		mustGet(t, b, res.Session.ID, now+2)

		rev, err := b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Owner: "12", Now: now + 2})
		if err != nil || !revoked(rev, "12", f.ID, 1, res.Session.ID) {
			t.Fatalf("owner revokes the rotated-away session (swept=%v) = %+v, %v", swept, rev, err)
		}
	}

	// The owner's own idled-out session (stored or swept): the family is revoked.
	for _, swept := range []bool{false, true} {
		s := newSession("12", t0, 1000, t0+60_000)
		f, tok := withFamily(s, t0+120_000)
		mustCreate(t, b, s, f, tok)
		now := t0 + 1000
		want := []string{s.ID}
		if swept {
			if _, err := b.Sweep(ctx, now, 100); err != nil {
				t.Fatal(err)
			}
			want = nil
		}
		_, err := b.DeleteSession(ctx, s.ID, store.Deletion{Owner: "12", Now: now})
		wantErr(t, fmt.Sprintf("revoke own idled-out session alone (swept=%v)", swept), err, store.ErrNotFound)
		rev, err := b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Owner: "12", Now: now})
		if err != nil || !revoked(rev, "12", f.ID, 0, want...) {
			t.Fatalf("revoke own idled-out session (swept=%v) = %+v, %v; want family %s, sessions %v", swept, rev, err, f.ID, want)
		}
		_, err = rotate(tok.Hash, now+1)
		wantErr(t, fmt.Sprintf("refresh after revoking own idled-out session (swept=%v)", swept), err, store.ErrNotFound)
	}

	// The owner's live session, after all the refusals: still there, and revoked with its family.
	rev, err := b.DeleteSession(ctx, live.ID, store.Deletion{WithFamily: true, Owner: "12", Now: t0 + 2000})
	if err != nil || !revoked(rev, "12", lf.ID, 1, live.ID) {
		t.Fatalf("revoke own live session = %+v, %v", rev, err)
	}
	_, err = rotate(ltok.Hash, t0+2001)
	wantErr(t, "refresh after revoking own live session", err, store.ErrNotFound)
	wantCount(t, b, 0)
}

func testSetUser(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	plain := newSession("12", t0, 10_000, t0+60_000)
	mustCreate(t, b, plain, nil, nil)

	got, err := b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{"b.localhost", "*.example.org"}, Now: t0 + 10})
	if err != nil {
		t.Fatal(err)
	}
	want := *s
	want.Audience, want.RevalidatedAt = []string{"b.localhost", "*.example.org"}, t0+10
	equalSession(t, got, &want) // nothing else changes: expiry, last use, credentials
	equalSession(t, mustGet(t, b, s.ID, t0+10), &want)
	touched, err := b.TouchSession(ctx, s.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 10_000, Sliding: true, Now: t0 + 11})
	if err != nil || touched.RevalidatedAt != t0+10 || !slices.Equal(touched.Audience, want.Audience) {
		t.Fatalf("touch after SetUser = %+v, %v", touched, err)
	}

	// The family took the audience and the time: a rotation mints the session with them.
	next := NewHash()
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next, Now: t0 + 20, NewSession: rebuild(NewID(), t0+20, 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Family.Audience, want.Audience) || res.Family.RevalidatedAt != t0+10 ||
		!slices.Equal(res.Session.Audience, want.Audience) || res.Session.RevalidatedAt != t0+10 {
		t.Fatalf("rotation after SetUser: family %+v, session %+v", res.Family, res.Session)
	}
	_, err = b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{"c.localhost"}, Now: t0 + 21})
	wantErr(t, "SetUser on a rotated-away session", err, store.ErrNotFound)

	// An empty audience is an audience too.
	if got, err = b.SetUser(ctx, res.Session.ID, store.UserUpdate{Audience: []string{}, Now: t0 + 30}); err != nil || len(got.Audience) != 0 || got.RevalidatedAt != t0+30 {
		t.Fatalf("SetUser empty = %+v, %v", got, err)
	}
	res2, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 40, NewSession: rebuild(NewID(), t0+40, 10_000)})
	if err != nil || len(res2.Session.Audience) != 0 || res2.Session.RevalidatedAt != t0+30 {
		t.Fatalf("rotation after empty audience = %+v, %v", res2.Session, err)
	}

	// Without a family; absent; expired.
	if got, err = b.SetUser(ctx, plain.ID, store.UserUpdate{Audience: []string{"d.localhost"}, Now: t0 + 50}); err != nil || got.RevalidatedAt != t0+50 || got.Audience[0] != "d.localhost" {
		t.Fatalf("SetUser without family = %+v, %v", got, err)
	}
	_, err = b.SetUser(ctx, NewID(), store.UserUpdate{Audience: []string{}, Now: t0})
	wantErr(t, "SetUser absent", err, store.ErrNotFound)
	_, err = b.SetUser(ctx, plain.ID, store.UserUpdate{Audience: []string{}, Now: plain.ExpiresAt})
	wantErr(t, "SetUser expired", err, store.ErrNotFound)
	if g := mustGet(t, b, plain.ID, t0+50); g.Audience[0] != "d.localhost" {
		t.Fatalf("a not-found SetUser changed the session: %+v", g)
	}
}

// testSetUserConcurrent: revalidations and touches of one session lose none of each other's fields,
// and the family ends with the audience the session ended with.
func testSetUserConcurrent(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := b.TouchSession(ctx, s.ID, store.Touch{Host: fmt.Sprintf("h%d.localhost", i), IdleTimeoutMs: 10_000, Sliding: true, Now: t0 + 1}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{fmt.Sprintf("aud%d", i)}, Now: t0 + 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := mustGet(t, b, s.ID, t0+1)
	if len(got.HostsLastSeen) != n+1 || len(got.Audience) != 1 || got.RevalidatedAt != t0+1 {
		t.Fatalf("after concurrent touches and revalidations: hosts %v, audience %v, revalidatedAt %d", got.HostsLastSeen, got.Audience, got.RevalidatedAt-t0)
	}
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: t0 + 2, NewSession: rebuild(NewID(), t0+2, 10_000)})
	if err != nil || !slices.Equal(res.Family.Audience, got.Audience) {
		t.Fatalf("family audience %v, session's %v (%v)", res.Family.Audience, got.Audience, err)
	}
}

func testListAndDeleteUser(t *testing.T, b store.Backend) {
	if l, err := b.ListUserSessions(ctx, "nobody", t0); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("list of nobody = %v, %v; want empty non-nil", l, err)
	}
	var ids []string
	for i := range 3 {
		s := newSession("u1", t0+int64(3-i), 10_000, t0+60_000) // created in reverse order
		if i == 1 {
			f, tok := withFamily(s, t0+120_000)
			mustCreate(t, b, s, f, tok)
		} else {
			mustCreate(t, b, s, nil, nil)
		}
		ids = append([]string{s.ID}, ids...)
	}
	expired := newSession("u1", t0, 5, t0+60_000)
	mustCreate(t, b, expired, nil, nil)
	prefixUser := newSession("u10", t0, 10_000, t0+60_000) // shares a prefix with u1
	mustCreate(t, b, prefixUser, nil, nil)

	list, err := b.ListUserSessions(ctx, "u1", t0+10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("list order = %v, want %v", got, ids)
	}

	rev, err := b.DeleteUserSessions(ctx, "u1", t0+10)
	// The expired one is removed (and named) too, but not counted as live.
	if err != nil || !revoked(rev, "u1", "", 3, append(slices.Clone(ids), expired.ID)...) {
		t.Fatalf("DeleteUserSessions = %+v, %v; want 3 live of %v", rev, err, append(ids, expired.ID))
	}
	if l, _ := b.ListUserSessions(ctx, "u1", t0+10); len(l) != 0 {
		t.Fatalf("sessions left: %d", len(l))
	}
	if l, _ := b.ListUserSessions(ctx, "u10", t0+10); len(l) != 1 {
		t.Fatalf("other user's sessions: %d, want 1", len(l))
	}
	wantCount(t, b, 1) // the expired one went too
	if rev, err := b.DeleteUserSessions(ctx, "u1", t0+10); err != nil || !revoked(rev, "u1", "", 0) {
		t.Fatalf("second DeleteUserSessions = %+v, %v", rev, err)
	}
}

func testRotate(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)

	_, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: NewHash(), NewTokenHash: NewHash(), Now: t0, NewSession: rebuild(NewID(), t0, 1000)})
	wantErr(t, "unknown token", err, store.ErrNotFound)

	newID, next := NewID(), NewHash()
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next, Now: t0 + 100, NewSession: rebuild(newID, t0+100, 1000)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.ID != newID || res.Session.FamilyID != f.ID || string(res.Session.JWT) != "family-jwt" || res.Family.ExpiresAt != t0+120_000 || res.Replaced != s.ID {
		t.Fatalf("rotation result: %+v / %+v", res.Session, res.Family)
	}
	_, err = b.GetSession(ctx, s.ID, t0+100)
	wantErr(t, "old session after rotation", err, store.ErrNotFound)
	equalSession(t, mustGet(t, b, newID, t0+100), res.Session)
	wantCount(t, b, 1)

	// The new token works until the family expires.
	_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 120_000, NewSession: rebuild(NewID(), t0+120_000, 1000)})
	wantErr(t, "rotate at family expiry", err, store.ErrNotFound)
	if _, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 119_999, NewSession: rebuild(NewID(), t0+119_999, 1000)}); err != nil {
		t.Fatalf("rotate just before family expiry: %v", err)
	}
}

func testRotateReuse(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	bystander := newSession("12", t0, 10_000, t0+60_000)
	mustCreate(t, b, bystander, nil, nil)

	next := NewHash()
	res, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next, Now: t0 + 1, NewSession: rebuild(NewID(), t0+1, 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	// Replaying the spent token revokes the family, including the legitimate new session.
	r2, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: t0 + 2, NewSession: rebuild(NewID(), t0+2, 10_000)})
	wantErr(t, "replay", err, store.ErrReused)
	if !revoked(r2.Revoked, "12", f.ID, 1, res.Session.ID) {
		t.Fatalf("revoked = %+v, want the rotated session %s", r2.Revoked, res.Session.ID)
	}
	_, err = b.GetSession(ctx, res.Session.ID, t0+2)
	wantErr(t, "new session after reuse", err, store.ErrNotFound)
	_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 3, NewSession: rebuild(NewID(), t0+3, 10_000)})
	wantErr(t, "new token after reuse", err, store.ErrNotFound)
	// Later replays are still recognised, and still name the user and family (nothing left to end).
	r3, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: t0 + 4, NewSession: rebuild(NewID(), t0+4, 10_000)})
	wantErr(t, "second replay", err, store.ErrReused)
	if !revoked(r3.Revoked, "12", f.ID, 0) {
		t.Fatalf("second replay revoked = %+v", r3.Revoked)
	}
	// The spent tokens still name the first session, but its family is gone: nothing to revoke.
	_, err = b.DeleteSession(ctx, s.ID, store.Deletion{WithFamily: true, Now: t0 + 4})
	wantErr(t, "revoke with family after reuse", err, store.ErrNotFound)
	mustGet(t, b, bystander.ID, t0+4)
	if l, _ := b.ListUserSessions(ctx, "12", t0+4); len(l) != 1 {
		t.Fatalf("user has %d sessions, want 1", len(l))
	}
}

func testRotateConcurrent(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 10_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)

	const n = 20
	var wg sync.WaitGroup
	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: NewHash(), Now: t0 + 1, NewSession: rebuild(NewID(), t0+1, 10_000)})
		})
	}
	wg.Wait()
	var winner *store.Session
	reused := 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner != nil {
				t.Fatal("two rotations of one token succeeded")
			}
			winner = results[i].Session
		case errors.Is(err, store.ErrReused):
			reused++
		default:
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if winner == nil || reused != n-1 {
		t.Fatalf("winner=%v reused=%d, want one winner and %d reused", winner != nil, reused, n-1)
	}
	_, err := b.GetSession(ctx, winner.ID, t0+2)
	wantErr(t, "winner's session after reuse", err, store.ErrNotFound)
	wantCount(t, b, 0)
}

// rotateGrace is a rotation of h at now with a reuse grace, minting a session with a 60s idle window.
func rotateGrace(b store.Backend, h, next string, now, graceMs int64) (store.RotateResult, error) {
	return b.RotateRefresh(ctx, store.Rotation{TokenHash: h, NewTokenHash: next, Now: now, ReuseGraceMs: graceMs, NewSession: rebuild(NewID(), now, 60_000)})
}

// testRotateGrace: a spent token presented again within the reuse grace of its spending, while its
// family lives, rotates like a fresh one (a new session, a new live token) without spending it
// again, revoking or removing anything; the grace counts from the first spending only.
func testRotateGrace(t *testing.T, b store.Backend) {
	const grace = int64(10_000)
	s := newSession("12", t0, 60_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	bystander := newSession("12", t0, 60_000, t0+60_000)
	bf, btok := withFamily(bystander, t0+120_000)
	mustCreate(t, b, bystander, bf, btok)

	spentAt := t0 + 100
	next1, next2, next3 := NewHash(), NewHash(), NewHash()
	r1, err := rotateGrace(b, tok.Hash, next1, spentAt, grace) // unspent: a normal rotation
	if err != nil || r1.Grace || r1.Replaced != s.ID {
		t.Fatalf("first rotation = %+v, %v", r1, err)
	}
	// The client lost the answer and retries 5s later: a grace rotation.
	r2, err := rotateGrace(b, tok.Hash, next2, spentAt+5_000, grace)
	if err != nil || !r2.Grace || r2.Replaced != s.ID || r2.Session.ID == r1.Session.ID || r2.Session.FamilyID != f.ID || r2.Family.ID != f.ID {
		t.Fatalf("retry within the grace = %+v, %v", r2, err)
	}
	equalSession(t, mustGet(t, b, r2.Session.ID, spentAt+5_000), r2.Session)
	equalSession(t, mustGet(t, b, r1.Session.ID, spentAt+5_000), r1.Session) // nothing was removed
	mustGet(t, b, bystander.ID, spentAt+5_000)
	wantCount(t, b, 3)

	// The token the grace rotation issued is live and rotates normally (its own session goes).
	r2b, err := rotateGrace(b, next2, NewHash(), spentAt+6_000, grace)
	if err != nil || r2b.Grace || r2b.Replaced != r2.Session.ID {
		t.Fatalf("rotating the grace rotation's token = %+v, %v", r2b, err)
	}
	_, err = b.GetSession(ctx, r2.Session.ID, spentAt+6_000)
	wantErr(t, "the grace session after its token rotated", err, store.ErrNotFound)

	// At exactly the end of the grace, still within it.
	r3, err := rotateGrace(b, tok.Hash, next3, spentAt+grace, grace)
	if err != nil || !r3.Grace {
		t.Fatalf("retry at the end of the grace = %+v, %v", r3, err)
	}
	// 1ms later it is reuse: the grace rotations did not move the spend time. The family goes with
	// every session it minted, the grace ones included.
	r4, err := rotateGrace(b, tok.Hash, NewHash(), spentAt+grace+1, grace)
	wantErr(t, "replay after the grace", err, store.ErrReused)
	if !revoked(r4.Revoked, "12", f.ID, 3, r1.Session.ID, r2b.Session.ID, r3.Session.ID) {
		t.Fatalf("reuse after the grace revoked %+v", r4.Revoked)
	}
	for _, h := range []string{next1, next3} {
		_, err = rotateGrace(b, h, NewHash(), spentAt+grace+2, grace)
		wantErr(t, "a token of the revoked family", err, store.ErrNotFound)
	}
	// Within a longer grace but with the family gone: reuse, nothing left to revoke.
	r5, err := rotateGrace(b, tok.Hash, NewHash(), spentAt+grace+2, 60_000)
	wantErr(t, "replay within a grace of a revoked family", err, store.ErrReused)
	if !revoked(r5.Revoked, "12", f.ID, 0) {
		t.Fatalf("replay of a revoked family revoked %+v", r5.Revoked)
	}
	mustGet(t, b, bystander.ID, spentAt+grace+2)
	wantCount(t, b, 1)
}

// testRotateGraceEnds: where no grace applies, a spent token is reuse as before: grace 0 (even in
// the same millisecond), a token spent before spend times were recorded; a family logged out or
// expired mints nothing; a grace rotation that conflicts writes nothing.
func testRotateGraceEnds(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	r1, err := rotateGrace(b, tok.Hash, NewHash(), t0+1, 0)
	if err != nil || r1.Grace {
		t.Fatalf("rotation = %+v, %v", r1, err)
	}
	r2, err := rotateGrace(b, tok.Hash, NewHash(), t0+1, 0)
	wantErr(t, "replay in the same millisecond without a grace", err, store.ErrReused)
	if r2.Grace || !revoked(r2.Revoked, "12", f.ID, 1, r1.Session.ID) {
		t.Fatalf("replay without a grace = %+v", r2)
	}

	// Spent before spend times were recorded (SpentAt 0): never within a grace.
	legacy := newSession("12", t0, 60_000, t0+60_000)
	lf, ltok := withFamily(legacy, t0+120_000)
	ltok.Spent = true
	mustCreate(t, b, legacy, lf, ltok)
	r3, err := rotateGrace(b, ltok.Hash, NewHash(), t0+2, store.MaxReuseGraceMs)
	wantErr(t, "legacy spent token within the longest grace", err, store.ErrReused)
	if !revoked(r3.Revoked, "12", lf.ID, 1, legacy.ID) {
		t.Fatalf("legacy replay revoked %+v", r3.Revoked)
	}

	// A logout with the family removes its tokens, the spent ones too: nothing to grant a grace to.
	lo := newSession("12", t0, 60_000, t0+60_000)
	lof, lotok := withFamily(lo, t0+120_000)
	mustCreate(t, b, lo, lof, lotok)
	r4, err := rotateGrace(b, lotok.Hash, NewHash(), t0+3, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteSession(ctx, r4.Session.ID, store.Deletion{WithFamily: true, Now: t0 + 4}); err != nil {
		t.Fatal(err)
	}
	_, err = rotateGrace(b, lotok.Hash, NewHash(), t0+5, 10_000)
	wantErr(t, "spent token of a logged-out family within the grace", err, store.ErrNotFound)

	// The family (and with it its tokens) expired: not found, grace or not.
	short := newSession("12", t0, 60_000, t0+60_000)
	sf, stok := withFamily(short, t0+1_000)
	mustCreate(t, b, short, sf, stok)
	if _, err := rotateGrace(b, stok.Hash, NewHash(), t0+500, 10_000); err != nil {
		t.Fatal(err)
	}
	_, err = rotateGrace(b, stok.Hash, NewHash(), t0+1_000, 10_000)
	wantErr(t, "spent token of an expired family within the grace", err, store.ErrNotFound)

	// A grace rotation whose new token hash is taken is a conflict and writes nothing.
	c := newSession("12", t0, 60_000, t0+60_000)
	cf, ctok := withFamily(c, t0+120_000)
	mustCreate(t, b, c, cf, ctok)
	taken := NewHash()
	if _, err := rotateGrace(b, ctok.Hash, taken, t0+10, 10_000); err != nil {
		t.Fatal(err)
	}
	n, err := b.SessionCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rotateGrace(b, ctok.Hash, taken, t0+11, 10_000)
	wantErr(t, "grace rotation to a taken hash", err, store.ErrConflict)
	wantCount(t, b, n)
	if r, err := rotateGrace(b, ctok.Hash, NewHash(), t0+12, 10_000); err != nil || !r.Grace {
		t.Fatalf("grace rotation after the conflict = %+v, %v", r, err)
	}
}

// testRotateConcurrentGrace: concurrent rotations of one token within a grace all succeed: one
// spends it, the others are grace rotations, each with its own session and a live token of its own
// that rotates normally afterwards.
func testRotateConcurrentGrace(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+60_000)
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)

	const n = 20
	var wg sync.WaitGroup
	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	nexts := make([]string, n)
	for i := range n {
		nexts[i] = NewHash()
		wg.Go(func() { results[i], errs[i] = rotateGrace(b, tok.Hash, nexts[i], t0+1, 10_000) })
	}
	wg.Wait()
	normal, ids := 0, map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rotation %d within the grace: %v", i, err)
		}
		if !results[i].Grace {
			normal++
		}
		if results[i].Replaced != s.ID || results[i].Session.FamilyID != f.ID {
			t.Fatalf("rotation %d = %+v", i, results[i])
		}
		ids[results[i].Session.ID] = true
	}
	if normal != 1 || len(ids) != n {
		t.Fatalf("%d rotations spent the token (want 1), %d distinct sessions (want %d)", normal, len(ids), n)
	}
	wantCount(t, b, n)
	for i := range n {
		mustGet(t, b, results[i].Session.ID, t0+1)
		r, err := rotateGrace(b, nexts[i], NewHash(), t0+2, 0)
		if err != nil || r.Grace || r.Replaced != results[i].Session.ID {
			t.Fatalf("rotating token %d afterwards = %+v, %v", i, r, err)
		}
	}
	wantCount(t, b, n)
	// Past the grace the first token is reuse again: the family and its n sessions go.
	r, err := rotateGrace(b, tok.Hash, NewHash(), t0+1+10_001, 10_000)
	wantErr(t, "replay after the grace", err, store.ErrReused)
	if r.Revoked.Live != n || len(r.Revoked.SessionIDs) != n {
		t.Fatalf("reuse revoked %+v, want %d live sessions", r.Revoked, n)
	}
	wantCount(t, b, 0)
}

// testDevice: a session's device is stored with it and with its family, every session the family
// mints has it (grace rotations too), and no other write changes it.
func testDevice(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+60_000)
	s.DeviceID, s.DeviceName = "dev-a", "Pixel 9 · Chrome"
	f, tok := withFamily(s, t0+120_000)
	mustCreate(t, b, s, f, tok)
	next := NewHash()
	res, err := rotateGrace(b, tok.Hash, next, t0+1, 10_000)
	if err != nil || res.Family.DeviceID != "dev-a" || res.Family.DeviceName != "Pixel 9 · Chrome" ||
		res.Session.DeviceID != "dev-a" || res.Session.DeviceName != "Pixel 9 · Chrome" {
		t.Fatalf("rotation of a device's family = %+v / %+v, %v", res.Session, res.Family, err)
	}
	equalSession(t, mustGet(t, b, res.Session.ID, t0+1), res.Session)
	g, err := rotateGrace(b, tok.Hash, NewHash(), t0+2, 10_000)
	if err != nil || !g.Grace || g.Session.DeviceID != "dev-a" || g.Session.DeviceName != "Pixel 9 · Chrome" {
		t.Fatalf("grace rotation of a device's family = %+v, %v", g.Session, err)
	}

	touched, err := b.TouchSession(ctx, res.Session.ID, store.Touch{Host: "b.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 3})
	if err != nil || touched.DeviceID != "dev-a" {
		t.Fatalf("touch = %+v, %v", touched, err)
	}
	if _, err := b.SetUser(ctx, res.Session.ID, store.UserUpdate{Audience: []string{"c.localhost"}, Now: t0 + 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetUpstream(ctx, res.Session.ID, store.Upstream{ExpectVersion: 1, JWT: []byte("j2"),
		SealFamily: func(string) ([]byte, []byte, error) { return []byte("fj2"), nil, nil }, Now: t0 + 5}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, res.Session.ID, t0+5); got.DeviceID != "dev-a" || got.DeviceName != "Pixel 9 · Chrome" {
		t.Fatalf("device after touch, revalidation and upstream update: %q %q", got.DeviceID, got.DeviceName)
	}
	r2, err := rotateGrace(b, next, NewHash(), t0+6, 0)
	if err != nil || r2.Session.DeviceID != "dev-a" || r2.Family.DeviceName != "Pixel 9 · Chrome" {
		t.Fatalf("rotation after the family's updates = %+v / %+v, %v", r2.Session, r2.Family, err)
	}

	// Without a device: "" on the session, the family and what it mints.
	plain := newSession("12", t0, 60_000, t0+60_000)
	pf, ptok := withFamily(plain, t0+120_000)
	mustCreate(t, b, plain, pf, ptok)
	pr, err := rotateGrace(b, ptok.Hash, NewHash(), t0+1, 0)
	if err != nil || pr.Session.DeviceID != "" || pr.Session.DeviceName != "" || pr.Family.DeviceID != "" {
		t.Fatalf("rotation without a device = %+v, %v", pr.Session, err)
	}
}

// testDeleteDevice: DeleteDeviceSessions removes exactly the user's sessions of that device and
// the user's families of that device, also a family whose session already ended (swept or not),
// so none of the device's refresh tokens mints anything afterwards; other devices, sessions
// without a device and other users' sessions of the same device id stay.
func testDeleteDevice(t *testing.T, b store.Backend) {
	mk := func(user, device string, idle int64, family bool) (*store.Session, *store.RefreshToken) {
		s := newSession(user, t0, idle, t0+60_000)
		s.DeviceID, s.DeviceName = device, "name of "+device
		if !family {
			mustCreate(t, b, s, nil, nil)
			return s, nil
		}
		f, tok := withFamily(s, t0+120_000)
		mustCreate(t, b, s, f, tok)
		return s, tok
	}
	rotate := func(h string, now int64) (store.RotateResult, error) { return rotateGrace(b, h, NewHash(), now, 0) }

	_, atok := mk("12", "dev-a", 60_000, true)
	a2tok := NewHash()
	a2, err := rotateGrace(b, atok.Hash, a2tok, t0+1, 0) // the successor has the device through the family
	if err != nil {
		t.Fatal(err)
	}
	plainA, _ := mk("12", "dev-a", 60_000, false)
	_, swtok := mk("12", "dev-a", 1_000, true)    // idles out and is swept; its family lives on
	idle, idtok := mk("12", "dev-a", 1_500, true) // idles out, not swept
	other, otok := mk("12", "dev-b", 60_000, true)
	longer, _ := mk("12", "dev-ab", 60_000, false)
	none, _ := mk("12", "", 60_000, false)
	stranger, stok := mk("13", "dev-a", 60_000, true)
	if _, err := b.Sweep(ctx, t0+1_000, 100); err != nil {
		t.Fatal(err)
	}
	now := t0 + 2_000

	rev, err := b.DeleteDeviceSessions(ctx, "12", "dev-a", now)
	if err != nil || !revoked(rev, "12", "", 2, a2.Session.ID, plainA.ID, idle.ID) {
		t.Fatalf("DeleteDeviceSessions = %+v, %v; want live %s, %s and expired %s", rev, err, a2.Session.ID, plainA.ID, idle.ID)
	}
	for _, h := range []string{a2tok, atok.Hash, swtok.Hash, idtok.Hash} {
		_, err := rotate(h, now+1)
		wantErr(t, "a refresh token of the logged-out device", err, store.ErrNotFound)
	}
	for _, s := range []*store.Session{other, longer, none, stranger} {
		mustGet(t, b, s.ID, now+1)
	}
	for _, h := range []string{otok.Hash, stok.Hash} {
		if _, err := rotate(h, now+1); err != nil {
			t.Fatalf("another device's or user's family after the device logout: %v", err)
		}
	}
	if rev, err := b.DeleteDeviceSessions(ctx, "12", "dev-a", now+2); err != nil || !revoked(rev, "12", "", 0) {
		t.Fatalf("second DeleteDeviceSessions = %+v, %v", rev, err)
	}
	if rev, err := b.DeleteDeviceSessions(ctx, "12", "", now+2); err != nil || !revoked(rev, "12", "", 0) {
		t.Fatalf(`DeleteDeviceSessions(12, "") = %+v, %v; want nothing`, rev, err)
	}
	mustGet(t, b, none.ID, now+2)
	wantCount(t, b, 4)
}

func testCounters(t *testing.T, b store.Backend) {
	c, err := b.IncrCounter(ctx, "login:ip:127.0.0.1", 1000, 0, t0)
	if err != nil || c.Count != 0 {
		t.Fatalf("read absent = %+v, %v", c, err)
	}
	for i := int64(1); i <= 3; i++ {
		c, err = b.IncrCounter(ctx, "login:ip:127.0.0.1", 1000, 1, t0+i)
		if err != nil || c.Count != i || c.ResetAt != t0+1001 {
			t.Fatalf("incr %d = %+v, %v", i, c, err)
		}
	}
	if c, _ = b.IncrCounter(ctx, "login:ip:127.0.0.1", 1000, 0, t0+500); c.Count != 3 {
		t.Fatalf("read = %+v, want 3", c)
	}
	if c, _ = b.IncrCounter(ctx, "login:ip:127.0.0.1", 1000, 5, t0+1001); c.Count != 5 || c.ResetAt != t0+2001 {
		t.Fatalf("new window = %+v", c)
	}
	if c, _ = b.IncrCounter(ctx, "other", 1000, 1, t0+1001); c.Count != 1 {
		t.Fatalf("independent key = %+v", c)
	}
	if ok, err := b.DeleteCounter(ctx, "login:ip:127.0.0.1"); !ok || err != nil {
		t.Fatalf("delete = %v, %v", ok, err)
	}
	if ok, err := b.DeleteCounter(ctx, "login:ip:127.0.0.1"); ok || err != nil {
		t.Fatalf("second delete = %v, %v", ok, err)
	}
	if c, _ = b.IncrCounter(ctx, "login:ip:127.0.0.1", 1000, 1, t0+1002); c.Count != 1 {
		t.Fatalf("after delete = %+v", c)
	}
	// Concurrent increments are not lost.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := b.IncrCounter(ctx, "race", 60_000, 1, t0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c, _ = b.IncrCounter(ctx, "race", 60_000, 0, t0); c.Count != 50 {
		t.Fatalf("concurrent count = %d, want 50", c.Count)
	}
}

func testSweep(t *testing.T, b store.Backend) {
	live := newSession("12", t0, 60_000, t0+60_000)
	lf, ltok := withFamily(live, t0+120_000)
	mustCreate(t, b, live, lf, ltok)
	for range 25 {
		s := newSession("12", t0, 100, t0+60_000)
		f, tok := withFamily(s, t0+200)
		mustCreate(t, b, s, f, tok)
		if _, err := b.IncrCounter(ctx, "c:"+s.ID[:8], 100, 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.IncrCounter(ctx, "live-counter", 60_000, 1, t0); err != nil {
		t.Fatal(err)
	}
	wantCount(t, b, 26)

	// Nothing is due yet.
	if res, err := b.Sweep(ctx, t0+99, 10); err != nil || res != (store.SweepResult{}) {
		t.Fatalf("early sweep = %+v, %v", res, err)
	}
	var total store.SweepResult
	for i := 0; ; i++ {
		res, err := b.Sweep(ctx, t0+200, 10)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sessions > 10 || res.Tokens > 10 || res.Families > 10 || res.Counters > 10 {
			t.Fatalf("sweep exceeded its limit: %+v", res)
		}
		total.Sessions += res.Sessions
		total.Tokens += res.Tokens
		total.Families += res.Families
		total.Counters += res.Counters
		if !res.More {
			break
		}
		if i > 10 {
			t.Fatal("sweep does not converge")
		}
	}
	if total.Sessions != 25 || total.Tokens != 25 || total.Families != 25 || total.Counters != 25 {
		t.Fatalf("swept %+v, want 25 of each", total)
	}
	wantCount(t, b, 1)
	mustGet(t, b, live.ID, t0+200)
	if c, _ := b.IncrCounter(ctx, "live-counter", 60_000, 0, t0+200); c.Count != 1 {
		t.Fatalf("live counter swept: %+v", c)
	}
	if _, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: ltok.Hash, NewTokenHash: NewHash(), Now: t0 + 200, NewSession: rebuild(NewID(), t0+200, 1000)}); err != nil {
		t.Fatalf("live family after sweep: %v", err)
	}
}

func testConcurrentMixed(t *testing.T, b store.Backend) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			user := fmt.Sprintf("w%d", w)
			for i := range each {
				s := newSession(user, t0, 10_000, t0+60_000)
				if err := create(b, s, nil, nil); err != nil {
					t.Error(err)
					return
				}
				if _, err := b.TouchSession(ctx, s.ID, store.Touch{Host: "x.localhost", IdleTimeoutMs: 20_000, Sliding: true, Now: t0 + 1}); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := b.DeleteSession(ctx, s.ID, store.Deletion{Now: t0 + 1}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for w := range workers {
		l, err := b.ListUserSessions(ctx, fmt.Sprintf("w%d", w), t0+15_000)
		if err != nil {
			t.Fatal(err)
		}
		total += len(l)
	}
	if want := workers * (each / 2); total != want {
		t.Fatalf("live sessions = %d, want %d", total, want)
	}
	wantCount(t, b, int64(workers*(each/2)))
}

// testLiteralValues: values that look like query operators or field paths (a document database
// backend must never let them act as such) are stored and matched literally.
func testLiteralValues(t *testing.T, b store.Backend) {
	victim := newSession("12", t0, 10_000, t0+60_000)
	victim.DeviceID = "d-1"
	mustCreate(t, b, victim, nil, nil)
	odd := newSession(`{"$ne":""}`, t0, 10_000, t0+60_000)
	odd.DeviceID = `{"$exists":true}`
	mustCreate(t, b, odd, nil, nil)
	for _, dev := range []string{`{"$ne":""}`, "$ne", `{"$exists":true}`, "$exists", ".*"} {
		for _, user := range []string{victim.UserID, odd.UserID} {
			if user == odd.UserID && dev == odd.DeviceID {
				continue
			}
			if rev, err := b.DeleteDeviceSessions(ctx, user, dev, t0); err != nil || len(rev.SessionIDs) != 0 {
				t.Fatalf("DeleteDeviceSessions(%q, %q) = %+v, %v; want none", user, dev, rev, err)
			}
		}
	}
	for _, user := range []string{"$ne", `{"$gt":""}`, "$where", ".*", ""} {
		if l, err := b.ListUserSessions(ctx, user, t0); err != nil || len(l) != 0 {
			t.Fatalf("ListUserSessions(%q) = %d sessions, %v; want none", user, len(l), err)
		}
		if rev, err := b.DeleteUserSessions(ctx, user, t0); err != nil || len(rev.SessionIDs) != 0 || rev.Live != 0 {
			t.Fatalf("DeleteUserSessions(%q) = %+v, %v; want none", user, rev, err)
		}
	}
	if l, err := b.ListUserSessions(ctx, odd.UserID, t0); err != nil || len(l) != 1 || l[0].ID != odd.ID {
		t.Fatalf("ListUserSessions(odd) = %v, %v", l, err)
	}
	for _, id := range []string{`{"$gt":""}`, "$gt"} {
		_, err := b.GetSession(ctx, id, t0)
		wantErr(t, "get "+id, err, store.ErrNotFound)
	}
	got, err := b.TouchSession(ctx, odd.ID, store.Touch{Host: "$set.x%2E", IdleTimeoutMs: 1000, Sliding: true, Now: t0 + 1})
	if err != nil {
		t.Fatal(err)
	}
	equalSession(t, mustGet(t, b, odd.ID, t0+1), got)
	if got.HostsLastSeen["$set.x%2E"] != t0+1 || got.HostsLastSeen["a.localhost"] != t0 || len(got.HostsLastSeen) != 2 {
		t.Fatalf("hosts = %v", got.HostsLastSeen)
	}
	if c, err := b.IncrCounter(ctx, `{"$gt":""}`, 1000, 1, t0); err != nil || c.Count != 1 {
		t.Fatalf("counter = %+v, %v", c, err)
	}
	if ok, err := b.DeleteCounter(ctx, "$gt"); err != nil || ok {
		t.Fatalf("DeleteCounter($gt) = %v, %v", ok, err)
	}
	mustGet(t, b, victim.ID, t0)
	wantCount(t, b, 2)
}
