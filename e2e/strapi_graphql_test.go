package e2e

// Strapi's GraphQL endpoint (@strapi/plugin-graphql 5.54.0, e2e/strapi/config/plugins.js) through
// the real Traefik and the plugin, on a Strapi of its own whose Authenticated role may update and
// delete users (E2E_AUTHENTICATED_GRANTS): what the proxy refuses there, Strapi itself would do.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const gqlHost = "gql.localhost"

var gqlUsers = []harness.StrapiUser{
	{Username: "gqlann", Email: "gqlann@example.com", Password: "Gql-ann-passw0rd", Audience: gqlHost, Confirmed: true},
	{Username: "gqlbob", Email: "gqlbob@example.com", Password: "Gql-bob-passw0rd", Audience: gqlHost, Confirmed: true},
}

// gqlGrants are the actions E2E_AUTHENTICATED_GRANTS gives the Authenticated role at bootstrap
// (e2e/strapi/src/index.js): with them Strapi lets any user write any user.
const gqlGrants = "plugin::users-permissions.user.update,plugin::users-permissions.user.destroy"

type gqlStack struct {
	strapi  *harness.Strapi
	traefik *harness.Traefik
	c       *harness.Client // through Traefik
	direct  *harness.Client // straight to Strapi
}

var (
	gqlOnce     sync.Once
	gqlShared   *gqlStack
	gqlStartErr error
)

func getGraphQLStack(t *testing.T) *gqlStack {
	t.Helper()
	gqlOnce.Do(func() {
		env, err := harness.NewEnv(filepath.Join(sharedEnv.Dir, "graphql-strapi"), nil)
		if err != nil {
			gqlStartErr = err
			return
		}
		sharedEnv.OnClose(env.Close)
		st, err := harness.StartStrapi(env, harness.StrapiOptions{
			Users: gqlUsers, DefaultAudience: gqlHost, ScriptLog: os.Stderr,
			ExtraEnv: []string{"E2E_AUTHENTICATED_GRANTS=" + gqlGrants},
		})
		if err != nil {
			gqlStartErr = err
			return
		}
		store, err := harness.StartStore(env)
		if err != nil {
			gqlStartErr = err
			return
		}
		tr, err := harness.StartTraefik(env, harness.TraefikOptions{AccessLog: true, Routers: []harness.Router{
			{Host: gqlHost, Upstream: st.URL, Plugin: harness.PluginConfig(store, harness.NewSecret(), nil)},
		}})
		if err != nil {
			gqlStartErr = err
			return
		}
		gqlShared = &gqlStack{strapi: st, traefik: tr, c: harness.NewClient(tr.URL()), direct: harness.NewClient(st.URL)}
	})
	if gqlStartErr != nil {
		t.Fatalf("starting Strapi (GraphQL) + sessionstore + Traefik: %v", gqlStartErr)
	}
	checkLogAtEnd(t, gqlShared.traefik)
	return gqlShared
}

// gqlAnswer is a GraphQL answer: data and errors.
type gqlAnswer struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (s *gqlStack) post(t *testing.T, c *harness.Client, token string, body any) *harness.Response {
	t.Helper()
	host := gqlHost
	if c == s.direct {
		host = ""
	}
	r := do(t, c, "POST", host, "/graphql", token, body)
	if c == s.c {
		s.noStrapiJWT(t, r, "POST /graphql")
	}
	return r
}

func (s *gqlStack) query(t *testing.T, c *harness.Client, token, query string, vars map[string]any) *harness.Response {
	t.Helper()
	body := map[string]any{"query": query}
	if vars != nil {
		body["variables"] = vars
	}
	return s.post(t, c, token, body)
}

func answer(t *testing.T, r *harness.Response, what string) gqlAnswer {
	t.Helper()
	var a gqlAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%s: not a GraphQL answer: %s", what, r)
	}
	return a
}

// noStrapiJWT fails when a JWT signed with Strapi's secret is in the response (through Traefik).
func (s *gqlStack) noStrapiJWT(t *testing.T, r *harness.Response, what string) {
	t.Helper()
	for _, j := range harness.FindJWTs(r.Everything()) {
		if harness.VerifyHS256(j, []byte(s.strapi.JWTSecret)) {
			t.Fatalf("%s: a Strapi-signed JWT reached the client: %s", what, r)
		}
	}
}

