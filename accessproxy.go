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

// Config is the plugin configuration (Traefik dynamic config, `plugin.accessproxy`).
// Durations are strings: Traefik cannot decode time.Duration for plugins.
type Config struct {
	Secret          string   `json:"secret,omitempty"`
	PreviousSecrets []string `json:"previousSecrets,omitempty"`

	StoreURL     string `json:"storeURL,omitempty"`
	StoreToken   string `json:"storeToken,omitempty"`
	StoreTimeout string `json:"storeTimeout,omitempty"`
	CacheTTL     string `json:"cacheTTL,omitempty"`

	IdleTimeout string `json:"idleTimeout,omitempty"`
	Sliding     bool   `json:"sliding,omitempty"`
	MaxLifetime string `json:"maxLifetime,omitempty"`

	AudienceField string `json:"audienceField,omitempty"`
	AudienceCheck bool   `json:"audienceCheck,omitempty"`

	// APIPrefix is Strapi's `api.rest.prefix`: every Strapi path the proxy knows lies below it.
	APIPrefix   string `json:"apiPrefix,omitempty"`
	GraphQLPath string `json:"graphqlPath,omitempty"`

	LoginPaths    []string `json:"loginPaths,omitempty"`
	RefreshPath   string   `json:"refreshPath,omitempty"`
	RefreshTokens string   `json:"refreshTokens,omitempty"`
	RefreshTTL    string   `json:"refreshTTL,omitempty"`
	LogoutPath    string   `json:"logoutPath,omitempty"`
	LogoutAllPath string   `json:"logoutAllPath,omitempty"`
	SessionsPath  string   `json:"sessionsPath,omitempty"`

	AllowAudienceOnRegister bool `json:"allowAudienceOnRegister,omitempty"`
	RequireAuth             bool `json:"requireAuth,omitempty"`
	// UsersAPISelfOnly refuses writes to another user's record through Strapi's users API.
	UsersAPISelfOnly bool `json:"usersApiSelfOnly,omitempty"`
	// RevalidateEvery is how often a session's user is re-read from Strapi (blocked, audience).
	RevalidateEvery string `json:"revalidateEvery,omitempty"`

	BlockedPaths   []string `json:"blockedPaths,omitempty"`
	AdminAllowFrom []string `json:"adminAllowFrom,omitempty"`

	LoginRateLimit   string `json:"loginRateLimit,omitempty"`
	LockoutThreshold int    `json:"lockoutThreshold,omitempty"`
	LockoutDuration  string `json:"lockoutDuration,omitempty"`

	Cookie CookieConfig `json:"cookie,omitempty"`

	// StrapiRefreshCookie is the name of Strapi's refresh cookie (users-permissions
	// `sessions.cookie.name`); cookies starting with it never reach the client.
	StrapiRefreshCookie string `json:"strapiRefreshCookie,omitempty"`

	IdentityHeaders bool              `json:"identityHeaders,omitempty"`
	UpstreamHeaders map[string]string `json:"upstreamHeaders,omitempty"`
}

