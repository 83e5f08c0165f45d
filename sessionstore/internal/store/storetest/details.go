package storetest

import (
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// What a session records for people to recognise it: the client addresses, rememberMe.

// testAddresses: LoginAddr is kept as created; LastAddr follows every touch (single or batched)
// that names an address and no other write; a rotation's session gets the rotating client's
// address, else its family's login address; lists carry both.
func testAddresses(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+600_000)
	s.LoginAddr, s.LastAddr = "192.0.2.1", "192.0.2.1"
	f, tok := withFamily(s, t0+600_000)
	mustCreate(t, b, s, f, tok)
	equalSession(t, mustGet(t, b, s.ID, t0), s)

	touch := func(addr string, now int64) *store.Session {
		t.Helper()
		got, err := b.TouchSession(ctx, s.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, ClientAddr: addr, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		equalSession(t, mustGet(t, b, s.ID, now), got)
		return got
	}
	if got := touch("", t0+1); got.LoginAddr != "192.0.2.1" || got.LastAddr != "192.0.2.1" {
		t.Fatalf("touch without an address: login %q, last %q", got.LoginAddr, got.LastAddr)
	}
	if got := touch("2001:db8::1", t0+2); got.LoginAddr != "192.0.2.1" || got.LastAddr != "2001:db8::1" {
		t.Fatalf("touch from 2001:db8::1: login %q, last %q", got.LoginAddr, got.LastAddr)
	}
	batch, err := b.TouchMany(ctx, []store.TouchOne{
		{ID: s.ID, Touch: store.Touch{Host: "b.localhost", IdleTimeoutMs: 60_000, Sliding: true, ClientAddr: "198.51.100.7", Now: t0 + 3}},
		{ID: s.ID, Touch: store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 4}},
	})
	if err != nil || batch[0].LastAddr != "198.51.100.7" || batch[1].LastAddr != "198.51.100.7" || batch[1].LoginAddr != "192.0.2.1" {
		t.Fatalf("batched touches = %+v, %v", batch, err)
	}
	equalSession(t, mustGet(t, b, s.ID, t0+4), batch[1])

	// Revalidation and an upstream update leave the addresses.
	noErr(t)(b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{"a.localhost"}, Now: t0 + 5}))
	noErr(t)(b.SetUpstream(ctx, s.ID, store.Upstream{ExpectVersion: 1, JWT: []byte("j2"),
		SealFamily: func(string) ([]byte, []byte, error) { return []byte("fj2"), nil, nil }, Now: t0 + 6}))
	plain := newSession("12", t0+7, 60_000, t0+600_000)
	mustCreate(t, b, plain, nil, nil)
	list, err := b.ListUserSessions(ctx, "12", t0+7)
	if err != nil || len(list) != 2 || list[0].ID != s.ID || list[0].LoginAddr != "192.0.2.1" || list[0].LastAddr != "198.51.100.7" ||
		list[1].LoginAddr != "" || list[1].LastAddr != "" {
		t.Fatalf("list = %+v, %v", list, err)
	}

	// A rotation from a named address; then one without: the family's login address.
	next := NewHash()
	r1, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok.Hash, NewTokenHash: next, Now: t0 + 10, NewSession: mint(NewID(), t0+10, 60_000, "203.0.113.9")})
	if err != nil || r1.Session.LoginAddr != "203.0.113.9" || r1.Session.LastAddr != "203.0.113.9" || r1.Family.LoginAddr != "192.0.2.1" {
		t.Fatalf("rotation from 203.0.113.9 = %+v / %+v, %v", r1.Session, r1.Family, err)
	}
	equalSession(t, mustGet(t, b, r1.Session.ID, t0+10), r1.Session)
	r2, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: next, NewTokenHash: NewHash(), Now: t0 + 11, NewSession: mint(NewID(), t0+11, 60_000, "")})
	if err != nil || r2.Session.LoginAddr != "192.0.2.1" || r2.Session.LastAddr != "192.0.2.1" {
		t.Fatalf("rotation without an address = %+v, %v", r2.Session, err)
	}
	equalSession(t, mustGet(t, b, r2.Session.ID, t0+11), r2.Session)
}

// testRememberMe: the flag is stored on the session and its family, and every session the family
// mints (normal and grace rotations) carries it, through revalidations and upstream updates.
func testRememberMe(t *testing.T, b store.Backend) {
	s := newSession("12", t0, 60_000, t0+600_000)
	s.RememberMe = true
	f, tok := withFamily(s, t0+600_000)
	mustCreate(t, b, s, f, tok)
	equalSession(t, mustGet(t, b, s.ID, t0), s)
	noErr(t)(b.SetUser(ctx, s.ID, store.UserUpdate{Audience: []string{}, Now: t0 + 1}))
	noErr(t)(b.SetUpstream(ctx, s.ID, store.Upstream{ExpectVersion: 1, JWT: []byte("j2"),
		SealFamily: func(string) ([]byte, []byte, error) { return []byte("fj2"), nil, nil }, Now: t0 + 2}))
	if got := mustGet(t, b, s.ID, t0+2); !got.RememberMe {
		t.Fatal("rememberMe lost by a revalidation or an upstream update")
	}
	next := NewHash()
	r, err := rotateGrace(b, tok.Hash, next, t0+3, 10_000)
	if err != nil || !r.Session.RememberMe || !r.Family.RememberMe {
		t.Fatalf("rotation of a remembered login = %+v / %+v, %v", r.Session, r.Family, err)
	}
	equalSession(t, mustGet(t, b, r.Session.ID, t0+3), r.Session)
	g, err := rotateGrace(b, tok.Hash, NewHash(), t0+4, 10_000)
	if err != nil || !g.Grace || !g.Session.RememberMe {
		t.Fatalf("grace rotation of a remembered login = %+v, %v", g.Session, err)
	}
	list, err := b.ListUserSessions(ctx, "12", t0+4)
	if err != nil || len(list) != 2 || !list[0].RememberMe || !list[1].RememberMe {
		t.Fatalf("list = %+v, %v", list, err)
	}

	plain := newSession("12", t0, 60_000, t0+600_000)
	pf, ptok := withFamily(plain, t0+600_000)
	mustCreate(t, b, plain, pf, ptok)
	pr, err := rotateGrace(b, ptok.Hash, NewHash(), t0+5, 0)
	if err != nil || pr.Session.RememberMe || pr.Family.RememberMe {
		t.Fatalf("rotation of a login not remembered = %+v, %v", pr.Session, err)
	}
}
