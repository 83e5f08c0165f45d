package api

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkWrk measures the store the way Traefik's plugin loads it: wrk (a C client, so the
// load generator takes little of the 2 cores) sending GET and touch for random sessions over
// keep-alive connections to the real handler on a real bbolt file. The in-process Go client of
// BenchmarkGet/BenchmarkTouch costs as much CPU as the server, so those figures understate the
// server. Run with -benchtime 1x (each case is one 5 s wrk run):
//
//	go test -run '^$' -bench Wrk -benchtime 1x ./internal/api/
func BenchmarkWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatal("wrk is needed (apt-get install wrk): ", err)
	}
	for _, n := range []int{10_000, 1_000_000} {
		for _, op := range []string{"get", "touch", "touches"} {
			b.Run(fmt.Sprintf("%s/sessions=%d", op, n), func(b *testing.B) {
				env := serveBench(b, openBenchBolt(b, n), n)
				script := wrkScript(b, n, op)
				b.ResetTimer()
				rps := 0.0
				for i := 0; i < b.N; i++ {
					out, err := exec.Command(wrk, "-t1", "-c16", "-d5s", "-s", script, env.url).CombinedOutput()
					if err != nil {
						b.Fatalf("wrk: %v\n%s", err, out)
					}
					rps = parseWrk(b, string(out))
				}
				b.ReportMetric(rps, "req/s")
				if op == "touches" {
					b.ReportMetric(rps*touchesPerBatch, "touches/s")
				}
			})
		}
	}
}

// touchesPerBatch is the size of each POST /v1/touches of the "touches" case.
const touchesPerBatch = 100

// wrkScript writes a Lua script that requests 10k random sessions of the n stored ones and
// counts non-200 answers, which fail the run.
func wrkScript(b *testing.B, n int, op string) string {
	ids := make([]string, 0, 10_000)
	for i := 0; i < 10_000; i++ {
		ids = append(ids, `"`+benchID(rand.IntN(n))+`"`)
	}
	req := `wrk.format("GET", "/v1/sessions/" .. ids[math.random(#ids)], headers)`
	switch op {
	case "touch":
		req = `wrk.format("POST", "/v1/sessions/" .. ids[math.random(#ids)] .. "/touch", headers, body)`
	case "touches":
		// What the plugin sends: one POST /v1/touches a second with every session due.
		req = `wrk.format("POST", "/v1/touches", headers, batch())`
	}
	lua := "ids = {" + strings.Join(ids, ",") + "}\n" +
		`headers = {["Authorization"] = "Bearer ` + testToken + `", ["Content-Type"] = "application/json"}` + "\n" +
		`body = '{"host":"a.localhost","idleTimeoutMs":1800000,"sliding":true}'` + "\n" +
		"function batch()\n  local t = {}\n  for i = 1, " + strconv.Itoa(touchesPerBatch) + " do\n" +
		`    t[i] = '{"id":"' .. ids[math.random(#ids)] .. '","host":"a.localhost","idleTimeoutMs":1800000,"sliding":true}'` + "\n" +
		"  end\n  return '{\"touches\":[' .. table.concat(t, ',') .. ']}'\nend\n" +
		"bad = 0\nrequest = function() return " + req + " end\n" +
		"response = function(status) if status ~= 200 then bad = bad + 1 end end\n" +
		`done = function() if bad > 0 then io.write("NON200 " .. bad .. "\n") end end` + "\n"
	path := filepath.Join(b.TempDir(), op+".lua")
	if err := os.WriteFile(path, []byte(lua), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

var wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func parseWrk(b *testing.B, out string) float64 {
	if strings.Contains(out, "NON200") || strings.Contains(out, "Non-2xx") {
		b.Fatalf("wrk saw errors:\n%s", out)
	}
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no Requests/sec in wrk output:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
