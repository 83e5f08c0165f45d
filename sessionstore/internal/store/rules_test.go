package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestFirstExpiry(t *testing.T) {
	for _, tc := range []struct{ now, idle, abs, want int64 }{
		{1_000, 500, 2_000, 1_500},
		{1_000, 1_000, 2_000, 2_000},
		{1_000, 5_000, 2_000, 2_000},
	} {
		if got := FirstExpiry(tc.now, tc.idle, tc.abs); got != tc.want {
			t.Errorf("FirstExpiry(%d, %d, %d) = %d, want %d", tc.now, tc.idle, tc.abs, got, tc.want)
		}
	}
}

func TestApplyTouch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		touch       Touch
		wantExpires int64
	}{
		{"sliding extends", Touch{Host: "b", IdleTimeoutMs: 1_000, Sliding: true, Now: 1_500}, 2_500},
		{"a shorter window never pulls back", Touch{Host: "b", IdleTimeoutMs: 100, Sliding: true, Now: 1_500}, 2_000},
		{"never past the cap", Touch{Host: "b", IdleTimeoutMs: 9_000, Sliding: true, Now: 1_500}, 3_000},
		{"non-sliding records use only", Touch{Host: "b", IdleTimeoutMs: 500, Sliding: false, Now: 1_500}, 2_000},
	} {
		s := &Session{CreatedAt: 1_000, LastSeenAt: 1_000, HostsLastSeen: map[string]int64{"a": 1_000}, ExpiresAt: 2_000, AbsoluteExpiresAt: 3_000}
		s.ApplyTouch(tc.touch)
		if s.ExpiresAt != tc.wantExpires || s.LastSeenAt != 1_500 || s.HostsLastSeen["b"] != 1_500 || s.HostsLastSeen["a"] != 1_000 {
			t.Errorf("%s: %+v, want expiresAt %d", tc.name, s, tc.wantExpires)
		}
	}
	// Past MaxHostsSeen the least recently seen host goes.
	s := &Session{ExpiresAt: 2_000, AbsoluteExpiresAt: 3_000}
	for i := range MaxHostsSeen + 1 {
		s.ApplyTouch(Touch{Host: fmt.Sprint("h", i), Now: int64(i)})
	}
	if _, ok := s.HostsLastSeen["h0"]; ok || len(s.HostsLastSeen) != MaxHostsSeen {
		t.Fatalf("hosts = %d, h0 kept = %v", len(s.HostsLastSeen), ok)
	}
}

func TestApplyUpstream(t *testing.T) {
	base := Session{JWT: []byte("old"), Refresh: []byte("old-r"), UpstreamVersion: 3, ExpiresAt: 2_000, AbsoluteExpiresAt: 5_000}
	for _, tc := range []struct {
		name             string
		u                Upstream
		err              error
		wantExp, wantAbs int64
	}{
		{"keeps the cap", Upstream{ExpectVersion: 3, JWT: []byte("new"), Refresh: []byte("new-r")}, nil, 2_000, 5_000},
		{"a later cap", Upstream{ExpectVersion: 3, JWT: []byte("new"), Refresh: []byte("new-r"), AbsoluteExpiresAt: 9_000}, nil, 2_000, 9_000},
		{"an earlier cap clamps the expiry", Upstream{ExpectVersion: 3, JWT: []byte("new"), Refresh: []byte("new-r"), AbsoluteExpiresAt: 1_500}, nil, 1_500, 1_500},
		{"stale version", Upstream{ExpectVersion: 2, JWT: []byte("new"), AbsoluteExpiresAt: 1_500}, ErrConflict, 2_000, 5_000},
	} {
		s := base
		err := s.ApplyUpstream(tc.u)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || s.ExpiresAt != tc.wantExp || s.AbsoluteExpiresAt != tc.wantAbs {
			t.Errorf("%s: %v, %+v", tc.name, err, s)
			continue
		}
		if tc.err != nil {
			if string(s.JWT) != "old" || s.UpstreamVersion != 3 {
				t.Errorf("%s: a conflict changed the session: %+v", tc.name, s)
			}
		} else if string(s.JWT) != "new" || string(s.Refresh) != "new-r" || s.UpstreamVersion != 4 {
			t.Errorf("%s: %+v", tc.name, s)
		}
	}
}

func TestApplyUser(t *testing.T) {
	aud := []string{"b.localhost"}
	u := UserUpdate{Audience: aud, Now: 7}
	s := &Session{Audience: []string{"a.localhost"}, ExpiresAt: 10, LastSeenAt: 3}
	f := &Family{Audience: []string{"a.localhost"}, ExpiresAt: 10}
	s.ApplyUser(u)
	f.ApplyUser(u)
	aud[0] = "changed" // neither record shares the caller's slice
	if !slices.Equal(s.Audience, []string{"b.localhost"}) || s.RevalidatedAt != 7 || s.ExpiresAt != 10 || s.LastSeenAt != 3 {
		t.Fatalf("session: %+v", s)
	}
	if !slices.Equal(f.Audience, []string{"b.localhost"}) || f.RevalidatedAt != 7 || f.ExpiresAt != 10 {
		t.Fatalf("family: %+v", f)
	}
	empty := &Session{Audience: []string{"a"}}
	empty.ApplyUser(UserUpdate{Audience: []string{}, Now: 1})
	if empty.Audience == nil || len(empty.Audience) != 0 {
		t.Fatalf("[] became %#v", empty.Audience)
	}
}
