// Package catalog applies the Traefik plugin catalog's rules to the repository, the way the catalog
// and Traefik's plugin loader (pkg/plugins of Traefik v3.6.12) read a plugin: the .traefik.yml
// manifest (gopkg.in/yaml.v3 into the loader's Manifest), go.mod's module path against the
// manifest's import, no dependency the catalog cannot fetch (plugins vendor theirs; this one has
// none), one package named after the import path, only standard-library imports Yaegi provides,
// CreateConfig and New with the loader's signatures, testData decoded by mapstructure as the
// loader does (WeaklyTypedInput, StringToSliceHookFunc(","), field names matched case-insensitively)
// into the CreateConfig of the plugin interpreted by Yaegi v0.16.1, and New called under Yaegi
// within 10 s with the environment's token, password, secret, key and URL variables removed. Plus
// the files a catalog entry shows: LICENSE (Apache-2.0), README.md, CHANGELOG.md, and the tag rule
// (plain vX.Y.Z tags only: the catalog reads the repository's tags as the plugin's versions).
package catalog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"gopkg.in/yaml.v3"
)

// manifest is Traefik's plugins.Manifest (pkg/plugins/types.go of v3.6.12), plus the optional
// images the catalog shows.
type manifest struct {
	DisplayName   string         `yaml:"displayName"`
	Type          string         `yaml:"type"`
	Runtime       string         `yaml:"runtime"`
	WasmPath      string         `yaml:"wasmPath"`
	Import        string         `yaml:"import"`
	BasePkg       string         `yaml:"basePkg"`
	Compatibility string         `yaml:"compatibility"`
	Summary       string         `yaml:"summary"`
	UseUnsafe     bool           `yaml:"useUnsafe"`
	TestData      map[string]any `yaml:"testData"`
	IconPath      string         `yaml:"iconPath"`
	BannerPath    string         `yaml:"bannerPath"`
}

const root = "../../.."

func readManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".traefik.yml"))
	if err != nil {
		t.Fatalf(".traefik.yml: %v", err)
	}
	var m manifest
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt key would be silently ignored by the catalog
	if err := dec.Decode(&m); err != nil {
		t.Fatalf(".traefik.yml: %v", err)
	}
	return m
}

func modulePath(t *testing.T) (string, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var mod string
	var requires []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case strings.HasPrefix(line, "module "):
			mod = strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "module ")), `"`)
		case line == "require (" || line == "replace (":
			inBlock = true
		case inBlock && line == ")":
			inBlock = false
		case inBlock && line != "":
			requires = append(requires, line)
		case strings.HasPrefix(line, "require ") || strings.HasPrefix(line, "replace "):
			requires = append(requires, line)
		}
	}
	if mod == "" {
		t.Fatal("go.mod has no module line")
	}
	return mod, requires
}

func TestManifest(t *testing.T) {
	m := readManifest(t)
	mod, _ := modulePath(t)
	if strings.TrimSpace(m.DisplayName) == "" {
		t.Error(".traefik.yml: displayName is required")
	}
	if m.Type != "middleware" {
		t.Errorf(".traefik.yml: type %q, want middleware", m.Type)
	}
	if m.Runtime != "" && m.Runtime != "yaegi" {
		t.Errorf(".traefik.yml: runtime %q: this is a Yaegi plugin", m.Runtime)
	}
	if m.Import != mod {
		t.Errorf(".traefik.yml: import %q is not go.mod's module path %q", m.Import, mod)
	}
	if s := strings.TrimSpace(m.Summary); s == "" || len(s) > 1000 {
		t.Errorf(".traefik.yml: summary is required (and short): %d characters", len(s))
	}
	if len(m.TestData) == 0 {
		t.Error(".traefik.yml: testData is required (the catalog starts the plugin with it)")
	}
	if m.UseUnsafe {
		t.Error(".traefik.yml: useUnsafe: the plugin must need neither unsafe nor syscall")
	}
	for _, p := range []string{m.IconPath, m.BannerPath} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Errorf(".traefik.yml: %s: %v", p, err)
		}
	}
}

func TestGoMod(t *testing.T) {
	mod, requires := modulePath(t)
	if !strings.HasPrefix(mod, "github.com/") || strings.Count(mod, "/") != 2 {
		t.Errorf("go.mod: module %q: the catalog wants github.com/<owner>/<repo>", mod)
	}
	// The catalog builds the module's zip from the Go module proxy and runs it under Yaegi with no
	// module download: a dependency must be vendored. This plugin has none, and should keep it so.
	if len(requires) > 0 {
		vendored, _ := os.ReadFile(filepath.Join(root, "vendor", "modules.txt"))
		for _, r := range requires {
			if !bytes.Contains(vendored, []byte("# "+strings.Fields(r)[0]+" ")) {
				t.Errorf("go.mod: %q is not vendored (vendor/modules.txt): Yaegi cannot load it", r)
			}
		}
	}
}

