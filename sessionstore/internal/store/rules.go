package store

import "slices"

// The rules every backend applies to the records it read, so that bolt and mongo cannot drift
// apart: they are pure (no storage, no clock), and a backend only loads, calls them and writes.
// Rotation rules are in rotation.go, DeleteSession's decision in deletion.go.

// MaxHostsSeen bounds Session.HostsLastSeen; the least recently seen host is dropped past it.
const MaxHostsSeen = 64

// Live reports whether the session is usable at now.
func (s *Session) Live(now int64) bool {
	return now < s.ExpiresAt && now < s.AbsoluteExpiresAt
}

// ApplyTouch records a use from t.Host at t.Now (and from t.ClientAddr, when given) and, when
// sliding, extends ExpiresAt to now+IdleTimeoutMs. The expiry never moves backwards (another host
// may have a longer window) and never passes AbsoluteExpiresAt.
func (s *Session) ApplyTouch(t Touch) {
	s.LastSeenAt = t.Now
	if t.ClientAddr != "" {
		s.LastAddr = t.ClientAddr
	}
	if s.HostsLastSeen == nil {
		s.HostsLastSeen = make(map[string]int64, 1)
	}
	s.HostsLastSeen[t.Host] = t.Now
	for len(s.HostsLastSeen) > MaxHostsSeen {
		oldest, first := "", true
		for h, at := range s.HostsLastSeen {
			if first || at < s.HostsLastSeen[oldest] || (at == s.HostsLastSeen[oldest] && h < oldest) {
				oldest, first = h, false
			}
		}
		delete(s.HostsLastSeen, oldest)
	}
	if t.Sliding {
		s.ExpiresAt = max(s.ExpiresAt, min(t.Now+t.IdleTimeoutMs, s.AbsoluteExpiresAt))
	}
}

// FirstExpiry is a new session's ExpiresAt: one idle window from now, never past its cap.
func FirstExpiry(now, idleTimeoutMs, absoluteExpiresAt int64) int64 {
	return min(now+idleTimeoutMs, absoluteExpiresAt)
}

// ApplyUpstream is the compare-and-swap of SetUpstream: ErrConflict, and s unchanged, unless
// s.UpstreamVersion is u.ExpectVersion; else the new credentials, the next version and, when
// u.AbsoluteExpiresAt is set, the new cap (the expiry clamped to it: it may only come closer).
// The family's copy is the caller's (u.SealFamily).
func (s *Session) ApplyUpstream(u Upstream) error {
	if s.UpstreamVersion != u.ExpectVersion {
		return ErrConflict
	}
	s.JWT, s.Refresh = u.JWT, u.Refresh
	s.UpstreamVersion++
	if u.AbsoluteExpiresAt > 0 {
		s.AbsoluteExpiresAt = u.AbsoluteExpiresAt
		s.ExpiresAt = min(s.ExpiresAt, u.AbsoluteExpiresAt)
	}
	return nil
}

// ApplyUser records a revalidation on the session: the audience found, RevalidatedAt = u.Now.
// Nothing else changes (expiry, last use, credentials).
func (s *Session) ApplyUser(u UserUpdate) {
	s.Audience, s.RevalidatedAt = slices.Clone(u.Audience), u.Now
}

// ApplyUser records the same revalidation on the family, so later rotations mint sessions with it.
func (f *Family) ApplyUser(u UserUpdate) {
	f.Audience, f.RevalidatedAt = slices.Clone(u.Audience), u.Now
}

// Live reports whether the family can still mint sessions at now.
func (f *Family) Live(now int64) bool { return now < f.ExpiresAt }

// Live reports whether the token is unexpired at now (spent or not).
func (t *RefreshToken) Live(now int64) bool { return now < t.ExpiresAt }
