package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBenchWriteSectionAndParse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.md")
	h := "## Plugin through real Traefik (wrk)"
	if err := writeSection(p, h, h+"\n\nv1\n"); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(p, []byte("# Benchmarks\n\n## Other\n\nkeep\n\n"+h+"\n\nold\n\n## Last\n\nkeep too\n"), 0o644)
	if err := writeSection(p, h, h+"\n\nnew\n"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	want := "# Benchmarks\n\n## Other\n\nkeep\n\n" + h + "\n\nnew\n\n## Last\n\nkeep too\n"
	if string(raw) != want {
		t.Fatalf("got\n%s\nwant\n%s", raw, want)
	}
	out := "Running 10s test\n  Latency Distribution\n     50%  612.00us\n     75%    1.02ms\n     90%    2.01ms\n     99%    5.50ms\n  100 requests in 10s\nRequests/sec:  12345.67\nTransfer/sec: 1MB\n"
	r, err := parseWrk(out)
	if err != nil || r.rps != 12345.67 || r.p50 != 612*time.Microsecond || r.p99 != 5500*time.Microsecond {
		t.Fatalf("%+v %v", r, err)
	}
}
