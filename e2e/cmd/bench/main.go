// Command bench measures what the accessproxy plugin costs inside the real Traefik: one Traefik,
// routers to the same tiny upstream, one plain and one behind the plugin with a valid proxy token
// (logged in once through the plugin, cache warmed), plus the plugin without a token for reference.
// wrk runs on loopback against each, alternating twice, and the better run of each counts. The result is printed and
// written to the "## Plugin through real Traefik (wrk)" section of docs/benchmarks.md.
//
// Then the many-sessions measurement (issue 14, many.go): N live sessions made by real logins
// through the plugin, wrk cycling through their N tokens, for each N of -sessions; written to
// "## Many sessions (issue 14)". -many=false skips it, -only-many skips the first part.
//
//	scripts/bench.sh [-d 10s] [-c 32] [-t 2] [-rounds 5] [-no-write]
//	                 [-many=true] [-only-many] [-sessions 1,1000,10000,100000] [-many-d 6s] [-many-rounds 2]
//	                 [-login-c 32] [-direct-create 5000] [-store-bench=true]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

type result struct {
	rps      float64
	p50, p99 time.Duration
	requests int64   // requests completed
	secs     float64 // the run's duration as wrk reports it
	raw      string
}

type options struct {
	dur                    string
	conns, threads, rounds int
	write                  bool
	main                   bool // the plain/plugin/pass-through/no-op part
	many                   *manyOpts
	storeBench             bool
	backend                string // the sessionstore's: "bolt" or "postgres"
}

func main() {
	dur := flag.String("d", "10s", "wrk duration per run")
	conns := flag.Int("c", 32, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads")
	rounds := flag.Int("rounds", 5, "plain/plugin alternations (the ratio is the median of the rounds)")
	noWrite := flag.Bool("no-write", false, "do not update docs/benchmarks.md")
	many := flag.Bool("many", true, "run the many-sessions measurement (issue 14)")
	onlyMany := flag.Bool("only-many", false, "run only the many-sessions measurement")
	sessions := flag.String("sessions", "1,1000,10000,100000", "many sessions: the session counts N (comma-separated; 10k, 1M are fine)")
	manyDur := flag.String("many-d", "", "many sessions: wrk duration per run (default: -d, at most 6s)")
	flag.StringVar(&manyRevalidateEvery, "many-revalidate", "30m", "many sessions: the plugin route's revalidateEvery (longer than the run: the table measures the cache; revalidation costs one Strapi call per session per interval on its own)")
	manyRounds := flag.Int("many-rounds", 0, "many sessions: plain/plugin alternations per N (default: -rounds, at most 2)")
	loginC := flag.Int("login-c", 32, "many sessions: concurrent login clients")
	directCreate := flag.Int("direct-create", 5000, "many sessions: sessions created straight in the store after the 10k and last steps (0: none)")
	backend := flag.String("backend", "bolt", "the sessionstore's backend: bolt, or postgres (a throwaway PostgreSQL 15 started here)")
	storeBench := flag.Bool("store-bench", true, "many sessions: also run sessionstore's BenchmarkWrk (GET/touch at 10k and 1M sessions)")
	flag.Parse()
	o := options{dur: *dur, conns: *conns, threads: *threads, rounds: *rounds, write: !*noWrite, main: !*onlyMany, backend: *backend}
	if *many || *onlyMany {
		sizes, err := parseSessions(*sessions)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(2)
		}
		md := *manyDur
		if md == "" {
			md = *dur
			if d, err := time.ParseDuration(*dur); err == nil && d > 6*time.Second {
				md = "6s"
			}
		}
		mr := *manyRounds
		if mr <= 0 {
			mr = min(*rounds, 2)
		}
		o.many = &manyOpts{sizes: sizes, dur: md, conns: *conns, threads: *threads, rounds: mr, loginWorkers: *loginC, directCreate: *directCreate}
		o.storeBench = *storeBench
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		harness.KillAll()
		os.Exit(1)
	}
}

