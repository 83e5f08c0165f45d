package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// PluginModule is the plugin's Go module, as Traefik's localPlugins sees it.
const PluginModule = "github.com/strapi-access-proxy/accessproxy"

// Router is one Traefik router: Host(`Host`) → Upstream, through its own accessproxy middleware
// instance when Plugin is not nil (per-host policy = one middleware instance per router).
type Router struct {
	Name     string         // unique; defaults to Host with dots replaced
	Host     string         // e.g. "a.localhost"
	Upstream string         // e.g. "http://127.0.0.1:1337"
	Plugin   map[string]any // accessproxy settings; nil = plain route
	Noop     bool           // behind a no-op Yaegi plugin instead (the benchmark's floor)
}

func (r Router) name() string {
	if r.Name != "" {
		return r.Name
	}
	return strings.NewReplacer(".", "-", "*", "any").Replace(r.Host)
}

// TraefikOptions configure a Traefik process.
type TraefikOptions struct {
	Routers   []Router
	AccessLog bool
	LogLevel  string // default INFO
	WebPort   int    // 0 = a free port
	PingPort  int    // 0 = a free port
	Name      string // process name in logs (default "traefik")
	// Debug serves Traefik's API with /debug/pprof on the ping port (profiling aid for the bench).
	Debug bool

	// For configurations written by hand (the examples): when Static is set it renders the static
	// configuration instead of the generated one (given the two ports), Dynamic replaces the generated
	// dynamic.yml, ReadyHosts are the hosts to wait for, Env is added to Traefik's environment.
	Static     func(webPort, pingPort int) ([]byte, error)
	Dynamic    []byte
	ReadyHosts []string
	Env        []string
}

var (
	traefikBinOnce sync.Once
	traefikBin     string
	traefikBinErr  error
)

// TraefikBinary resolves the pinned Traefik: $ACCESSPROXY_TRAEFIK_BIN or scripts/ensure-traefik.sh
// (which builds it once and caches it).
func TraefikBinary(logW io.Writer) (string, error) {
	traefikBinOnce.Do(func() {
		if b := os.Getenv("ACCESSPROXY_TRAEFIK_BIN"); b != "" {
			traefikBin = b
			return
		}
		traefikBin, traefikBinErr = runScript(logW, "ensure-traefik.sh")
	})
	return traefikBin, traefikBinErr
}

// Traefik is a running Traefik with the plugin loaded as a local plugin.
type Traefik struct {
	WebPort  int
	PingPort int
	Dir      string // working directory (plugins-local/, traefik.yml, dynamic.yml, logs)
	LogPath  string
	Opts     TraefikOptions

	env      *Env
	bin      string
	proc     *Proc
	logStart int64
}