// pluginFiles are the files Traefik's loader interprets: the root's non-test Go files.
func pluginFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatal("no Go files at the repository root")
	}
	return out
}

func TestPackageAndSignatures(t *testing.T) {
	m := readManifest(t)
	basePkg := m.BasePkg
	if basePkg == "" { // Traefik's rule (pkg/plugins/middlewareyaegi.go)
		basePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	fset := token.NewFileSet()
	var createConfig, newFn *ast.FuncDecl
	imports := map[string]bool{}
	for _, f := range pluginFiles(t) {
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if file.Name.Name != basePkg {
			t.Errorf("%s: package %s, want %s (the catalog evaluates %s.New)", filepath.Base(f), file.Name.Name, basePkg, basePkg)
		}
		for _, im := range file.Imports {
			imports[strings.Trim(im.Path.Value, `"`)] = true
		}
		full, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range full.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				switch fd.Name.Name {
				case "CreateConfig":
					createConfig = fd
				case "New":
					newFn = fd
				}
			}
		}
	}
	// Only packages Yaegi's stdlib symbols provide (Traefik loads stdlib.Symbols, and unsafe/syscall
	// only with useUnsafe).
	available := map[string]bool{}
	for k := range stdlib.Symbols {
		available[path.Dir(k)] = true
	}
	for im := range imports {
		if strings.HasPrefix(im, m.Import+"/") {
			continue
		}
		if !available[im] {
			t.Errorf("import %q: not in Yaegi v0.16.1's standard library symbols", im)
		}
		if im == "unsafe" || strings.HasPrefix(im, "syscall") {
			t.Errorf("import %q needs useUnsafe", im)
		}
	}
	render := func(e ast.Expr) string {
		var b bytes.Buffer
		_ = printExpr(&b, e)
		return b.String()
	}
	if createConfig == nil {
		t.Fatal("no func CreateConfig()")
	}
	if createConfig.Type.Params.NumFields() != 0 || createConfig.Type.Results.NumFields() != 1 ||
		render(createConfig.Type.Results.List[0].Type) != "*Config" {
		t.Errorf("CreateConfig: want func CreateConfig() *Config")
	}
	if newFn == nil {
		t.Fatal("no func New")
	}
	var params []string
	for _, p := range newFn.Type.Params.List {
		for range max(1, len(p.Names)) {
			params = append(params, render(p.Type))
		}
	}
	var results []string
	for _, r := range newFn.Type.Results.List {
		results = append(results, render(r.Type))
	}
	if got, want := strings.Join(params, ", ")+" -> "+strings.Join(results, ", "), "context.Context, http.Handler, *Config, string -> http.Handler, error"; got != want {
		t.Errorf("New(%s): want New(%s)", got, want)
	}
}

func printExpr(b *bytes.Buffer, e ast.Expr) error {
	switch x := e.(type) {
	case *ast.Ident:
		b.WriteString(x.Name)
	case *ast.StarExpr:
		b.WriteString("*")
		return printExpr(b, x.X)
	case *ast.SelectorExpr:
		if err := printExpr(b, x.X); err != nil {
			return err
		}
		b.WriteString("." + x.Sel.Name)
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

func TestFiles(t *testing.T) {
	lic, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatalf("LICENSE: %v", err)
	}
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "END OF TERMS AND CONDITIONS"} {
		if !bytes.Contains(lic, []byte(want)) {
			t.Errorf("LICENSE: not the Apache License 2.0 text (no %q)", want)
		}
	}
	for _, f := range []string{"README.md", "CHANGELOG.md", "docs/releasing.md"} {
		if st, err := os.Stat(filepath.Join(root, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty", f)
		}
	}
}

var semverTag = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// TestTags: the catalog lists the repository's tags as the plugin's versions and fetches each from
// the module proxy as the root module: every tag must be a plain vX.Y.Z (a sessionstore/v1.0.0 tag
// is a version of a nested module, not of the plugin). docs/releasing.md says how the store's
// binary is versioned instead.
func TestTags(t *testing.T) {
	out, err := exec.Command("git", "-C", root, "tag", "--list").Output()
	if err != nil {
		t.Skipf("git tag --list: %v (not a git checkout)", err)
	}
	n := 0
	for _, tag := range strings.Fields(string(out)) {
		n++
		if !semverTag.MatchString(tag) {
			t.Errorf("tag %q: only plain vX.Y.Z tags belong on this repository (docs/releasing.md)", tag)
		}
	}
	t.Logf("%d tags checked", n)
}

// loadPlugin lays out the plugin as the catalog's module zip holds it (root files, no tests, no
// nested modules) in a GOPATH and imports it into a fresh Yaegi with the stdlib symbols, as
// Traefik's newInterpreter does, with env as its environment.
func loadPlugin(t *testing.T, m manifest, env []string) *interp.Interpreter {
	t.Helper()
	gopath := t.TempDir()
	dst := filepath.Join(gopath, "src", filepath.FromSlash(m.Import))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(pluginFiles(t), filepath.Join(root, "go.mod"), filepath.Join(root, ".traefik.yml")) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	i := interp.New(interp.Options{GoPath: gopath, Env: env})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Eval(`import "` + m.Import + `"`); err != nil {
		t.Fatalf("Yaegi: import %q: %v", m.Import, err)
	}
	return i
}

// scrubbedEnv is the environment without anything that looks like a credential or an address.
func scrubbedEnv() (kept []string, removed []string) {
	sensitive := regexp.MustCompile(`(?i)token|passw|secret|key|url|uri|dsn|credential`)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if sensitive.MatchString(name) {
			removed = append(removed, name)
			continue
		}
		kept = append(kept, kv)
	}
	sort.Strings(removed)
	return kept, removed
}

