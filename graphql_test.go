package accessproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The GraphQL guard in front of the fake Strapi (whose user is id 7). The fake Strapi echoes the
// Authorization header it receives on /graphql.

func gqlBody(query string, vars map[string]interface{}) string {
	m := map[string]interface{}{"query": query}
	if vars != nil {
		m["variables"] = vars
	}
	raw, _ := json.Marshal(m)
	return string(raw)
}

func (hs *harness) graphql(token, body string) *httptest.ResponseRecorder {
	hs.t.Helper()
	return hs.do(http.MethodPost, "a.localhost", "/graphql", token, body)
}

// refused checks a Strapi-shaped refusal with status whose message holds every part.
func refused(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, parts ...string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != status || e.Error.Status != status || e.Error.Name != errorName(status) {
		t.Errorf("%s: got %d %s, want a %d %s", what, rec.Code, rec.Body.String(), status, errorName(status))
		return
	}
	for _, p := range parts {
		if !strings.Contains(e.Error.Message, p) {
			t.Errorf("%s: message %q does not mention %q", what, e.Error.Message, p)
		}
	}
}

// passed checks that the request reached the fake Strapi, with Strapi's JWT when authenticated.
func passed(t *testing.T, hs *harness, what string, rec *httptest.ResponseRecorder, token string) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Errorf("%s: got %d %s, want it passed to Strapi", what, rec.Code, rec.Body.String())
		return
	}
	var echo map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &echo)
	want := ""
	if token != "" {
		want = "Bearer " + hs.strapi.jwt
	}
	if echo["authorization"] != want {
		t.Errorf("%s: Strapi saw Authorization %q, want %q", what, echo["authorization"], want)
	}
}

const gqlLoginField = `login(input: {identifier: "ann", password: "right"}) { jwt user { id } }`

// Every mutation answering with Strapi's JWT is refused, however it is spelled, and never reaches
// Strapi: a naive guard looking at operationName, the first field or the text misses these.
func TestGraphQLRefusesJWTMutations(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	login := `login(input: {identifier: "ann", password: "right"}) { user { id } }`
	cases := []struct {
		name, field string
		body        string
	}{
		{"plain", "login", gqlBody("mutation { "+login+" }", nil)},
		{"aliases", "login", gqlBody(`mutation { a: `+login+` b: login(input: {identifier: "ann", password: "x1"}) { user { id } } c: login(input: {identifier: "ann", password: "x2"}) { user { id } } }`, nil)},
		{"register", "register", gqlBody(`mutation { register(input: {username: "u", email: "u@x.io", password: "pw123456"}) { user { id } } }`, nil)},
		{"resetPassword", "resetPassword", gqlBody(`mutation { resetPassword(password: "a", passwordConfirmation: "a", code: "c") { user { id } } }`, nil)},
		{"changePassword", "changePassword", gqlBody(`mutation { changePassword(currentPassword: "a", password: "b", passwordConfirmation: "b") { user { id } } }`, nil)},
		{"emailConfirmation", "emailConfirmation", gqlBody(`mutation { emailConfirmation(confirmation: "c") { user { id } } }`, nil)},
		{"named fragment", "login", gqlBody("mutation M { ...F } fragment F on Mutation { ...G } fragment G on Mutation { "+login+" }", nil)},
		{"inline fragment", "login", gqlBody("mutation { ... on Mutation { ... @skip(if: true) { "+login+" } } }", nil)},
		{"after __typename", "login", gqlBody("mutation { __typename x: __typename "+login+" }", nil)},
		{"variables", "login", gqlBody(`mutation L($in: UsersPermissionsLoginInput!) { login(input: $in) { user { id } } }`, map[string]interface{}{"in": map[string]interface{}{"identifier": "ann", "password": "right"}})},
		{"operationName picks another", "login", `{"operationName":"Harmless","query":"query Harmless { me { id } } mutation Evil { ` + strings.ReplaceAll(login, `"`, `\"`) + ` }"}`},
		{"batched", "login", `[{"query":"{ me { id } }"},` + gqlBody("mutation { "+login+" }", nil) + `]`},
		{"comment line ends at CR", "login", gqlBody("{ me { id } } # a comment\rmutation { "+login+" }", nil)},
		{"hash inside a string", "login", gqlBody(`mutation { a: forgotPassword(email: "#") { ok } `+login+` }`, nil)},
		{"escaped triple quote in a block string", "login", gqlBody(`mutation { a: forgotPassword(email: """ \""" """) { ok } `+login+` }`, nil)},
		{"escaped quote in a string", "login", gqlBody(`mutation { a: forgotPassword(email: "\\") { ok } `+login+` }`, nil)},
		{"commas and BOM", "login", gqlBody("\uFEFF,mutation,{,"+login+",}", nil)},
		{"as a query", "login", gqlBody("{ "+login+" }", nil)},
	}
	for _, c := range cases {
		for _, token := range []string{"", tok} {
			before := hs.strapi.count("/graphql")
			rec := hs.graphql(token, c.body)
			refused(t, c.name, rec, http.StatusForbidden, `"`+c.field+`"`, "/api/auth/")
			assertNoStrapiSecrets(t, hs, rec)
			if hs.strapi.count("/graphql") != before {
				t.Errorf("%s: the request reached Strapi", c.name)
			}
		}
	}
	rec := hs.graphql("", gqlBody("mutation Attack { "+login+" }", nil))
	refused(t, "operation name", rec, http.StatusForbidden, `operation "Attack"`, "POST /api/auth/local instead")

	// The REST routes the messages point to follow apiPrefix.
	v2 := newHarness(t, func(c *Config) { c.APIPrefix = "/v2" })
	refused(t, "apiPrefix", v2.graphql("", gqlBody("mutation { "+login+" }", nil)), http.StatusForbidden, "POST /v2/auth/local instead")
}