func run(o options) error {
	dur, conns, threads, rounds, write := o.dur, o.conns, o.threads, o.rounds, o.write
	t0 := time.Now()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return fmt.Errorf("wrk not found (scripts/bench.sh installs it): %v", err)
	}
	loadAvg := "?"
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadAvg = strings.Join(strings.Fields(string(raw))[:3], " ")
	}
	dir, err := os.MkdirTemp("", "accessproxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env, err := harness.NewEnv(dir, nil)
	if err != nil {
		return err
	}
	defer harness.Cleanup()
	defer env.Close()

	store, err := startBenchStore(env, o.backend)
	if err != nil {
		return err
	}
	users := []harness.FakeUser{{ID: 1, Username: "bench", Email: "bench@example.com", Password: "bench-pw-1", Audience: "plugin.localhost"}}
	if o.many != nil {
		users = append(users, manyUsersList()...)
	}
	fake, err := harness.StartFakeStrapi(env, users)
	if err != nil {
		return err
	}
	// The upstream of both routes: logins go to the fake Strapi, everything else gets the same small
	// 200, so the two routes differ only by the plugin.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	okBody := []byte(`{"data":{"id":1,"title":"hello"}}`)
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/auth/local" || r.URL.Path == "/api/users/me" {
			fake.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/check" { // what the plugin forwarded
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(r.Header.Get("Authorization")))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(okBody)))
		_, _ = w.Write(okBody)
	})}
	go func() { _ = upstream.Serve(ln) }()
	defer upstream.Close()
	upURL := "http://" + ln.Addr().String()
	secret := harness.NewSecret()
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	tree := treeID(root) // what Traefik is about to copy
	routers := []harness.Router{
		{Host: "plain.localhost", Upstream: upURL},
		{Host: "plugin.localhost", Upstream: upURL, Plugin: harness.PluginConfig(store, secret, nil)},
		// The same middleware settings, used without a token: what the plugin costs when it only
		// passes a request through (Yaegi's per-request overhead, no session work).
		{Host: "anon.localhost", Upstream: upURL, Plugin: harness.PluginConfig(store, secret, nil)},
		// A plugin that only calls next: the floor any Yaegi plugin sits on.
		{Host: "noop.localhost", Upstream: upURL, Noop: true},
	}
	if o.many != nil {
		// The many-sessions route: its own middleware instance (own cache), defaults but for the
		// login rate limit, which 100 k logins from 127.0.0.1 in two minutes would exceed.
		routers = append(routers, harness.Router{Host: manyHost, Upstream: upURL,
			Plugin: harness.PluginConfig(store, secret, map[string]any{"loginRateLimit": "100000000/m", "revalidateEvery": manyRevalidateEvery})})
	}
	// ACCESSPROXY_BENCH_PPROF=<dir>: Traefik's pprof on, and a CPU profile of each N's last plugin run.
	// ACCESSPROXY_BENCH_TRAEFIK_ENV="K=V …": more environment for Traefik (e.g. GOGC=200, to see the GC's share).
	tr, err := harness.StartTraefik(env, harness.TraefikOptions{LogLevel: "ERROR", Routers: routers, Debug: os.Getenv("ACCESSPROXY_BENCH_PPROF") != "",
		Env: strings.Fields(os.Getenv("ACCESSPROXY_BENCH_TRAEFIK_ENV"))})
	if err != nil {
		return err
	}
	version := traefikVersion()
	if !o.main {
		return runManyPart(o, wrk, tr, store, dir, root, tree, version, loadAvg, t0)
	}
	c := harness.NewClient(tr.URL())
	r, err := c.Do("POST", "plugin.localhost", "/api/auth/local", "", map[string]string{"identifier": "bench", "password": "bench-pw-1"})
	if err != nil {
		return err
	}
	var lb struct {
		JWT string `json:"jwt"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &lb) != nil || lb.JWT == "" {
		return fmt.Errorf("login through the plugin: %s", r)
	}
	token := lb.JWT
	r, err = c.Do("GET", "plugin.localhost", "/check", token, nil)
	if err != nil || r.Status != 200 || fake.IssuedTo(strings.TrimPrefix(string(r.Body), "Bearer ")) != "bench" {
		return fmt.Errorf("plugin route did not forward the Strapi JWT: %v %v", r, err)
	}
	// Both routes answer 200; warm the plugin's cache and the connections.
	for i := 0; i < 200; i++ {
		r, err := c.Do("GET", "plugin.localhost", "/api/articles", token, nil)
		if err != nil || r.Status != 200 {
			return fmt.Errorf("plugin route: %v %v", r, err)
		}
		if r, err = c.Do("GET", "plain.localhost", "/api/articles", token, nil); err != nil || r.Status != 200 {
			return fmt.Errorf("plain route: %v %v", r, err)
		}
	}
	url := tr.URL() + "/api/articles"
	wrkRun := func(host string) (result, error) {
		// Both send the same Authorization header (the plain route ignores it): same bytes on the wire.
		args := []string{fmt.Sprintf("-t%d", threads), fmt.Sprintf("-c%d", conns), "-d" + dur, "--latency", "-H", "Host: " + host}
		if host != "anon.localhost" {
			args = append(args, "-H", "Authorization: Bearer "+token)
		}
		args = append(args, url)
		out, err := exec.Command(wrk, args...).CombinedOutput()
		if err != nil {
			return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
		}
		return parseWrk(string(out))
	}
	// Short warm-up runs, not counted.
	for _, h := range []string{"plain.localhost", "plugin.localhost"} {
		if _, err := exec.Command(wrk, "-t1", "-c8", "-d2s", "-H", "Host: "+h, "-H", "Authorization: Bearer "+token, url).CombinedOutput(); err != nil {
			return err
		}
	}
	var bestPlain, bestPlugin, bestAnon, bestNoop result
	// Per-round ratios: plain and plugin run back to back, so a round's ratio is less exposed to
	// the machine's drift than the ratio of two bests taken at different times.
	var roundRatios, roundNoop []float64
	for i := 0; i < rounds; i++ {
		p, err := wrkRun("plain.localhost")
		if err != nil {
			return err
		}
		fmt.Printf("round %d plain:  %8.0f req/s  p50 %-8v p99 %v\n", i+1, p.rps, p.p50, p.p99)
		q, err := wrkRun("plugin.localhost")
		if err != nil {
			return err
		}
		fmt.Printf("round %d plugin: %8.0f req/s  p50 %-8v p99 %v\n", i+1, q.rps, q.p50, q.p99)
		a, err := wrkRun("anon.localhost")
		if err != nil {
			return err
		}
		fmt.Printf("round %d plugin, no token (pass-through): %8.0f req/s  p50 %-8v p99 %v\n", i+1, a.rps, a.p50, a.p99)
		if a.rps > bestAnon.rps {
			bestAnon = a
		}
		z, err := wrkRun("noop.localhost")
		if err != nil {
			return err
		}
		fmt.Printf("round %d no-op Yaegi plugin: %8.0f req/s  p50 %-8v p99 %v\n", i+1, z.rps, z.p50, z.p99)
		if z.rps > bestNoop.rps {
			bestNoop = z
		}
		roundRatios = append(roundRatios, q.rps/p.rps)
		roundNoop = append(roundNoop, z.rps/p.rps)
		if p.rps > bestPlain.rps {
			bestPlain = p
		}
		if q.rps > bestPlugin.rps {
			bestPlugin = q
		}
	}
	// A wrk run with non-2xx answers would measure errors, not the plugin.
	for _, res := range []result{bestPlain, bestPlugin, bestAnon, bestNoop} {
		if strings.Contains(res.raw, "Non-2xx") {
			return fmt.Errorf("wrk saw non-2xx answers:\n%s", res.raw)
		}
	}
	if err := tr.CheckLog(); err != nil {
		return err
	}
	ratio := median(roundRatios)
	fmt.Printf("\nbest plain:  %8.0f req/s  p50 %v  p99 %v\n", bestPlain.rps, bestPlain.p50, bestPlain.p99)
	fmt.Printf("best plugin: %8.0f req/s  p50 %v  p99 %v\n", bestPlugin.rps, bestPlugin.p50, bestPlugin.p99)
	verdict := "meets"
	if ratio < 0.85 {
		verdict = "BELOW"
	}
	fmt.Printf("best plugin, no token: %8.0f req/s  p50 %v  p99 %v (pass-through: %.3f of plain)\n", bestAnon.rps, bestAnon.p50, bestAnon.p99, bestAnon.rps/bestPlain.rps)
	fmt.Printf("best no-op Yaegi plugin: %8.0f req/s\n", bestNoop.rps)
	fmt.Printf("per-round plugin/plain: %v; no-op/plain: %v\n", fmtRatios(roundRatios), fmtRatios(roundNoop))
	fmt.Printf("plugin/plain throughput (median of rounds): %.3f (%s the 0.85 target); no-op plugin/plain: %.3f\n", ratio, verdict, median(roundNoop))
	if write {
		if err := writeMainSection(root, version, dur, conns, threads, rounds, loadAvg, ratio, roundRatios, roundNoop, bestPlain, bestPlugin, bestAnon, bestNoop); err != nil {
			return err
		}
	}
	if o.many == nil {
		fmt.Printf("total run time %v\n", time.Since(t0).Round(time.Second))
		return nil
	}
	return runManyPart(o, wrk, tr, store, dir, root, tree, version, loadAvg, t0)
}

// runManyPart runs the many-sessions steps and sessionstore's BenchmarkWrk, prints the section
// and writes it.
func runManyPart(o options, wrk string, tr *harness.Traefik, store *harness.Store, dir, root, tree, version, loadAvg string, t0 time.Time) error {
	fmt.Printf("\nmany sessions: N = %s, wrk -t%d -c%d -d%s, %d rounds per N\n", joinInts(o.many.sizes), o.many.threads, o.many.conns, o.many.dur, o.many.rounds)
	m, err := runMany(wrk, tr, store, *o.many, dir)
	if err != nil {
		return err
	}
	if err := tr.CheckLog(); err != nil {
		return err
	}
	treeEnd := treeID(root)
	var storeRows []storeBenchRow
	var storeErr error
	var storeTime time.Duration
	if o.storeBench {
		fmt.Println("many sessions: sessionstore BenchmarkWrk (GET/touch at 10k and 1M sessions)...")
		storeRows, storeTime, storeErr = runStoreBench(root)
		if storeErr != nil {
			fmt.Printf("many sessions: %v\n", storeErr)
		}
	}
	section := manySection(m, *o.many, storeRows, storeErr, storeTime, tree, treeEnd, version, loadAvg)
	fmt.Printf("\n%s\ntotal run time %v\n", section, time.Since(t0).Round(time.Second))
	if !o.write {
		return nil
	}
	path := filepath.Join(root, "docs", "benchmarks.md")
	if err := writeSection(path, "## Many sessions (issue 14)", section); err != nil {
		return err
	}
	fmt.Printf("updated %s\n", path)
	return nil
}

func writeMainSection(root, version, dur string, conns, threads, rounds int, loadAvg string, ratio float64, roundRatios, roundNoop []float64,
	bestPlain, bestPlugin, bestAnon, bestNoop result) error {
	section := fmt.Sprintf(`## Plugin through real Traefik (wrk)

Written by `+"`make bench`"+` (scripts/bench.sh → e2e/cmd/bench) on %s.

- Machine: %d CPUs (`+"`nproc`"+`), %s, %s/%s, Go %s
- Traefik %s (the pinned binary, plugin loaded as a local plugin under Yaegi), log level ERROR, no access log
- One Traefik, four routers to the same tiny Go upstream (a constant 33-byte JSON 200): `+"`plain.localhost`"+` without
  middleware, `+"`plugin.localhost`"+` behind the accessproxy middleware (defaults: cacheTTL 5s, sliding 30m) with a
  valid proxy token obtained by one login through the plugin (against a fake Strapi login); the cache
  was warmed first. Both routes get the same request (same path, same Authorization header). A third
  router, `+"`anon.localhost`"+`, has the same middleware and is sent no token: the plugin's bare pass-through cost.
  A fourth, `+"`noop.localhost`"+`, is behind a local Yaegi plugin whose ServeHTTP only calls next.
- `+"`wrk -t%d -c%d -d%s --latency`"+` on loopback, alternating plain/plugin/pass-through/no-op %d times, best run of each kept.
  wrk, Traefik, the upstream and the sessionstore share the same %d cores, so absolute numbers are
  lower than on a dedicated proxy host; the ratio is what matters.

| route | requests/s | p50 | p99 |
|---|---:|---:|---:|
| plain (no middleware) | %.0f | %v | %v |
| accessproxy plugin, valid proxy token | %.0f | %v | %v |
| accessproxy plugin, no token (pass-through, for reference) | %.0f | %v | %v |
| no-op Yaegi plugin (only calls next: the floor of any plugin) | %.0f | %v | %v |

Plugin (valid token) / plain throughput, median of the rounds' ratios (plain and plugin run back to back in each
round): **%.3f** (target ≥ 0.85: %s); no-op plugin / plain, same way: %.3f. Per round, plugin/plain: %s; no-op/plain: %s.
The table keeps each route's best run. Load average at the start: %s.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, strings.TrimPrefix(runtime.Version(), "go"),
		version, threads, conns, dur, rounds, runtime.NumCPU(),
		bestPlain.rps, bestPlain.p50, bestPlain.p99, bestPlugin.rps, bestPlugin.p50, bestPlugin.p99, bestAnon.rps, bestAnon.p50, bestAnon.p99, bestNoop.rps, bestNoop.p50, bestNoop.p99,
		ratio, map[bool]string{true: "met", false: "NOT met"}[ratio >= 0.85], median(roundNoop), fmtRatios(roundRatios), fmtRatios(roundNoop), loadAvg)
	path := filepath.Join(root, "docs", "benchmarks.md")
	if err := writeSection(path, "## Plugin through real Traefik (wrk)", section); err != nil {
		return err
	}
	fmt.Printf("updated %s\n", path)
	return nil
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reqRe = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)\b`)
	pctRe = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func parseWrk(out string) (result, error) {
	res := result{raw: out}
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := reqRe.FindStringSubmatch(out); m != nil {
		res.requests, _ = strconv.ParseInt(m[1], 10, 64)
		v, _ := strconv.ParseFloat(m[2], 64)
		res.secs = v * map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m[3]]
	} else {
		return res, fmt.Errorf("no \"N requests in\" line in wrk output:\n%s", out)
	}
	for _, p := range pctRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[p[3]]
		d := time.Duration(v * unit).Round(time.Microsecond)
		if p[1] == "50" {
			res.p50 = d
		} else {
			res.p99 = d
		}
	}
	if res.p50 == 0 || res.p99 == 0 {
		return res, fmt.Errorf("no latency distribution in wrk output:\n%s", out)
	}
	return res, nil
}

func traefikVersion() string {
	bin, err := harness.TraefikBinary(nil)
	if err != nil {
		return "?"
	}
	out, _ := exec.Command(bin, "version").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Version:" {
			return f[1]
		}
	}
	return "?"
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// writeSection replaces the section starting with heading (up to the next "## " heading) in the
// markdown file, or appends it; the file is created with a "# Benchmarks" title if absent.
func writeSection(path, heading, section string) error {
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(raw)
	if strings.TrimSpace(doc) == "" {
		doc = "# Benchmarks\n"
	}
	section = strings.TrimRight(section, "\n") + "\n"
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if start < 0 && t == heading {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	var out string
	if start < 0 {
		out = strings.TrimRight(doc, "\n") + "\n\n" + section
	} else {
		before := strings.Join(lines[:start], "")
		after := strings.Join(lines[end:], "")
		if after != "" {
			section += "\n"
		}
		out = before + section + after
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, ", ")
}

// startBenchStore starts the sessionstore on the chosen backend (postgres: a PostgreSQL of the env).
func startBenchStore(env *harness.Env, backend string) (*harness.Store, error) {
	switch backend {
	case "bolt":
		return harness.StartStore(env)
	case "postgres":
		pg, err := harness.StartPostgres(env, os.Stderr)
		if err != nil {
			return nil, err
		}
		fmt.Printf("sessionstore backend: postgres (PostgreSQL at %s, fsync on)\n", pg.Addr())
		return harness.StartStoreWith(env, harness.StoreOptions{Backend: "postgres", PostgresURL: pg.URL("postgres")})
	}
	return nil, fmt.Errorf("-backend %q: want bolt or postgres", backend)
}
