package e2e

// The operations kit of examples/: the Grafana dashboard against a running store's /metrics, the
// hardened systemd unit (its directives, and systemd-analyze where the machine has it), and the
// store's Dockerfile build command (static binary that serves /healthz).

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// ---- Grafana ----

// scrape reads a Prometheus text exposition: sample name → the label names seen on it.
func scrape(t *testing.T, url string) map[string]map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	out := map[string]map[string]bool{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sample.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]bool{}
		}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			out[m[1]][l[1]] = true
		}
	}
	return out
}

// promqlRefs returns the metric names a PromQL expression reads and, per metric, the label names
// its selectors match on, plus the label names of by/without/on/ignoring clauses.
func promqlRefs(expr string) (metrics map[string][]string, grouping []string) {
	metrics = map[string][]string{}
	e := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(expr, `""`) // string literals
	e = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(e, "")              // ranges [5m], [$__rate_interval]
	for _, m := range regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`).FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouping = append(grouping, l)
			}
		}
	}
	e = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(e, " ")
	sel := regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	for _, m := range sel.FindAllStringSubmatch(e, -1) {
		for _, l := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`).FindAllStringSubmatch(m[2], -1) {
			metrics[m[1]] = append(metrics[m[1]], l[1])
		}
		if metrics[m[1]] == nil {
			metrics[m[1]] = []string{}
		}
	}
	e = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(e, " ")
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
	for _, m := range regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?`).FindAllStringSubmatch(e, -1) {
		if m[2] == "(" || keywords[strings.ToLower(m[1])] {
			continue // a function or aggregation, or an operator keyword
		}
		if _, ok := metrics[m[1]]; !ok {
			metrics[m[1]] = []string{}
		}
	}
	return metrics, grouping
}

type grafanaPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	GridPos    *map[string]int `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func TestGrafanaDashboardMetrics(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "examples", "grafana", "sessionstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string         `json:"title"`
		UID        string         `json:"uid"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("examples/grafana/sessionstore.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Fatal("dashboard: title and uid are required")
	}

	env := harness.ForTest(t)
	store, err := harness.StartStore(env)
	if err != nil {
		t.Fatal(err)
	}
	// Labelled series appear once observed: one authenticated call and one refused one.
	c := harness.NewClient(store.URL)
	for _, tok := range []string{store.Token, "wrong-token"} {
		if _, err := c.Do("GET", "", "/v1/sessions/"+strings.Repeat("A", 43), tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	exposed := scrape(t, store.URL+"/metrics")
	// Prometheus adds the target labels to every series it scrapes.
	targetLabels := map[string]bool{"job": true, "instance": true}

	var exprs []string
	ids := map[int]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" || p.GridPos == nil {
				t.Errorf("panel %d: title and gridPos are required", p.ID)
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource must be the Prometheus ${datasource} variable", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no query", p.Title)
				}
			}
			for _, tg := range p.Targets {
				if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: a target without refId or expr", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			if s, _ := q["query"].(string); s != "" {
				// label_values(metric{…}, label)
				if m := regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_]+)\)$`).FindStringSubmatch(s); m != nil {
					exprs = append(exprs, m[1])
					if !targetLabels[m[2]] {
						t.Errorf("variable %s: label %q", v.Name, m[2])
					}
				}
			}
		}
	}

	seen := map[string]bool{}
	for _, expr := range exprs {
		metrics, grouping := promqlRefs(expr)
		if len(metrics) == 0 {
			t.Errorf("query %q reads no metric", expr)
		}
		labelsHere := map[string]bool{}
		for name, labels := range metrics {
			seen[name] = true
			have, ok := exposed[name]
			if !ok {
				t.Errorf("query %q: metric %s is not in the store's /metrics", expr, name)
				continue
			}
			for l := range have {
				labelsHere[l] = true
			}
			for _, l := range labels {
				if !have[l] && !targetLabels[l] {
					t.Errorf("query %q: %s has no label %q (it has %v)", expr, name, l, sortedSet(have))
				}
			}
		}
		for _, l := range grouping {
			if !labelsHere[l] && !targetLabels[l] && l != "le" {
				t.Errorf("query %q: groups by %q, which none of its metrics has", expr, l)
			}
		}
	}
	// Store metrics the dashboard does not chart are listed (not failed: a new metric added with
	// the store's own change should not break its commit; chart it here when it matters).
	var uncharted []string
	for name := range exposed {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "sessionstore_") && !seen[name] && !seen[base+"_bucket"] && !seen[base+"_sum"] && !seen[base+"_count"] {
			uncharted = append(uncharted, name)
		}
	}
	sort.Strings(uncharted)
	t.Logf("%d queries, %d distinct metrics checked against a running store's /metrics; store metrics not charted: %v", len(exprs), len(seen), uncharted)
}

