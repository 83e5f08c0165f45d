package accessproxy

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// strapiRoutes are the Strapi paths the proxy knows, every one derived from Strapi's REST prefix
// (`api.rest.prefix`, the `apiPrefix` key), in normalized form.
type strapiRoutes struct {
	prefix         string // "/api"
	auth           string // "/api/auth": Strapi's auth routes and the proxy's own endpoints
	localLogin     string // POST: identifier + password
	register       string
	changePassword string // the one login path that needs the caller's session
	resetPassword  string
	strapiRefresh  string // Strapi 5's refresh, answered by the proxy
	strapiLogout   string // Strapi 5's logout, answered by the proxy
	users          string // Strapi's users API
	usersMe        string // what revalidation reads
	graphql        string // "" when off
}

func newStrapiRoutes(prefix, graphql string) strapiRoutes {
	return strapiRoutes{
		prefix:         prefix,
		auth:           prefix + "/auth",
		localLogin:     prefix + "/auth/local",
		register:       prefix + "/auth/local/register",
		changePassword: prefix + "/auth/change-password",
		resetPassword:  prefix + "/auth/reset-password",
		strapiRefresh:  prefix + "/auth/refresh",
		strapiLogout:   prefix + "/auth/logout",
		users:          prefix + "/users",
		usersMe:        prefix + "/users/me",
		graphql:        graphql,
	}
}

// defaultAPIPrefix is the prefix the defaults of CreateConfig are written under; a default path
// follows a changed apiPrefix.
const defaultAPIPrefix = "/api"

// rebase moves a path written under the default prefix below prefix: with `apiPrefix: /v2`, the
// default loginPaths, refreshPath... follow without being configured again.
func rebase(p, prefix string) string {
	if prefix == defaultAPIPrefix || !hasPathPrefix(p, defaultAPIPrefix) {
		return p
	}
	return prefix + p[len(defaultAPIPrefix):]
}

// isProviderCallback matches Strapi's `<prefix>/auth/:provider/callback`.
func (r *strapiRoutes) isProviderCallback(p string) bool {
	if !strings.HasPrefix(p, r.auth+"/") || !strings.HasSuffix(p, "/callback") {
		return false
	}
	if len(p) < len(r.auth)+1+len("/callback") {
		return false
	}
	provider := p[len(r.auth)+1 : len(p)-len("/callback")]
	return provider != "" && strings.IndexByte(provider, '/') < 0
}

// userRecordID returns the :id of `<prefix>/users/:id` ("" for any other path).
func (r *strapiRoutes) userRecordID(p string) string {
	if !strings.HasPrefix(p, r.users+"/") {
		return ""
	}
	id := p[len(r.users)+1:]
	if strings.IndexByte(id, '/') >= 0 {
		return ""
	}
	return id
}

// routedPattern matches the normal paths ServeHTTP must not take on its fast path: Strapi's auth
// routes and every path the proxy answers itself, GraphQL, and the blocked prefixes.
func routedPattern(r strapiRoutes, own, blocked []string) string {
	alts := []string{regexp.QuoteMeta(strings.TrimPrefix(r.auth, "/"))}
	if r.graphql != "" {
		alts = append(alts, regexp.QuoteMeta(strings.TrimPrefix(r.graphql, "/")))
	}
	for _, p := range own {
		if !hasPathPrefix(p, r.auth) { // the auth prefix already covers it: a shorter regexp
			alts = append(alts, regexp.QuoteMeta(strings.TrimPrefix(p, "/")))
		}
	}
	for _, b := range blocked {
		if b == "/" {
			return `^/` // everything is blocked: everything is routed
		}
		alts = append(alts, regexp.QuoteMeta(strings.TrimPrefix(b, "/")))
	}
	return `^/(?:` + strings.Join(alts, "|") + `)(?:/|$)`
}

// checkPrefix validates apiPrefix and graphqlPath: normalized absolute paths, not the root.
func checkPrefix(name, p string, allowEmpty bool) (string, error) {
	if p == "" && allowEmpty {
		return "", nil
	}
	if p == "" || p[0] != '/' || normalizePath(p) != strings.ToLower(p) || p == "/" {
		return "", fmt.Errorf("%s must be an absolute path like \"/api\" without a trailing slash (got %q)", name, p)
	}
	return strings.ToLower(p), nil
}

// serveAuthRoute answers the proxy's own endpoints and the login routes; false means the path is
// none of them. Strapi 5's own paths (refresh, logout, sessions) are answered in Strapi's shapes;
// refreshPath and logoutAllPath are the proxy's older aliases. refreshCookie is what the
// request's proxy refresh cookie held (already taken off the request).
func (m *Middleware) serveAuthRoute(rw http.ResponseWriter, req *http.Request, p, refreshCookie string) bool {
	s := m.s
	switch {
	case p == s.routes.strapiRefresh:
		m.serveRefresh(rw, req, refreshCookie, true)
	case p == s.refreshPath:
		m.serveRefresh(rw, req, refreshCookie, false)
	case p == s.logoutPath || p == s.routes.strapiLogout:
		m.serveLogout(rw, req, refreshCookie != "")
	case p == s.logoutAllPath:
		if e := m.requireSession(rw, req); e != nil {
			m.serveLogoutAll(rw, req, e)
		}
	case s.loginPaths[p] || s.routes.isProviderCallback(p):
		m.serveLoginRoute(rw, req, p)
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

// requireSession authenticates a request to one of the proxy's own endpoints.
func (m *Middleware) requireSession(rw http.ResponseWriter, req *http.Request) *tokenEntry {
	c := m.credential(req)
	if c.problem != 0 {
		writeError(rw, c.problem, c.message)
		return nil
	}
	if c.token == "" {
		writeError(rw, http.StatusUnauthorized, "Authentication required")
		return nil
	}
	return m.session(rw, req, c.token, c.fromCookie)
}
