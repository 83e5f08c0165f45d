package accessproxy

// Liveness: one definition of when a session stops being alive on a host and when it is next
// extended, used by the full checks (authenticate) and by the fast path (remember) alike.

// window is an instance's bounds for a session: its idle window, its lifetime, and how often a
// sliding session is extended (a tenth of the idle window).
type window struct {
	idleMs, maxLifetimeMs, touchEveryMs int64
}

// windowOf is the bounds that apply to s: a "rememberMe" login's, or the normal ones.
func (m *Middleware) windowOf(s *storeSession) *window {
	if s.RememberMe {
		return &m.remembered
	}
	return &m.normal
}

// aliveUntil is when the session stops being alive for this instance on host: the store's own
// expiry, the absolute cap, this instance's maxLifetime, and its idle window on host (sliding:
// from the host's last use, or the session's if the host has none; fixed: from login).
func (m *Middleware) aliveUntil(s *storeSession, host string) int64 {
	w := m.windowOf(s)
	until := earlier(earlier(s.ExpiresAt, s.AbsoluteExpiresAt), s.CreatedAt+w.maxLifetimeMs)
	if !m.s.sliding {
		return earlier(until, s.CreatedAt+w.idleMs)
	}
	last, ok := s.HostsLastSeen[host]
	if !ok {
		last = s.LastSeenAt
	}
	return earlier(until, last+w.idleMs)
}

func (m *Middleware) alive(s *storeSession, host string, nowMs int64) bool {
	return nowMs < m.aliveUntil(s, host)
}

// touchAt is when this instance next extends the session in the store for host (0: at once): when
// the host is not recorded yet, a tenth of the idle window after its last touch, or as soon as the
// store's own expiry lags this instance's window by that much.
func (m *Middleware) touchAt(s *storeSession, host string) int64 {
	last, ok := s.HostsLastSeen[host]
	if !ok {
		return 0
	}
	w := m.windowOf(s)
	at := last + w.touchEveryMs
	if m.s.sliding {
		// Lagging: expiresAt < min(now+idle, absolute) - touchEvery.
		if s.ExpiresAt < s.AbsoluteExpiresAt-w.touchEveryMs {
			at = earlier(at, s.ExpiresAt-w.idleMs+w.touchEveryMs+1)
		}
	} else if s.ExpiresAt < earlier(s.CreatedAt+w.idleMs, s.AbsoluteExpiresAt)-w.touchEveryMs {
		return 0
	}
	return at
}

func (m *Middleware) touchDue(s *storeSession, host string, nowMs int64) bool {
	return nowMs >= m.touchAt(s, host)
}

func earlier(a, b int64) int64 {
	if b < a {
		return b
	}
	return a
}