func sortedSet(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ---- systemd ----

// unitDirectives parses a systemd unit: section → directive → values (in order; a directive may repeat).
func unitDirectives(t *testing.T, raw []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if out[section] == nil {
				out[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("unit: line %q is neither a section nor Key=Value", line)
		}
		out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	unitPath := filepath.Join(root, "examples", "systemd", "sessionstore.service")
	raw, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	u := unitDirectives(t, raw)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("unit: want [Unit], [Service] and [Install], got %v", sortedKeys(u))
	}
	last := func(k string) string {
		vs := svc[k]
		if len(vs) == 0 {
			return ""
		}
		return vs[len(vs)-1]
	}
	// The hardening the unit promises; each one checked, not just present.
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "PrivateUsers": "yes", "ProtectKernelTunables": "yes",
		"ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
		"ProtectClock": "yes", "ProtectHostname": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
		"RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
		"SystemCallArchitectures": "native", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"UMask": "0077", "StateDirectory": "accessproxy", "ProtectProc": "invisible",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	}
	for k, v := range want {
		if _, ok := svc[k]; !ok {
			t.Errorf("[Service] %s= is missing (want %q)", k, v)
		} else if got := last(k); got != v {
			t.Errorf("[Service] %s=%s, want %q", k, got, v)
		}
	}
	if f := strings.Join(svc["SystemCallFilter"], " | "); !strings.Contains(f, "@system-service") || !strings.Contains(f, "~@privileged") {
		t.Errorf("[Service] SystemCallFilter %q: want @system-service and ~@privileged", f)
	}
	// The store's settings: every SESSIONSTORE_ variable names a flag, the bolt file is in the state
	// directory, the listen address is loopback, and the secrets come from a file, not the unit.
	env := map[string]string{}
	for _, e := range svc["Environment"] {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
	}
	for _, secret := range []string{"SESSIONSTORE_TOKEN", "SESSIONSTORE_ENCRYPTION_KEY"} {
		if _, ok := env[secret]; ok {
			t.Errorf("[Service] Environment sets %s: secrets belong in the EnvironmentFile (mode 0600)", secret)
		}
	}
	if len(svc["EnvironmentFile"]) == 0 {
		t.Error("[Service] no EnvironmentFile for the secrets")
	}
	if !strings.HasPrefix(env["SESSIONSTORE_BOLT_PATH"], "/var/lib/"+last("StateDirectory")+"/") {
		t.Errorf("SESSIONSTORE_BOLT_PATH %q is outside the StateDirectory (ProtectSystem=strict makes the rest read-only)", env["SESSIONSTORE_BOLT_PATH"])
	}
	if !strings.HasPrefix(env["SESSIONSTORE_LISTEN"], "127.0.0.1:") {
		t.Errorf("SESSIONSTORE_LISTEN %q: keep the store on loopback next to Traefik", env["SESSIONSTORE_LISTEN"])
	}
	bin, err := harness.StoreBinary()
	if err != nil {
		t.Fatal(err)
	}
	help, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	for k := range env {
		flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "SESSIONSTORE_")), "_", "-")
		if !strings.HasPrefix(k, "SESSIONSTORE_") || !regexp.MustCompile(`(?m)^\s+-`+regexp.QuoteMeta(flag)+`\b`).Match(help) {
			t.Errorf("Environment %s is not a flag of the store (sessionstore serve --help)", k)
		}
	}
	exe := strings.Fields(last("ExecStart"))
	if len(exe) == 0 || !filepath.IsAbs(exe[0]) {
		t.Fatalf("ExecStart %q: want an absolute path", last("ExecStart"))
	}
	// A running store with the unit's own settings (the secrets and the paths made local) must start:
	// the unit's environment is one the store accepts.
	dir := t.TempDir()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmdEnv := []string{"SESSIONSTORE_TOKEN=" + harness.RandomString(32), "SESSIONSTORE_ENCRYPTION_KEY=" + harness.NewStoreKey()}
	for k, v := range env {
		switch k {
		case "SESSIONSTORE_BOLT_PATH":
			v = filepath.Join(dir, filepath.Base(v))
		case "SESSIONSTORE_LISTEN":
			v = fmt.Sprintf("127.0.0.1:%d", port)
		}
		cmdEnv = append(cmdEnv, k+"="+v)
	}
	checkServes(t, bin, cmdEnv, port)

	// systemd's own checks, where the machine has systemd-analyze: the unit with ExecStart pointing
	// at the store just built (verify wants an executable there) must verify cleanly, and its
	// exposure score must stay "OK" (at most 2.0 of 10).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze not installed (apt-get install systemd): skipped verify and security, the directives above are still checked")
		return
	}
	vdir := t.TempDir()
	local := bytes.Replace(raw, []byte("ExecStart="+exe[0]), []byte("ExecStart="+bin), 1)
	vunit := filepath.Join(vdir, "sessionstore.service")
	if err := os.WriteFile(vunit, local, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", vunit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", vunit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for sessionstore.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Logf("systemd-analyze security --offline unavailable here (%v): %s", err, lastLines(out, 3))
		return
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	if score > 2.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.0:\n%s", score, out)
	}
	v, _ := exec.Command(analyze, "--version").Output()
	version, _, _ := strings.Cut(string(v), "\n")
	t.Logf("systemd-analyze verify clean, security exposure %.1f of 10 (%s)", score, version)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkServes starts a store binary with env and waits for /healthz, then stops it.
