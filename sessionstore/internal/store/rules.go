package store

// MaxHostsSeen bounds Session.HostsLastSeen; the least recently seen host is dropped past it.
const MaxHostsSeen = 64

// Live reports whether the session is usable at now.
func (s *Session) Live(now int64) bool {
	return now < s.ExpiresAt && now < s.AbsoluteExpiresAt
}

// ApplyTouch records a use from t.Host at t.Now and, when sliding, extends ExpiresAt to
// now+IdleTimeoutMs. The expiry never moves backwards (another host may have a longer window)
// and never passes AbsoluteExpiresAt.
func (s *Session) ApplyTouch(t Touch) {
	s.LastSeenAt = t.Now
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

// Live reports whether the family can still mint sessions at now.
func (f *Family) Live(now int64) bool { return now < f.ExpiresAt }

// Live reports whether the token is unexpired at now (spent or not).
func (t *RefreshToken) Live(now int64) bool { return now < t.ExpiresAt }
