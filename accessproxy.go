// Package accessproxy is a Traefik middleware that takes over access management for Strapi:
// it swaps Strapi's JWT at login for its own short, revocable session token and puts Strapi's
// JWT back on the way in, after checking the session, its idle window and the user's audience.
package accessproxy

import (
	"context"
	"errors"
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

	LoginPaths    []string `json:"loginPaths,omitempty"`
	RefreshPath   string   `json:"refreshPath,omitempty"`
	RefreshTokens string   `json:"refreshTokens,omitempty"`
	RefreshTTL    string   `json:"refreshTTL,omitempty"`
	LogoutPath    string   `json:"logoutPath,omitempty"`
	LogoutAllPath string   `json:"logoutAllPath,omitempty"`
	SessionsPath  string   `json:"sessionsPath,omitempty"`

	AllowAudienceOnRegister bool `json:"allowAudienceOnRegister,omitempty"`
	RequireAuth             bool `json:"requireAuth,omitempty"`

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
	next  http.Handler
	name  string
	s     *settings
	keys  *keyRing
	store *storeClient
	cache *tokenCache

	// fast maps the Authorization header of recently validated requests to what this instance
	// concluded, until something about the token needs checking again (see remember).
	fastMu      *sync.RWMutex
	fastEntries map[string]*fastEntry
	// routed matches the normal paths that route somewhere special (see routedPattern).
	routed *regexp.Regexp

	extraHeaders  bool // identityHeaders or upstreamHeaders set
	anonymousPass bool // requests without a credential go straight through

	// Durations in ms for the hot path's integer compares.
	cacheTTLms, idleMs, touchEveryMs, maxLifetimeMs int64
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
	routed, err := regexp.Compile(routedPattern(s.blockedPaths))
	if err != nil {
		return nil, fmt.Errorf("accessproxy %s: blockedPaths: %w", name, err)
	}
	b := sharedBackend(config)
	fast := b.register()
	return &Middleware{
		fastMu:        &fast.mu,
		fastEntries:   fast.entries,
		next:          next,
		name:          name,
		s:             s,
		keys:          keys,
		store:         newStoreClient(b.http, config.StoreURL, config.StoreToken, s.storeTimeout),
		cache:         b.cache,
		routed:        routed,
		extraHeaders:  s.identityHeaders || len(s.upstreamHeaders) > 0,
		anonymousPass: !s.requireAuth && !s.cookie.Enabled,
		cacheTTLms:    s.cacheTTL.Milliseconds(),
		idleMs:        s.idleTimeout.Milliseconds(),
		touchEveryMs:  s.touchEvery.Milliseconds(),
		maxLifetimeMs: s.maxLifetime.Milliseconds(),
	}, nil
}

