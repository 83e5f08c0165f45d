package manifests

// examples/kubernetes against the schemas its documents claim, strictly (an unknown field fails, as
// `kubectl apply --validate=strict` would): the Traefik CRDs shipped in the Traefik module the project
// builds (scripts/versions.env), and the Kubernetes OpenAPI v3 schemas of v1 and apps/v1 shipped in
// k8s.io/client-go at the version that Traefik requires (openapi/openapitest/testdata). Then the plugin
// configuration inside the Middleware against the plugin's Config, and the wiring between the files.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	accessproxy "github.com/strapi-access-proxy/accessproxy"
)

const root = "../../.."

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	n    int
	obj  map[string]any
}

func (d doc) String() string {
	return fmt.Sprintf("%s#%d (%s %s)", d.file, d.n, d.obj["kind"], str(d.obj, "metadata", "name"))
}

func loadDocs(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "examples", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/kubernetes/*.yaml (%v)", err)
	}
	var docs []doc
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for n := 1; ; n++ {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", filepath.Base(f), n, err)
			}
			if v == nil {
				continue
			}
			// Through JSON, as kubectl sends it (and so the schema validator sees JSON types).
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s#%d: %v", filepath.Base(f), n, err)
			}
			var obj map[string]any
			if err := json.Unmarshal(j, &obj); err != nil {
				t.Fatalf("%s#%d: not an object: %v", filepath.Base(f), n, err)
			}
			docs = append(docs, doc{file: filepath.Base(f), n: n, obj: obj})
		}
	}
	return docs
}

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

func get(v any, keys ...string) any {
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// moduleDir finds (downloading when needed) a module in the module cache.
func moduleDir(t *testing.T, modVersion string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	_ = json.Unmarshal(out, &info)
	if err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", modVersion, err, info.Error)
	}
	return info.Dir
}

func versionsEnv(t *testing.T, key string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "scripts", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && k == key {
			return v
		}
	}
	t.Fatalf("scripts/versions.env has no %s", key)
	return ""
}

// requiredVersion reads a module's version from a go.mod.
func requiredVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	raw, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s requires no %s", gomod, module)
	}
	return string(m[1])
}

// strict makes a structural schema refuse unknown fields: every object schema with properties and
// no additionalProperties gets additionalProperties: false, unless it keeps unknown fields
// (x-kubernetes-preserve-unknown-fields, as the plugin section of the Middleware CRD does).
func strict(v any) {
	switch x := v.(type) {
	case map[string]any:
		if props, ok := x["properties"].(map[string]any); ok {
			if _, has := x["additionalProperties"]; !has && x["x-kubernetes-preserve-unknown-fields"] != true {
				x["additionalProperties"] = false
			}
			for _, p := range props {
				strict(p)
			}
		}
		for k, c := range x {
			if k != "properties" {
				strict(c)
			}
		}
	case []any:
		for _, c := range x {
			strict(c)
		}
	}
}

type schemas struct {
	byGVK map[string]*jsonschema.Schema // "apiVersion/kind"
	from  map[string]string             // where each came from
}

var (
	schemasOnce sync.Once
	loaded      *schemas
	loadErr     error
)

func loadSchemas(t *testing.T) *schemas {
	t.Helper()
	schemasOnce.Do(func() { loaded, loadErr = buildSchemas(t) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func buildSchemas(t *testing.T) (*schemas, error) {
	traefikVersion := versionsEnv(t, "TRAEFIK_VERSION")
	traefikDir := moduleDir(t, "github.com/traefik/traefik/v3@"+traefikVersion)
	clientGoVersion := requiredVersion(t, filepath.Join(traefikDir, "go.mod"), "k8s.io/client-go")
	clientGoDir := moduleDir(t, "k8s.io/client-go@"+clientGoVersion)

	s := &schemas{byGVK: map[string]*jsonschema.Schema{}, from: map[string]string{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4) // OpenAPI 3.0's schema objects are draft-04 ones, extended

	// Traefik's CRDs: one openAPIV3Schema per served version.
	crdDir := filepath.Join(traefikDir, "docs", "content", "reference", "dynamic-configuration")
	crds, _ := filepath.Glob(filepath.Join(crdDir, "traefik.io_*.yaml"))
	if len(crds) == 0 {
		return nil, fmt.Errorf("no traefik.io_*.yaml CRDs in %s", crdDir)
	}
	for _, f := range crds {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var crd map[string]any
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		j, _ := json.Marshal(crd)
		var crdJSON map[string]any
		_ = json.Unmarshal(j, &crdJSON)
		group, kind := str(crdJSON, "spec", "group"), str(crdJSON, "spec", "names", "kind")
		versions, _ := get(crdJSON, "spec", "versions").([]any)
		for _, v := range versions {
			name := str(v.(map[string]any), "name")
			sch := get(v, "schema", "openAPIV3Schema")
			if sch == nil {
				continue
			}
			strict(sch)
			u := fmt.Sprintf("https://crd.local/%s/%s/%s.json", group, name, kind)
			if err := c.AddResource(u, sch); err != nil {
				return nil, err
			}
			compiled, err := c.Compile(u)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", filepath.Base(f), name, err)
			}
			gvk := group + "/" + name + "/" + kind
			s.byGVK[gvk] = compiled
			s.from[gvk] = "traefik " + traefikVersion + " " + strings.TrimPrefix(f, traefikDir+"/")
		}
	}

	// Kubernetes' own kinds, from the OpenAPI v3 documents client-go ships for its tests.
	testdata := filepath.Join(clientGoDir, "openapi", "openapitest", "testdata")
	for _, name := range []string{"api__v1_openapi.json", "apis__apps__v1_openapi.json"} {
		f := filepath.Join(testdata, name)
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var openapi map[string]any
		if err := json.Unmarshal(raw, &openapi); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		comps, _ := get(openapi, "components", "schemas").(map[string]any)
		if len(comps) == 0 {
			return nil, fmt.Errorf("%s: no components.schemas", name)
		}
		strict(comps)
		u := "https://k8s.local/" + name
		if err := c.AddResource(u, map[string]any{"components": map[string]any{"schemas": comps}}); err != nil {
			return nil, err
		}
		for id, sch := range comps {
			gvks, _ := get(sch, "x-kubernetes-group-version-kind").([]any)
			for _, g := range gvks {
				gm := g.(map[string]any)
				group, version, kind := gm["group"].(string), gm["version"].(string), gm["kind"].(string)
				gvk := strings.TrimPrefix(group+"/"+version+"/"+kind, "/")
				if group == "" {
					gvk = version + "/" + kind
				}
				if _, done := s.byGVK[gvk]; done {
					continue
				}
				// Only the kinds the examples use are compiled (the rest would only cost time).
				if !usedKinds[gvk] {
					continue
				}
				compiled, err := c.Compile(u + "#/components/schemas/" + id)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %v", name, id, err)
				}
				s.byGVK[gvk] = compiled
				s.from[gvk] = "k8s.io/client-go " + clientGoVersion + " openapi/openapitest/testdata/" + name + " " + id
			}
		}
	}
	return s, nil
}

// usedKinds are the Kubernetes kinds the examples may use; another kind fails TestKubernetesSchemas
// until it is added here (its schema must then be in the documents loaded above).
var usedKinds = map[string]bool{
	"v1/Namespace": true, "v1/Service": true, "v1/PersistentVolumeClaim": true, "v1/Secret": true,
	"v1/ConfigMap": true, "v1/ServiceAccount": true, "apps/v1/Deployment": true, "apps/v1/StatefulSet": true,
}

func gvkOf(d doc) string {
	return str(d.obj, "apiVersion") + "/" + str(d.obj, "kind")
}

func TestKubernetesSchemas(t *testing.T) {
	s := loadSchemas(t)
	docs := loadDocs(t)
	kinds := map[string]int{}
	for _, d := range docs {
		gvk := gvkOf(d)
		sch, ok := s.byGVK[gvk]
		if !ok {
			t.Errorf("%s: no schema for %s (known: %v)", d, gvk, sortedKeys(s.byGVK))
			continue
		}
		if err := sch.Validate(any(d.obj)); err != nil {
			t.Errorf("%s against %s:\n%v", d, s.from[gvk], err)
			continue
		}
		if str(d.obj, "metadata", "name") == "" {
			t.Errorf("%s: no metadata.name", d)
		}
		kinds[gvk]++
		t.Logf("%s: valid against %s", d, s.from[gvk])
	}
	for _, want := range []string{"traefik.io/v1alpha1/Middleware", "apps/v1/Deployment", "v1/Service"} {
		if kinds[want] == 0 {
			t.Errorf("examples/kubernetes has no %s", want)
		}
	}
}

// TestStrictSchemasRefuse: the validation is not vacuous: a misspelt field, a wrong type, a
// missing required field and a bad plugin key are refused.
func TestStrictSchemasRefuse(t *testing.T) {
	s := loadSchemas(t)
	cases := []struct {
		gvk  string
		what string
		obj  string
	}{
		{"apps/v1/Deployment", "a misspelt field", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replica":1,"selector":{},"template":{}}}`},
		{"apps/v1/Deployment", "a probe port of the wrong type", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c","readinessProbe":{"httpGet":{"port":true}}}]}}}}`},
		{"v1/Service", "a port without its number", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"name":"http"}]}}`},
		{"traefik.io/v1alpha1/Middleware", "an unknown middleware type", `{"apiVersion":"traefik.io/v1alpha1","kind":"Middleware","metadata":{"name":"x"},"spec":{"plugins":{"accessproxy":{}}}}`},
	}
	for _, c := range cases {
		var obj any
		if err := json.Unmarshal([]byte(c.obj), &obj); err != nil {
			t.Fatal(err)
		}
		if err := s.byGVK[c.gvk].Validate(obj); err == nil {
			t.Errorf("%s with %s: accepted", c.gvk, c.what)
		}
	}
}

func find(docs []doc, gvk string) []doc {
	var out []doc
	for _, d := range docs {
		if gvkOf(d) == gvk {
			out = append(out, d)
		}
	}
	return out
}

// pluginConfigs returns each Middleware's spec.plugin.accessproxy.
func pluginConfigs(t *testing.T, docs []doc) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range find(docs, "traefik.io/v1alpha1/Middleware") {
		plugin, _ := get(d.obj, "spec", "plugin").(map[string]any)
		if plugin == nil {
			continue
		}
		for name := range plugin {
			if name != "accessproxy" {
				t.Errorf("%s: plugin %q: Traefik's static configuration names the plugin accessproxy (README)", d, name)
			}
		}
		cfg, _ := plugin["accessproxy"].(map[string]any)
		if cfg == nil {
			t.Errorf("%s: spec.plugin.accessproxy is not an object", d)
			continue
		}
		out[d.String()] = cfg
	}
	if len(out) == 0 {
		t.Fatal("no Middleware with spec.plugin.accessproxy in examples/kubernetes")
	}
	return out
}

var secretURN = regexp.MustCompile(`^urn:k8s:secret:([a-z0-9.-]+):([A-Za-z0-9._-]+)$`)

// TestMiddlewarePluginConfig: the plugin's settings decode into Config with no unknown key (a key
// Config has no field for would be silently dropped by Traefik), and New accepts them once Traefik
// has replaced the Secret references with values.
func TestMiddlewarePluginConfig(t *testing.T) {
	docs := loadDocs(t)
	for where, cfg := range pluginConfigs(t, docs) {
		raw, _ := json.Marshal(cfg)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		c := accessproxy.CreateConfig()
		if err := dec.Decode(c); err != nil {
			t.Errorf("%s: the plugin config does not decode into accessproxy.Config: %v", where, err)
			continue
		}
		// What Traefik hands New: every urn:k8s:secret: string replaced by the Secret's value.
		resolved := accessproxy.CreateConfig()
		var withValues map[string]any
		_ = json.Unmarshal(raw, &withValues)
		for k, v := range withValues {
			if s, ok := v.(string); ok && strings.HasPrefix(s, "urn:k8s:secret:") {
				if !secretURN.MatchString(s) {
					t.Errorf("%s: %s: malformed secret reference %q (urn:k8s:secret:<name>:<key>)", where, k, s)
				}
				withValues[k] = "generated-" + k + "-" + strings.Repeat("Zq8xK2mP", 6)
			}
		}
		raw2, _ := json.Marshal(withValues)
		if err := json.Unmarshal(raw2, resolved); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		h, err := accessproxy.New(ctx, http.NotFoundHandler(), resolved, "k8s-example")
		cancel()
		if err != nil || h == nil {
			t.Errorf("%s: New refuses the example's settings: %v", where, err)
		}
	}
}

// TestConfigKeysReachableByTraefik: Traefik decodes plugin settings with mapstructure, which matches
// keys to Go field names case-insensitively and ignores json tags: every documented (json) key must
// be its field's name up to case, or Traefik would drop it.
func TestConfigKeysReachableByTraefik(t *testing.T) {
	var walk func(reflect.Type, string)
	n := 0
	walk = func(rt reflect.Type, prefix string) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			n++
			if !strings.EqualFold(tag, f.Name) {
				t.Errorf("Config%s.%s: json key %q is not the field's name up to case: Traefik would not set it", prefix, f.Name, tag)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+"."+f.Name)
			}
		}
	}
	walk(reflect.TypeOf(accessproxy.Config{}), "")
	t.Logf("%d keys", n)
}

// storeFlags are the session store's flag names, from its sources (fs.XxxVar(&v, "name", ...)).
func storeFlags(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "sessionstore", "cmd", "sessionstore", "*.go"))
	re := regexp.MustCompile(`fs\.[A-Za-z0-9]+Var\(&[^,]+,\s*"([a-z0-9-]+)"`)
	flags := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(raw, -1) {
			flags[string(m[1])] = true
		}
	}
	if !flags["token"] || !flags["listen"] {
		t.Fatalf("could not read the store's flags from sessionstore/cmd/sessionstore (found %v)", flags)
	}
	return flags
}

// TestStoreWiring: the files agree with each other and with the store.
func TestStoreWiring(t *testing.T) {
	docs := loadDocs(t)
	readme, err := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{} // secret/key from the README's kubectl create secret
	// The command runs over continued lines (ending in \\) until the first line that does not.
	for _, m := range regexp.MustCompile(`create secret generic ([a-z0-9-]+)((?:[^\n]*\\\n)*[^\n]*)`).FindAllSubmatch(readme, -1) {
		for _, k := range regexp.MustCompile(`--from-literal=([A-Za-z0-9._-]+)=`).FindAllSubmatch(m[2], -1) {
			created[string(m[1])+"/"+string(k[1])] = true
		}
	}
	if len(created) == 0 {
		t.Fatal("examples/kubernetes/README.md: no `kubectl create secret generic` command")
	}

	deps := find(docs, "apps/v1/Deployment")
	svcs := find(docs, "v1/Service")
	if len(deps) != 1 || len(svcs) != 1 {
		t.Fatalf("want one store Deployment and one Service, got %d and %d", len(deps), len(svcs))
	}
	dep, svc := deps[0], svcs[0]
	ns := str(dep.obj, "metadata", "namespace")
	containers, _ := get(dep.obj, "spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("%s: want one container", dep)
	}
	ctr := containers[0].(map[string]any)
	ports := map[string]float64{}
	for _, p := range ctr["ports"].([]any) {
		pm := p.(map[string]any)
		name, _ := pm["name"].(string)
		ports[name] = pm["containerPort"].(float64)
	}
	portOf := func(v any) float64 {
		switch x := v.(type) {
		case float64:
			return x
		case string:
			return ports[x]
		}
		return 0
	}

	// The store's environment: every SESSIONSTORE_ variable is one of its flags; the listen address
	// is the container port; the secrets come from created Secret keys.
	flags := storeFlags(t)
	env := map[string]map[string]any{}
	for _, e := range ctr["env"].([]any) {
		em := e.(map[string]any)
		name := em["name"].(string)
		env[name] = em
		flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "SESSIONSTORE_")), "_", "-")
		if !strings.HasPrefix(name, "SESSIONSTORE_") || !flags[flag] {
			t.Errorf("%s: env %s is no flag of the store (flags: %v)", dep, name, sortedKeys(flags))
		}
		if ref, ok := get(em, "valueFrom", "secretKeyRef").(map[string]any); ok {
			if k := ref["name"].(string) + "/" + ref["key"].(string); !created[k] {
				t.Errorf("%s: env %s reads Secret key %s, which the README does not create (%v)", dep, name, k, sortedKeys(created))
			}
		}
	}
	for _, must := range []string{"SESSIONSTORE_TOKEN", "SESSIONSTORE_ENCRYPTION_KEY", "SESSIONSTORE_LISTEN"} {
		if env[must] == nil {
			t.Errorf("%s: no %s", dep, must)
		}
	}
	for _, secretOnly := range []string{"SESSIONSTORE_TOKEN", "SESSIONSTORE_ENCRYPTION_KEY"} {
		if e := env[secretOnly]; e != nil && e["value"] != nil {
			t.Errorf("%s: %s is a literal value: take it from a Secret", dep, secretOnly)
		}
	}
	listen, _ := env["SESSIONSTORE_LISTEN"]["value"].(string)
	if !strings.HasSuffix(listen, fmt.Sprintf(":%d", int(ports["http"]))) || strings.HasPrefix(listen, "127.") {
		t.Errorf("%s: SESSIONSTORE_LISTEN %q must listen beyond loopback on the container port %v", dep, listen, ports["http"])
	}

	// Probes on /healthz at the container's port; scrape annotations at /metrics on that port.
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		hg, _ := get(ctr, probe, "httpGet").(map[string]any)
		if hg == nil || hg["path"] != "/healthz" || portOf(hg["port"]) != ports["http"] {
			t.Errorf("%s: %s must be httpGet /healthz on the container port, got %v", dep, probe, get(ctr, probe))
		}
	}
	ann, _ := get(dep.obj, "spec", "template", "metadata", "annotations").(map[string]any)
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != fmt.Sprint(int(ports["http"])) {
		t.Errorf("%s: pod annotations %v: want prometheus.io/scrape \"true\", path /metrics, port %d", dep, ann, int(ports["http"]))
	}
	// The Service selects the pods and forwards to the container port.
	sel, _ := get(svc.obj, "spec", "selector").(map[string]any)
	labels, _ := get(dep.obj, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("%s: selector %s=%v does not select the store's pods (%v)", svc, k, v, labels)
		}
	}
	svcPorts, _ := get(svc.obj, "spec", "ports").([]any)
	if len(svcPorts) != 1 {
		t.Fatalf("%s: want one port", svc)
	}
	sp := svcPorts[0].(map[string]any)
	if portOf(sp["targetPort"]) != ports["http"] {
		t.Errorf("%s: targetPort %v is not the container port %v", svc, sp["targetPort"], ports["http"])
	}

	// The Middleware: storeURL is this Service, the Secret references are created keys in the
	// Middleware's namespace, and the plugin's storeToken is the store's token.
	for where, cfg := range pluginConfigs(t, docs) {
		u, err := url.Parse(fmt.Sprint(cfg["storeURL"]))
		if err != nil {
			t.Fatalf("%s: storeURL: %v", where, err)
		}
		if want := fmt.Sprintf("%s.%s.svc.cluster.local:%d", str(svc.obj, "metadata", "name"), str(svc.obj, "metadata", "namespace"), int(sp["port"].(float64))); u.Host != want {
			t.Errorf("%s: storeURL host %q, want the store's Service %q", where, u.Host, want)
		}
		for k, v := range cfg {
			s, _ := v.(string)
			m := secretURN.FindStringSubmatch(s)
			if m == nil {
				continue
			}
			if !created[m[1]+"/"+m[2]] {
				t.Errorf("%s: %s reads Secret key %s/%s, which the README does not create", where, k, m[1], m[2])
			}
		}
		tokenRef := secretURN.FindStringSubmatch(fmt.Sprint(cfg["storeToken"]))
		storeRef, _ := get(env["SESSIONSTORE_TOKEN"], "valueFrom", "secretKeyRef").(map[string]any)
		if tokenRef == nil || storeRef == nil || tokenRef[1] != storeRef["name"] || tokenRef[2] != storeRef["key"] {
			t.Errorf("%s: storeToken %v and the store's SESSIONSTORE_TOKEN %v must read the same Secret key", where, cfg["storeToken"], storeRef)
		}
		for _, secretKey := range []string{"secret", "storeToken"} {
			if !strings.HasPrefix(fmt.Sprint(cfg[secretKey]), "urn:k8s:secret:") {
				t.Errorf("%s: %s must be a urn:k8s:secret: reference, never a literal", where, secretKey)
			}
		}
	}
	for _, d := range docs {
		if got := str(d.obj, "metadata", "namespace"); d.obj["kind"] != "Namespace" && got != ns {
			t.Errorf("%s: namespace %q, want %q like the store", d, got, ns)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestTraefikWiring: the IngressRoute uses the Middleware of these files, and the README's static
// configuration loads the plugin under the name the Middleware uses, from this module.
func TestTraefikWiring(t *testing.T) {
	docs := loadDocs(t)
	middlewares := map[string]bool{}
	for _, d := range find(docs, "traefik.io/v1alpha1/Middleware") {
		middlewares[str(d.obj, "metadata", "namespace")+"/"+str(d.obj, "metadata", "name")] = true
	}
	routes := find(docs, "traefik.io/v1alpha1/IngressRoute")
	if len(routes) == 0 {
		t.Fatal("no IngressRoute in examples/kubernetes")
	}
	for _, d := range routes {
		ns := str(d.obj, "metadata", "namespace")
		rs, _ := get(d.obj, "spec", "routes").([]any)
		for _, r := range rs {
			mws, _ := get(r, "middlewares").([]any)
			if len(mws) == 0 {
				t.Errorf("%s: a route without the plugin's middleware", d)
			}
			for _, m := range mws {
				mns := str(m.(map[string]any), "namespace")
				if mns == "" {
					mns = ns
				}
				if key := mns + "/" + str(m.(map[string]any), "name"); !middlewares[key] {
					t.Errorf("%s: middleware %s is not one of these files (%v)", d, key, sortedKeys(middlewares))
				}
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(gomod)
	m := regexp.MustCompile(`(?m)^\s*plugins:\n\s*([a-z0-9]+):\n\s*moduleName: (\S+)\n\s*version: (v\d+\.\d+\.\d+)`).FindSubmatch(readme)
	if m == nil || module == nil {
		t.Fatal("examples/kubernetes/README.md: no static configuration `plugins: <name>: moduleName: … version: vX.Y.Z`")
	}
	if string(m[1]) != "accessproxy" || string(m[2]) != string(module[1]) {
		t.Errorf("README loads plugin %q from %q; the Middleware uses accessproxy, the module is %s", m[1], m[2], module[1])
	}
}
