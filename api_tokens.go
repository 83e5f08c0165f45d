package accessproxy

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Strapi API tokens (apiTokenAllowFrom). Server-side clients (SSR sites, @strapi/client with
// `auth: <API token>`, scripts) authenticate with an API token Strapi issued: an opaque string
// (Strapi 5.54: 256 hex characters) that Strapi itself checks. From a client address in
// apiTokenAllowFrom such a bearer passes to Strapi untouched; from anywhere else it is refused
// like every bearer that is not a proxy token.
//
// What counts as an API token is narrow on purpose: letters, digits, '-' and '_' only. A value
// with a dot may be a JWT (jsonwebtoken takes an empty signature segment too) and one with
// whitespace may be split by Strapi into something else (its extractToken splits on /\s+/), so
// neither is ever passed: a Strapi JWT, forged or leaked, cannot ride in as an "API token".
// The proxy's own refresh tokens (apr_...) are not API tokens either.
//
// An API token is never a session: the proxy's own routes (login, refresh, logout, sessions) do
// not take it, ServeHTTP never remembers it (it has no fast-path entry: every request with it
// takes serveSlow), and no identity or upstream header is added for it. It has no user, so the
// users API, which the proxy guards per user, refuses its writes (403), and on GraphQL the user
// mutations are refused (apiTokenGraphQLCheck) on top of the document guard every request gets.

// maxAPITokenLen bounds what is taken for an API token (Strapi's are 256 characters).
const maxAPITokenLen = 4096

// API-token verdicts on a request's bearer (apiTokenCheck).
const (
	apiTokenNone    = iota // not an API token: check it as a proxy token
	apiTokenPass           // an API token from apiTokenAllowFrom: pass it to Strapi untouched
	apiTokenRefused        // an API token from elsewhere: answered (401)
)

// parseCIDRs reads a list of CIDRs; the error names the key and the entry at fault.
func parseCIDRs(key string, cidrs []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for i, cidr := range cidrs {
		_, n, err := net.ParseCIDR(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not a CIDR like \"10.0.0.0/8\" or \"2001:db8::/32\" (one address: \"10.0.0.5/32\")", key, i, cidr)
		}
		out = append(out, n)
	}
	return out, nil
}

// apiTokenShaped says whether a bearer value may be a Strapi API token: 1 to maxAPITokenLen
// letters, digits, '-' or '_', and not one of the proxy's refresh tokens.
func apiTokenShaped(token string) bool {
	if token == "" || len(token) > maxAPITokenLen || strings.HasPrefix(token, refreshPrefix) {
		return false
	}
	for i := 0; i < len(token); i++ {
		if !apiTokenChar(token[i]) {
			return false
		}
	}
	return true
}

func apiTokenChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
}

// apiTokenAllowed says whether the client address is in apiTokenAllowFrom (the clientIP rule of
// adminAllowFrom).
func (m *Middleware) apiTokenAllowed(req *http.Request) bool { return clientIn(req, m.s.apiTokenNets) }

// apiTokenCheck judges a request's credential as a Strapi API token. With apiTokenAllowFrom
// empty nothing is one (every bearer goes on to the proxy-token checks, as without the key).
// Only a bearer counts, never the proxy's cookie. apiTokenRefused has been answered.
func (m *Middleware) apiTokenCheck(rw http.ResponseWriter, req *http.Request, c presented) int {
	if len(m.s.apiTokenNets) == 0 || c.token == "" || c.fromCookie || !apiTokenShaped(c.token) {
		return apiTokenNone
	}
	if !m.apiTokenAllowed(req) {
		m.auditReason("denied", req, "", "", "API token (not a proxy token) from a network not in apiTokenAllowFrom")
		writeError(rw, http.StatusUnauthorized, denyBadToken.msg)
		return apiTokenRefused
	}
	return apiTokenPass
}

// serveAPIToken answers a request of serveSlow whose bearer is a Strapi API token: refused (as
// any foreign bearer) from outside apiTokenAllowFrom, refused on users-API writes, else passed to
// Strapi untouched. false: the bearer is no API token, check it as a proxy token.
func (m *Middleware) serveAPIToken(rw http.ResponseWriter, req *http.Request, p string, c presented) bool {
	switch m.apiTokenCheck(rw, req, c) {
	case apiTokenNone:
		return false
	case apiTokenRefused:
		return true
	}
	if hasPathPrefix(p, m.s.routes.users) && !safeMethod(req.Method) {
		m.auditReason("denied", req, "", "", "API token: users API write")
		writeError(rw, http.StatusForbidden, "Strapi API tokens may not write to the users API through the access proxy: users change their own record with their session")
		return true
	}
	m.audit("api_token", req, "", "")
	m.next.ServeHTTP(rw, req)
	return true
}

// apiTokenGraphQLCheck refuses, for a request with an API token, every users-permissions user
// mutation at the root of the document's operations (as the users API refuses its writes). nil:
// the document goes on to checkGraphQL.
func apiTokenGraphQLCheck(doc *gqlDocument) *gqlRefusal {
	roots, bad := doc.allRootFields()
	if bad != nil {
		return bad
	}
	for _, r := range roots {
		if f := r.field; f.name == gqlUpdateUser || f.name == gqlDeleteUser || f.name == gqlCreateUser {
			return &gqlRefusal{status: http.StatusForbidden, audit: "API token: " + f.name,
				msg: "Strapi API tokens may not write users through the access proxy (" + gqlWhat(r.op, f) + ")"}
		}
	}
	return nil
}
