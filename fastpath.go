package accessproxy

import (
	"net/http"
	"regexp"
	"time"
)

// fastEntry is an instance's conclusion about one Authorization header: on host, the token was
// valid and needs no store call and no re-check before until.
type fastEntry struct {
	e     *tokenEntry
	auth  []string // e.upstreamAuth, one field closer for the hot path
	host  string
	until time.Time
}

// plainPath matches the paths normalizePath leaves as they are, conservatively: non-empty
// segments of lower-case letters, digits and a few punctuation marks, none starting with a dot,
// no trailing slash. Anchored and unambiguous, so Go runs it one-pass (~0.2 µs); anything else
// takes the slow path, which normalizes.
var plainPath = regexp.MustCompile(`^(?:/[a-z0-9_~!$&'()*+,;=:@-][a-z0-9._~!$&'()*+,;=:@-]*)+$`)

// remember records that a request's token passed every check, for as long as none of them can
// change: the cache's freshness, the token's expiry, the session's liveness on this host, the
// next touch and the next upstream renewal.
func (m *Middleware) remember(req *http.Request, e *tokenEntry) {
	m.rememberAuth(req.Header.Get("Authorization"), req.Host, req.URL.Path, e)
}

// rememberIssued remembers a token this instance just issued on a login or refresh answer, as its
// client will present it ("Bearer <token>") on this host: its first use then takes the fast path
// too, instead of one slow-path pass per new session.
func (m *Middleware) rememberIssued(rawHost, token string) {
	if e := m.cache.get(token); e != nil {
		m.rememberAuth("Bearer "+token, rawHost, "", e)
	}
}

// rememberAuth is remember for an Authorization value on a host; path (when not "") is recorded
// as one the slow path found plain and routed nowhere.
func (m *Middleware) rememberAuth(auth, rawHost, path string, e *tokenEntry) {
	if auth == "" || m.cacheTTLms <= 0 {
		return
	}
	host := requestHost(rawHost)
	until := earlier(e.fetchedMs+m.cacheTTLms, e.expMs)
	if m.feedVouches(e, m.clock.nowMs()) {
		// The feed vouches for the entry: it stays until one of its own deadlines below. A feed
		// event drops it, and so does the feed going down (feedDown empties every fast map; a
		// feed call that hangs fails at the feed's horizon, feedWaitMs + feedSlackMs).
		until = e.expMs
	}
	until = earlier(until, m.aliveUntil(e.sess, host))
	until = earlier(until, m.touchAt(e.sess, host))
	if e.renewAtMs > 0 {
		until = earlier(until, e.renewAtMs)
	}
	if until <= m.clock.nowMs() {
		return // something is due at once: nothing to remember
	}
	if e.revalidateAtMs > 0 {
		until = earlier(until, e.revalidateAtMs)
	}
	f := &fastEntry{e: e, auth: e.upstreamAuth, host: rawHost, until: time.UnixMilli(m.clock.systemMs(until))}
	// Checked under the fast map's lock: a revocation either comes first and is seen here, or
	// empties this map after the insert (removeMatching leaves its tombstone before it empties).
	m.fastMu.Lock()
	if !m.cache.revokedSince(e) {
		m.fast.putLocked(auth, f)
		if path != "" {
			m.fast.addPathLocked(path)
		}
	}
	m.fastMu.Unlock()
}

// rememberPath records a raw path the slow path found plain and routed nowhere.
func (m *Middleware) rememberPath(p string) {
	m.fastMu.Lock()
	m.fast.addPathLocked(p)
	m.fastMu.Unlock()
}
