package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestRotationOutcome(t *testing.T) {
	const now = int64(1_000_000)
	tok := func(spent bool, exp int64) *RefreshToken {
		return &RefreshToken{Hash: "h", FamilyID: "f", UserID: "12", SessionID: "s", ExpiresAt: exp, Spent: spent}
	}
	spentAt := func(at int64) *RefreshToken {
		t := tok(true, now+1)
		t.SpentAt = at
		return t
	}
	fam := &Family{ID: "f", UserID: "12", ExpiresAt: now + 1}
	const grace = int64(10_000)
	cases := []struct {
		name    string
		t       *RefreshToken
		f       *Family
		graceMs int64
		want    error
		inGrace bool
	}{
		{"live token, live family", tok(false, now+1), fam, 0, nil, false},
		{"live token with a grace asked", tok(false, now+1), fam, grace, nil, false},
		{"unknown token", nil, nil, 0, ErrNotFound, false},
		{"expired token", tok(false, now), fam, 0, ErrNotFound, false},
		{"expired spent token", tok(true, now), fam, 0, ErrNotFound, false},
		{"spent token, live family", tok(true, now+1), fam, 0, ErrReused, false},
		{"spent token, family gone", tok(true, now+1), nil, 0, ErrReused, false},
		{"family gone", tok(false, now+1), nil, 0, ErrNotFound, false},
		{"family expired", tok(false, now+1), &Family{ID: "f", ExpiresAt: now}, 0, ErrNotFound, false},
		{"another family", tok(false, now+1), &Family{ID: "g", ExpiresAt: now + 1}, 0, ErrNotFound, false},

		{"grace: spent 5s ago", spentAt(now - 5_000), fam, grace, nil, true},
		{"grace: spent this millisecond", spentAt(now), fam, grace, nil, true},
		{"grace: spent exactly the grace ago", spentAt(now - grace), fam, grace, nil, true},
		{"grace: 1ms past it", spentAt(now - grace - 1), fam, grace, ErrReused, false},
		{"grace: spent 1s ahead (a concurrent rotation that read its time first)", spentAt(now + SpendSkewMs), fam, grace, nil, true},
		{"grace: spent further ahead (clock went back)", spentAt(now + SpendSkewMs + 1), fam, grace, ErrReused, false},
		{"grace 0: spent ahead", spentAt(now + 1), fam, 0, ErrReused, false},
		{"grace: spent before spend times were recorded", spentAt(0), fam, MaxReuseGraceMs, ErrReused, false},
		{"grace 0: spent 1ms ago", spentAt(now - 1), fam, 0, ErrReused, false},
		{"grace 0: spent this millisecond", spentAt(now), fam, 0, ErrReused, false},
		{"negative grace", spentAt(now), fam, -1, ErrReused, false},
		{"grace: family gone", spentAt(now - 1), nil, grace, ErrReused, false},
		{"grace: family expired", spentAt(now - 1), &Family{ID: "f", ExpiresAt: now}, grace, ErrReused, false},
		{"grace: another family", spentAt(now - 1), &Family{ID: "g", ExpiresAt: now + 1}, grace, ErrReused, false},
		{"grace: token expired", func() *RefreshToken { t := spentAt(now - 1); t.ExpiresAt = now; return t }(), fam, grace, ErrNotFound, false},
	}
	for _, tc := range cases {
		inGrace, got := RotationOutcome(tc.t, tc.f, now, tc.graceMs)
		if !errors.Is(got, tc.want) || (tc.want == nil && got != nil) || inGrace != tc.inGrace {
			t.Errorf("%s: RotationOutcome = (grace %v, %v), want (grace %v, %v)", tc.name, inGrace, got, tc.inGrace, tc.want)
		}
	}
}

func TestSpend(t *testing.T) {
	tok := &RefreshToken{Hash: "h", ExpiresAt: 10}
	tok.Spend(7)
	if !tok.Spent || tok.SpentAt != 7 {
		t.Fatalf("Spend(7) = %+v", tok)
	}
	if g, err := RotationOutcome(tok, &Family{ExpiresAt: 10}, 8, 1); !g || err != nil {
		t.Fatalf("just spent, within 1ms: grace %v, %v", g, err)
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
	f := &Family{ID: "f", UserID: "12", Host: "a.localhost", Audience: []string{"a.localhost"}, DeviceID: "dev-1", DeviceName: "Pixel 9",
		JWT: []byte("sealed"), CreatedAt: 1, ExpiresAt: now + 5_000, RevalidatedAt: 900}
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
				DeviceID: "dev-1", DeviceName: "Pixel 9", UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now, HostsLastSeen: map[string]int64{"b.localhost": now},
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

// A remembered family's new session takes the rotation's rememberMe windows; another family's
// the normal ones.
func TestMintSessionRememberedWindows(t *testing.T) {
	const now = int64(1_700_000_000_000)
	m := Mint{ID: "n", Host: "a.localhost", IdleTimeoutMs: 60_000, MaxLifetimeMs: 3_600_000,
		RememberIdleTimeoutMs: 600_000, RememberMaxLifetimeMs: 36_000_000, Sliding: true, Now: now}
	f := &Family{ID: "f", UserID: "1", ExpiresAt: now + 100_000_000}
	if s := f.MintSession(m); s.IdleTimeoutMs != 60_000 || s.AbsoluteExpiresAt != now+3_600_000 {
		t.Fatalf("a normal family: idle %d, cap %d", s.IdleTimeoutMs, s.AbsoluteExpiresAt-now)
	}
	f.RememberMe = true
	if s := f.MintSession(m); s.IdleTimeoutMs != 600_000 || s.AbsoluteExpiresAt != now+36_000_000 || s.ExpiresAt != now+600_000 {
		t.Fatalf("a remembered family: idle %d, cap %d, expiry %d", s.IdleTimeoutMs, s.AbsoluteExpiresAt-now, s.ExpiresAt-now)
	}
	m.RememberIdleTimeoutMs, m.RememberMaxLifetimeMs = 0, 0
	if s := f.MintSession(m); s.IdleTimeoutMs != 60_000 {
		t.Fatalf("a remembered family without rememberMe windows: idle %d", s.IdleTimeoutMs)
	}
}