// Strapi's credential fields are refused wherever they are selected, alias or not.
func TestGraphQLRefusesCredentialFields(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	for _, q := range []string{
		`mutation { socialLogin(token: "x") { jwt } }`,
		`{ me { id t: jwt } }`,
		`mutation { custom { payload { refreshToken } } }`,
		`{ me { ...F } } fragment F on UsersPermissionsMe { jwt }`,
	} {
		refused(t, q, hs.graphql(tok, gqlBody(q, nil)), http.StatusForbidden, "credentials")
	}
}

// What the guard lets through reaches Strapi with Strapi's JWT; the proxy token never does.
func TestGraphQLPassesHarmlessRequests(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	for _, body := range []string{
		gqlBody(`{ me { id username } }`, nil),
		gqlBody(`{ __typename }`, nil),
		gqlBody(`mutation { __typename }`, nil),
		gqlBody(`mutation { forgotPassword(email: "ann@example.com") { ok } }`, nil),
		gqlBody("# mutation { "+gqlLoginField+" }\n{ me { id } }", nil),
		gqlBody(`{ me(note: """ \""" login(input: {}) { jwt } """) { id } }`, nil),
		gqlBody(`{ me(note: "mutation { login(input: {}) { jwt } }") { id } }`, nil),
		gqlBody(`query Q($x: Boolean = true) { a: me @include(if: $x) { id } b: __typename }`, map[string]interface{}{"x": false}),
		`[{"query":"{ me { id } }"},{"query":"{ __typename }","variables":null,"operationName":null}]`,
		`{"query":"{ me { id } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`,
	} {
		passed(t, hs, body, hs.graphql(tok, body), tok)
	}
	passed(t, hs, "anonymous", hs.graphql("", gqlBody(`{ __typename }`, nil)), "")
	// application/json with parameters, and the other JSON types both of Strapi's parsers read.
	for _, ct := range []string{"application/json; charset=utf-8", "application/vnd.api+json"} {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/graphql", strings.NewReader(gqlBody(`{ me { id } }`, nil)))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		passed(t, hs, ct, rec, tok)
	}
	// Spellings of the path Strapi's router takes for the endpoint.
	for _, p := range []string{"/GraphQL", "/graphql/", "/graphql?x=1"} {
		rec := hs.do(http.MethodPost, "a.localhost", p, "", gqlBody("mutation { "+gqlLoginField+" }", nil))
		refused(t, p, rec, http.StatusForbidden, `"login"`)
	}
}

