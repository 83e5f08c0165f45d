// Package kubecrd runs examples/kubernetes through the real Traefik binary's Kubernetes CRD provider,
// pointed at a fake Kubernetes API server (e2e/harness/fakekube.go) that serves the example's
// Middleware and IngressRoute verbatim (only the storeURL points at this test's store), the Secret its
// README creates (with generated values) and the Strapi app's Service and EndpointSlice (a fake
// Strapi here). Traefik resolves the urn:k8s:secret: references, builds the plugin middleware and the
// route, and a login through it is swapped for a proxy token that works on a protected call.
package kubecrd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const root = "../../.."

func loadDocs(t *testing.T, files ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join(root, "examples", "kubernetes", name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if v == nil {
				continue
			}
			j, _ := json.Marshal(v)
			var obj map[string]any
			if err := json.Unmarshal(j, &obj); err != nil {
				t.Fatal(err)
			}
			out = append(out, obj)
		}
	}
	return out
}

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

func TestTraefikCRDProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Traefik")
	}
	env := harness.ForTest(t)
	store, err := harness.StartStore(env)
	if err != nil {
		t.Fatal(err)
	}
	const host = "cms.example.com"
	strapi, err := harness.StartFakeStrapi(env, []harness.FakeUser{{ID: 7, Username: "kim", Email: "kim@example.com", Password: "kim-pw-7", Audience: host}})
	if err != nil {
		t.Fatal(err)
	}
	strapiURL, _ := url.Parse(strapi.URL)

	docs := loadDocs(t, "middleware.yaml")
	var middleware, route map[string]any
	for _, d := range docs {
		switch d["kind"] {
		case "Middleware":
			middleware = d
		case "IngressRoute":
			route = d
		}
	}
	if middleware == nil || route == nil {
		t.Fatal("examples/kubernetes/middleware.yaml: want a Middleware and an IngressRoute")
	}
	ns, _ := get(middleware, "metadata", "namespace").(string)
	cfg, _ := get(middleware, "spec", "plugin", "accessproxy").(map[string]any)
	if cfg == nil {
		t.Fatal("Middleware: no spec.plugin.accessproxy")
	}
	// The one rewrite: the store's cluster DNS name → this test's store.
	if u, _ := cfg["storeURL"].(string); !strings.HasPrefix(u, "http://sessionstore.") {
		t.Fatalf("Middleware storeURL %q: the test rewrites http://sessionstore.…: update it", u)
	}
	cfg["storeURL"] = store.URL

	// The Secret as examples/kubernetes/README.md creates it, with generated values; the storeToken
	// is this store's token (the store's Deployment reads the same key).
	secret := harness.NewSecret()
	secretData := map[string]string{
		"secret":        base64.StdEncoding.EncodeToString([]byte(secret)),
		"storeToken":    base64.StdEncoding.EncodeToString([]byte(store.Token)),
		"encryptionKey": base64.StdEncoding.EncodeToString([]byte(store.Key)),
	}
	// The route's backend: the Strapi app's Service and its EndpointSlice (the fake Strapi).
	svcName, _ := get(route, "spec", "routes").([]any)[0].(map[string]any)["services"].([]any)[0].(map[string]any)["name"].(string)
	svcPort := get(route, "spec", "routes").([]any)[0].(map[string]any)["services"].([]any)[0].(map[string]any)["port"]
	objects := []map[string]any{
		middleware, route,
		{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "accessproxy", "namespace": ns}, "type": "Opaque", "data": secretData},
		{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": svcName, "namespace": ns},
			"spec": map[string]any{"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": []any{map[string]any{"name": "http", "port": svcPort, "protocol": "TCP"}}}},
		{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
			"metadata":  map[string]any{"name": svcName + "-abcde", "namespace": ns, "labels": map[string]any{"kubernetes.io/service-name": svcName}},
			"endpoints": []any{map[string]any{"addresses": []any{strapiURL.Hostname()}, "conditions": map[string]any{"ready": true, "serving": true}}},
			"ports":     []any{map[string]any{"name": "http", "port": mustAtoi(t, strapiURL.Port()), "protocol": "TCP"}}},
	}
	kube, err := harness.StartFakeKube(env, objects)
	if err != nil {
		t.Fatal(err)
	}

	entryPoints, _ := get(route, "spec", "entryPoints").([]any)
	if len(entryPoints) != 1 {
		t.Fatalf("IngressRoute entryPoints %v: want one", entryPoints)
	}
	ep := entryPoints[0].(string)
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{
		Name: "traefik-kubecrd",
		Static: func(web, ping int) ([]byte, error) {
			static := map[string]any{
				"global": map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
				// The route's entry point, here plain HTTP on a free local port.
				"entryPoints": map[string]any{
					ep:        map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", web)},
					"traefik": map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", ping)},
				},
				"ping": map[string]any{"entryPoint": "traefik"},
				"api":  map[string]any{"insecure": true, "dashboard": false},
				"log":  map[string]any{"level": "INFO", "format": "json", "noColor": true},
				"providers": map[string]any{"kubernetesCRD": map[string]any{
					"endpoint": kube.URL, "token": kube.Token, "namespaces": []string{ns},
					"disableClusterScopeResources": true,
				}},
				"experimental": map[string]any{"localPlugins": map[string]any{"accessproxy": map[string]any{"moduleName": harness.PluginModule}}},
			}
			return json.MarshalIndent(static, "", "  ")
		},
		Dynamic:    []byte("{}\n"),
		ReadyHosts: []string{host},
	})
	if err != nil {
		t.Fatalf("%v\nfake kube saw:\n%s", err, strings.Join(kube.Requests(), "\n"))
	}
	t.Cleanup(func() {
		if err := tr.CheckLog(); err != nil {
			t.Error(err)
		}
	})

	// Traefik's view: the middleware from the CRD provider, its Secret references resolved.
	api := harness.NewClient(fmt.Sprintf("http://127.0.0.1:%d", tr.PingPort))
	mwName := ns + "-" + get(middleware, "metadata", "name").(string) + "@kubernetescrd"
	r, err := api.Do("GET", "", "/api/http/middlewares/"+mwName, "", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("Traefik API: middleware %s: %v %v", mwName, err, r)
	}
	plugin, _ := get(r.JSON(), "plugin", "accessproxy").(map[string]any)
	if plugin["secret"] != secret || plugin["storeToken"] != store.Token {
		t.Fatalf("middleware %s: the urn:k8s:secret: references were not resolved from the Secret: %v", mwName, plugin)
	}

	c := harness.NewClient(tr.URL())
	lr, err := c.Do("POST", host, "/api/auth/local", "", map[string]string{"identifier": "kim", "password": "kim-pw-7"})
	if err != nil || lr.Status != 200 {
		t.Fatalf("login through the IngressRoute: %v %v", err, lr)
	}
	token, _ := lr.JSON()["jwt"].(string)
	if token == "" || strapi.IssuedTo(token) != "" {
		t.Fatalf("login through the IngressRoute: the client got %q, not a proxy token", token)
	}
	pr, err := c.Do("GET", host, "/api/articles", token, nil)
	if err != nil || pr.Status != 200 {
		t.Fatalf("protected call with the proxy token: %v %v", err, pr)
	}
	var echo harness.Echo
	if err := json.Unmarshal(pr.Body, &echo); err != nil || strapi.IssuedTo(strings.TrimPrefix(echo.Authorization, "Bearer ")) != "kim" {
		t.Fatalf("Strapi got Authorization %q, want kim's Strapi JWT (%v)", echo.Authorization, err)
	}
	// Strapi's own JWT is refused through the route.
	raw := strapi.IssueJWT(harness.FakeUser{ID: 7, Username: "kim"})
	if rr, err := c.Do("GET", host, "/api/articles", raw, nil); err != nil || rr.Status != 401 {
		t.Fatalf("a raw Strapi JWT through the IngressRoute: %v %v, want 401", err, rr)
	}
	t.Logf("CRD provider listed and watched %d resources of the fake API server", len(kube.Requests()))
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMain(m *testing.M) {
	code := m.Run()
	harness.KillAll()
	harness.Cleanup() // the store binary built for the test
	os.Exit(code)
}
