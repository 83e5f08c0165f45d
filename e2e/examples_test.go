package e2e

// The repository's examples, run where this machine can: examples/traefik.yml + examples/dynamic.yml
// (file provider, secrets from the environment through Traefik's templating) with the real Traefik.
// The Docker labels example runs against a fake Docker Engine API (docker_provider_test.go); the
// Kubernetes manifests are checked by tools/deploycheck (make deploy_test).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

func TestExampleFileProvider(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	static, err := os.ReadFile(filepath.Join(root, "examples", "traefik.yml"))
	if err != nil {
		t.Fatalf("examples/traefik.yml: %v", err)
	}
	dynamic, err := os.ReadFile(filepath.Join(root, "examples", "dynamic.yml"))
	if err != nil {
		t.Fatalf("examples/dynamic.yml: %v", err)
	}
	env := harness.ForTest(t)
	store, err := harness.StartStore(env)
	if err != nil {
		t.Fatal(err)
	}
	users := []harness.FakeUser{{ID: 11, Username: "ed", Email: "ed@example.com", Password: "ed-pw-11", Audience: "cms.localhost, shop.localhost, weather.localhost"}}
	strapi, err := harness.StartFakeStrapi(env, users)
	if err != nil {
		t.Fatal(err)
	}
	weather, err := harness.StartFakeStrapi(env, nil) // an external API: echoes what it gets
	if err != nil {
		t.Fatal(err)
	}
	apiKey := harness.RandomString(24)
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{
		Static: func(web, ping int) ([]byte, error) {
			// Only the listen addresses change: the example's own ports are not free here.
			out := static
			for _, r := range [][2]string{{`address: ":80"`, fmt.Sprintf(`address: "127.0.0.1:%d"`, web)}, {`address: "127.0.0.1:8082"`, fmt.Sprintf(`address: "127.0.0.1:%d"`, ping)}} {
				if !bytes.Contains(out, []byte(r[0])) {
					return nil, fmt.Errorf("examples/traefik.yml no longer has %s: update this test", r[0])
				}
				out = bytes.Replace(out, []byte(r[0]), []byte(r[1]), 1)
			}
			return out, nil
		},
		Dynamic:    dynamic,
		ReadyHosts: []string{"cms.localhost", "shop.localhost", "weather.localhost"},
		Env: []string{
			"ACCESSPROXY_SECRET=" + harness.NewSecret(),
			"ACCESSPROXY_STORE_URL=" + store.URL,
			"ACCESSPROXY_STORE_TOKEN=" + store.Token,
			"STRAPI_URL=" + strapi.URL,
			"WEATHER_URL=" + weather.URL,
			"WEATHER_API_KEY=" + apiKey,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := harness.NewClient(tr.URL())

	token, _ := login(t, c, "cms.localhost", "ed", "ed-pw-11")
	checkProxyToken(t, token)
	for _, host := range []string{"cms.localhost", "shop.localhost"} {
		r := do(t, c, "GET", host, "/api/articles", token, nil)
		expectStatus(t, r, 200, host+" with the token")
		e := echoOf(t, r)
		if strapi.IssuedTo(strings.TrimPrefix(e.Authorization, "Bearer ")) != "ed" {
			t.Fatalf("%s forwarded Authorization %q, want ed's Strapi JWT", host, e.Authorization)
		}
		if _, ok := e.Headers["X-Api-Key"]; ok {
			t.Fatalf("%s: the weather API key leaked to Strapi", host)
		}
	}
	// weather: requireAuth, and the API key added to authenticated requests only.
	n := weather.Received()
	expectError(t, do(t, c, "GET", "weather.localhost", "/forecast", "", nil), 401, "UnauthorizedError", "weather without a token")
	if weather.Received() != n {
		t.Fatalf("an anonymous request reached the weather API")
	}
	r := do(t, c, "GET", "weather.localhost", "/forecast", token, nil)
	expectStatus(t, r, 200, "weather with the token")
	if e := echoOf(t, r); e.Headers["X-Api-Key"] != apiKey || e.Path != "/forecast" {
		t.Fatalf("weather API got headers %v, want X-Api-Key", e.Headers)
	}
	if err := tr.CheckLog(); err != nil {
		t.Fatal(err)
	}
}
