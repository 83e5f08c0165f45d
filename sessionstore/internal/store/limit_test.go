package store

import (
	"errors"
	"slices"
	"testing"
)

func TestPlanEviction(t *testing.T) {
	const now = int64(1_000_000)
	mk := func(id string, created, lastSeen, expires int64) *Session {
		return &Session{ID: id, CreatedAt: created, LastSeenAt: lastSeen, ExpiresAt: expires, AbsoluteExpiresAt: now + 10_000}
	}
	a := mk("a", 10, 500, now+1) // least recently used
	b := mk("b", 20, 700, now+1)
	c := mk("c", 5, 700, now+1) // same last use as b, created earlier: goes before b
	d := mk("d", 30, 900, now+1)
	dead := mk("e", 1, 1, now) // expired: neither counted nor evicted
	all := []*Session{d, dead, b, a, c}
	cases := []struct {
		name string
		lim  Limit
		want []string
		err  error
	}{
		{"no cap", Limit{}, nil, nil},
		{"no cap, refuse", Limit{Refuse: true}, nil, nil},
		{"under the cap", Limit{Max: 5}, nil, nil},
		{"under the cap, refuse (the expired one does not count)", Limit{Max: 5, Refuse: true}, nil, nil},
		{"at the cap: one goes", Limit{Max: 4}, []string{"a"}, nil},
		{"over the cap: down to max-1", Limit{Max: 2}, []string{"a", "c", "b"}, nil},
		{"cap 1: every live one goes", Limit{Max: 1}, []string{"a", "c", "b", "d"}, nil},
		{"at the cap, refuse", Limit{Max: 4, Refuse: true}, nil, ErrSessionLimit},
		{"over the cap, refuse", Limit{Max: 1, Refuse: true}, nil, ErrSessionLimit},
	}
	for _, tc := range cases {
		got, err := PlanEviction(slices.Clone(all), tc.lim, now)
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || !slices.Equal(ids, tc.want) {
			t.Errorf("%s: PlanEviction = %v, %v; want %v, %v", tc.name, ids, err, tc.want, tc.err)
		}
	}
	// Equal times: the id decides, so every backend evicts the same session.
	x, y := mk("x", 10, 10, now+1), mk("y", 10, 10, now+1)
	if got, _ := PlanEviction([]*Session{y, x}, Limit{Max: 2}, now); len(got) != 1 || got[0].ID != "x" {
		t.Errorf("tie = %v, want x", got)
	}
}

func TestApplyTouchAddress(t *testing.T) {
	s := &Session{LoginAddr: "192.0.2.1", LastAddr: "192.0.2.1", ExpiresAt: 10, AbsoluteExpiresAt: 100}
	s.ApplyTouch(Touch{Host: "a", Now: 1})
	if s.LastAddr != "192.0.2.1" {
		t.Fatalf("a touch without an address changed it: %q", s.LastAddr)
	}
	s.ApplyTouch(Touch{Host: "a", ClientAddr: "2001:db8::1", Now: 2})
	if s.LastAddr != "2001:db8::1" || s.LoginAddr != "192.0.2.1" {
		t.Fatalf("after a touch from 2001:db8::1: login %q, last %q", s.LoginAddr, s.LastAddr)
	}
}

func TestMintSessionAddressAndRememberMe(t *testing.T) {
	f := &Family{ID: "f", UserID: "12", LoginAddr: "192.0.2.1", RememberMe: true, ExpiresAt: 1000}
	s := f.MintSession(Mint{ID: "s", Host: "a", IdleTimeoutMs: 10, MaxLifetimeMs: 100, Now: 1})
	if s.LoginAddr != "192.0.2.1" || s.LastAddr != "192.0.2.1" || !s.RememberMe {
		t.Fatalf("minted without an address: %+v", s)
	}
	s = f.MintSession(Mint{ID: "s", Host: "a", IdleTimeoutMs: 10, MaxLifetimeMs: 100, ClientAddr: "198.51.100.7", Now: 1})
	if s.LoginAddr != "198.51.100.7" || s.LastAddr != "198.51.100.7" || !s.RememberMe {
		t.Fatalf("minted from 198.51.100.7: %+v", s)
	}
}