// restLogin logs in through the proxy's REST route and returns the proxy token and user id.
func (s *gqlStack) restLogin(t *testing.T, u harness.StrapiUser) (string, string) {
	t.Helper()
	token, r := login(t, s.c, gqlHost, u.Email, u.Password)
	return token, fmt.Sprint(r.JSON()["user"].(map[string]any)["id"])
}

func (s *gqlStack) strapiJWT(t *testing.T, u harness.StrapiUser) string {
	t.Helper()
	r := do(t, s.direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": u.Email, "password": u.Password})
	expectStatus(t, r, 200, "direct login at Strapi")
	return r.JSON()["jwt"].(string)
}

func gqlLogin(alias, identifier, password string) string {
	return fmt.Sprintf(`%s login(input: {identifier: %q, password: %q}) { jwt user { id username } }`, alias, identifier, password)
}

// TestGraphQLStrapi: what the proxy refuses on Strapi's GraphQL endpoint, and what works.
func TestGraphQLStrapi(t *testing.T) {
	s := getGraphQLStack(t)
	ann, bob := gqlUsers[0], gqlUsers[1]

	t.Run("login mutation refused, never a Strapi JWT", func(t *testing.T) {
		// Straight at Strapi, the mutation answers with Strapi's JWT, outside every login route.
		r := do(t, s.direct, "POST", "", "/graphql", "", map[string]any{"query": "mutation { " + gqlLogin("", ann.Email, ann.Password) + " }"})
		var direct struct {
			Data struct {
				Login struct{ JWT string } `json:"login"`
			} `json:"data"`
		}
		_ = json.Unmarshal(r.Body, &direct)
		if r.Status != 200 || !harness.VerifyHS256(direct.Data.Login.JWT, []byte(s.strapi.JWTSecret)) {
			t.Fatalf("the GraphQL login straight at Strapi: %s, want Strapi's JWT (is @strapi/plugin-graphql loaded?)", r)
		}

		var aliases strings.Builder
		for i := 0; i < 20; i++ {
			aliases.WriteString(gqlLogin(fmt.Sprintf("a%d:", i), ann.Email, fmt.Sprintf("wrong-%d", i)) + " ")
		}
		aliases.WriteString(gqlLogin("right:", ann.Email, ann.Password))
		for name, body := range map[string]any{
			"plain":          map[string]any{"query": "mutation { " + gqlLogin("", ann.Email, ann.Password) + " }"},
			"21 aliases":     map[string]any{"query": "mutation Guess { " + aliases.String() + " }"},
			"without jwt":    map[string]any{"query": fmt.Sprintf(`mutation { login(input: {identifier: %q, password: %q}) { user { id } } }`, ann.Email, ann.Password)},
			"fragment":       map[string]any{"query": "mutation { ...L } fragment L on Mutation { " + gqlLogin("", ann.Email, ann.Password) + " }"},
			"operationName":  map[string]any{"operationName": "Me", "query": "query Me { me { id } } mutation L { " + gqlLogin("", ann.Email, ann.Password) + " }"},
			"variables":      map[string]any{"query": "mutation ($in: UsersPermissionsLoginInput!) { login(input: $in) { jwt } }", "variables": map[string]any{"in": map[string]string{"identifier": ann.Email, "password": ann.Password}}},
			"batched arrays": []any{map[string]any{"query": "{ __typename }"}, map[string]any{"query": "mutation { " + gqlLogin("", ann.Email, ann.Password) + " }"}},
		} {
			r := s.post(t, s.c, "", body)
			expectError(t, r, 403, "ForbiddenError", "GraphQL login ("+name+")")
			noJWTKey(t, r, "GraphQL login ("+name+")")
			if m := r.JSON()["error"].(map[string]any)["message"].(string); !strings.Contains(m, `"login"`) || !strings.Contains(m, "/api/auth/local") {
				t.Fatalf("GraphQL login (%s): message %q should name the mutation and the REST route", name, m)
			}
		}
		// GET executes queries only, but the same check applies.
		r = do(t, s.c, "GET", gqlHost, "/graphql?query="+url.QueryEscape("mutation { "+gqlLogin("", ann.Email, ann.Password)+" }"), "", nil, "Apollo-Require-Preflight", "true")
		s.noStrapiJWT(t, r, "GET /graphql")
		expectError(t, r, 403, "ForbiddenError", "GraphQL login over GET")
		// The REST login, which the proxy swaps, still works.
		s.restLogin(t, ann)
	})

	t.Run("register refused", func(t *testing.T) {
		name := fmt.Sprintf("gqlreg%d", os.Getpid())
		r := s.query(t, s.c, "", fmt.Sprintf(`mutation { register(input: {username: %q, email: "%s@example.com", password: "Reg-passw0rd"}) { jwt user { id } } }`, name, name), nil)
		expectError(t, r, 403, "ForbiddenError", "GraphQL register")
		noJWTKey(t, r, "GraphQL register")
		r = do(t, s.c, "POST", gqlHost, "/api/auth/local", "", map[string]string{"identifier": name + "@example.com", "password": "Reg-passw0rd"})
		expectStatus(t, r, 400, "login of the user a refused register would have created")
		for _, m := range []string{
			`mutation { resetPassword(password: "x12345", passwordConfirmation: "x12345", code: "c") { jwt } }`,
			`mutation { emailConfirmation(confirmation: "c") { user { id } } }`,
		} {
			expectError(t, s.query(t, s.c, "", m, nil), 403, "ForbiddenError", m)
		}
	})

	t.Run("harmless query works with the proxy token, Strapi sees its own JWT", func(t *testing.T) {
		token, id := s.restLogin(t, ann)
		r := s.query(t, s.c, token, `query Me { me { id username } }`, nil)
		expectStatus(t, r, 200, "me through the proxy")
		var me struct{ ID, Username string }
		if err := json.Unmarshal(answer(t, r, "me").Data["me"], &me); err != nil || me.ID != id || me.Username != ann.Username {
			t.Fatalf("me through the proxy: %s, want %s (%s)", r, ann.Username, id)
		}
		// Strapi answered for ann: it received ann's Strapi JWT, not the proxy token, which it
		// refuses when it gets it straight.
		r = s.query(t, s.direct, token, `{ me { id username } }`, nil)
		if a := answer(t, r, "me with the proxy token straight at Strapi"); r.Status == 200 && string(a.Data["me"]) != "null" && len(a.Errors) == 0 {
			t.Fatalf("Strapi accepted the proxy token itself: %s", r)
		}
		// GET, and a batch.
		r = do(t, s.c, "GET", gqlHost, "/graphql?query="+url.QueryEscape(`{ me { username } }`), token, nil, "Apollo-Require-Preflight", "true")
		expectStatus(t, r, 200, "me over GET")
		if !strings.Contains(string(r.Body), ann.Username) {
			t.Fatalf("me over GET: %s", r)
		}
		r = s.post(t, s.c, token, []any{map[string]any{"query": "{ me { username } }"}, map[string]any{"query": "{ __typename }"}})
		expectStatus(t, r, 200, "a harmless batch")
		if !strings.HasPrefix(strings.TrimSpace(string(r.Body)), "[") || !strings.Contains(string(r.Body), ann.Username) {
			t.Fatalf("a harmless batch: %s", r)
		}
		// Anonymous requests reach Strapi's public role.
		r = s.query(t, s.c, "", `{ __typename }`, nil)
		expectStatus(t, r, 200, "anonymous __typename")
		// A raw Strapi JWT is refused on this endpoint too.
		expectError(t, s.query(t, s.c, s.strapiJWT(t, ann), `{ me { id } }`, nil), 401, "UnauthorizedError", "a raw Strapi JWT on /graphql")
	})

	t.Run("audience cannot be set", func(t *testing.T) {
		token, id := s.restLogin(t, ann)
		for name, q := range map[string][2]any{
			"literal":  {fmt.Sprintf(`mutation { updateUsersPermissionsUser(id: %s, data: {audience: "*"}) { data { username } } }`, id), nil},
			"variable": {`mutation ($id: ID!, $d: UsersPermissionsUserInput!) { updateUsersPermissionsUser(id: $id, data: $d) { data { username } } }`, map[string]any{"id": id, "d": map[string]any{"audience": "*"}}},
			"default":  {`mutation ($id: ID!, $d: UsersPermissionsUserInput = {audience: "*"}) { updateUsersPermissionsUser(id: $id, data: $d) { data { username } } }`, map[string]any{"id": id}},
			"create":   {`mutation { createUsersPermissionsUser(data: {username: "gqlnew", email: "gqlnew@example.com", password: "New-passw0rd", audience: "*"}) { data { username } } }`, nil},
		} {
			vars, _ := q[1].(map[string]any)
			expectError(t, s.query(t, s.c, token, q[0].(string), vars), 400, "ValidationError", "setting audience ("+name+")")
		}
		me := do(t, s.c, "GET", gqlHost, "/api/users/me", token, nil)
		expectStatus(t, me, 200, "users/me after the refused updates")
		if me.JSON()["audience"] != gqlHost {
			t.Fatalf("audience changed: %s", me)
		}
	})

	t.Run("another user's record refused", func(t *testing.T) {
		token, _ := s.restLogin(t, ann)
		_, bobID := s.restLogin(t, bob)
		for name, q := range map[string]string{
			"update":            fmt.Sprintf(`mutation { updateUsersPermissionsUser(id: %s, data: {username: "gqlhacked"}) { data { username } } }`, bobID),
			"update, string id": fmt.Sprintf(`mutation { updateUsersPermissionsUser(id: "%s", data: {username: "gqlhacked"}) { data { username } } }`, bobID),
			"update, alias":     fmt.Sprintf(`mutation { x: updateUsersPermissionsUser(id: %s, data: {username: "gqlhacked"}) { data { username } } }`, bobID),
			"delete":            fmt.Sprintf(`mutation { deleteUsersPermissionsUser(id: %s) { data { username } } }`, bobID),
		} {
			expectError(t, s.query(t, s.c, token, q, nil), 403, "ForbiddenError", name+" on another user")
			expectError(t, s.query(t, s.c, "", q, nil), 403, "ForbiddenError", name+" anonymously")
		}
		// bob is still there, unchanged.
		_, r := login(t, s.c, gqlHost, bob.Email, bob.Password)
		if r.JSON()["user"].(map[string]any)["username"] != bob.Username {
			t.Fatalf("bob changed: %s", r)
		}
	})
}

// TestGraphQLStrapiGrantedWrites: with E2E_AUTHENTICATED_GRANTS, Strapi itself lets ann write
// bob's record (so the refusals above are the proxy's doing), and through the proxy ann can
// write her own record, but not its audience.
func TestGraphQLStrapiGrantedWrites(t *testing.T) {
	s := getGraphQLStack(t)
	ann, bob := gqlUsers[0], gqlUsers[1]
	token, annID := s.restLogin(t, ann)
	_, bobID := s.restLogin(t, bob)

	// Straight at Strapi with ann's Strapi JWT: a write to bob's record (a no-op: his own username).
	q := fmt.Sprintf(`mutation { updateUsersPermissionsUser(id: %s, data: {username: %q}) { data { username } } }`, bobID, bob.Username)
	r := s.query(t, s.direct, s.strapiJWT(t, ann), q, nil)
	if a := answer(t, r, "direct write"); r.Status != 200 || len(a.Errors) > 0 || !strings.Contains(string(a.Data["updateUsersPermissionsUser"]), bob.Username) {
		t.Fatalf("ann writing bob's record straight at Strapi: %s\nwant it allowed: e2e/strapi/src/index.js must grant E2E_AUTHENTICATED_GRANTS (%s) to the Authenticated role", r, gqlGrants)
	}
	// Through the proxy: refused.
	expectError(t, s.query(t, s.c, token, q, nil), 403, "ForbiddenError", "ann writing bob's record through the proxy")

	// Her own record, through the proxy: passes to Strapi and is done.
	own := `mutation ($id: ID!, $d: UsersPermissionsUserInput!) { updateUsersPermissionsUser(id: $id, data: $d) { data { username audience } } }`
	r = s.query(t, s.c, token, own, map[string]any{"id": annID, "d": map[string]any{"username": ann.Username}})
	a := answer(t, r, "own update")
	if r.Status != 200 || len(a.Errors) > 0 || !strings.Contains(string(a.Data["updateUsersPermissionsUser"]), ann.Username) {
		t.Fatalf("ann updating her own record through the proxy: %s", r)
	}
	expectError(t, s.query(t, s.c, token, own, map[string]any{"id": annID, "d": map[string]any{"audience": "*"}}), 400, "ValidationError", "ann setting her own audience")
}
