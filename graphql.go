package accessproxy

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Strapi's GraphQL endpoint (graphqlPath). @strapi/plugin-graphql 5.54 answers there with Apollo
// Server 4 and the users-permissions mutations: login, register, resetPassword, changePassword
// and emailConfirmation answer with a Strapi JWT (UsersPermissionsLoginPayload.jwt), outside the
// proxy's login routes, rate limit and lockout (aliases put many attempts in one request), and
// updateUsersPermissionsUser writes any field of any user, audience included. The proxy does not
// swap credentials in GraphQL answers: it refuses every request that could produce one, or change
// a user it must not, and passes the rest as it passes every other request.
//
// The request is read as Strapi reads it, or refused:
//   - POST: Strapi's body middleware leaves the endpoint to Apollo's koa-bodyparser when the URL
//     is exactly the endpoint, and parses the body itself (koa-body) otherwise. Both read JSON
//     with co-body (strict, @hapi/bourne) for the media types accepted here; koa-bodyparser also
//     reads urlencoded forms and koa-body multipart, which Apollo would execute too: refused (415).
//     The body is one request object or a batch (an array of them, Apollo's
//     allowBatchedHttpRequests); every request of a batch is checked.
//   - GET (and HEAD): the `query`, `variables` and `extensions` parameters of the query string.
//     Apollo executes only queries over GET, but the same checks apply.
//   - A request without a `query` document (an automatic persisted query, which Apollo would
//     run from its cache) cannot be checked: refused.
//   - Every operation of a document is checked, whatever operationName selects, through aliases,
//     fragments and inline fragments, and whatever @skip or @include say.

const (
	maxGraphQLBody  = 1 << 20 // koa-bodyparser's JSON limit: Strapi refuses larger bodies anyway
	maxGraphQLBatch = 32      // requests in one batched body
)

// graphQLJSONTypes are the media types both of Strapi's parsers read as JSON.
var graphQLJSONTypes = map[string]bool{
	"application/json":            true,
	"application/json-patch+json": true,
	"application/vnd.api+json":    true,
	"application/csp-report":      true,
}

// graphQLJWTMutations are the users-permissions mutations whose payload carries Strapi's JWT, with
// the route (below apiPrefix) that does the same through the proxy.
var graphQLJWTMutations = map[string]string{ //nolint:gosec // route hints, not credentials
	"login":             "POST %s/auth/local",
	"register":          "POST %s/auth/local/register",
	"resetPassword":     "POST %s/auth/reset-password",
	"changePassword":    "POST %s/auth/change-password",
	"emailConfirmation": "GET %s/auth/email-confirmation, then log in with POST %s/auth/local",
}

// graphQLCredentialFields are refused wherever they are selected: the credential fields of a
// login payload, also when a custom mutation returns one.
var graphQLCredentialFields = map[string]bool{"jwt": true, "refreshToken": true}

const (
	gqlUpdateUser = "updateUsersPermissionsUser"
	gqlDeleteUser = "deleteUsersPermissionsUser"
	gqlCreateUser = "createUsersPermissionsUser"
)

// gqlRequest is one GraphQL request: its document and variables.
type gqlRequest struct {
	query     string
	variables map[string]interface{}
}

// gqlRefusal is the answer to a refused request; audit is the reason logged ("" logs nothing).
type gqlRefusal struct {
	status int
	msg    string
	audit  string
}

func gqlBad(msg string) *gqlRefusal {
	return &gqlRefusal{status: http.StatusBadRequest, msg: msg}
}

// serveGraphQL guards Strapi's GraphQL endpoint.
func (m *Middleware) serveGraphQL(rw http.ResponseWriter, req *http.Request) {
	c := m.credential(req)
	if c.problem != 0 {
		writeError(rw, c.problem, c.message)
		return
	}
	if c.token == "" && m.s.requireAuth {
		writeError(rw, http.StatusUnauthorized, "Authentication required")
		return
	}
	reqs, refusal := readGraphQLRequests(req)
	var docs []*gqlDocument
	for i := 0; refusal == nil && i < len(reqs); i++ {
		doc, err := parseGraphQL(reqs[i].query)
		if err != nil {
			refusal = gqlBad("GraphQL document cannot be read by the access proxy: " + err.Error())
		}
		docs = append(docs, doc)
	}
	if refusal != nil {
		if refusal.status == http.StatusMethodNotAllowed {
			rw.Header().Set("Allow", "GET, POST, OPTIONS")
		}
		writeError(rw, refusal.status, refusal.msg)
		return
	}
	var e *tokenEntry
	apiToken := m.apiTokenCheck(rw, req, c)
	if apiToken == apiTokenRefused {
		return
	}
	if c.token != "" && apiToken == apiTokenNone {
		if e = m.session(rw, req, c.token, c.fromCookie); e == nil {
			return
		}
	}
	for i, doc := range docs {
		var r *gqlRefusal
		if apiToken == apiTokenPass {
			r = apiTokenGraphQLCheck(doc)
		}
		if r == nil {
			r = m.checkGraphQL(doc, reqs[i].variables, e)
		}
		if r != nil {
			if r.audit != "" {
				m.auditReason("denied", req, entryUser(e), entrySession(e), "graphql: "+r.audit)
			}
			writeError(rw, r.status, r.msg)
			return
		}
	}
	if e != nil {
		m.prepareUpstream(req, e)
	}
	if apiToken == apiTokenPass {
		m.audit("api_token", req, "", "")
	}
	m.next.ServeHTTP(&gqlResponseWriter{rw: rw, cookie: m.s.strapiRefreshCookie}, req)
}