// GET requests are read from the query string, as Apollo reads them.
func TestGraphQLGet(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	get := func(raw, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/graphql?"+raw, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	q := url.QueryEscape
	passed(t, hs, "GET me", get("query="+q(`{ me { id } }`), tok), tok)
	passed(t, hs, "GET with variables", get("query="+q(`query ($x: Boolean!) { me @include(if: $x) { id } }`)+"&variables="+q(`{"x":true}`), tok), tok)
	passed(t, hs, "GET landing page", get("", ""), "")
	refused(t, "GET login", get("query="+q("mutation { "+gqlLoginField+" }"), ""), http.StatusForbidden, `"login"`)
	refused(t, "GET login, encoded key", get("qu%65ry="+q("mutation { "+gqlLoginField+" }"), ""), http.StatusForbidden, `"login"`)
	refused(t, "GET login, + for spaces", get("query=mutation+%7B+"+strings.ReplaceAll(q(gqlLoginField), "%20", "+")+"+%7D", ""), http.StatusForbidden, `"login"`)
	refused(t, "GET two queries", get("query="+q(`{ me { id } }`)+"&query="+q("mutation { "+gqlLoginField+" }"), tok), http.StatusBadRequest, "once")
	refused(t, "GET with a #", get("query="+q(`{ me { id } }`)+"#&query=x", tok), http.StatusBadRequest, "#")
	refused(t, "GET with ;", get("query="+q(`{ me { id } }`)+";a=b", tok), http.StatusBadRequest)
	refused(t, "GET bad escape", get("query=%zz", tok), http.StatusBadRequest)
	refused(t, "GET not UTF-8", get("query=%ff", tok), http.StatusBadRequest)
	refused(t, "GET persisted", get("extensions="+q(`{"persistedQuery":{"version":1,"sha256Hash":"abc"}}`), tok), http.StatusBadRequest, "persisted")
	refused(t, "GET variables not an object", get("query="+q(`{ me { id } }`)+"&variables=%5B%5D", tok), http.StatusBadRequest, "variables")
	refused(t, "GET audience in variables", get("query="+q(`mutation ($d: UsersPermissionsUserInput!) { updateUsersPermissionsUser(id: 7, data: $d) { data { id } } }`)+"&variables="+q(`{"d":{"audience":"*"}}`), tok), http.StatusBadRequest, "audience")
	refused(t, "GET unparsable", get("query="+q(`{ me { id }`), tok), http.StatusBadRequest, "cannot be read")
}

// Writes to user records: never the audience, only the caller's own record (usersApiSelfOnly),
// never anonymously; variables are resolved from the request, and their defaults.
func TestGraphQLUserWrites(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	update := func(id, data string) string {
		return `mutation U($d: UsersPermissionsUserInput, $id: ID!) { updateUsersPermissionsUser(id: ` + id + `, data: ` + data + `) { data { id } } }`
	}
	cases := []struct {
		name   string
		query  string
		vars   map[string]interface{}
		status int // 0: passes
	}{
		{"own record", update("7", `{username: "ann2"}`), nil, 0},
		{"own record, string id", update(`"7"`, `{username: "ann2"}`), nil, 0},
		{"own record, id variable", update("$id", `$d`), map[string]interface{}{"id": "7", "d": map[string]interface{}{"username": "x"}}, 0},
		{"own record, numeric id variable", update("$id", `$d`), map[string]interface{}{"id": json.Number("7"), "d": map[string]interface{}{"username": "x"}}, 0},
		{"data null", update("7", `null`), nil, 0},
		{"data variable given, no audience (its default has one)", `mutation ($d: UsersPermissionsUserInput = {audience: "*"}) { updateUsersPermissionsUser(id: 7, data: $d) { data { id } } }`, map[string]interface{}{"d": map[string]interface{}{"username": "x"}}, 0},
		{"data variable absent, no default", update("7", `$d`), nil, 0},

		{"audience literal", update("7", `{username: "x", audience: "*"}`), nil, 400},
		{"audience from a variable", update("7", `{audience: $a}`), map[string]interface{}{"a": "*"}, 400},
		{"audience in the data variable", update("7", `$d`), map[string]interface{}{"d": map[string]interface{}{"audience": "*"}}, 400},
		{"audience in the variable's default", `mutation ($d: UsersPermissionsUserInput = {audience: "*"}) { updateUsersPermissionsUser(id: 7, data: $d) { data { id } } }`, nil, 400},
		{"audience through an alias and a fragment", `mutation { ...F } fragment F on Mutation { x: updateUsersPermissionsUser(id: 7, data: {audience: "*"}) { data { id } } }`, nil, 400},
		{"audience on create", `mutation { createUsersPermissionsUser(data: {username: "n", email: "n@x.io", password: "pw123456", audience: "*"}) { data { id } } }`, nil, 400},
		{"undefined variable", `mutation { updateUsersPermissionsUser(id: 7, data: $d) { data { id } } }`, map[string]interface{}{"d": map[string]interface{}{}}, 400},
		{"data variable not an object", update("7", `$d`), map[string]interface{}{"d": "audience"}, 400},
		{"data not an input object", update("7", `"x"`), nil, 400},

		{"another user", update("8", `{username: "x"}`), nil, 403},
		{"another user, 07", update(`"07"`, `{username: "x"}`), nil, 403},
		{"another user, escaped", update(`"\u0037"`, `{username: "x"}`), nil, 403},
		{"another user, block string", update(`"""7"""`, `{username: "x"}`), nil, 403},
		{"another user, float", update(`7.0`, `{username: "x"}`), nil, 403},
		{"another user via a variable", update("$id", `{username: "x"}`), map[string]interface{}{"id": "8"}, 403},
		{"id variable 7.0", update("$id", `{username: "x"}`), map[string]interface{}{"id": json.Number("7.0")}, 403},
		{"id variable missing", update("$id", `{username: "x"}`), nil, 403},
		{"two ids", `mutation { updateUsersPermissionsUser(id: 7, id: 8, data: {username: "x"}) { data { id } } }`, nil, 403},
		{"no id", `mutation { updateUsersPermissionsUser(data: {username: "x"}) { data { id } } }`, nil, 403},
		{"second alias on another user", `mutation { a: updateUsersPermissionsUser(id: 7, data: {username: "x"}) { data { id } } b: updateUsersPermissionsUser(id: 8, data: {username: "y"}) { data { id } } }`, nil, 403},
		{"delete another user", `mutation { deleteUsersPermissionsUser(id: 8) { data { id } } }`, nil, 403},
		{"another operation deletes another user", `{"operationName":"Q","query":"query Q { me { id } } mutation D { deleteUsersPermissionsUser(id: 8) { data { id } } }"}`, nil, 403},
	}
	for _, c := range cases {
		body := c.query
		if !strings.HasPrefix(body, "{") {
			body = gqlBody(c.query, c.vars)
		}
		before := hs.strapi.count("/graphql")
		rec := hs.graphql(tok, body)
		switch c.status {
		case 0:
			passed(t, hs, c.name, rec, tok)
		case 400:
			refused(t, c.name, rec, http.StatusBadRequest)
		default:
			refused(t, c.name, rec, c.status, "your own user record")
		}
		if c.status != 0 && hs.strapi.count("/graphql") != before {
			t.Errorf("%s: the request reached Strapi", c.name)
		}
	}
	refused(t, "audience message", hs.graphql(tok, gqlBody(update("7", `{audience: "*"}`), nil)), http.StatusBadRequest, "audience cannot be changed", `"updateUsersPermissionsUser"`)

	// Anonymous callers may not update or delete users at all; creating is Strapi's call.
	refused(t, "anonymous update", hs.graphql("", gqlBody(update("7", `{username: "x"}`), nil)), http.StatusForbidden)
	refused(t, "anonymous delete", hs.graphql("", gqlBody(`mutation { deleteUsersPermissionsUser(id: 7) { data { id } } }`, nil)), http.StatusForbidden)
	passed(t, hs, "anonymous create", hs.graphql("", gqlBody(`mutation { createUsersPermissionsUser(data: {username: "n"}) { data { id } } }`, nil)), "")

	open := newHarness(t, func(c *Config) { c.UsersAPISelfOnly = false })
	otok := open.login("a.localhost")
	passed(t, open, "usersApiSelfOnly false", open.graphql(otok, gqlBody(update("8", `{username: "x"}`), nil)), otok)
	refused(t, "usersApiSelfOnly false, audience", open.graphql(otok, gqlBody(update("8", `{audience: "*"}`), nil)), http.StatusBadRequest, "audience")
	refused(t, "usersApiSelfOnly false, anonymous", open.graphql("", gqlBody(update("8", `{username: "x"}`), nil)), http.StatusForbidden)

	custom := newHarness(t, func(c *Config) { c.AudienceField, c.AudienceCheck = "hosts", false })
	ctok := custom.login("a.localhost")
	refused(t, "audienceField", custom.graphql(ctok, gqlBody(update("7", `{hosts: "*"}`), nil)), http.StatusBadRequest, "hosts cannot be changed")
	passed(t, custom, "audienceField, another field", custom.graphql(ctok, gqlBody(update("7", `{audience: "*"}`), nil)), ctok)
}

// What the proxy cannot read as Strapi would is refused before it reaches Strapi.
func TestGraphQLRefusesWhatItCannotRead(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.login("a.localhost")
	post := func(ct, body string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/graphql", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec
	}
	before := hs.strapi.count("/graphql")
	me := gqlBody(`{ me { id } }`, nil)
	form := "query=" + url.QueryEscape("mutation { "+gqlLoginField+" }")
	cases := []struct {
		name   string
		rec    *httptest.ResponseRecorder
		status int
	}{
		{"urlencoded form (koa-bodyparser reads it)", post("application/x-www-form-urlencoded", form), 415},
		{"multipart (koa-body reads it off the exact URL)", post("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n{ me { id } }\r\n--x--\r\n"), 415},
		{"text/plain", post("text/plain", me), 415},
		{"application/graphql", post("application/graphql", `{ me { id } }`), 415},
		{"no content type", post("", me), 415},
		{"two content types", post("application/json", me, "Content-Type", "text/plain"), 415},
		{"reports+json (only koa-body reads it)", post("application/reports+json", me), 415},
		{"gzip", post("application/json", me, "Content-Encoding", "gzip"), 415},
		{"empty body", post("application/json", ""), 400},
		{"not JSON", post("application/json", "query={}"), 400},
		{"trailing data", post("application/json", me+"{}"), 400},
		{"a string", post("application/json", `"{ me { id } }"`), 400},
		{"__proto__", post("application/json", `{"query":"{ me { id } }","__proto__":{"x":1}}`), 400},
		{"no query (persisted)", post("application/json", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`), 400},
		{"query null (persisted)", post("application/json", `{"query":null,"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`), 400},
		{"query not a string", post("application/json", `{"query":{"kind":"Document"}}`), 400},
		{"variables a string", post("application/json", `{"query":"{ me { id } }","variables":"{}"}`), 400},
		{"empty batch", post("application/json", `[]`), 400},
		{"batch of non-objects", post("application/json", `[{"query":"{ me { id } }"}, 1]`), 400},
		{"batch too long", post("application/json", "["+strings.TrimSuffix(strings.Repeat(me+",", maxGraphQLBatch+1), ",")+"]"), 400},
		{"unparsable document", post("application/json", gqlBody(`{ me { id }`, nil)), 400},
		{"type definitions", post("application/json", gqlBody(`type Query { me: Int }`, nil)), 400},
		{"unknown fragment", post("application/json", gqlBody(`mutation { ...Missing }`, nil)), 400},
		{"one bad document in a batch", post("application/json", `[`+me+`,{"query":"{"}]`), 400},
		{"too deep", post("application/json", gqlBody(strings.Repeat("{ a ", maxGraphQLDepth+1)+strings.Repeat("}", maxGraphQLDepth+1), nil)), 400},
		{"too large", post("application/json", gqlBody(`{ me(x: "`+strings.Repeat("x", maxGraphQLBody)+`") { id } }`, nil)), 413},
		{"upgrade", post("application/json", me, "Upgrade", "websocket"), 400},
	}
	for _, c := range cases {
		refused(t, c.name, c.rec, c.status)
	}
	rec := hs.do(http.MethodPut, "a.localhost", "/graphql", tok, me)
	refused(t, "PUT", rec, http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	if hs.strapi.count("/graphql") != before {
		t.Fatal("a refused request reached Strapi")
	}
	passed(t, hs, "OPTIONS", hs.do(http.MethodOptions, "a.localhost", "/graphql", "", ""), "")
}

// Authentication on the endpoint works as on every other route.
func TestGraphQLAuthentication(t *testing.T) {
	hs := newHarness(t, nil)
	me := gqlBody(`{ me { id } }`, nil)
	refused(t, "raw Strapi JWT", hs.graphql(hs.strapi.jwt, me), http.StatusUnauthorized)
	refused(t, "garbage token", hs.graphql("garbage", me), http.StatusUnauthorized)
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/graphql", strings.NewReader(me))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic YTpi")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	refused(t, "basic auth", rec, http.StatusUnauthorized)
	tok := hs.login("a.localhost")
	refused(t, "another host", hs.do(http.MethodPost, "c.localhost", "/graphql", tok, me), http.StatusForbidden)

	strict := newHarness(t, func(c *Config) { c.RequireAuth = true })
	refused(t, "requireAuth", strict.graphql("", me), http.StatusUnauthorized)
	stok := strict.login("a.localhost")
	passed(t, strict, "requireAuth with a token", strict.graphql(stok, me), stok)

	// Cookie mode: the cookie authenticates, the Origin rule holds for POST, the cookie never
	// reaches Strapi.
	ck := newHarness(t, func(c *Config) { c.Cookie.Enabled = true })
	ctok := ck.login("a.localhost")
	for _, origin := range []string{"", "http://a.localhost"} {
		req := httptest.NewRequest(http.MethodPost, "http://a.localhost/graphql", strings.NewReader(me))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", "ap_session="+ctok+"; theme=dark")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		ck.h.ServeHTTP(rec, req)
		if origin == "" {
			refused(t, "cookie without Origin", rec, http.StatusForbidden)
			continue
		}
		passed(t, ck, "cookie with Origin", rec, ctok)
		if c := ck.strapi.last().Header.Get("Cookie"); strings.Contains(c, "ap_session") {
			t.Fatalf("the proxy cookie reached Strapi: %q", c)
		}
	}
}

// Strapi's refresh cookie never leaves through the GraphQL endpoint, should a resolver set it.
func TestGraphQLStripsStrapiRefreshCookie(t *testing.T) {
	store := newFakeStore(t)
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, store.srv.URL+store.prefix, testStoreToken
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "strapi_up_refresh=secret-refresh; HttpOnly")
		w.Header().Add("Set-Cookie", "strapi_up_refresh.sig=sig; HttpOnly")
		w.Header().Add("Set-Cookie", "theme=dark")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"__typename":"Query"}}`))
	})
	h, err := New(context.Background(), next, cfg, "gql")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "http://a.localhost/graphql", strings.NewReader(gqlBody(`{ __typename }`, nil)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Values("Set-Cookie"); rec.Code != http.StatusOK || len(got) != 1 || got[0] != "theme=dark" {
		t.Fatalf("%d, Set-Cookie %q", rec.Code, got)
	}
}
