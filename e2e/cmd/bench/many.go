package main

// The many-sessions measurement (issue 14): N distinct live sessions, each made by a real login
// through the plugin (POST /api/auth/local through Traefik to the fake Strapi; the plugin swaps the
// JWT and creates the session in the real sessionstore), then wrk cycling through the N proxy
// tokens on the plugin route, interleaved with the plain route at the same wrk settings (same Lua
// script, same tokens, same bytes on the wire). With the default cacheTTL (5 s) the plugin needs
// about N/5 store reads a second once N tokens are in use: that is what the table shows.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

const (
	manyHost     = "many.localhost" // the plugin route of this measurement (its own middleware instance)
	manyUsers    = 1000             // logins cycle through this many fake users
	manyPassword = "many-pw-1"
)

// manyUsersList is the fake Strapi's users for the many-sessions logins.
func manyUsersList() []harness.FakeUser {
	out := make([]harness.FakeUser, manyUsers)
	for i := range out {
		out[i] = harness.FakeUser{ID: 1000 + i, Username: fmt.Sprintf("many%d", i), Email: fmt.Sprintf("many%d@example.com", i),
			Password: manyPassword, Audience: manyHost}
	}
	return out
}

// parseSessions reads the -sessions flag: a comma-separated list of positive counts ("1,1000",
// "10k", "1M" and "100_000" are fine), returned sorted and without duplicates.
func parseSessions(s string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "k") || strings.HasSuffix(f, "K"):
			mult, f = 1000, f[:len(f)-1]
		case strings.HasSuffix(f, "M") || strings.HasSuffix(f, "m"):
			mult, f = 1_000_000, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 10_000_000/mult {
			return nil, fmt.Errorf("-sessions: %q is not a count between 1 and 10M", f)
		}
		if n *= mult; !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-sessions: no counts")
	}
	sort.Ints(out)
	return out, nil
}

// cpuTicks parses /proc/<pid>/stat and returns utime+stime in clock ticks (every thread of the
// process). The command name (field 2) is in parentheses and may hold spaces or parentheses, so
// the fields are counted from the last ')'.
func cpuTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no ')'")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}

var clkTck = func() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100 // USER_HZ on every Linux architecture Traefik runs on
}()

// procCPU is the CPU time (user+system) a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := cpuTicks(string(raw))
	if err != nil {
		return 0, err
	}
	return time.Duration(float64(t) / clkTck * float64(time.Second)), nil
}

// cpuMeter reads the CPU time of a set of processes before and after a piece of work.
type cpuMeter struct{ pids []int }

func (m cpuMeter) read() ([]time.Duration, error) {
	out := make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		var err error
		if out[i], err = procCPU(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// storeRequests sums sessionstore_http_requests_total by route (every status code) in a
// Prometheus text exposition.
func storeRequests(metrics string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, "sessionstore_http_requests_total{") {
			continue
		}
		end := strings.LastIndexByte(l, '}')
		if end < 0 {
			continue
		}
		var route string
		for _, kv := range strings.Split(l[len("sessionstore_http_requests_total{"):end], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "route" {
				route = strings.Trim(v, `"`)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(l[end+1:]), 64)
		if err == nil && route != "" {
			out[route] += v
		}
	}
	return out
}

const (
	routeGet     = "GET /v1/sessions/{id}"
	routeTouch   = "POST /v1/sessions/{id}/touch"
	routeTouches = "POST /v1/touches"
)

func scrapeStore(url string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("store /metrics: %d", resp.StatusCode)
	}
	return storeRequests(string(raw)), nil
}