// ServeHTTP is the hot path. Under Yaegi a call costs about a microsecond plus one allocation per
// local and temporary of the whole function, taken branch or not, so this function holds only
// the common cases, with native calls: a normal path that routes nowhere special, and either a
// token this instance validated moments ago or no credential at all. Everything else reads top
// to bottom in serveSlow.
func (m *Middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	// Identity headers are ours alone: whatever the client sent is dropped.
	delete(h, headerUserID)
	delete(h, headerSessionID)
	if p := req.URL.Path; plainPath.MatchString(p) && !m.routed.MatchString(p) && (req.Method == "GET" || !strings.HasPrefix(p, usersPath)) {
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

// serveSlow handles everything the fast path does not: path normalization, the admin channel,
// the proxy's own and the login routes, and full token checks.
func (m *Middleware) serveSlow(rw http.ResponseWriter, req *http.Request) {
	raw := req.URL.Path
	fastPathable := plainPath.MatchString(raw) && !m.routed.MatchString(raw)
	p := normalizePath(raw)
	if m.blocked(p) && !m.adminAllowed(req) {
		m.auditReason("denied", req, "", "", "admin path from a network not in adminAllowFrom")
		writeError(rw, http.StatusForbidden, "Forbidden")
		return
	}
	if strings.HasPrefix(p, "/api/auth/") && m.serveAuthRoute(rw, req, p) {
		return
	}
	if hasPathPrefix(p, usersPath) && !safeMethod(req.Method) && !m.userWriteAllowed(rw, req) {
		return
	}

	token, fromCookie, bad := m.credential(req)
	if token == "" {
		switch {
		case bad:
			// Strapi accepts any bearer it can verify; only our own tokens may pass.
			writeError(rw, http.StatusUnauthorized, "Invalid credentials: only a token issued by the access proxy is accepted")
		case m.s.requireAuth:
			writeError(rw, http.StatusUnauthorized, "Authentication required")
		default:
			m.next.ServeHTTP(rw, req)
		}
		return
	}
	e := m.session(rw, req, token, fromCookie)
	if e == nil {
		return
	}
	if fastPathable && !fromCookie {
		m.remember(req, e)
	}
	m.prepareUpstream(req, e, fromCookie)
	m.next.ServeHTTP(rw, req)
}

// session authenticates a request's token and, for a cookie, checks its origin. On failure it
// has answered the request and returns nil.
func (m *Middleware) session(rw http.ResponseWriter, req *http.Request, token string, fromCookie bool) *tokenEntry {
	e, status, msg := m.authenticate(req, token)
	if e == nil {
		if status != http.StatusServiceUnavailable {
			m.auditReason("denied", req, "", "", msg)
		}
		writeError(rw, status, msg)
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
func (m *Middleware) prepareUpstream(req *http.Request, e *tokenEntry, fromCookie bool) {
	req.Header["Authorization"] = e.upstreamAuth
	if fromCookie {
		m.stripSessionCookie(req)
	}
	if m.extraHeaders {
		m.addExtraHeaders(req.Header, e)
	}
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

// serveAuthRoute answers the proxy's own endpoints and the login routes; false means the path is
// none of them.
func (m *Middleware) serveAuthRoute(rw http.ResponseWriter, req *http.Request, p string) bool {
	switch {
	case p == m.s.refreshPath:
		m.serveRefresh(rw, req)
	case p == m.s.logoutPath:
		token, _, _ := m.credential(req)
		if token == "" {
			writeError(rw, http.StatusUnauthorized, "Authentication required")
			return true
		}
		m.serveLogout(rw, req, token)
	case p == m.s.logoutAllPath:
		if e := m.requireSession(rw, req); e != nil {
			m.serveLogoutAll(rw, req, e)
		}
	case m.s.loginPaths[p] || isProviderCallback(p):
		m.serveLoginRoute(rw, req, p)
	case p == strapiRefreshPath:
		// Strapi's own refresh needs Strapi's refresh credential, which clients never hold.
		writeError(rw, http.StatusNotFound, "Not Found")
	default:
		id, ok := m.sessionsPathID(p, req)
		if !ok {
			return false
		}
		if e := m.requireSession(rw, req); e != nil {
			m.serveSessions(rw, req, e, id)
		}
	}
	return true
}

// usersPath is Strapi's users API (`PUT /api/users/:id` and friends).
const usersPath = "/api/users"

// userWriteAllowed refuses a write to Strapi's users API that sets the audience: users must not
// grant themselves hosts (operators set audiences in the admin panel, on the admin channel).
func (m *Middleware) userWriteAllowed(rw http.ResponseWriter, req *http.Request) bool {
	body, err := readLoginBody(req)
	switch {
	case errors.Is(err, errBodyMediaType):
		writeError(rw, http.StatusUnsupportedMediaType, "Send user updates as JSON")
	case err != nil:
		writeError(rw, http.StatusRequestEntityTooLarge, "Request body too large")
	case setsField(body, m.s.audienceField):
		m.auditReason("denied", req, "", "", "user update sets "+m.s.audienceField)
		writeError(rw, http.StatusBadRequest, "Invalid parameters: "+m.s.audienceField+" cannot be changed through the API")
	default:
		return true
	}
	return false
}

// strapiRefreshPath is Strapi 5's session-mode refresh route.
const strapiRefreshPath = "/api/auth/refresh"

// requireSession authenticates a request to one of the proxy's own endpoints.
func (m *Middleware) requireSession(rw http.ResponseWriter, req *http.Request) *tokenEntry {
	token, fromCookie, _ := m.credential(req)
	if token == "" {
		writeError(rw, http.StatusUnauthorized, "Authentication required")
		return nil
	}
	return m.session(rw, req, token, fromCookie)
}

// authenticate resolves a proxy token to a live session allowed on this host, or says why not.
func (m *Middleware) authenticate(req *http.Request, token string) (*tokenEntry, int, string) {
	nowMs := time.Now().UnixMilli()
	e := m.cache.get(token)
	fresh := false
	if e == nil || nowMs-e.fetchedMs >= m.cacheTTLms {
		var status int
		var msg string
		e, status, msg = m.load(req.Context(), token, e, nowMs)
		if e == nil {
			return nil, status, msg
		}
		fresh = true
	}
	if nowMs >= e.expMs {
		m.cache.remove(token)
		return nil, http.StatusUnauthorized, "Session expired"
	}
	host := requestHost(req.Host)
	if m.s.audienceCheck && !e.aud.allows(host) {
		return nil, http.StatusForbidden, "This account may not use " + host
	}
	if !m.alive(e.sess, host, nowMs) {
		if fresh {
			return nil, http.StatusUnauthorized, "Session expired"
		}
		// The cached copy may be stale: another replica may have extended the session.
		var status int
		var msg string
		if e, status, msg = m.load(req.Context(), token, e, nowMs); e == nil {
			return nil, status, msg
		}
		if !m.alive(e.sess, host, nowMs) {
			return nil, http.StatusUnauthorized, "Session expired"
		}
	}
	if m.touchDue(e.sess, host, nowMs) {
		s, err := m.store.touchSession(req.Context(), e.claims.Sid, &touchRequest{Host: host, IdleTimeoutMs: m.idleMs, Sliding: m.s.sliding})
		if err != nil {
			return storeFailure(err)
		}
		e = newTokenEntry(e.claims, s, nowMs)
		m.cache.put(token, e, nowMs)
	}
	if e.renewAtMs > 0 && nowMs >= e.renewAtMs {
		return m.renewUpstream(req, token, e, nowMs)
	}
	return e, 0, ""
}

// load verifies the token (unless a cached entry already did) and reads its session from the store.
func (m *Middleware) load(ctx context.Context, token string, old *tokenEntry, nowMs int64) (*tokenEntry, int, string) {
	var claims tokenClaims
	if old != nil {
		claims = old.claims
	} else {
		c, err := m.keys.verify(token, time.UnixMilli(nowMs))
		if err != nil {
			return nil, http.StatusUnauthorized, "Invalid token: " + err.Error()
		}
		claims = c
	}
	s, err := m.store.getSession(ctx, claims.Sid)
	if err != nil {
		if errors.Is(err, errStoreNotFound) {
			m.cache.remove(token)
		}
		return storeFailure(err)
	}
	if s.UserID != claims.Sub {
		return nil, http.StatusUnauthorized, "Invalid token"
	}
	e := newTokenEntry(claims, s, nowMs)
	m.cache.put(token, e, nowMs)
	return e, 0, ""
}

// aliveUntil is when the session stops being alive for this instance on host: the store's own
// expiry, the absolute cap, this instance's maxLifetime, and its idle window on host (sliding:
// from the host's last use, or the session's if the host has none; fixed: from login).
func (m *Middleware) aliveUntil(s *storeSession, host string) int64 {
	until := earlier(earlier(s.ExpiresAt, s.AbsoluteExpiresAt), s.CreatedAt+m.maxLifetimeMs)
	if !m.s.sliding {
		return earlier(until, s.CreatedAt+m.idleMs)
	}
	last, ok := s.HostsLastSeen[host]
	if !ok {
		last = s.LastSeenAt
	}
	return earlier(until, last+m.idleMs)
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
	at := last + m.touchEveryMs
	if m.s.sliding {
		// Lagging: expiresAt < min(now+idle, absolute) - touchEvery.
		if s.ExpiresAt < s.AbsoluteExpiresAt-m.touchEveryMs {
			at = earlier(at, s.ExpiresAt-m.idleMs+m.touchEveryMs+1)
		}
	} else if s.ExpiresAt < earlier(s.CreatedAt+m.idleMs, s.AbsoluteExpiresAt)-m.touchEveryMs {
		return 0
	}
	return at
}

func (m *Middleware) touchDue(s *storeSession, host string, nowMs int64) bool {
	return nowMs >= m.touchAt(s, host)
}

// storeFailure is the answer to a failed store call: a session the store does not have is 401,
// anything else fails closed with 503.
func storeFailure(err error) (*tokenEntry, int, string) {
	if errors.Is(err, errStoreNotFound) {
		return nil, http.StatusUnauthorized, "Session expired or revoked"
	}
	return nil, http.StatusServiceUnavailable, "Session service unavailable, try again shortly"
}