// decodeConfig is Traefik's yaegiMiddlewareBuilder.createConfig (pkg/plugins/middlewareyaegi.go);
// errorUnused additionally refuses keys that match no field.
func decodeConfig(t *testing.T, i *interp.Interpreter, basePkg string, data map[string]any, errorUnused bool) reflect.Value {
	t.Helper()
	fnCreateConfig, err := i.Eval(basePkg + ".CreateConfig")
	if err != nil {
		t.Fatalf("eval CreateConfig: %v", err)
	}
	results := fnCreateConfig.Call(nil)
	if len(results) != 1 {
		t.Fatalf("CreateConfig returned %d values", len(results))
	}
	vConfig := results[0]
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		ErrorUnused:      errorUnused,
		Result:           vConfig.Interface(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(data); err != nil {
		t.Fatalf("decoding testData into CreateConfig(): %v", err)
	}
	return vConfig
}

func TestTestDataUnderYaegi(t *testing.T) {
	start := time.Now()
	m := readManifest(t)
	basePkg := m.BasePkg
	if basePkg == "" {
		basePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	env, removed := scrubbedEnv()
	t.Logf("environment variables removed: %v", removed)
	for _, name := range removed {
		if v, ok := os.LookupEnv(name); ok {
			_ = os.Unsetenv(name)
			t.Cleanup(func() { _ = os.Setenv(name, v) })
		}
	}
	i := loadPlugin(t, m, env)
	t.Logf("plugin imported under Yaegi in %v", time.Since(start).Round(time.Millisecond))

	cfg := decodeConfig(t, i, basePkg, m.TestData, true)
	// The keys are matched as the loader does, case-insensitively, and values weakly typed: the same
	// testData with every key upper-cased and every value a string (as Docker labels give them)
	// decodes to the same Config.
	shouted := map[string]any{}
	for k, v := range m.TestData {
		shouted[strings.ToUpper(k)] = fmt.Sprint(v)
	}
	if got := decodeConfig(t, i, basePkg, shouted, true); !reflect.DeepEqual(got.Interface(), cfg.Interface()) {
		t.Errorf("testData with upper-cased keys and string values decodes to %+v, want %+v", got.Elem().Interface(), cfg.Elem().Interface())
	}

	fnNew, err := i.Eval(basePkg + ".New")
	if err != nil {
		t.Fatalf("eval New: %v", err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		h   http.Handler
		err error
	}
	done := make(chan result, 1)
	go func() {
		out := fnNew.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), cfg, reflect.ValueOf("catalog-test")})
		var r result
		if e := out[1].Interface(); e != nil {
			r.err, _ = e.(error)
		}
		r.h, _ = out[0].Interface().(http.Handler)
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10*time.Second - time.Since(start)):
		t.Fatalf("New did not return within 10 s of loading")
	}
	if r.err != nil || r.h == nil {
		t.Fatalf("New(testData): %v (handler %v)", r.err, r.h)
	}
	// The handler answers (with no store running a protected call fails closed; a request
	// without credentials to a plain path is passed on).
	rec := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		r.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://cms.example.com/api/articles", nil))
		close(served)
	}()
	select {
	case <-served:
	case <-time.After(10*time.Second - time.Since(start)):
		t.Fatalf("ServeHTTP did not answer within 10 s of loading")
	}
	t.Logf("New + one request under Yaegi: %v (answer %d)", time.Since(start).Round(time.Millisecond), rec.Code)
	if rec.Code == 0 {
		t.Fatal("no answer")
	}
}