// loginMany logs in count times through Traefik (workers at once, users round robin) and returns
// the proxy tokens in order.
func loginMany(base string, from, count, workers int) ([]string, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	tokens := make([]string, count)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				u := (from + i) % manyUsers
				body := fmt.Sprintf(`{"identifier":"many%d","password":%q}`, u, manyPassword)
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/auth/local", strings.NewReader(body))
				req.Host = manyHost
				req.Header.Set("Content-Type", "application/json")
				tok, err := func() (string, error) {
					resp, err := client.Do(req)
					if err != nil {
						return "", err
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					var lb struct {
						JWT string `json:"jwt"`
					}
					if resp.StatusCode != 200 || json.Unmarshal(raw, &lb) != nil || lb.JWT == "" {
						return "", fmt.Errorf("login %d: %d %s", from+i, resp.StatusCode, bytes.TrimSpace(raw))
					}
					return lb.JWT, nil
				}()
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				tokens[i] = tok
			}
		}()
	}
	wg.Wait()
	return tokens, firstErr
}

// createDirect creates count sessions straight in the store's HTTP API (no Traefik, no Strapi),
// workers at once, and returns the rate.
func createDirect(store *harness.Store, tag string, count, workers int) (float64, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	jwt := harness.SignHS256(`{"alg":"HS256","typ":"JWT"}`, `{"id":1,"iat":1,"exp":4102444800}`, []byte("direct"))
	abs := time.Now().Add(24 * time.Hour).UnixMilli()
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				body := fmt.Sprintf(`{"userId":"direct-%s-%d","host":"direct.localhost","audience":["direct.localhost"],"strapiJwt":%q,"idleTimeoutMs":1800000,"sliding":true,"absoluteExpiresAt":%d}`,
					tag, i%manyUsers, jwt, abs)
				req, _ := http.NewRequest("POST", store.URL+"/v1/sessions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+store.Token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("store create: %d %s", resp.StatusCode, bytes.TrimSpace(raw))
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(count) / time.Since(start).Seconds(), nil
}

// manyLua cycles through the tokens of a file (one a line), one per request, round robin in each
// thread, each thread starting at its own offset. Arguments after wrk's "--": the token file, the
// Host header, the thread count. The requests are formatted once, in init.
const manyLua = `local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local host, nthreads = args[2], tonumber(args[3])
  reqs = {}
  for tok in io.lines(args[1]) do
    if tok ~= "" then
      reqs[#reqs + 1] = wrk.format("GET", wrk.path, {["Host"] = host, ["Authorization"] = "Bearer " .. tok})
    end
  end
  n = #reqs
  i = math.floor((tid or 0) * n / nthreads)
end
function request()
  i = i % n + 1
  return reqs[i]
end
`

// manyRow is one N of the table.
type manyRow struct {
	n                     int
	newLogins             int
	loginRate             float64 // logins/s while making this step's new sessions
	loginTraefikUs        float64 // Traefik CPU per login
	loginStoreUs          float64
	plugin, plain         result // best run of each
	ratios                []float64
	traefikUsPlugin       float64 // Traefik CPU per request, every plugin run of the step
	traefikUsPlain        float64
	storeUsPlugin         float64 // sessionstore CPU per plugin-route request
	storeGetsPerReq       float64 // store GETs per plugin-route request (from the store's metrics)
	storeGetsPerSec       float64 // store GETs/s during the plugin runs
	storeTouchesPerSec    float64
	pluginReqs, plainReqs int64
	pluginSecs            float64
	storeCalls            map[string]float64 // store requests/s by route during the plugin runs
	oldestAge             time.Duration      // age of the step's oldest session when its rounds began
	// The warm-up, one pass over the step's sessions: every session whose first sliding touch came
	// due during the minutes of logins is touched there (a burst the bench's login phase makes).
	warmRPS, warmTraefikUs   float64
	warmTouchCalls           float64
	directCreate             float64 // store creates/s straight to the store's API right after this step (0: not run)
	directCreateStoreAtLeast int
}

type manyOpts struct {
	sizes        []int
	dur          string
	conns        int
	threads      int
	rounds       int
	loginWorkers int
	directCreate int // sessions per direct store create burst (0: none)
}

type manyResult struct {
	rows  []manyRow
	start time.Time
	total time.Duration
	wall  map[string]time.Duration
}

// manyRevalidateEvery is the many route's revalidateEvery, for the section's text.
var manyRevalidateEvery = "5m"

// runMany runs the steps against a running Traefik (routers plain.localhost and many.localhost)
// and store.
func runMany(wrk string, tr *harness.Traefik, store *harness.Store, o manyOpts, dir string) (*manyResult, error) {
	res := &manyResult{start: time.Now(), wall: map[string]time.Duration{}}
	meter := cpuMeter{pids: []int{tr.Proc().Pid(), store.Proc().Pid()}}
	url := tr.URL() + "/api/articles"
	scriptPath := filepath.Join(dir, "many.lua")
	if err := os.WriteFile(scriptPath, []byte(manyLua), 0o644); err != nil {
		return nil, err
	}
	var tokens []string
	var loginTime time.Duration
	var firstLogin time.Time
	for _, n := range o.sizes {
		row := manyRow{n: n, newLogins: n - len(tokens)}
		if row.newLogins > 0 {
			fmt.Printf("many sessions: logging in %d more (to %d) with %d concurrent clients...\n", row.newLogins, n, o.loginWorkers)
			before, err := meter.read()
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			if firstLogin.IsZero() {
				firstLogin = t0
			}
			more, err := loginMany(tr.URL(), len(tokens), row.newLogins, o.loginWorkers)
			if err != nil {
				return nil, err
			}
			el := time.Since(t0)
			loginTime += el
			after, err := meter.read()
			if err != nil {
				return nil, err
			}
			tokens = append(tokens, more...)
			row.loginRate = float64(row.newLogins) / el.Seconds()
			row.loginTraefikUs = float64((after[0] - before[0]).Microseconds()) / float64(row.newLogins)
			row.loginStoreUs = float64((after[1] - before[1]).Microseconds()) / float64(row.newLogins)
			fmt.Printf("many sessions: %d logins in %v: %.0f logins/s (Traefik %.0f µs CPU/login, store %.0f µs)\n",
				row.newLogins, el.Round(time.Millisecond), row.loginRate, row.loginTraefikUs, row.loginStoreUs)
		}
		tokFile := filepath.Join(dir, fmt.Sprintf("tokens-%d.txt", n))
		if err := os.WriteFile(tokFile, []byte(strings.Join(tokens[:n], "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		// Every session of the step must answer 200 through the plugin: sample a few.
		c := harness.NewClient(tr.URL())
		for _, i := range []int{0, n / 2, n - 1} {
			r, err := c.Do("GET", manyHost, "/api/articles", tokens[i], nil)
			if err != nil || r.Status != 200 {
				return nil, fmt.Errorf("many sessions: token %d of %d: %v %v", i, n, r, err)
			}
		}
		run := func(host, d string) (result, error) {
			args := []string{fmt.Sprintf("-t%d", o.threads), fmt.Sprintf("-c%d", o.conns), "-d" + d, "--latency", "-s", scriptPath, url,
				"--", tokFile, host, strconv.Itoa(o.threads)}
			out, err := exec.Command(wrk, args...).CombinedOutput()
			if err != nil {
				return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
			}
			r, err := parseWrk(string(out))
			if err != nil {
				return r, err
			}
			if strings.Contains(r.raw, "Non-2xx") || strings.Contains(r.raw, "Socket errors") {
				return r, fmt.Errorf("wrk on %s with %d sessions saw errors:\n%s", host, n, r.raw)
			}
			return r, nil
		}
		// Warm-up, not counted in the ratio: one pass over the step's sessions (at least 3 s), so
		// the rounds see the steady state: every session whose first touch came due while the
		// step's logins ran (minutes at 100 k) is touched here, in a burst no real traffic has.
		w0, err := meter.read()
		if err != nil {
			return nil, err
		}
		s0, err := scrapeStore(store.URL)
		if err != nil {
			return nil, err
		}
		warm, err := run(manyHost, fmt.Sprintf("%ds", 3+n/4000))
		if err != nil {
			return nil, err
		}
		w1, err := meter.read()
		if err != nil {
			return nil, err
		}
		s1, err := scrapeStore(store.URL)
		if err != nil {
			return nil, err
		}
		row.warmRPS = warm.rps
		if warm.requests > 0 {
			row.warmTraefikUs = float64((w1[0] - w0[0]).Microseconds()) / float64(warm.requests)
		}
		row.warmTouchCalls = s1[routeTouches] - s0[routeTouches]
		var cpuPlugin, cpuPlain, cpuStore time.Duration
		var gets, touches float64
		row.oldestAge = time.Since(firstLogin)
		row.storeCalls = map[string]float64{}
		for r := 0; r < o.rounds; r++ {
			b0, err := meter.read()
			if err != nil {
				return nil, err
			}
			p, err := run("plain.localhost", o.dur)
			if err != nil {
				return nil, err
			}
			b1, err := meter.read()
			if err != nil {
				return nil, err
			}
			m0, err := scrapeStore(store.URL)
			if err != nil {
				return nil, err
			}
			if r == o.rounds-1 {
				go profileTraefik(tr, o.dur, n)
			}
			q, err := run(manyHost, o.dur)
			if err != nil {
				return nil, err
			}
			b2, err := meter.read()
			if err != nil {
				return nil, err
			}
			m1, err := scrapeStore(store.URL)
			if err != nil {
				return nil, err
			}
			cpuPlain += b1[0] - b0[0]
			cpuPlugin += b2[0] - b1[0]
			cpuStore += b2[1] - b1[1]
			gets += m1[routeGet] - m0[routeGet]
			touches += m1[routeTouch] - m0[routeTouch]
			for k, v := range m1 {
				if d := v - m0[k]; d > 0 {
					row.storeCalls[k] += d
				}
			}
			row.plainReqs += p.requests
			row.pluginReqs += q.requests
			row.pluginSecs += q.secs
			row.ratios = append(row.ratios, q.rps/p.rps)
			if p.rps > row.plain.rps {
				row.plain = p
			}
			if q.rps > row.plugin.rps {
				row.plugin = q
			}
			fmt.Printf("many sessions N=%d round %d: plain %8.0f req/s, plugin %8.0f req/s (%.3f); Traefik µs/req plain %.0f, plugin %.0f; store calls during the plugin run: %s\n",
				n, r+1, p.rps, q.rps, q.rps/p.rps, float64((b1[0]-b0[0]).Microseconds())/float64(p.requests),
				float64((b2[0]-b1[0]).Microseconds())/float64(q.requests), fmtDeltas(m0, m1))
		}
		row.traefikUsPlugin = float64(cpuPlugin.Microseconds()) / float64(row.pluginReqs)
		row.traefikUsPlain = float64(cpuPlain.Microseconds()) / float64(row.plainReqs)
		row.storeUsPlugin = float64(cpuStore.Microseconds()) / float64(row.pluginReqs)
		row.storeGetsPerReq = gets / float64(row.pluginReqs)
		row.storeGetsPerSec = gets / row.pluginSecs
		row.storeTouchesPerSec = touches / row.pluginSecs
		for k := range row.storeCalls {
			row.storeCalls[k] /= row.pluginSecs
		}
		if o.directCreate > 0 && (n == 10_000 || n == o.sizes[len(o.sizes)-1]) {
			rate, err := createDirect(store, strconv.Itoa(n), o.directCreate, 16)
			if err != nil {
				fmt.Printf("many sessions: direct store creates failed: %v\n", err)
			} else {
				row.directCreate = rate
				row.directCreateStoreAtLeast = n
				fmt.Printf("many sessions: %d creates straight to the store (%d+ sessions in it): %.0f/s\n", o.directCreate, n, rate)
			}
		}
		res.rows = append(res.rows, row)
	}
	res.wall["logins"] = loginTime
	res.total = time.Since(res.start)
	return res, nil
}

// profileTraefik saves a CPU profile of Traefik for most of a run of d when ACCESSPROXY_BENCH_PPROF
// names a directory (Traefik then serves pprof: TraefikOptions.Debug).
func profileTraefik(tr *harness.Traefik, d string, n int) {
	dir := os.Getenv("ACCESSPROXY_BENCH_PPROF")
	dur, err := time.ParseDuration(d)
	if dir == "" || err != nil || dur < 2*time.Second {
		return
	}
	secs := int((dur - time.Second) / time.Second)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", tr.PingPort, secs))
	if err != nil {
		fmt.Println("pprof:", err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	path := filepath.Join(dir, fmt.Sprintf("traefik-cpu-%d.pprof", n))
	if err := os.WriteFile(path, raw, 0o644); err == nil {
		fmt.Println("pprof: wrote", path)
	}
}

// storeBenchRow is one line of sessionstore's BenchmarkWrk.
type storeBenchRow struct {
	op       string // get, touch
	sessions int
	rps      float64
}

var storeBenchRe = regexp.MustCompile(`(?m)^BenchmarkWrk/(\w+)/sessions=(\d+)(?:-\d+)?\s+\d+\s+.*?([0-9.]+) req/s`)

func parseStoreBench(out string) []storeBenchRow {
	var rows []storeBenchRow
	for _, m := range storeBenchRe.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		v, _ := strconv.ParseFloat(m[3], 64)
		rows = append(rows, storeBenchRow{op: m[1], sessions: n, rps: v})
	}
	return rows
}

// runStoreBench runs sessionstore's BenchmarkWrk (wrk against the real handler on a bbolt file of
// 10 k and 1 M seeded sessions; the 1 M file is seeded once and cached).
func runStoreBench(root string) ([]storeBenchRow, time.Duration, error) {
	t0 := time.Now()
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "Wrk", "-benchtime", "1x", "./internal/api/")
	cmd.Dir = filepath.Join(root, "sessionstore")
	out, err := cmd.CombinedOutput()
	rows := parseStoreBench(string(out))
	if err != nil || len(rows) == 0 {
		return rows, time.Since(t0), fmt.Errorf("sessionstore BenchmarkWrk: %v\n%s", err, tailLines(string(out), 30))
	}
	return rows, time.Since(t0), nil
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// treeID says what was measured: the commit, "+dirty" when the work tree differs from it, and a
// hash of the plugin sources Traefik was given (the repository root's go.mod and non-test .go files).
func treeID(root string) string {
	id := "?"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		id = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", root, "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		id += "+dirty"
	}
	return id + ", plugin sources sha256 " + pluginSourcesHash(root)
}

func pluginSourcesHash(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "?"
	}
	h := sha256.New()
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || !(name == "go.mod" || (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"))) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "?"
		}
		fmt.Fprintf(h, "%s %d\n", name, len(raw))
		h.Write(raw)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func fmtCount(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(" ")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// manySection renders the "## Many sessions (issue 14)" section.
func manySection(m *manyResult, o manyOpts, store []storeBenchRow, storeErr error, storeTime time.Duration, tree, treeEnd, version, loadAvg string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Many sessions (issue 14)\n\nWritten by `make bench` (scripts/bench.sh → e2e/cmd/bench, `-sessions %s`) on %s.\n\n",
		joinInts(o.sizes), m.start.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Tree measured: %s", tree)
	if treeEnd != tree {
		fmt.Fprintf(&b, " (at the end of the run: %s; Traefik runs the sources it copied at its start)", treeEnd)
	}
	fmt.Fprintf(&b, "\n- Machine: %d CPUs (`nproc`), %s, Go %s; load average at the start of the whole bench: %s\n",
		numCPU(), cpuModel(), goVersion(), loadAvg)
	fmt.Fprintf(&b, "- Traefik %s (pinned binary, plugin under Yaegi), log level ERROR, no access log; sessionstore on bolt (fsync per commit), same machine\n", version)
	fmt.Fprintf(&b, `- Sessions: N distinct live sessions, each from a real login through the plugin (POST /api/auth/local through
  Traefik to the harness's fake Strapi, which answers with a Strapi-shaped HS256 JWT; the plugin swaps it for a proxy
  token and creates the session in the sessionstore), %d concurrent Go clients, %d users round robin. The sets
  are nested: the first 1 000 of the 100 000 are the 1 000 set, and so on, logged in step by step.
- Plugin route `+"`%s`"+`: its own accessproxy middleware instance, defaults (cacheTTL 5s, idleTimeout 30m sliding)
  but revalidateEvery `+manyRevalidateEvery+` (the default 5m would re-read every session older than that from Strapi
  during the 100 k step, whose logins take minutes: that is revalidation's own cost, one Strapi call per session per
  interval, not the cache's), login rate limit raised. Plain route `+"`plain.localhost`"+`: no middleware. Same upstream (a constant
  33-byte JSON 200).
- `+"`wrk -t%d -c%d -d%s --latency -s many.lua`"+`: the script reads the N proxy tokens from a file in `+"`init`"+` and sends one
  per request, round robin in each thread (threads start at different offsets). The plain route gets the same
  script and tokens (same bytes on the wire). Per N: a warm-up on the plugin route (one pass over the N sessions, at least 3 s), then %d rounds of
  plain, plugin back to back. Ratio: median of the rounds' plugin/plain; req/s: best run of each.
- CPU µs/request: utime+stime of the Traefik and of the sessionstore process (`+"`/proc/<pid>/stat`"+`, every thread)
  before and after each wrk run, divided by the run's requests, summed over the rounds. Store GETs and touches
  from the store's own `+"`/metrics`"+` (sessionstore_http_requests_total) over the plugin runs.

`, o.loginWorkers, manyUsers, manyHost, o.threads, o.conns, o.dur, o.rounds)
	b.WriteString("| sessions N | plugin req/s | plain req/s | plugin/plain | Traefik CPU µs/req, plugin | Traefik CPU µs/req, plain | store CPU µs/req (plugin route) | store GETs/req | store GETs/s | store touches/s | plugin p50 / p99 | logins/s (new sessions of the step) |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range m.rows {
		login := "—"
		if r.newLogins > 0 && r.newLogins < 100 { // too few for the CPU clock's 10 ms ticks
			login = fmt.Sprintf("%.0f (%s)", r.loginRate, fmtCount(r.newLogins))
		} else if r.newLogins > 0 {
			login = fmt.Sprintf("%.0f (%s; Traefik %.0f µs, store %.0f µs CPU/login)", r.loginRate, fmtCount(r.newLogins), r.loginTraefikUs, r.loginStoreUs)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | **%.3f** | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %v / %v | %s |\n",
			fmtCount(r.n), r.plugin.rps, r.plain.rps, median(r.ratios), r.traefikUsPlugin, r.traefikUsPlain, r.storeUsPlugin,
			r.storeGetsPerReq, r.storeGetsPerSec, r.storeTouchesPerSec, r.plugin.p50, r.plugin.p99, login)
	}
	b.WriteString("\nPer-round plugin/plain: ")
	for i, r := range m.rows {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "N=%s: %s", fmtCount(r.n), fmtRatios(r.ratios))
	}
	fmt.Fprintf(&b, ". Run time of this part: %v (logins %v).\n", m.total.Round(time.Second), m.wall["logins"].Round(time.Second))
	b.WriteString("\nStore calls/s by route during the plugin runs (the store's /metrics), and the age of the step's oldest session when its rounds began " +
		"(sessions older than a tenth of idleTimeout are due a touch, older than revalidateEvery a re-read from Strapi):\n\n")
	for _, r := range m.rows {
		zero := map[string]float64{}
		fmt.Fprintf(&b, "- N=%s, oldest session %v: %s; the warm-up pass before the rounds (the touches that came due during the logins): %.0f req/s, %.0f µs Traefik CPU/req, %.0f POST /v1/touches\n",
			fmtCount(r.n), r.oldestAge.Round(time.Second), fmtDeltas(zero, r.storeCalls), r.warmRPS, r.warmTraefikUs, r.warmTouchCalls)
	}
	var direct []string
	for _, r := range m.rows {
		if r.directCreate > 0 {
			direct = append(direct, fmt.Sprintf("%.0f creates/s with %s+ sessions stored", r.directCreate, fmtCount(r.directCreateStoreAtLeast)))
		}
	}
	b.WriteString("\n### Store alone at 10 k and 1 M sessions\n\n")
	if len(direct) > 0 {
		fmt.Fprintf(&b, "Create, straight to the running store's `POST /v1/sessions` (16 concurrent Go clients, %d sessions a burst, "+
			"run right after the step, so later steps have these sessions in the store too; no Traefik, no Strapi): %s. "+
			"sessionstore has no create benchmark of its own, so create is not measured at 1 M.\n\n", o.directCreate, strings.Join(direct, "; "))
	}
	switch {
	case storeErr != nil && len(store) == 0:
		fmt.Fprintf(&b, "sessionstore's `BenchmarkWrk` did not run: %s\n", firstLine(storeErr.Error()))
	case len(store) > 0:
		fmt.Fprintf(&b, "GET and touch: sessionstore's own `BenchmarkWrk` (`cd sessionstore && go test -run '^$' -bench Wrk -benchtime 1x ./internal/api/`: "+
			"wrk `-t1 -c16 -d5s` against the real handler on a bbolt file of seeded sessions, random ids), run by this bench right after the "+
			"steps above (%v, the 1 M file cached in ~/.cache/strapi-access-proxy/bench/ after its first seeding).\n\n", storeTime.Round(time.Second))
		b.WriteString("| operation | 10 k sessions | 1 M sessions |\n|---|---:|---:|\n")
		for _, op := range []string{"get", "touch", "touches"} {
			cell := func(n int) string {
				for _, r := range store {
					if r.op == op && r.sessions == n && op == "touches" {
						return fmt.Sprintf("%.0f touches/s (%.0f calls/s)", r.rps*100, r.rps)
					}
					if r.op == op && r.sessions == n {
						return fmt.Sprintf("%.0f req/s", r.rps)
					}
				}
				return "—"
			}
			name := map[string]string{"get": "GET `/v1/sessions/{id}`", "touch": "POST `/v1/sessions/{id}/touch` (fsynced)",
				"touches": "POST `/v1/touches`, 100 random sessions a call (fsynced; what the plugin sends)"}[op]
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, cell(10_000), cell(1_000_000))
		}
		if storeErr != nil {
			fmt.Fprintf(&b, "\n(part of it failed: %s)\n", firstLine(storeErr.Error()))
		}
	default:
		b.WriteString("sessionstore's `BenchmarkWrk` was not run (`-store-bench=false`).\n")
	}
	return b.String()
}

func numCPU() int { return runtime.NumCPU() }

func goVersion() string { return strings.TrimPrefix(runtime.Version(), "go") }

// fmtDeltas lists the store routes whose request counts grew from a to b.
func fmtDeltas(a, b map[string]float64) string {
	var parts []string
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			f := "%s %.0f"
			if d < 10 && d != float64(int64(d)) {
				f = "%s %.1f"
			}
			parts = append(parts, fmt.Sprintf(f, k, d))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}