// readGraphQLRequests reads what Apollo will execute; no request and no refusal means nothing
// executes (a CORS preflight, the landing page).
func readGraphQLRequests(req *http.Request) ([]gqlRequest, *gqlRefusal) {
	if len(req.Header.Values("Upgrade")) > 0 {
		return nil, gqlBad("GraphQL over a protocol upgrade is not supported through the access proxy")
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return readGraphQLQueryString(req.URL.RawQuery)
	case http.MethodPost:
		return readGraphQLBody(req)
	case http.MethodOptions:
		return nil, nil
	}
	return nil, &gqlRefusal{status: http.StatusMethodNotAllowed, msg: "GraphQL supports GET and POST"}
}

// readGraphQLQueryString reads a GET request's parameters as Apollo does (URLSearchParams, each
// at most once). A `#` would end Node's query string where Go's does not end: refused.
func readGraphQLQueryString(raw string) ([]gqlRequest, *gqlRefusal) {
	if strings.IndexByte(raw, '#') >= 0 {
		return nil, gqlBad("GraphQL query string cannot be read: '#' must be percent-encoded")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, gqlBad("GraphQL query string cannot be read: " + err.Error())
	}
	q := vals["query"]
	if len(q) > 1 {
		return nil, gqlBad("The 'query' parameter may only be given once")
	}
	if len(q) == 0 || q[0] == "" {
		if _, has := vals["extensions"]; has {
			return nil, gqlNoDocument()
		}
		return nil, nil
	}
	if !utf8.ValidString(q[0]) {
		return nil, gqlBad("GraphQL query string cannot be read: the query is not UTF-8")
	}
	r := gqlRequest{query: q[0]}
	if vs, has := vals["variables"]; has {
		if len(vs) != 1 {
			return nil, gqlBad("The 'variables' parameter may only be given once")
		}
		v, err := decodeStrictJSON([]byte(vs[0]))
		obj, isObject := v.(map[string]interface{})
		if err != nil || !isObject || !utf8.ValidString(vs[0]) {
			return nil, gqlBad("The 'variables' parameter must be a JSON object")
		}
		r.variables = obj
	}
	return []gqlRequest{r}, nil
}

func gqlNoDocument() *gqlRefusal {
	return gqlBad("GraphQL requests need their document in `query`: the access proxy cannot check persisted queries")
}

