package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSessions(t *testing.T) {
	for in, want := range map[string][]int{
		"1,1000,10000,100000": {1, 1000, 10000, 100000},
		"100k, 1, 10k,1k":     {1, 1000, 10000, 100000},
		"1M,1_000,1000":       {1000, 1000000},
		"5":                   {5},
	} {
		got, err := parseSessions(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseSessions(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "0", "-1", "abc", "1,x", "1.5", "11M", "20000000"} {
		if got, err := parseSessions(in); err == nil {
			t.Errorf("parseSessions(%q) = %v, want an error", in, got)
		}
	}
}

func TestCPUTicks(t *testing.T) {
	// A command name with a space and a parenthesis must not shift the fields.
	stat := "4242 (traefik (x) y) S 1 4242 4242 0 -1 4194560 9000 0 0 0 1234 567 0 0 20 0 12 0 100 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := cpuTicks(stat)
	if err != nil || got != 1234+567 {
		t.Fatalf("cpuTicks = %d, %v; want 1801", got, err)
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := cpuTicks(bad); err == nil {
			t.Errorf("cpuTicks(%q): want an error", bad)
		}
	}
	// This process's own stat parses and grows as it burns CPU.
	a, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(60 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := procCPU(os.Getpid())
	if err != nil || b < a {
		t.Fatalf("procCPU went from %v to %v (%v)", a, b, err)
	}
}

func TestStoreRequests(t *testing.T) {
	m := `# HELP sessionstore_http_requests_total HTTP requests by route template and status code.
# TYPE sessionstore_http_requests_total counter
sessionstore_http_requests_total{code="200",route="GET /v1/sessions/{id}"} 1500
sessionstore_http_requests_total{code="404",route="GET /v1/sessions/{id}"} 2
sessionstore_http_requests_total{code="200",route="POST /v1/sessions/{id}/touch"} 7
sessionstore_http_requests_total{code="201",route="POST /v1/sessions"} 1.2e+06
sessionstore_http_request_duration_seconds_bucket{code="200",route="GET /v1/sessions/{id}",le="0.001"} 99
`
	got := storeRequests(m)
	want := map[string]float64{routeGet: 1502, routeTouch: 7, "POST /v1/sessions": 1.2e6}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestParseStoreBench(t *testing.T) {
	out := `goos: linux
BenchmarkWrk/get/sessions=10000-2         	       1	5012345678 ns/op	     30157 req/s
BenchmarkWrk/touch/sessions=10000-2       	       1	5012345678 ns/op	      8177 req/s
BenchmarkWrk/get/sessions=1000000         	       1	5012345678 ns/op	     26472.5 req/s
    bench_test.go:87: seeded 1000000 sessions in 2m0s
PASS
`
	got := parseStoreBench(out)
	want := []storeBenchRow{{"get", 10000, 30157}, {"touch", 10000, 8177}, {"get", 1000000, 26472.5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

func TestParseWrkRequests(t *testing.T) {
	out := "Running 6s test\n  Latency Distribution\n     50%  612.00us\n     99%    5.50ms\n  81234 requests in 6.01s, 9.1MB read\nRequests/sec:  13516.47\n"
	r, err := parseWrk(out)
	if err != nil || r.requests != 81234 || r.secs != 6.01 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := parseWrk("Requests/sec: 1\n     50%  1ms\n     99%  2ms\n"); err == nil {
		t.Fatal("want an error without the requests line")
	}
}

func TestFmtCount(t *testing.T) {
	for n, want := range map[int]string{1: "1", 999: "999", 1000: "1 000", 100000: "100 000", 1234567: "1 234 567"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q want %q", n, got, want)
		}
	}
}

// The Lua script cycles through the tokens, one per request, each thread from its own offset.
// Checked with a real Lua interpreter when one is installed (wrk embeds LuaJIT; the script uses
// only what Lua 5.1 has).
func TestManyLuaRoundRobin(t *testing.T) {
	lua := ""
	for _, c := range []string{"luajit", "lua5.1", "lua"} {
		if p, err := exec.LookPath(c); err == nil {
			lua = p
			break
		}
	}
	if lua == "" {
		t.Skip("no Lua interpreter")
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "t.txt")
	_ = os.WriteFile(tok, []byte("a\nb\nc\nd\n"), 0o600)
	harnessLua := `wrk = {path = "/p", format = function(m, p, h) return h["Host"] .. p .. " " .. h["Authorization"] end}
` + manyLua + `
local th = {set = function(self, k, v) _G[k] = v end}
setup(th); setup(th) -- two threads: this state is the second (tid 1)
init({"` + tok + `", "h", "2"})
local out = {}
for k = 1, 6 do out[#out + 1] = request() end
io.write(table.concat(out, ","))
`
	p := filepath.Join(dir, "t.lua")
	_ = os.WriteFile(p, []byte(harnessLua), 0o600)
	out, err := exec.Command(lua, p).CombinedOutput()
	want := "h/p Bearer c,h/p Bearer d,h/p Bearer a,h/p Bearer b,h/p Bearer c,h/p Bearer d"
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("%v: %s\nwant %s", err, out, want)
	}
}

func TestFmtDeltas(t *testing.T) {
	a := map[string]float64{"GET /x": 10, "POST /y": 5}
	b := map[string]float64{"GET /x": 25, "POST /y": 5, "DELETE /z": 0.5}
	if got, want := fmtDeltas(a, b), "DELETE /z 0.5, GET /x 15"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if got := fmtDeltas(b, b); got != "none" {
		t.Fatalf("got %q", got)
	}
}
