package accessproxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// settings is the validated, parsed form of Config that the request path reads.
type settings struct {
	storeTimeout time.Duration
	cacheTTL     time.Duration
	idleTimeout  time.Duration
	touchEvery   time.Duration
	sliding      bool
	maxLifetime  time.Duration
	// rememberIdle and rememberMaxLifetime replace the two for a login with "rememberMe": true
	// (0: the same as normal).
	rememberIdle        time.Duration
	rememberMaxLifetime time.Duration
	// maxSessionsPerUser caps a user's live sessions (0: no cap); sessionLimit says what a login
	// past it does: "evictOldest" or "refuse".
	maxSessionsPerUser int
	sessionLimit       string

	audienceField string
	audienceCheck bool
	requireAuth   bool

	routes                 strapiRoutes
	usersSelfOnly          bool
	revokeOnPasswordChange bool
	revalidateEvery        time.Duration

	loginPaths    map[string]bool
	refreshPath   string
	refreshTokens string
	refreshTTL    time.Duration
	// accessTokenTTL bounds a proxy token's life whatever its use (0: the session's cap).
	accessTokenTTL    time.Duration
	refreshReuseGrace time.Duration
	logoutPath        string
	logoutAllPath     string
	sessionsPath      string

	identityHeaders bool
	upstreamHeaders map[string]string

	allowAudienceOnRegister bool
	blockedPaths            []string
	blockedFirst            map[string]bool // one-segment prefixes, by that segment
	blockedDeep             []string        // the others
	adminNets               []*net.IPNet
	apiTokenNets            []*net.IPNet // apiTokenAllowFrom (api_tokens.go)
	loginRate               rate
	lockoutThreshold        int
	lockoutDuration         time.Duration
	cookie                  CookieConfig
	strapiRefreshCookie     string
}

const minSecretLen = 32

// maxReuseGrace bounds refreshReuseGrace: a grace is for tabs racing, not a second lifetime.
const maxReuseGrace = 5 * time.Minute

// placeholderHints are fragments of the sample values people paste and forget.
var placeholderHints = []string{"changeme", "change-me", "change_me", "placeholder", "example", "your-secret", "yoursecret", "replace", "xxxxxxxx", "00000000", "12345678"}

func checkSecret(name, value string) error {
	if len(value) < minSecretLen {
		return fmt.Errorf("%s must be at least %d bytes (got %d)", name, minSecretLen, len(value))
	}
	lower := strings.ToLower(value)
	for _, hint := range placeholderHints {
		if strings.Contains(lower, hint) {
			return fmt.Errorf("%s looks like a placeholder (contains %q): generate one with `openssl rand -base64 48`", name, hint)
		}
	}
	distinct := map[rune]bool{}
	for _, r := range value {
		distinct[r] = true
	}
	if len(distinct) < 10 {
		return fmt.Errorf("%s has too little variety to be a random secret", name)
	}
	return nil
}

func parseDuration(name, value string, allowZero bool) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration like \"30m\" or \"2s\"", name, value)
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, fmt.Errorf("%s must be positive (got %q)", name, value)
	}
	return d, nil
}

func checkPath(name, p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%s must be an absolute path (got %q)", name, p)
	}
	return nil
}

