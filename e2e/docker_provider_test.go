package e2e

// examples/docker-compose.yml run for real, without Docker: the real Traefik binary with its real
// Docker provider, pointed at a fake Docker Engine API on a unix socket (harness/fakedocker.go)
// that reports one running container, "strapi", with the labels of the compose file's strapi
// service. Traefik's own label parser builds the router and the accessproxy middleware from them;
// a login through that router against the real Strapi is swapped for a proxy token, and protected
// calls work with it (bearer and the cookie the labels turn on); the container's die and start
// events take the router away and bring it back.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// composeList returns the list under services.<service>.<key> of a docker-compose file (block
// style "- item" entries, comments and blank lines skipped): enough YAML for the examples' file,
// and it fails loudly when the file's shape changes.
func composeList(raw, service, key string) ([]string, error) {
	lines := strings.Split(raw, "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	skip := func(l string) bool { t := strings.TrimSpace(l); return t == "" || strings.HasPrefix(t, "#") }
	inServices, inService, inKey := false, false, false
	var out []string
	for _, l := range lines {
		if skip(l) {
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case indent(l) == 0:
			if inKey {
				return out, nil
			}
			inServices = t == "services:"
			inService = false
		case inServices && indent(l) == 2:
			if inKey {
				return out, nil
			}
			inService = t == service+":"
		case inService && indent(l) == 4:
			if inKey {
				return out, nil
			}
			inKey = t == key+":"
		case inKey && indent(l) == 6 && strings.HasPrefix(t, "- "):
			out = append(out, strings.TrimSpace(strings.TrimPrefix(t, "- ")))
		case inKey:
			return nil, fmt.Errorf("services.%s.%s: unexpected line %q", service, key, l)
		}
	}
	if !inKey {
		return nil, fmt.Errorf("no services.%s.%s block", service, key)
	}
	return out, nil
}

// composeMap returns the mapping under services.<service>.<key> (block style "KEY: value").
func composeMap(raw, service, key string) (map[string]string, error) {
	re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(service) + `:\n(?:    .*\n|\s*\n)*?    ` + regexp.QuoteMeta(key) + `:\n((?:      .*\n)+)`)
	m := re.FindStringSubmatch(raw)
	if m == nil {
		return nil, fmt.Errorf("no services.%s.%s mapping", service, key)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimRight(m[1], "\n"), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("services.%s.%s: %q is not KEY: value", service, key, l)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, nil
}

func traefikVersion(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "scripts", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TRAEFIK_VERSION=(\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("scripts/versions.env: no TRAEFIK_VERSION")
	}
	return string(m[1])
}

// waitHealthy waits up to 20 s for url to answer 200.
func waitHealthy(t *testing.T, url string, p *harness.Proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (%v):\n%s", url, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// composeScalar returns services.<service>.<key>: value (one line).
func composeScalar(raw, service, key string) string {
	re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(service) + `:\n(?:    .*\n|\s*\n)*?    ` + regexp.QuoteMeta(key) + `: *(.*?) *$`)
	if m := re.FindStringSubmatch(raw); m != nil {
		return strings.Trim(m[1], `"'`)
	}
	return ""
}

// interpolate does docker compose's ${VAR} substitution from vars; an unknown variable is an error
// (compose would silently use "").
func interpolate(s string, vars map[string]string) (string, error) {
	var missing []string
	out := os.Expand(strings.ReplaceAll(s, "$$", "\x00"), func(k string) string {
		v, ok := vars[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q uses %v, which the test does not set", s, missing)
	}
	return strings.ReplaceAll(out, "\x00", "$"), nil
}

// staticFromFlags turns Traefik CLI flags (--a.b.c=v) into the nested static configuration they
// stand for. "--providers.docker=true" switches a section on, as on the command line: its flags
// below it (--providers.docker.exposedbydefault=…) make it a section; left alone, the value stays.
func staticFromFlags(flags []string) (map[string]any, error) {
	root := map[string]any{}
	for _, f := range flags {
		kv := strings.SplitN(strings.TrimPrefix(f, "--"), "=", 2)
		if len(kv) != 2 || !strings.HasPrefix(f, "--") {
			return nil, fmt.Errorf("traefik flag %q: want --key=value", f)
		}
		parts := strings.Split(kv[0], ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				if v, set := m[p]; set && v != "true" {
					return nil, fmt.Errorf("traefik flag %q: %s is both a value and a section", f, p)
				}
				next = map[string]any{} // an enabled section ("true") with settings of its own
				m[p] = next
			}
			m = next
		}
		last := parts[len(parts)-1]
		if _, isSection := m[last].(map[string]any); isSection {
			if kv[1] != "true" {
				return nil, fmt.Errorf("traefik flag %q: %s is a section", f, last)
			}
			continue
		}
		m[last] = kv[1]
	}
	return root, nil
}

func TestStrapiDockerLabels(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rawCompose, err := os.ReadFile(filepath.Join(root, "examples", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	compose := string(rawCompose)
	labels, err := composeList(compose, "strapi", "labels")
	if err != nil {
		t.Fatalf("examples/docker-compose.yml: %v", err)
	}
	command, err := composeList(compose, "traefik", "command")
	if err != nil {
		t.Fatalf("examples/docker-compose.yml: %v", err)
	}
	volumes, err := composeList(compose, "traefik", "volumes")
	if err != nil {
		t.Fatalf("examples/docker-compose.yml: %v", err)
	}
	// The compose file mounts the plugin where Traefik's working directory has plugins-local/src/<module>:
	// the harness lays out the same tree in Traefik's working directory.
	workDir := composeScalar(compose, "traefik", "working_dir")
	mounted := false
	for _, v := range volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && filepath.Clean(parts[1]) == filepath.Join(workDir, "plugins-local", "src", harness.PluginModule) {
			mounted = true
		}
	}
	if workDir == "" || !mounted {
		t.Fatalf("examples/docker-compose.yml: traefik's volumes %v (working_dir %q) no longer mount the plugin under <working_dir>/plugins-local/src/%s: update this test", volumes, workDir, harness.PluginModule)
	}

	st := needStrapi(t)
	env := harness.ForTest(t)
	strapiURL, err := url.Parse(st.URL)
	if err != nil {
		t.Fatal(err)
	}
	// compose's .env: the three variables the file says it needs.
	vars := map[string]string{
		"ACCESSPROXY_SECRET":          harness.NewSecret(),
		"ACCESSPROXY_STORE_TOKEN":     harness.RandomString(32),
		"SESSIONSTORE_ENCRYPTION_KEY": harness.NewStoreKey(),
	}
	for v := range vars {
		if !strings.Contains(compose, "${"+v+"}") || !strings.Contains(strings.SplitN(compose, "\n", 2)[0], v) {
			t.Fatalf("examples/docker-compose.yml: ${%s} is not used, or not named in the first line's list of .env variables", v)
		}
	}
	if img := composeScalar(compose, "traefik", "image"); img != "traefik:"+traefikVersion(t, root) {
		t.Errorf("examples/docker-compose.yml: traefik image %q, want traefik:%s (scripts/versions.env, the version the tests run)", img, traefikVersion(t, root))
	}

	// The store as the compose file's sessionstore service runs it: its environment, interpolated,
	// with only the listen address and the bolt file made local.
	storeEnv, err := composeMap(compose, "sessionstore", "environment")
	if err != nil {
		t.Fatalf("examples/docker-compose.yml: %v", err)
	}
	storePort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	storeRewrites := map[string][2]string{
		"SESSIONSTORE_LISTEN":    {"0.0.0.0:8181", fmt.Sprintf("127.0.0.1:%d", storePort)},
		"SESSIONSTORE_BOLT_PATH": {"/data/sessions.db", filepath.Join(env.Dir, "sessions.db")},
	}
	var storeProcEnv []string
	for k, v := range storeEnv {
		v, err := interpolate(v, vars)
		if err != nil {
			t.Fatalf("examples/docker-compose.yml: sessionstore %s: %v", k, err)
		}
		if rw, ok := storeRewrites[k]; ok {
			if v != rw[0] {
				t.Fatalf("examples/docker-compose.yml: sessionstore %s is %q, the test rewrites %q: update this test", k, v, rw[0])
			}
			v = rw[1]
		}
		storeProcEnv = append(storeProcEnv, k+"="+v)
	}
	storeBin, err := harness.StoreBinary()
	if err != nil {
		t.Fatal(err)
	}
	storeProc, err := env.Start(harness.ProcSpec{Name: "sessionstore-compose", Path: storeBin, Env: storeProcEnv})
	if err != nil {
		t.Fatal(err)
	}
	storeURL := fmt.Sprintf("http://127.0.0.1:%d", storePort)
	waitHealthy(t, storeURL+"/healthz", storeProc)

	// The labels, as docker compose hands them to the container: ${VAR} from .env.
	// What must point at this test's processes instead of the compose network: the store's address
	// (service "sessionstore" there), Strapi's port (1337 in its container), and the host, since the
	// shared Strapi's fixture users have audiences on *.localhost (dave: "*.localhost").
	const exampleHost, testHost = "cms.example.com", "cms.localhost"
	rewrites := map[string][2]string{
		"traefik.http.middlewares.strapi-auth.plugin.accessproxy.storeURL": {"http://sessionstore:8181", storeURL},
		"traefik.http.services.cms.loadbalancer.server.port":               {"1337", strapiURL.Port()},
		"traefik.http.routers.cms.rule":                                    {"Host(`" + exampleHost + "`)", "Host(`" + testHost + "`)"},
	}
	labelMap := map[string]string{}
	for _, l := range labels {
		kv := strings.SplitN(l, "=", 2)
		if len(kv) != 2 {
			t.Fatalf("examples/docker-compose.yml: label %q is not key=value", l)
		}
		v, err := interpolate(kv[1], vars)
		if err != nil {
			t.Fatalf("examples/docker-compose.yml: label %s: %v", kv[0], err)
		}
		if rw, ok := rewrites[kv[0]]; ok {
			if v != rw[0] {
				t.Fatalf("examples/docker-compose.yml: label %s is %q, the test rewrites %q: update this test", kv[0], v, rw[0])
			}
			v = rw[1]
			delete(rewrites, kv[0])
		}
		labelMap[kv[0]] = v
	}
	if len(rewrites) > 0 {
		t.Fatalf("examples/docker-compose.yml: labels %v are gone: update this test", rewrites)
	}
	if labelMap["traefik.enable"] != "true" {
		t.Fatalf("examples/docker-compose.yml: strapi has no traefik.enable=true (exposedByDefault is false)")
	}
	t.Logf("strapi container labels (%d, verbatim but for the storeURL, the port and the host): %v", len(labelMap), labelKeys(labelMap))

	docker, err := harness.StartFakeDocker(env, []harness.FakeContainer{
		{Name: "strapi", Labels: labelMap, IP: strapiURL.Hostname()},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Traefik's static configuration = the compose file's command flags, with the entry point on a
	// free local port, the Docker provider's endpoint at the fake, and a ping entry point the
	// harness waits on.
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{
		Name: "traefik-docker",
		Static: func(web, ping int) ([]byte, error) {
			static, err := staticFromFlags(command)
			if err != nil {
				return nil, err
			}
			eps, _ := static["entrypoints"].(map[string]any)
			webEP, _ := eps["web"].(map[string]any)
			if webEP == nil || webEP["address"] != ":80" {
				return nil, fmt.Errorf("examples/docker-compose.yml: no --entrypoints.web.address=:80: update this test")
			}
			webEP["address"] = fmt.Sprintf("127.0.0.1:%d", web)
			eps["traefik"] = map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", ping)}
			providers, _ := static["providers"].(map[string]any)
			dockerP, _ := providers["docker"].(map[string]any)
			if dockerP == nil {
				return nil, fmt.Errorf("examples/docker-compose.yml: no --providers.docker: update this test")
			}
			dockerP["endpoint"] = docker.Endpoint()
			static["ping"] = map[string]any{"entryPoint": "traefik"}
			// Traefik's API on the same local entry point, to read back what the provider built.
			static["api"] = map[string]any{"insecure": true, "dashboard": false}
			static["log"] = map[string]any{"level": "INFO", "format": "json", "noColor": true}
			static["global"] = map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false}
			return jsonBytes(static)
		},
		Dynamic:    []byte("{}\n"),
		ReadyHosts: []string{testHost},
	})
	if err != nil {
		t.Fatalf("%v\nfake docker saw: %v", err, docker.Requests())
	}
	checkLogAtEnd(t, tr)
	seen := strings.Join(docker.Requests(), "\n")
	for _, want := range []string{"/_ping", "/v" + harness.FakeDockerAPIVersion + "/containers/json", "/v" + harness.FakeDockerAPIVersion + "/containers/" + strings.Repeat("01", 32) + "/json"} {
		if !strings.Contains(seen, want) {
			t.Fatalf("Traefik's Docker provider never called %s of the fake; it called:\n%s", want, seen)
		}
	}

	// What Traefik built from the labels: the router and the plugin middleware, both from the
	// Docker provider, the middleware's settings those of the labels.
	api := harness.NewClient(fmt.Sprintf("http://127.0.0.1:%d", tr.PingPort))
	router := do(t, api, "GET", "", "/api/http/routers/cms@docker", "", nil)
	expectStatus(t, router, 200, "Traefik API: router cms@docker")
	if rj := router.JSON(); rj["provider"] != "docker" || rj["status"] != "enabled" || fmt.Sprint(rj["middlewares"]) != "[strapi-auth@docker]" || rj["service"] != "cms" {
		t.Fatalf("router cms@docker: %s", router)
	}
	mw := do(t, api, "GET", "", "/api/http/middlewares/strapi-auth@docker", "", nil)
	expectStatus(t, mw, 200, "Traefik API: middleware strapi-auth@docker")
	mj := mw.JSON()
	plugin, _ := get(mj, "plugin", "accessproxy").(map[string]any)
	if mj["provider"] != "docker" || mj["status"] != "enabled" || plugin == nil {
		t.Fatalf("middleware strapi-auth@docker: %s", mw)
	}
	const prefix = "traefik.http.middlewares.strapi-auth.plugin.accessproxy."
	for k, v := range labelMap {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		got := get(plugin, strings.Split(strings.TrimPrefix(k, prefix), ".")...)
		if fmt.Sprint(got) != v && fmt.Sprint(got) != "["+v+"]" {
			t.Errorf("label %s=%s: Traefik's middleware has %v", k, v, got)
		}
	}

	c := harness.NewClient(tr.URL())
	token, r := login(t, c, testHost, "dave", "Dave-passw0rd")
	checkProxyToken(t, token)
	for _, j := range harness.FindJWTs(r.Everything()) {
		if harness.VerifyHS256(j, []byte(st.JWTSecret)) {
			t.Fatalf("the login answer through the Docker-labels router carries Strapi's JWT: %s", r)
		}
	}
	// cookie.enabled=true: the token also comes as an HttpOnly cookie.
	var cookie string
	for _, sc := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "ap_session="+token+";") && strings.Contains(sc, "HttpOnly") {
			cookie = "ap_session=" + token
		}
	}
	if cookie == "" {
		t.Fatalf("cookie.enabled=true from the labels, but the login set no ap_session cookie: %v", r.Header.Values("Set-Cookie"))
	}

	me := do(t, c, "GET", testHost, "/api/users/me", token, nil)
	expectStatus(t, me, 200, "/api/users/me with the proxy token")
	if u := me.JSON(); u == nil || u["username"] != "dave" {
		t.Fatalf("/api/users/me: %s, want dave", me)
	}
	me = do(t, c, "GET", testHost, "/api/users/me", "", nil, "Cookie", cookie)
	expectStatus(t, me, 200, "/api/users/me with the session cookie")

	// A raw Strapi JWT (from a login at Strapi itself) is refused through the router.
	direct := harness.NewClient(st.URL)
	dr := do(t, direct, "POST", "", "/api/auth/local", "", map[string]string{"identifier": "dave", "password": "Dave-passw0rd"})
	expectStatus(t, dr, 200, "direct login at Strapi")
	raw, _ := dr.JSON()["jwt"].(string)
	expectError(t, do(t, c, "GET", testHost, "/api/users/me", raw, nil), 401, "UnauthorizedError", "a raw Strapi JWT through the Docker-labels router")

	// The proxy's own routes answer on the router: the caller's session list.
	expectStatus(t, do(t, c, "GET", testHost, "/api/auth/sessions", token, nil), 200, "the session list")
	// Logout ends the session.
	expectStatus(t, do(t, c, "POST", testHost, "/api/auth/logout", token, nil), 200, "logout")
	expectError(t, do(t, c, "GET", testHost, "/api/users/me", token, nil), 401, "UnauthorizedError", "the token after logout")

	// The provider follows Docker's event stream: the container stops, its router goes; it starts
	// again, the router and its middleware come back and a login works.
	waitUntil(t, 5*time.Second, "Traefik's Docker provider to open /events", func() bool { return docker.Watchers() > 0 })
	gone, ok := docker.Stop("strapi")
	if !ok {
		t.Fatal("fake docker: no strapi container")
	}
	routed := func() bool {
		r, err := c.Do("GET", testHost, "/api/users/me", "", nil)
		return err == nil && (r.Status != 404 || strings.TrimSpace(string(r.Body)) != "404 page not found")
	}
	waitUntil(t, 15*time.Second, "the router to go after the container's die event", func() bool { return !routed() })
	docker.Start(gone)
	waitUntil(t, 15*time.Second, "the router to return after the container's start event", routed)
	token, _ = login(t, c, testHost, "dave", "Dave-passw0rd")
	expectStatus(t, do(t, c, "GET", testHost, "/api/users/me", token, nil), 200, "/api/users/me after the container restarted")
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get walks nested JSON objects.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func labelKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func jsonBytes(v any) ([]byte, error) {
	raw, err := json.MarshalIndent(v, "", "  ")
	return append(raw, '\n'), err
}
