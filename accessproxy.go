// Package accessproxy is a Traefik middleware that takes over access management for Strapi:
// it swaps Strapi's JWT at login for its own short, revocable session token and puts Strapi's
// JWT back on the way in, after checking the session, its idle window and the user's audience.
package accessproxy

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

const (
	headerUserID    = "X-Auth-User-Id"
	headerSessionID = "X-Auth-Session-Id"
)

// Middleware is one instance of the plugin: its settings apply to the requests of its router,
// while sessions and tokens are shared by all instances on the same store and secret.
type Middleware struct {
	next   http.Handler
	name   string
	s      *settings
	keys   *keyRing
	store  *storeClient
	cache  *tokenCache
	feed   *feed
	b      *backend
	limits *regulator
	clock  *clock

	// fast maps the Authorization header of recently validated requests to what this instance
	// concluded, until something about the token needs checking again (see remember).
	fastMu      *sync.RWMutex
	fastEntries map[string]*fastEntry
	fast        *fastMap // the same map, for inserts (remember)
	fastPaths   map[string]bool
	// routed matches the normal paths that route somewhere special (see routedPattern).
	routed *regexp.Regexp
	// usersPrefix is "<apiPrefix>/users": writes there are checked (userWriteAllowed).
	usersPrefix string
	// spoofable are the header keys a client may not send where the proxy sets identity or
	// upstream headers: every spelling an upstream could read as one of them (spoofableHeaders).
	spoofable []string

	extraHeaders  bool // identityHeaders or upstreamHeaders set
	anonymousPass bool // requests without a credential go straight through
	cookieMode    bool // cookie.enabled: a request with cookies goes the slow way (its cookie is ours to strip)

	// Durations in ms for the hot path's integer compares.
	cacheTTLms, revalidateMs int64
	// normal and remembered are the session bounds of a normal login and of a "rememberMe" one.
	normal, remembered window
	// useFeed: changeFeed and a cache (cacheTTL > 0): this instance follows and trusts the feed.
	useFeed bool
}

// New builds an instance. It runs again on every configuration reload, so it starts nothing and
// contacts nothing: the store is first called by a request.
func New(_ context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	s, err := parseConfig(config)
	if err != nil {
		return nil, fmt.Errorf("accessproxy %s: %w", name, err)
	}
	keys, err := newKeyRing(config.Secret, config.PreviousSecrets)
	if err != nil {
		return nil, fmt.Errorf("accessproxy %s: %w", name, err)
	}
	routed, err := regexp.Compile(routedPattern(s.routes, s.ownPaths(), s.blockedPaths))
	if err != nil {
		return nil, fmt.Errorf("accessproxy %s: blockedPaths: %w", name, err)
	}
	b := sharedBackend(config)
	fast := b.register(config.CacheSize)
	store := newStoreClient(b.http, config.StoreURL, config.StoreToken, s.storeTimeout)
	m := &Middleware{
		limits:        &regulator{store: store, clock: b.clock, scope: name, rate: s.loginRate, threshold: s.lockoutThreshold, duration: s.lockoutDuration},
		clock:         b.clock,
		fastMu:        &fast.mu,
		fastEntries:   fast.entries,
		fast:          fast,
		fastPaths:     fast.paths,
		next:          next,
		name:          name,
		s:             s,
		keys:          keys,
		store:         store,
		cache:         b.cache,
		feed:          b.feed,
		b:             b,
		routed:        routed,
		usersPrefix:   s.routes.users,
		spoofable:     spoofableHeaders(s.upstreamHeaders),
		extraHeaders:  s.identityHeaders || len(s.upstreamHeaders) > 0,
		anonymousPass: !s.requireAuth && !s.cookie.Enabled,
		cookieMode:    s.cookie.Enabled,
		cacheTTLms:    s.cacheTTL.Milliseconds(),
		revalidateMs:  s.revalidateEvery.Milliseconds(),
		useFeed:       config.ChangeFeed && s.cacheTTL > 0,
	}
	m.normal = window{idleMs: s.idleTimeout.Milliseconds(), maxLifetimeMs: s.maxLifetime.Milliseconds(), touchEveryMs: s.touchEvery.Milliseconds()}
	m.remembered = m.normal
	if s.rememberIdle > 0 {
		m.remembered.idleMs, m.remembered.touchEveryMs = s.rememberIdle.Milliseconds(), (s.rememberIdle / 10).Milliseconds()
	}
	if s.rememberMaxLifetime > 0 {
		m.remembered.maxLifetimeMs = s.rememberMaxLifetime.Milliseconds()
	}
	if m.extraHeaders || m.cookieMode {
		return carefulMiddleware{m}, nil
	}
	return m, nil
}