// StartTraefik lays out a working directory, starts Traefik and waits until every router answers
// through its middleware. A plugin that fails to load or to build fails the start with the log.
func StartTraefik(env *Env, opts TraefikOptions) (*Traefik, error) {
	bin, err := TraefikBinary(nil)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "traefik"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "INFO"
	}
	dir, err := os.MkdirTemp(env.Dir, opts.Name+"-")
	if err != nil {
		return nil, err
	}
	t := &Traefik{Dir: dir, Opts: opts, env: env, bin: bin, LogPath: filepath.Join(dir, "traefik.log")}
	if err := t.layoutPlugin(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		t.WebPort, t.PingPort = opts.WebPort, opts.PingPort
		if t.WebPort == 0 {
			if t.WebPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if t.PingPort == 0 {
			if t.PingPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if lastErr = t.writeConfig(); lastErr != nil {
			return nil, lastErr
		}
		if lastErr = t.start(); lastErr == nil {
			return t, nil
		}
		if t.proc == nil || !addrInUse(t.proc.Log()) || (opts.WebPort != 0 && opts.PingPort != 0) {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// layoutPlugin copies the plugin's files from the working tree into plugins-local/src/<module>/.
func (t *Traefik) layoutPlugin() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	dst := filepath.Join(t.Dir, "plugins-local", "src", filepath.FromSlash(PluginModule))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if !(name == "go.mod" || name == ".traefik.yml" || (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"))) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), raw, 0o644); err != nil {
			return err
		}
		n++
	}
	if n < 3 {
		return fmt.Errorf("plugin files not found in %s", root)
	}
	return layoutNoopPlugin(t.Dir)
}

// localPlugins lists the accessproxy plugin and, when a router uses it, the no-op plugin.
func (t *Traefik) localPlugins() map[string]any {
	plugins := map[string]any{"accessproxy": map[string]any{"moduleName": PluginModule}}
	for _, r := range t.Opts.Routers {
		if r.Noop {
			plugins["noop"] = map[string]any{"moduleName": noopModule}
		}
	}
	return plugins
}

// StaticConfigPath and DynamicConfigPath are the files Traefik reads (JSON, which is valid YAML).
func (t *Traefik) StaticConfigPath() string  { return filepath.Join(t.Dir, "traefik.yml") }
func (t *Traefik) DynamicConfigPath() string { return filepath.Join(t.Dir, "dynamic.yml") }

func (t *Traefik) writeConfig() error {
	if t.Opts.Static != nil {
		raw, err := t.Opts.Static(t.WebPort, t.PingPort)
		if err != nil {
			return err
		}
		if err := os.WriteFile(t.StaticConfigPath(), raw, 0o644); err != nil {
			return err
		}
		return os.WriteFile(t.DynamicConfigPath(), t.Opts.Dynamic, 0o644)
	}
	static := map[string]any{
		"global": map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		"entryPoints": map[string]any{
			"web": map[string]any{
				"address":   fmt.Sprintf("127.0.0.1:%d", t.WebPort),
				"transport": map[string]any{"lifeCycle": map[string]any{"graceTimeOut": "1s"}},
			},
			"traefik": map[string]any{
				"address":   fmt.Sprintf("127.0.0.1:%d", t.PingPort),
				"transport": map[string]any{"lifeCycle": map[string]any{"graceTimeOut": "1s"}},
			},
		},
		"ping": map[string]any{"entryPoint": "traefik"},
		"log":  map[string]any{"level": t.Opts.LogLevel, "format": "json", "noColor": true},
		"providers": map[string]any{"file": map[string]any{
			"filename": t.DynamicConfigPath(), "watch": true,
		}},
		"experimental": map[string]any{"localPlugins": t.localPlugins()},
	}
	if t.Opts.Debug {
		static["api"] = map[string]any{"insecure": true, "debug": true, "dashboard": false}
	}
	if t.Opts.AccessLog {
		static["accessLog"] = map[string]any{"filePath": filepath.Join(t.Dir, "access.log"), "format": "json"}
	}
	if err := writeJSON(t.StaticConfigPath(), static); err != nil {
		return err
	}
	return writeJSON(t.DynamicConfigPath(), DynamicConfig(t.Opts.Routers))
}

// DynamicConfig renders routers, one middleware instance per plugin router, one service per router.
func DynamicConfig(routers []Router) map[string]any {
	rs, mws, svcs := map[string]any{}, map[string]any{}, map[string]any{}
	for _, r := range routers {
		n := r.name()
		router := map[string]any{
			"rule":        fmt.Sprintf("Host(`%s`)", r.Host),
			"entryPoints": []string{"web"},
			"service":     "svc-" + n,
		}
		if r.Plugin != nil {
			mws["ap-"+n] = map[string]any{"plugin": map[string]any{"accessproxy": r.Plugin}}
			router["middlewares"] = []string{"ap-" + n}
		}
		if r.Noop {
			mws["noop-"+n] = map[string]any{"plugin": map[string]any{"noop": map[string]any{}}}
			router["middlewares"] = []string{"noop-" + n}
		}
		rs[n] = router
		svcs["svc-"+n] = map[string]any{"loadBalancer": map[string]any{
			"servers": []map[string]any{{"url": r.Upstream}},
		}}
	}
	http := map[string]any{"routers": rs, "services": svcs}
	if len(mws) > 0 {
		http["middlewares"] = mws
	}
	return map[string]any{"http": http}
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (t *Traefik) start() error {
	t.logStart = logSize(t.LogPath) // lines of earlier runs (restart) are not this run's
	p, err := t.env.Start(ProcSpec{
		Name: t.Opts.Name,
		Path: t.bin,
		Args: []string{"--configFile=" + t.StaticConfigPath()},
		Dir:  t.Dir, // local plugins are read from ./plugins-local
		Log:  t.LogPath,
		Env:  t.Opts.Env,
	})
	if err != nil {
		return err
	}
	t.proc = p
	client := &http.Client{Timeout: 2 * time.Second}
	err = waitFor(60*time.Second, 50*time.Millisecond, p, func() (bool, error) {
		if bad := t.badLogLines(true); len(bad) > 0 {
			return false, fmt.Errorf("traefik logged errors while starting:\n%s", strings.Join(bad, "\n"))
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", t.PingPort))
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil {
		err = t.waitRouters(60 * time.Second)
	}
	if err != nil {
		p.Stop(3 * time.Second)
		return fmt.Errorf("traefik: %v\n--- log (%s):\n%s", err, t.LogPath, tailString(p.Log(), 40))
	}
	return nil
}

// waitRouters waits until every router answers with something other than Traefik's own 404
// (a router whose middleware failed to build is dropped and answers exactly that).
func (t *Traefik) waitRouters(timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	pending := map[string]bool{}
	for _, r := range t.Opts.Routers {
		pending[r.Host] = true
	}
	for _, h := range t.Opts.ReadyHosts {
		pending[h] = true
	}
	return waitFor(timeout, 100*time.Millisecond, t.proc, func() (bool, error) {
		if bad := t.badLogLines(true); len(bad) > 0 {
			return false, fmt.Errorf("traefik logged errors while loading the routers:\n%s", strings.Join(bad, "\n"))
		}
		for host := range pending {
			req, _ := http.NewRequest(http.MethodGet, t.URL()+"/__e2e_ready", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound && strings.TrimSpace(string(body)) == "404 page not found" {
				continue
			}
			delete(pending, host)
		}
		if len(pending) > 0 {
			return false, nil
		}
		return true, nil
	})
}

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// badLogLines returns the log lines that say the plugin or a middleware failed: "Plugins are
// disabled", and error-level lines about plugins, middlewares or routers (with strict: any
// error-level line).
func (t *Traefik) badLogLines(strict bool) []string {
	f, err := os.Open(t.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if strict {
		if _, err := f.Seek(t.logStart, io.SeekStart); err != nil {
			return nil
		}
	}
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Plugins are disabled") {
			bad = append(bad, line)
			continue
		}
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			// Traefik's "common" log format: `<time> ERR <message> key=value...`.
			lower := strings.ToLower(line)
			isErr := strings.Contains(line, " ERR ") || strings.Contains(line, " FTL ") || strings.Contains(line, " PNC ")
			if strings.Contains(line, "panic") || strings.Contains(lower, "yaegi") ||
				(isErr && (strict || strings.Contains(lower, "plugin") || strings.Contains(lower, "middleware") || strings.Contains(lower, "router"))) {
				bad = append(bad, line)
			}
			continue
		}
		if _, audit := entry["event"]; audit {
			continue // the plugin's own audit events (denials, store outages) are behaviour, not load errors
		}
		level, _ := entry["level"].(string)
		if level != "error" && level != "fatal" && level != "panic" {
			continue
		}
		lower := strings.ToLower(line)
		if strict || strings.Contains(lower, "plugin") || strings.Contains(lower, "middleware") || strings.Contains(lower, "router") {
			bad = append(bad, line)
		}
	}
	return bad
}

// CheckLog returns an error listing plugin/middleware/router errors logged so far.
func (t *Traefik) CheckLog() error {
	if bad := t.badLogLines(false); len(bad) > 0 {
		return fmt.Errorf("traefik log has plugin/middleware errors:\n%s", strings.Join(bad, "\n"))
	}
	return nil
}

// URL is the web entry point (send requests there with req.Host set to a router's host).
func (t *Traefik) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", t.WebPort) }

// Hosts lists the routers' hosts.
func (t *Traefik) Hosts() []string {
	var hs []string
	for _, r := range t.Opts.Routers {
		hs = append(hs, r.Host)
	}
	sort.Strings(hs)
	return hs
}

// Stop SIGTERMs Traefik.
func (t *Traefik) Stop() { t.proc.Stop(10 * time.Second) }

// Kill SIGKILLs Traefik.
func (t *Traefik) Kill() { t.proc.Kill() }

// Restart stops Traefik and starts it again with the same ports and configuration.
func (t *Traefik) Restart() error {
	if !t.proc.Exited() {
		t.Stop()
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = t.start(); err == nil || !addrInUse(t.proc.Log()) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// Proc is the current process.
func (t *Traefik) Proc() *Proc { return t.proc }