// CookieConfig is the HttpOnly cookie mode.
type CookieConfig struct {
	Enabled  bool   `json:"enabled,omitempty"`
	Name     string `json:"name,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
	SameSite string `json:"sameSite,omitempty"`
}

// CreateConfig returns the defaults of the contract.
func CreateConfig() *Config {
	return &Config{
		StoreTimeout:  "2s",
		CacheTTL:      "5s",
		IdleTimeout:   "30m",
		Sliding:       true,
		MaxLifetime:   "720h",
		AudienceField: "audience",
		AudienceCheck: true,
		APIPrefix:     "/api",
		GraphQLPath:   "/graphql",
		LoginPaths: []string{
			"/api/auth/local", "/api/auth/local/register",
			"/api/auth/reset-password", "/api/auth/change-password",
		},
		RefreshPath:      "/api/auth/local/refresh",
		RefreshTokens:    "onRequest",
		RefreshTTL:       "720h",
		LogoutPath:       "/api/auth/logout",
		LogoutAllPath:    "/api/auth/logout-all",
		SessionsPath:     "/api/auth/sessions",
		UsersAPISelfOnly: true,
		RevalidateEvery:  "5m",
		BlockedPaths:     []string{"/admin", "/content-manager", "/content-type-builder", "/upload", "/users-permissions", "/i18n", "/email"},
		AdminAllowFrom:   []string{"127.0.0.1/32", "::1/128"},
		LoginRateLimit:   "10/m",
		LockoutThreshold: 5,
		LockoutDuration:  "15m",
		Cookie:           CookieConfig{Name: "ap_session", Secure: true, SameSite: "Strict"},
		UpstreamHeaders:  map[string]string{},

		StrapiRefreshCookie: "strapi_up_refresh",
	}
}

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
	limits *regulator
	clock  *clock

	// fast maps the Authorization header of recently validated requests to what this instance
	// concluded, until something about the token needs checking again (see remember).
	fastMu      *sync.RWMutex
	fastEntries map[string]*fastEntry
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
	cacheTTLms, idleMs, touchEveryMs, maxLifetimeMs, revalidateMs int64
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
	fast := b.register()
	store := newStoreClient(b.http, config.StoreURL, config.StoreToken, s.storeTimeout)
	m := &Middleware{
		limits:        &regulator{store: store, clock: b.clock, scope: name, rate: s.loginRate, threshold: s.lockoutThreshold, duration: s.lockoutDuration},
		clock:         b.clock,
		fastMu:        &fast.mu,
		fastEntries:   fast.entries,
		next:          next,
		name:          name,
		s:             s,
		keys:          keys,
		store:         store,
		cache:         b.cache,
		routed:        routed,
		usersPrefix:   s.routes.users,
		spoofable:     spoofableHeaders(s.upstreamHeaders),
		extraHeaders:  s.identityHeaders || len(s.upstreamHeaders) > 0,
		anonymousPass: !s.requireAuth && !s.cookie.Enabled,
		cookieMode:    s.cookie.Enabled,
		cacheTTLms:    s.cacheTTL.Milliseconds(),
		idleMs:        s.idleTimeout.Milliseconds(),
		touchEveryMs:  s.touchEvery.Milliseconds(),
		maxLifetimeMs: s.maxLifetime.Milliseconds(),
		revalidateMs:  s.revalidateEvery.Milliseconds(),
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

	if p := req.URL.Path; plainPath.MatchString(p) && !m.routed.MatchString(p) && (req.Method == "GET" || !strings.HasPrefix(p, m.usersPrefix)) {
		if a := h["Authorization"]; len(a) == 1 {
			m.fastMu.RLock()
			f := m.fastEntries[a[0]]
			m.fastMu.RUnlock()
			if f != nil && f.host == req.Host && time.Until(f.until) > 0 {
				h["Authorization"] = f.auth
				if m.extraHeaders {
					m.addExtraHeaders(h, f.e)
				}
				m.next.ServeHTTP(rw, req)
				return
			}
		} else if len(a) == 0 && m.anonymousPass {
			m.next.ServeHTTP(rw, req)
			return
		}
	}
	m.serveSlow(rw, req)
}

// serveSlow handles everything the fast path does not, in this order: the admin channel, the
// proxy's own and Strapi's auth routes, GraphQL, the users API, then full token checks.
func (m *Middleware) serveSlow(rw http.ResponseWriter, req *http.Request) {
	raw := req.URL.Path
	fastPathable := plainPath.MatchString(raw) && !m.routed.MatchString(raw)
	p := normalizePath(raw)
	r := &m.s.routes
	if m.blocked(p) {
		if !m.adminAllowed(req) {
			m.auditReason("denied", req, "", "", "admin path from a network not in adminAllowFrom")
			writeError(rw, http.StatusForbidden, "Forbidden")
			return
		}
		if !hasPathPrefix(p, r.prefix) && (r.graphql == "" || !hasPathPrefix(p, r.graphql)) {
			// The admin channel: Strapi's admin panel and its own admin JWTs, untouched.
			m.next.ServeHTTP(rw, req)
			return
		}
	}
	if m.serveAuthRoute(rw, req, p) {
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
	if c.token == "" {
		if m.s.requireAuth {
			writeError(rw, http.StatusUnauthorized, "Authentication required")
			return
		}
		if hasPathPrefix(p, r.users) && !m.userWriteAllowed(rw, req, p, nil) {
			return
		}
		m.next.ServeHTTP(rw, req)
		return
	}
	e := m.session(rw, req, c.token, c.fromCookie)
	if e == nil {
		return
	}
	if hasPathPrefix(p, r.users) && !m.userWriteAllowed(rw, req, p, e) {
		return
	}
	if fastPathable && !c.fromCookie && !c.hadCookie {
		m.remember(req, e)
	}
	m.prepareUpstream(req, e)
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