// ServeHTTP is the hot path. Under Yaegi a call costs about a microsecond plus one allocation per
// local and temporary of the whole function, taken branch or not, so this function holds only
// the common cases, with native calls: a normal path that routes nowhere special, and either a
// token this instance validated moments ago or no credential at all. Everything else reads top
// to bottom in serveSlow.
func (m *Middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	// Identity headers are ours alone: whatever the client sent is dropped, and where the proxy
	// sets headers an upstream trusts, in every spelling (see spoofableHeaders).
	delete(h, headerUserID)
	delete(h, headerSessionID)

	// One lock for both lookups: the token's conclusion, and whether the path is one the slow path
	// found plain and routed nowhere (a map index instead of two regexp calls).
	a := h["Authorization"]
	m.fastMu.RLock()
	plain := m.fastPaths[req.URL.Path]
	var f *fastEntry
	if len(a) == 1 {
		f = m.fastEntries[a[0]]
	}
	m.fastMu.RUnlock()
	// An upgrade (websocket) goes the slow way: its connection is watched (upgrade.go).
	if plain && len(h["Upgrade"]) == 0 && (req.Method == "GET" || !strings.HasPrefix(req.URL.Path, m.usersPrefix)) {
		if f != nil && f.host == req.Host {
			if time.Until(f.until) > 0 {
				h["Authorization"] = f.auth
				if m.extraHeaders {
					m.addExtraHeaders(h, f.e)
				}
				m.next.ServeHTTP(rw, req)
				return
			}
			m.serveDue(rw, req, f)
			return
		}
		if len(a) == 0 && m.anonymousPass {
			m.next.ServeHTTP(rw, req)
			return
		}
	}
	m.serveSlow(rw, req)
}

// serveSlow handles everything the fast path does not, in this order: the admin channel, the
// proxy's own and Strapi's auth routes, GraphQL, Strapi API tokens (api_tokens.go), the users
// API, then full token checks.
func (m *Middleware) serveSlow(rw http.ResponseWriter, req *http.Request) {
	if m.useFeed {
		m.b.ensureFeed()
	}
	raw := req.URL.Path
	fastPathable := plainPath.MatchString(raw) && !m.routed.MatchString(raw)
	p := normalizePath(raw)
	r := &m.s.routes
	if m.blocked(p) && m.serveBlocked(rw, req, p) {
		return
	}
	refreshCookie := ""
	if hasPathPrefix(p, r.auth) {
		// The proxy's refresh cookie is sent to the auth routes only, and is never Strapi's.
		refreshCookie = m.takeRefreshCookie(req)
	}
	if m.serveAuthRoute(rw, req, p, refreshCookie) {
		return
	}
	if r.graphql != "" && p == r.graphql {
		m.serveGraphQL(rw, req)
		return
	}

	c := m.credential(req)
	if c.problem != 0 {
		writeError(rw, c.problem, c.message)
		return
	}
	if m.serveAPIToken(rw, req, p, c) {
		return
	}
	if c.token == "" {
		m.serveAnonymous(rw, req, p, fastPathable)
		return
	}
	e := m.session(rw, req, c.token, c.fromCookie)
	if e == nil {
		return
	}
	if hasPathPrefix(p, r.users) && !m.userWriteAllowed(rw, req, p, e) {
		return
	}
	if len(req.Header["Upgrade"]) > 0 {
		m.serveUpgraded(rw, req, c.token, e)
		return
	}
	if fastPathable && !c.fromCookie && !c.hadCookie {
		m.remember(req, c.token, e)
	}
	m.prepareUpstream(req, e)
	m.next.ServeHTTP(rw, req)
}