// readGraphQLBody reads a POST body: one JSON request object or a batch of them.
func readGraphQLBody(req *http.Request) ([]gqlRequest, *gqlRefusal) {
	unsupported := &gqlRefusal{status: http.StatusUnsupportedMediaType, msg: "Send GraphQL requests as JSON (Content-Type: application/json), without Content-Encoding"}
	if ce := req.Header.Values("Content-Encoding"); len(ce) > 1 || (len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return nil, unsupported
	}
	ct := req.Header.Values("Content-Type")
	if len(ct) != 1 {
		return nil, unsupported
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	if err != nil || !graphQLJSONTypes[mt] {
		return nil, unsupported
	}
	raw, err := bufferBody(req, maxGraphQLBody)
	if err != nil {
		status, msg := bodyErrorStatus(err)
		return nil, &gqlRefusal{status: status, msg: msg}
	}
	v, err := decodeStrictJSON(bytes.TrimPrefix(raw, utf8BOM))
	if err != nil || protoPoisoned(v) {
		return nil, gqlBad("GraphQL request body cannot be read: send one JSON object (or an array of them)")
	}
	var items []interface{}
	switch t := v.(type) {
	case map[string]interface{}:
		items = append(items, t)
	case []interface{}:
		if len(t) == 0 || len(t) > maxGraphQLBatch {
			return nil, gqlBad("A batched GraphQL request holds 1 to " + strconv.Itoa(maxGraphQLBatch) + " requests")
		}
		items = t
	}
	var out []gqlRequest
	for _, item := range items {
		obj, ok := item.(map[string]interface{})
		if !ok {
			return nil, gqlBad("A batched GraphQL request is an array of JSON objects")
		}
		r, refusal := graphQLRequestOf(obj)
		if refusal != nil {
			return nil, refusal
		}
		out = append(out, r)
	}
	return out, nil
}

// graphQLRequestOf reads one request object as Apollo does: `query` a string, `variables` an
// object or null.
func graphQLRequestOf(obj map[string]interface{}) (gqlRequest, *gqlRefusal) {
	q, _ := obj["query"].(string)
	if q == "" {
		return gqlRequest{}, gqlNoDocument()
	}
	r := gqlRequest{query: q}
	// (No type switch with an empty case here: Yaegi 0.16 loses r through one.)
	if raw := obj["variables"]; raw != nil {
		vars, ok := raw.(map[string]interface{})
		if !ok {
			return gqlRequest{}, gqlBad("GraphQL `variables` must be a JSON object")
		}
		r.variables = vars
	}
	return r, nil
}

// gqlCheck judges the documents of one request for one caller.
type gqlCheck struct {
	m      *Middleware
	doc    *gqlDocument
	vars   map[string]interface{}
	caller string // the session's user id; "" for an anonymous request
}

// maxGraphQLVisits bounds the work of expanding fragments at the root of every operation.
const maxGraphQLVisits = 4 * maxGraphQLTokens

// checkGraphQL refuses a document that selects a credential field anywhere, or whose operations
// select, at their root, a mutation answering with Strapi's JWT or a user write the caller may not
// make. nil: the document may go to Strapi.
func (m *Middleware) checkGraphQL(doc *gqlDocument, vars map[string]interface{}, e *tokenEntry) *gqlRefusal {
	c := &gqlCheck{m: m, doc: doc, vars: vars, caller: entryUser(e)}
	roots, bad := doc.allRootFields()
	if bad != nil {
		return bad
	}
	for _, rf := range roots {
		if r := c.rootField(rf.op, rf.field); r != nil {
			return r
		}
	}
	for _, f := range doc.sels {
		if f.kind == gqlFieldSel && graphQLCredentialFields[f.name] {
			return &gqlRefusal{status: http.StatusForbidden, audit: "selects " + f.name,
				msg: "GraphQL field \"" + f.name + "\" is refused by the access proxy: Strapi's credentials never leave it"}
		}
	}
	return nil
}

// gqlRootField is one field at the root of one of a document's operations.
type gqlRootField struct {
	op    *gqlOperation
	field *gqlSelection
}

// allRootFields lists the root fields of every operation, whatever operationName says (Strapi
// runs the one named, but the proxy will not guess which), within one visit budget.
func (doc *gqlDocument) allRootFields() ([]gqlRootField, *gqlRefusal) {
	var out []gqlRootField
	visits := 0
	for _, op := range doc.operations {
		fields, n, ok := doc.rootFields(op, maxGraphQLVisits-visits)
		visits += n
		if !ok {
			return nil, gqlBad("GraphQL document cannot be read by the access proxy: it refers to an unknown fragment, or is too large to check")
		}
		for _, f := range fields {
			out = append(out, gqlRootField{op: op, field: f})
		}
	}
	return out, nil
}

// rootFields returns the fields at the root of an operation, through fragment spreads and inline
// fragments (each fragment once), visiting at most budget selections; ok is false for an unknown
// fragment or an exhausted budget.
func (doc *gqlDocument) rootFields(op *gqlOperation, budget int) ([]*gqlSelection, int, bool) {
	var out []*gqlSelection
	seen := map[string]bool{}
	work := [][]int{op.selections}
	visits := 0
	for len(work) > 0 {
		sels := work[len(work)-1]
		work = work[:len(work)-1]
		for _, i := range sels {
			s := doc.sels[i]
			visits++
			if visits > budget {
				return nil, visits, false
			}
			switch s.kind {
			case gqlFieldSel:
				out = append(out, s)
			case gqlInlineSel:
				work = append(work, s.selections)
			case gqlSpreadSel:
				f := doc.fragments[s.name]
				if f == nil {
					return nil, visits, false
				}
				if !seen[s.name] {
					seen[s.name] = true
					work = append(work, f.selections)
				}
			}
		}
	}
	return out, visits, true
}

// gqlWhat names a root field and its operation in messages.
func gqlWhat(op *gqlOperation, f *gqlSelection) string {
	s := "GraphQL " + op.kind + " field \"" + f.name + "\""
	if op.name != "" {
		s += " (operation \"" + op.name + "\")"
	}
	return s
}

func (c *gqlCheck) rootField(op *gqlOperation, f *gqlSelection) *gqlRefusal {
	s := c.m.s
	if route, ok := graphQLJWTMutations[f.name]; ok {
		route = strings.ReplaceAll(route, "%s", s.routes.prefix)
		return &gqlRefusal{status: http.StatusForbidden, audit: "mutation " + f.name,
			msg: gqlWhat(op, f) + " is refused by the access proxy: it would hand out Strapi's JWT. Use " + route + " instead"}
	}
	if f.name != gqlUpdateUser && f.name != gqlDeleteUser && f.name != gqlCreateUser {
		return nil
	}
	if f.name != gqlCreateUser && (c.caller == "" || (s.usersSelfOnly && !c.isCaller(op, f))) {
		return &gqlRefusal{status: http.StatusForbidden, audit: f.name + " on another user's record",
			msg: "You may only change your own user record (" + gqlWhat(op, f) + ")"}
	}
	if f.name == gqlDeleteUser {
		return nil
	}
	for _, a := range f.args {
		if a.name != "data" {
			continue
		}
		switch c.setsField(op, c.doc.vals[a.value], s.audienceField) {
		case gqlSets:
			return &gqlRefusal{status: http.StatusBadRequest, audit: f.name + " sets " + s.audienceField,
				msg: "Invalid parameters: " + s.audienceField + " cannot be changed through the API (" + gqlWhat(op, f) + ")"}
		case gqlUnsure:
			return gqlBad("The access proxy cannot check the data of " + gqlWhat(op, f) + ": pass it as an input object or a variable holding a JSON object")
		}
	}
	return nil
}

// isCaller says whether every `id` argument of f is, exactly, the caller's user id: "07" or
// "7.0" may name user 7 in Strapi's database, so only the exact spelling passes.
func (c *gqlCheck) isCaller(op *gqlOperation, f *gqlSelection) bool {
	found := false
	for _, a := range f.args {
		if a.name != "id" {
			continue
		}
		found = true
		if !c.valueIsCaller(op, c.doc.vals[a.value]) {
			return false
		}
	}
	return found
}

func (c *gqlCheck) valueIsCaller(op *gqlOperation, v *gqlValue) bool {
	switch v.kind {
	case gqlIntVal:
		return v.text == c.caller
	case gqlStringVal:
		return v.plain && v.text == c.caller
	case gqlVariableVal:
		def, defined := op.vars[v.text]
		if !defined {
			return false
		}
		if jv, given := c.vars[v.text]; given {
			switch t := jv.(type) {
			case string:
				return t == c.caller
			case json.Number:
				return t.String() == c.caller
			}
			return false
		}
		return def >= 0 && c.doc.vals[def].kind != gqlVariableVal && c.valueIsCaller(op, c.doc.vals[def])
	}
	return false
}

type gqlFieldVerdict int

const (
	gqlNotSet gqlFieldVerdict = iota
	gqlSets
	gqlUnsure
)

// setsField says whether an input object value (a literal, or a variable resolved from the
// request's variables or its default) sets field at its top level.
func (c *gqlCheck) setsField(op *gqlOperation, v *gqlValue, field string) gqlFieldVerdict {
	switch v.kind {
	case gqlNullVal:
		return gqlNotSet
	case gqlObjectVal:
		for _, f := range v.fields {
			if f.name == field {
				return gqlSets
			}
		}
		return gqlNotSet
	case gqlVariableVal:
		def, defined := op.vars[v.text]
		if !defined {
			return gqlUnsure
		}
		if jv, given := c.vars[v.text]; given {
			if jv == nil {
				return gqlNotSet
			}
			obj, ok := jv.(map[string]interface{})
			if !ok {
				return gqlUnsure
			}
			if _, sets := obj[field]; sets {
				return gqlSets
			}
			return gqlNotSet
		}
		if def < 0 {
			return gqlNotSet // no value: the argument is missing, which Strapi refuses
		}
		if c.doc.vals[def].kind == gqlVariableVal {
			return gqlUnsure
		}
		return c.setsField(op, c.doc.vals[def], field)
	}
	return gqlUnsure
}

// gqlResponseWriter passes Strapi's GraphQL answer on, without Strapi's refresh cookie should a
// resolver ever set it.
type gqlResponseWriter struct {
	rw     http.ResponseWriter
	cookie string
	ready  bool
}

func (g *gqlResponseWriter) Header() http.Header { return g.rw.Header() }

func (g *gqlResponseWriter) prepare() {
	if !g.ready {
		g.ready = true
		takeStrapiRefreshCookie(g.rw.Header(), g.cookie)
	}
}

func (g *gqlResponseWriter) WriteHeader(status int) {
	g.prepare()
	g.rw.WriteHeader(status)
}

func (g *gqlResponseWriter) Write(p []byte) (int, error) {
	g.prepare()
	return g.rw.Write(p)
}

// Flush passes a flush on (an incremental delivery answer).
func (g *gqlResponseWriter) Flush() {
	if f, ok := g.rw.(http.Flusher); ok {
		f.Flush()
	}
}