func checkServes(t *testing.T, bin string, env []string, port int) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = env
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve /healthz within 10 s: %v\n%s", bin, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- the store's Dockerfile ----

func TestStoreDockerfileStaticBuild(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "sessionstore", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// The build stage's go build command, exactly as the Dockerfile runs it.
	var build, entry, fromBuild, fromRun, user string
	for _, line := range strings.Split(string(dockerfile), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build"):
			build = strings.TrimSpace(strings.SplitN(strings.TrimPrefix(l, "RUN "), "&&", 2)[0])
		case strings.HasPrefix(l, "ENTRYPOINT "):
			entry = l
		case strings.HasPrefix(l, "FROM ") && fromBuild == "":
			fromBuild = l
		case strings.HasPrefix(l, "FROM "):
			fromRun = l
		case strings.HasPrefix(l, "USER "):
			user = strings.TrimSpace(strings.TrimPrefix(l, "USER "))
		}
	}
	m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build)
	if build == "" || m == nil || !strings.HasPrefix(build, "CGO_ENABLED=0 ") {
		t.Fatalf("sessionstore/Dockerfile: no `RUN CGO_ENABLED=0 go build ... -o <path>` line (got %q)", build)
	}
	if !strings.Contains(entry, `"`+m[1]+`"`) {
		t.Errorf("ENTRYPOINT %q does not run the built %s", entry, m[1])
	}
	if !strings.Contains(fromRun, "distroless/static") || user == "" || user == "root" {
		t.Errorf("runtime stage %q as user %q: want distroless/static (no libc: the binary must be static) and a non-root user", fromRun, user)
	}
	// The builder's Go is the one go.mod asks for.
	gomod, _ := os.ReadFile(filepath.Join(root, "sessionstore", "go.mod"))
	gov := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if gov == nil || !strings.Contains(fromBuild, "golang:"+string(gov[1])) {
		t.Errorf("build stage %q: want golang:%s (sessionstore/go.mod)", fromBuild, gov[1])
	}

	out := filepath.Join(t.TempDir(), "sessionstore")
	cmdline := strings.Replace(build, "-o "+m[1], "-o "+out, 1)
	start := time.Now()
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = filepath.Join(root, "sessionstore") // the image's build context
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	t.Logf("%s: built in %v", cmdline, time.Since(start).Round(time.Millisecond))

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: dynamically linked, it cannot run on distroless/static", out)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", out, libs)
	}
	if fileBin, err := exec.LookPath("file"); err == nil {
		desc, _ := exec.Command(fileBin, out).Output()
		if !bytes.Contains(desc, []byte("statically linked")) {
			t.Errorf("file(1): %s", desc)
		}
		t.Logf("file(1): %s", bytes.TrimSpace(bytes.TrimPrefix(desc, []byte(out+":"))))
	}
	// And it is the store: it serves /healthz with the image's environment.
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	checkServes(t, out, []string{
		fmt.Sprintf("SESSIONSTORE_LISTEN=127.0.0.1:%d", port),
		"SESSIONSTORE_BOLT_PATH=" + filepath.Join(t.TempDir(), "sessions.db"),
		"SESSIONSTORE_TOKEN=" + harness.RandomString(32),
		"SESSIONSTORE_ENCRYPTION_KEY=" + harness.NewStoreKey(),
	}, port)
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