// serveBlocked answers a request on blockedPaths: 403 outside adminAllowFrom, else the admin
// channel (true), or false for a path below apiPrefix or graphqlPath, which goes on as any other.
func (m *Middleware) serveBlocked(rw http.ResponseWriter, req *http.Request, p string) bool {
	r := &m.s.routes
	if !m.adminAllowed(req) {
		m.auditReason("denied", req, "", "", "admin path from a network not in adminAllowFrom")
		writeError(rw, http.StatusForbidden, "Forbidden")
		return true
	}
	if hasPathPrefix(p, r.prefix) || (r.graphql != "" && hasPathPrefix(p, r.graphql)) {
		return false
	}
	// The admin channel: Strapi's admin panel and its own admin JWTs, untouched, but for the
	// proxy's cookie (a browser sends it along to every path of the host).
	if m.s.cookie.Enabled {
		m.takeSessionCookie(req)
	}
	m.next.ServeHTTP(rw, req)
	return true
}

// serveAnonymous passes a request without a credential to Strapi's public role, unless
// requireAuth, or a users-API write the rules refuse. A plain path is remembered for the hot path.
func (m *Middleware) serveAnonymous(rw http.ResponseWriter, req *http.Request, p string, fastPathable bool) {
	if m.s.requireAuth {
		writeError(rw, http.StatusUnauthorized, "Authentication required")
		return
	}
	if hasPathPrefix(p, m.s.routes.users) && !m.userWriteAllowed(rw, req, p, nil) {
		return
	}
	if fastPathable && m.anonymousPass && len(req.Header["Authorization"]) == 0 {
		m.rememberPath(req.URL.Path)
	}
	m.next.ServeHTTP(rw, req)
}

// session authenticates a request's token and, for a cookie, checks its origin. On failure it
// has answered the request and returns nil.
func (m *Middleware) session(rw http.ResponseWriter, req *http.Request, token string, fromCookie bool) *tokenEntry {
	e, d := m.authenticate(req, token)
	if e == nil {
		if d.status != http.StatusServiceUnavailable {
			m.auditReason("denied", req, "", "", d.msg)
		}
		writeError(rw, d.status, d.msg)
		return nil
	}
	if fromCookie && !safeMethod(req.Method) && !originTrusted(req, e.aud) {
		m.auditReason("denied", req, e.claims.Sub, e.claims.Sid, "cookie request without a trusted Origin")
		writeError(rw, http.StatusForbidden, "Cross-site request refused: Origin is not in the account's audience")
		return nil
	}
	return e
}

// prepareUpstream puts Strapi's JWT (and the configured headers) on an authenticated request.
// The proxy's cookie was already taken off by credential.
func (m *Middleware) prepareUpstream(req *http.Request, e *tokenEntry) {
	req.Header["Authorization"] = e.upstreamAuth
	if m.extraHeaders {
		m.addExtraHeaders(req.Header, e)
	}
}

// carefulMiddleware is the handler New returns when identity or upstream headers or cookie mode
// are on: it drops every spelling of the headers the proxy sets, and sends a request with cookies
// in cookie mode the slow way (the proxy's cookie must come off, and may disagree with the
// bearer). A type of its own so that, under Yaegi, a router without those features pays nothing
// for them: every local of ServeHTTP costs an allocation, taken branch or not.
type carefulMiddleware struct {
	*Middleware
}

func (c carefulMiddleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	m := c.Middleware
	h := req.Header
	if m.extraHeaders {
		for _, k := range m.spoofable {
			delete(h, k)
		}
	}
	if m.cookieMode && len(h["Cookie"]) > 0 {
		delete(h, headerUserID)
		delete(h, headerSessionID)
		m.serveSlow(rw, req)
		return
	}
	m.ServeHTTP(rw, req)
}

// addExtraHeaders sets the identity headers and upstreamHeaders of an authenticated request.
func (m *Middleware) addExtraHeaders(h http.Header, e *tokenEntry) {
	if m.s.identityHeaders {
		h.Set(headerUserID, e.claims.Sub)
		h.Set(headerSessionID, e.claims.Sid)
	}
	for k, v := range m.s.upstreamHeaders {
		h.Set(k, v)
	}
}