// parseConfig validates everything New needs; every error names the key at fault.
func parseConfig(c *Config) (*settings, error) {
	if c == nil {
		return nil, errors.New("missing configuration")
	}
	if err := parseSecrets(c); err != nil {
		return nil, err
	}
	s := &settings{
		sliding:                 c.Sliding,
		audienceField:           c.AudienceField,
		audienceCheck:           c.AudienceCheck,
		requireAuth:             c.RequireAuth,
		refreshTokens:           c.RefreshTokens,
		identityHeaders:         c.IdentityHeaders,
		usersSelfOnly:           c.UsersAPISelfOnly,
		revokeOnPasswordChange:  c.RevokeOnPasswordChange,
		allowAudienceOnRegister: c.AllowAudienceOnRegister,
		upstreamHeaders:         map[string]string{},
		loginPaths:              map[string]bool{},
		blockedFirst:            map[string]bool{},
	}
	if s.audienceField == "" {
		return nil, errors.New("audienceField must not be empty")
	}
	if c.CacheSize < 1 || c.CacheSize > 10000000 {
		return nil, fmt.Errorf("cacheSize must be between 1 and 10000000 (got %d)", c.CacheSize)
	}
	switch s.refreshTokens {
	case "onRequest", "always", "off":
	default:
		return nil, fmt.Errorf("refreshTokens must be onRequest, always or off (got %q)", s.refreshTokens)
	}
	for _, step := range []func(*Config, *settings) error{parseDurations, parsePaths, parseEdge, parseCookie} {
		if err := step(c, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseSecrets checks the proxy's key(s) and the store's address and credential.
func parseSecrets(c *Config) error {
	if err := checkSecret("secret", c.Secret); err != nil {
		return err
	}
	for i, s := range c.PreviousSecrets {
		if err := checkSecret(fmt.Sprintf("previousSecrets[%d]", i), s); err != nil {
			return err
		}
	}
	if c.StoreURL == "" {
		return errors.New("storeURL is required")
	}
	u, err := url.Parse(c.StoreURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("storeURL must be an http(s) URL (got %q)", c.StoreURL)
	}
	if len(c.StoreToken) < minSecretLen {
		return fmt.Errorf("storeToken must be at least %d bytes", minSecretLen)
	}
	return nil
}

// parseDurations reads every duration key; each error names its key.
func parseDurations(c *Config, s *settings) error {
	accessTTL := c.AccessTokenTTL
	if accessTTL == "" {
		accessTTL = "0s" // unset: tokens live as long as their session
	}
	for _, d := range []struct {
		key       string
		val       string
		allowZero bool
		dst       *time.Duration
	}{
		{"storeTimeout", c.StoreTimeout, false, &s.storeTimeout},
		{"cacheTTL", c.CacheTTL, true, &s.cacheTTL},
		{"idleTimeout", c.IdleTimeout, false, &s.idleTimeout},
		{"maxLifetime", c.MaxLifetime, false, &s.maxLifetime},
		{"rememberMeIdleTimeout", orZero(c.RememberMeIdleTimeout), true, &s.rememberIdle},
		{"rememberMeMaxLifetime", orZero(c.RememberMeMaxLifetime), true, &s.rememberMaxLifetime},
		{"refreshTTL", c.RefreshTTL, false, &s.refreshTTL},
		{"accessTokenTTL", accessTTL, true, &s.accessTokenTTL},
		{"refreshReuseGrace", c.RefreshReuseGrace, true, &s.refreshReuseGrace},
		{"revalidateEvery", c.RevalidateEvery, true, &s.revalidateEvery},
		{"lockoutDuration", c.LockoutDuration, false, &s.lockoutDuration},
	} {
		v, err := parseDuration(d.key, d.val, d.allowZero)
		if err != nil {
			return err
		}
		*d.dst = v
	}
	if s.accessTokenTTL > 0 && s.accessTokenTTL < time.Second {
		return errors.New("accessTokenTTL must be at least 1s (or empty: tokens live as long as their session)")
	}
	if s.accessTokenTTL > 0 && s.refreshTokens == "off" {
		return errors.New("accessTokenTTL needs refresh tokens: with refreshTokens \"off\" a short token could never be renewed")
	}
	if s.refreshReuseGrace > maxReuseGrace {
		return fmt.Errorf("refreshReuseGrace must be at most %s (got %s)", maxReuseGrace, s.refreshReuseGrace)
	}
	// A sliding session is extended at most every tenth of its idle window, so a busy client
	// costs one store write per window slice, not one per request.
	s.touchEvery = s.idleTimeout / 10
	return parseSessionBounds(c, s)
}

func orZero(v string) string {
	if v == "" {
		return "0s"
	}
	return v
}

// parseSessionBounds reads the per-user cap and the rememberMe windows.
func parseSessionBounds(c *Config, s *settings) error {
	if s.rememberIdle > 0 && s.rememberIdle < s.idleTimeout {
		return fmt.Errorf("rememberMeIdleTimeout (%s) must not be shorter than idleTimeout (%s)", s.rememberIdle, s.idleTimeout)
	}
	if s.rememberMaxLifetime > 0 && s.rememberMaxLifetime < s.maxLifetime {
		return fmt.Errorf("rememberMeMaxLifetime (%s) must not be shorter than maxLifetime (%s)", s.rememberMaxLifetime, s.maxLifetime)
	}
	if c.MaxSessionsPerUser < 0 || c.MaxSessionsPerUser > maxSessionCap {
		return fmt.Errorf("maxSessionsPerUser must be 0 (no cap) to %d", maxSessionCap)
	}
	s.maxSessionsPerUser = c.MaxSessionsPerUser
	switch c.SessionLimit {
	case "", "evictOldest":
		s.sessionLimit = "evictOldest"
	case "refuse":
		s.sessionLimit = "refuse"
	default:
		return fmt.Errorf("sessionLimit must be \"evictOldest\" or \"refuse\" (got %q)", c.SessionLimit)
	}
	return nil
}

// maxSessionCap is the store's own limit on maxSessions.
const maxSessionCap = 10000

// parseEdge reads the edge policy: upstream headers, the admin channel, login limits.
func parseEdge(c *Config, s *settings) error {
	for k, v := range c.UpstreamHeaders {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("upstreamHeaders: %q is not a valid header", k)
		}
		s.upstreamHeaders[k] = v
	}
	var err error
	if s.adminNets, err = parseCIDRs("adminAllowFrom", c.AdminAllowFrom); err != nil {
		return err
	}
	for _, p := range c.BlockedPaths {
		if err := checkPath("blockedPaths", p); err != nil {
			return err
		}
		n := normalizePath(p)
		s.blockedPaths = append(s.blockedPaths, n)
		if strings.IndexByte(n[1:], '/') < 0 && n != "/" {
			s.blockedFirst[n] = true
		} else {
			s.blockedDeep = append(s.blockedDeep, n)
		}
	}
	if s.apiTokenNets, err = parseCIDRs("apiTokenAllowFrom", c.APITokenAllowFrom); err != nil {
		return err
	}
	if s.loginRate, err = parseRate(c.LoginRateLimit); err != nil {
		return err
	}
	if c.LockoutThreshold < 0 {
		return errors.New("lockoutThreshold must be 0 (off) or more")
	}
	s.lockoutThreshold = c.LockoutThreshold
	return nil
}

// parseCookie reads cookie mode, the proxy's refresh cookie (used in either mode, when a client
// asks for it) and the name of Strapi's refresh cookie.
func parseCookie(c *Config, s *settings) error {
	if c.StrapiRefreshCookie == "" {
		return errors.New("strapiRefreshCookie must not be empty")
	}
	s.strapiRefreshCookie = c.StrapiRefreshCookie
	s.cookie = c.Cookie
	if !validCookieName(s.cookie.RefreshName) {
		return fmt.Errorf("cookie.refreshName %q is not a valid cookie name", s.cookie.RefreshName)
	}
	if strings.HasPrefix(s.cookie.RefreshName, s.strapiRefreshCookie) {
		return fmt.Errorf("cookie.refreshName %q must not start with strapiRefreshCookie %q", s.cookie.RefreshName, s.strapiRefreshCookie)
	}
	switch strings.ToLower(s.cookie.SameSite) {
	case "strict", "lax":
	case "none":
		if !s.cookie.Secure {
			return errors.New("cookie.sameSite None needs cookie.secure true (browsers refuse it otherwise)")
		}
	default:
		return fmt.Errorf("cookie.sameSite must be Strict, Lax or None (got %q)", s.cookie.SameSite)
	}
	if !s.cookie.Enabled {
		return nil
	}
	if !validCookieName(s.cookie.Name) {
		return fmt.Errorf("cookie.name %q is not a valid cookie name", s.cookie.Name)
	}
	if s.cookie.Name == s.cookie.RefreshName {
		return errors.New("cookie.name and cookie.refreshName must differ")
	}
	return nil
}

func validCookieName(n string) bool {
	return n != "" && !strings.ContainsAny(n, " ;,=\t\r\n\"()<>@:/[]?{}")
}

// parsePaths derives every Strapi path from apiPrefix and checks that each path the proxy answers
// lies below it (Strapi serves nothing of its auth API elsewhere, so a path outside it is a
// mistake that would let a login answer through unswapped) and is used for one job only.
func parsePaths(c *Config, s *settings) error {
	prefix, err := checkPrefix("apiPrefix", c.APIPrefix, false)
	if err != nil {
		return err
	}
	graphql, err := checkPrefix("graphqlPath", c.GraphQLPath, true)
	if err != nil {
		return err
	}
	s.routes = newStrapiRoutes(prefix, graphql)
	seen := map[string]string{}
	claim := func(key, p string) (string, error) {
		if err := checkPath(key, p); err != nil {
			return "", err
		}
		n := normalizePath(rebase(p, prefix))
		if !hasPathPrefix(n, prefix) || n == prefix {
			return "", fmt.Errorf("%s: %q is not below apiPrefix %q, where Strapi serves its auth API", key, p, prefix)
		}
		if graphql != "" && hasPathPrefix(n, graphql) {
			return "", fmt.Errorf("%s: %q is inside graphqlPath %q", key, p, graphql)
		}
		if other, dup := seen[n]; dup {
			return "", fmt.Errorf("%s: %q is already %s", key, p, other)
		}
		seen[n] = key
		return n, nil
	}
	if len(c.LoginPaths) == 0 {
		return errors.New("loginPaths must not be empty: Strapi's login answers would pass unswapped")
	}
	for _, p := range c.LoginPaths {
		n, err := claim("loginPaths", p)
		if err != nil {
			return err
		}
		s.loginPaths[n] = true
	}
	for _, kv := range []struct {
		key string
		val string
		dst *string
	}{{"refreshPath", c.RefreshPath, &s.refreshPath}, {"logoutPath", c.LogoutPath, &s.logoutPath},
		{"logoutAllPath", c.LogoutAllPath, &s.logoutAllPath}, {"sessionsPath", c.SessionsPath, &s.sessionsPath}} {
		n, err := claim(kv.key, kv.val)
		if err != nil {
			return err
		}
		*kv.dst = n
	}
	if !s.loginPaths[s.routes.localLogin] {
		return fmt.Errorf("loginPaths must include %s, Strapi's login", s.routes.localLogin)
	}
	return nil
}

// ownPaths are the paths the proxy itself answers or rewrites.
func (s *settings) ownPaths() []string {
	out := []string{s.refreshPath, s.logoutPath, s.logoutAllPath, s.sessionsPath}
	for p := range s.loginPaths {
		out = append(out, p)
	}
	return out
}

// Config is the plugin configuration (Traefik dynamic config, `plugin.accessproxy`).
// Durations are strings: Traefik cannot decode time.Duration for plugins.
type Config struct {
	Secret          string   `json:"secret,omitempty"`
	PreviousSecrets []string `json:"previousSecrets,omitempty"`

	StoreURL     string `json:"storeURL,omitempty"`
	StoreToken   string `json:"storeToken,omitempty"`
	StoreTimeout string `json:"storeTimeout,omitempty"`
	CacheTTL     string `json:"cacheTTL,omitempty"`
	// ChangeFeed: follow the store's change feed (and trust it past cacheTTL); false polls only.
	ChangeFeed bool `json:"changeFeed,omitempty"`
	// CacheSize bounds the sessions (tokens) kept in memory, and each instance's fast-path map.
	CacheSize int `json:"cacheSize,omitempty"`

	IdleTimeout string `json:"idleTimeout,omitempty"`
	Sliding     bool   `json:"sliding,omitempty"`
	MaxLifetime string `json:"maxLifetime,omitempty"`
	// RememberMeIdleTimeout and RememberMeMaxLifetime apply to a login with "rememberMe": true
	// ("": the same as idleTimeout and maxLifetime).
	RememberMeIdleTimeout string `json:"rememberMeIdleTimeout,omitempty"`
	RememberMeMaxLifetime string `json:"rememberMeMaxLifetime,omitempty"`
	// MaxSessionsPerUser caps a user's live sessions (0: no cap); SessionLimit is what a login
	// past the cap does: "evictOldest" (default) or "refuse" (409).
	MaxSessionsPerUser int    `json:"maxSessionsPerUser,omitempty"`
	SessionLimit       string `json:"sessionLimit,omitempty"`

	AudienceField string `json:"audienceField,omitempty"`
	AudienceCheck bool   `json:"audienceCheck,omitempty"`

	// APIPrefix is Strapi's `api.rest.prefix`: every Strapi path the proxy knows lies below it.
	APIPrefix   string `json:"apiPrefix,omitempty"`
	GraphQLPath string `json:"graphqlPath,omitempty"`

	LoginPaths    []string `json:"loginPaths,omitempty"`
	RefreshPath   string   `json:"refreshPath,omitempty"`
	RefreshTokens string   `json:"refreshTokens,omitempty"`
	RefreshTTL    string   `json:"refreshTTL,omitempty"`
	// AccessTokenTTL, when set, makes proxy tokens short-lived; clients refresh as Strapi 5's do.
	AccessTokenTTL string `json:"accessTokenTTL,omitempty"`
	// RefreshReuseGrace is how long a just-spent refresh token still rotates (parallel tabs).
	RefreshReuseGrace string `json:"refreshReuseGrace,omitempty"`
	LogoutPath        string `json:"logoutPath,omitempty"`
	LogoutAllPath     string `json:"logoutAllPath,omitempty"`
	SessionsPath      string `json:"sessionsPath,omitempty"`

	AllowAudienceOnRegister bool `json:"allowAudienceOnRegister,omitempty"`
	RequireAuth             bool `json:"requireAuth,omitempty"`
	// UsersAPISelfOnly refuses writes to another user's record through Strapi's users API.
	UsersAPISelfOnly bool `json:"usersApiSelfOnly,omitempty"`
	// RevokeOnPasswordChange ends the user's other sessions when a password is changed or reset.
	RevokeOnPasswordChange bool `json:"revokeOnPasswordChange,omitempty"`
	// RevalidateEvery is how often a session's user is re-read from Strapi (blocked, audience).
	RevalidateEvery string `json:"revalidateEvery,omitempty"`

	BlockedPaths   []string `json:"blockedPaths,omitempty"`
	AdminAllowFrom []string `json:"adminAllowFrom,omitempty"`

	// APITokenAllowFrom: CIDRs whose Strapi API tokens pass untouched to Strapi (api_tokens.go).
	APITokenAllowFrom []string `json:"apiTokenAllowFrom,omitempty"`

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
	// RefreshName is the proxy's HttpOnly refresh-token cookie (Path: the auth routes). It is used
	// whenever the client asks for the cookie form, cookie mode on or off.
	RefreshName string `json:"refreshName,omitempty"`
}

// CreateConfig returns the defaults of the contract.
func CreateConfig() *Config {
	return &Config{
		StoreTimeout:  "2s",
		CacheTTL:      "5s",
		CacheSize:     defaultCacheSize,
		ChangeFeed:    true,
		IdleTimeout:   "30m",
		Sliding:       true,
		MaxLifetime:   "720h",
		SessionLimit:  "evictOldest",
		AudienceField: "audience",
		AudienceCheck: true,
		APIPrefix:     "/api",
		GraphQLPath:   "/graphql",
		LoginPaths: []string{
			"/api/auth/local", "/api/auth/local/register",
			"/api/auth/reset-password", "/api/auth/change-password",
		},
		RefreshPath:            "/api/auth/local/refresh",
		RefreshTokens:          "onRequest",
		RefreshTTL:             "720h",
		RefreshReuseGrace:      "10s",
		LogoutPath:             "/api/auth/logout",
		LogoutAllPath:          "/api/auth/logout-all",
		SessionsPath:           "/api/auth/sessions",
		UsersAPISelfOnly:       true,
		RevokeOnPasswordChange: true,
		RevalidateEvery:        "5m",
		BlockedPaths:           []string{"/admin", "/content-manager", "/content-type-builder", "/upload", "/users-permissions", "/i18n", "/email"},
		AdminAllowFrom:         []string{"127.0.0.1/32", "::1/128"},
		LoginRateLimit:         "10/m",
		LockoutThreshold:       5,
		LockoutDuration:        "15m",
		Cookie:                 CookieConfig{Name: "ap_session", Secure: true, SameSite: "Strict", RefreshName: "ap_refresh"},
		UpstreamHeaders:        map[string]string{},

		StrapiRefreshCookie: "strapi_up_refresh",
	}
}
