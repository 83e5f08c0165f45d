package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestRotationOutcome(t *testing.T) {
	const now = int64(1_000)
	tok := func(spent bool, exp int64) *RefreshToken {
		return &RefreshToken{Hash: "h", FamilyID: "f", UserID: "12", SessionID: "s", ExpiresAt: exp, Spent: spent}
	}
	fam := &Family{ID: "f", UserID: "12", ExpiresAt: now + 1}
	cases := []struct {
		name string
		t    *RefreshToken
		f    *Family
		want error
	}{
		{"live token, live family", tok(false, now+1), fam, nil},
		{"unknown token", nil, nil, ErrNotFound},
		{"expired token", tok(false, now), fam, ErrNotFound},
		{"expired spent token", tok(true, now), fam, ErrNotFound},
		{"spent token, live family", tok(true, now+1), fam, ErrReused},
		{"spent token, family gone", tok(true, now+1), nil, ErrReused},
		{"family gone", tok(false, now+1), nil, ErrNotFound},
		{"family expired", tok(false, now+1), &Family{ID: "f", ExpiresAt: now}, ErrNotFound},
		{"another family", tok(false, now+1), &Family{ID: "g", ExpiresAt: now + 1}, ErrNotFound},
	}
	for _, tc := range cases {
		if got := RotationOutcome(tc.t, tc.f, now); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
			t.Errorf("%s: RotationOutcome = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRevokedUser(t *testing.T) {
	for _, tc := range []struct {
		tokUser string
		f       *Family
		want    string
	}{
		{"12", &Family{UserID: "12"}, "12"},
		{"12", nil, "12"},                   // the family is gone: the token still names the user
		{"", &Family{UserID: "12"}, "12"},   // a token stored before tokens named their user
		{"", nil, ""},                       // both: nobody left to name
		{"12", &Family{UserID: "13"}, "12"}, // the token's wins
	} {
		if got := RevokedUser(&RefreshToken{UserID: tc.tokUser}, tc.f); got != tc.want {
			t.Errorf("RevokedUser(%q, %+v) = %q, want %q", tc.tokUser, tc.f, got, tc.want)
		}
	}
}

func TestMintSession(t *testing.T) {
	const now = int64(1_000)
	f := &Family{ID: "f", UserID: "12", Host: "a.localhost", Audience: []string{"a.localhost"}, JWT: []byte("sealed"),
		CreatedAt: 1, ExpiresAt: now + 5_000, RevalidatedAt: 900}
	cases := []struct {
		idle, maxLifetime int64
		wantExp, wantAbs  int64
	}{
		{1_000, 3_000, now + 1_000, now + 3_000}, // both windows inside the family's life
		{4_000, 3_000, now + 3_000, now + 3_000}, // the idle window stops at the cap
		{1_000, 9_000, now + 1_000, now + 5_000}, // the cap stops at the family's expiry
		{9_000, 9_000, now + 5_000, now + 5_000}, // both do
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("idle=%d,max=%d", tc.idle, tc.maxLifetime), func(t *testing.T) {
			s := f.MintSession(Mint{ID: "n", Host: "b.localhost", IdleTimeoutMs: tc.idle, Sliding: true, MaxLifetimeMs: tc.maxLifetime, Now: now})
			want := Session{ID: "n", UserID: "12", FamilyID: "f", Host: "b.localhost", Audience: []string{"a.localhost"},
				UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now, HostsLastSeen: map[string]int64{"b.localhost": now},
				IdleTimeoutMs: tc.idle, Sliding: true, ExpiresAt: tc.wantExp, AbsoluteExpiresAt: tc.wantAbs, RevalidatedAt: 900}
			if g, w := fmt.Sprintf("%+v", *s), fmt.Sprintf("%+v", want); g != w {
				t.Fatalf("MintSession:\n got  %s\n want %s", g, w)
			}
			s.Audience[0] = "changed"
			if f.Audience[0] != "a.localhost" {
				t.Fatal("the minted session shares the family's audience")
			}
		})
	}
	next := Rotation{NewTokenHash: "h2"}.NextToken(f, &Session{ID: "n"})
	if *next != (RefreshToken{Hash: "h2", FamilyID: "f", UserID: "12", SessionID: "n", ExpiresAt: now + 5_000}) {
		t.Fatalf("NextToken = %+v", next)
	}
}
