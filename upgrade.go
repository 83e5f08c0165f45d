package accessproxy

import (
	"context"
	"net/http"
	"time"
)

// Live connections end with their session. An upgraded request (a websocket) holds its
// connection while next.ServeHTTP runs. Traefik proxies HTTP/1 with Go's httputil.ReverseProxy,
// which closes the backend connection once the request's context is done (golang/go#35559, as
// Traefik's fast proxy does too); the copy then ends and Traefik closes the client's connection.
// So one watcher per connection cancels that context when the session ends on this Traefik.
// The ResponseWriter is not wrapped: under Yaegi an interpreted wrapper loses http.Hijacker.

// upgradeCheckEvery is how often a watcher looks at its session (a variable for tests).
var upgradeCheckEvery = time.Second

// upgradeWatch follows the session of one upgraded connection.
type upgradeWatch struct {
	m     *Middleware
	token string
	host  string
	first *tokenEntry // as authenticated: a revocation after its read ends the connection
	cur   *tokenEntry // the latest copy seen (cache or the watcher's own read)
	// readMs is the watcher's latest store read: at most one per pollMs (bounded polling).
	readMs int64
	pollMs int64
	every  time.Duration
}

// What a watcher concludes from memory alone.
const (
	watchKeep = iota
	watchEnd
	watchRead // only the store can say
)

// serveUpgraded passes an authenticated upgrade request on, watched until next returns.
func (m *Middleware) serveUpgraded(rw http.ResponseWriter, req *http.Request, token string, e *tokenEntry) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel() // ends the watcher too
	w := m.newUpgradeWatch(token, requestHost(req.Host), e)
	go w.run(ctx, cancel)
	m.prepareUpstream(req, e)
	m.next.ServeHTTP(rw, req.WithContext(ctx))
}

func (m *Middleware) newUpgradeWatch(token, host string, e *tokenEntry) *upgradeWatch {
	every := upgradeCheckEvery
	poll := m.cacheTTLms
	if poll < every.Milliseconds() {
		poll = every.Milliseconds() // cacheTTL 0s: still one read per check at most
	}
	return &upgradeWatch{m: m, token: token, host: host, first: e, cur: e, pollMs: poll, every: every}
}

// run checks every upgradeCheckEvery until the session ends (cancel: the connection closes) or
// the connection does. A panic ends the connection too: fail closed.
func (w *upgradeWatch) run(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	defer func() { _ = recover() }()
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.m.useFeed {
			w.m.b.ensureFeed() // an open socket keeps the feed (one long-poll) instead of polling
		}
		if !w.step(ctx, w.m.clock.nowMs()) {
			return
		}
	}
}

// step decides whether the session is still alive on this host at nowMs, reading the store when
// memory cannot say and the watcher's read budget allows. False: end the connection.
func (w *upgradeWatch) step(ctx context.Context, nowMs int64) bool {
	v := w.verdict(nowMs)
	if v == watchRead && nowMs-w.readMs >= w.pollMs {
		w.readMs = nowMs
		e, _ := w.m.load(ctx, w.token, w.cur, nowMs)
		if e == nil {
			return false // gone, revoked while read, or the store unreachable: fail closed
		}
		w.cur = e
		v = w.verdict(nowMs)
	}
	return v != watchEnd
}

// verdict is the decision from memory: the cache (which logouts, the change feed and touches keep
// current) and the copy the watcher holds.
func (w *upgradeWatch) verdict(nowMs int64) int {
	m := w.m
	if m.cache.endedSince(w.first) {
		return watchEnd // revoked here or by the feed: no store read needed
	}
	ce := m.cache.get(w.token)
	if ce != nil {
		w.cur = ce
	}
	e := w.cur
	if nowMs >= e.expMs || (m.s.audienceCheck && !e.aud.allows(w.host)) {
		return watchEnd
	}
	if !m.alive(e.sess, w.host, nowMs) {
		if e.fetchedMs >= m.aliveUntil(e.sess, w.host) {
			return watchEnd // read after it had ended: the store's word
		}
		return watchRead // another replica may have extended it
	}
	// Missing (evicted for space, or dropped by an update or a resync) or stale past cacheTTL
	// without the feed's word: the store decides, never the absence alone.
	if ce == nil || (nowMs-e.fetchedMs >= m.cacheTTLms && !m.feedVouches(e, nowMs)) {
		return watchRead
	}
	return watchKeep
}

// endedSince says whether e's session or user was revoked on this Traefik (locally or through the
// feed) after e was read. Unlike revokedSince, a dropAll does not count: it names no session, so
// the store is asked instead (the entry is gone from the cache).
func (c *tokenCache) endedSince(e *tokenEntry) bool {
	c.mu.RLock()
	r := c.revokedSid[e.claims.Sid] > e.loadSeq || c.revokedUser[e.claims.Sub] > e.loadSeq
	c.mu.RUnlock()
	return r
}
