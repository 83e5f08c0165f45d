package accessproxy

import (
	"net/http"
	"regexp"
	"time"
)

// fastEntry is an instance's conclusion about one Authorization header: on host, the token was
// valid and needs no store call and no re-check before until; from until to hardMs, only the
// session's sliding touch is due (serveDue).
type fastEntry struct {
	e      *tokenEntry
	auth   []string // e.upstreamAuth, one field closer for the hot path
	host   string   // req.Host as sent
	until  time.Time
	key    string // the Authorization header, this entry's key
	token  string // its proxy token
	h      string // requestHost(host)
	hardMs int64  // (the plugin's clock) when something other than the touch is due: the slow path
}

func (f *fastEntry) sid() string {
	if f.e == nil {
		return ""
	}
	return f.e.claims.Sid
}

// plainPath matches the paths normalizePath leaves as they are, conservatively: non-empty
// segments of lower-case letters, digits and a few punctuation marks, none starting with a dot,
// no trailing slash. Anchored and unambiguous, so Go runs it one-pass (~0.2 µs); anything else
// takes the slow path, which normalizes.
var plainPath = regexp.MustCompile(`^(?:/[a-z0-9_~!$&'()*+,;=:@-][a-z0-9._~!$&'()*+,;=:@-]*)+$`)

// remember records that a request's token passed every check, for as long as none of them can
// change: the cache's freshness, the token's expiry, the session's liveness on this host, the
// next touch and the next upstream renewal.
func (m *Middleware) remember(req *http.Request, token string, e *tokenEntry) {
	m.rememberAuth(token, req.Header.Get("Authorization"), req.Host, req.URL.Path, e)
}

// rememberIssued remembers a token this instance just issued on a login or refresh answer, as its
// client will present it ("Bearer <token>") on this host: its first use then takes the fast path
// too, instead of one slow-path pass per new session.
func (m *Middleware) rememberIssued(rawHost, token string) {
	if e := m.cache.get(token); e != nil {
		m.rememberAuth(token, "Bearer "+token, rawHost, "", e)
	}
}

// serveDue serves a request whose remembered token has reached its next sliding touch, which with
// many sessions is a good share of all requests (each session's first use per touchEvery): it
// queues the touch and moves the entry's until one touchEvery on, in a few native calls instead
// of the whole slow path. The cached session takes the store's answer to the touch (mergeTouched);
// past hardMs (staleness, expiry, idleness, renewal, revalidation), the slow path decides.
func (m *Middleware) serveDue(rw http.ResponseWriter, req *http.Request, f *fastEntry) {
	nowMs := m.clock.nowMs()
	if nowMs >= f.hardMs {
		m.serveSlow(rw, req)
		return
	}
	w := &m.normal
	if f.e.sess.RememberMe {
		w = &m.remembered
	}
	// The client's address is worked out by the flusher, off the request.
	m.queueRawTouch(f.e.claims.Sid, f.h, w.idleMs, req.Header.Get("X-Forwarded-For"), req.RemoteAddr)
	nf := *f
	nf.until = time.UnixMilli(m.clock.systemMs(earlier(nowMs+w.touchEveryMs, f.hardMs)))
	// Only in place of f: a revocation since f was read has removed it, and must stay so.
	m.fastMu.Lock()
	if m.fastEntries[f.key] == f {
		m.fastEntries[f.key] = &nf
	}
	m.fastMu.Unlock()
	req.Header["Authorization"] = f.auth
	if m.extraHeaders {
		m.addExtraHeaders(req.Header, f.e)
	}
	m.next.ServeHTTP(rw, req)
}

// rememberAuth is remember for a token's Authorization value on a host; path (when not "") is
// recorded as one the slow path found plain and routed nowhere.
func (m *Middleware) rememberAuth(token, auth, rawHost, path string, e *tokenEntry) {
	if auth == "" || m.cacheTTLms <= 0 {
		return
	}
	m.rememberEntry(token, auth, rawHost, requestHost(rawHost), path, e, m.clock.nowMs())
}

// rememberEntry is rememberAuth with the host normalized and the time read.
func (m *Middleware) rememberEntry(token, auth, rawHost, host, path string, e *tokenEntry, nowMs int64) {
	hard := earlier(e.fetchedMs+m.cacheTTLms, e.expMs)
	if m.feedVouches(e, nowMs) {
		// The feed vouches for the entry: it stays until one of its own deadlines below. A feed
		// event drops it, and so does the feed going down (feedDown empties every fast map; a
		// feed call that hangs fails at the feed's horizon, feedWaitMs + feedSlackMs).
		hard = e.expMs
	}
	hard = earlier(hard, m.aliveUntil(e.sess, host))
	if e.renewAtMs > 0 {
		hard = earlier(hard, e.renewAtMs)
	}
	if e.revalidateAtMs > 0 {
		hard = earlier(hard, e.revalidateAtMs)
	}
	if hard <= nowMs {
		return // something is due at once: nothing to remember
	}
	// A touch due now (a host not recorded yet) leaves until in the past: serveDue does it.
	until := earlier(hard, m.touchAt(e.sess, host))
	f := &fastEntry{e: e, auth: e.upstreamAuth, host: rawHost, until: time.UnixMilli(m.clock.systemMs(until)), key: auth, token: token, h: host, hardMs: hard}
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
