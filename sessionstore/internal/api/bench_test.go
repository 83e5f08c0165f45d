package api

// Benchmarks of GET and touch over HTTP on loopback: a real http.Server on 127.0.0.1, a real bolt
// file, a keep-alive client, b.RunParallel. Run with:
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/api/
//
// The 1M-session file is seeded once through the backend (10k sessions per transaction) and cached
// under ~/.cache/strapi-access-proxy/bench/; -short skips it.
//
// The mongo backend runs the same benchmarks at 10k sessions on FerretDB v1.24 (SQLite backend,
// started by the benchmark; ACCESSPROXY_TEST_MONGO_URI selects a real MongoDB instead). 1M is not
// run on FerretDB: seeding it through the wire protocol into SQLite takes far too long.
//
// The postgres backend runs them at 10k and 1M sessions on a throwaway PostgreSQL cluster of its
// own (fsync and synchronous_commit on, as in production), seeded with COPY on every run.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/mongo"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/postgres"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
	pgtest "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

const benchBatch = 10_000

var benchKey = bytes.Repeat([]byte{0x42}, 32)

// benchID is deterministic so a cached file's ids are known without storing them.
func benchID(i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "bench-session-%d", i))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// importer is what seeding needs from a backend.
type importer interface {
	store.Backend
	Import(ctx context.Context, sessions []*store.Session) error
}

type boltImporter struct{ *bolt.Store }

func (b boltImporter) Import(_ context.Context, sessions []*store.Session) error {
	return b.Store.Import(sessions)
}

// seed fills the store with n sessions (ids benchID(0..n-1)) unless it already holds them.
func seed(b *testing.B, s importer, n int) {
	if have, _ := s.SessionCount(b.Context()); have == int64(n) {
		return
	}
	sealer, _ := crypto.New(benchKey)
	now := time.Now().UnixMilli()
	abs := time.Now().AddDate(50, 0, 0).UnixMilli() // benchmarks must never see an expiry
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + strings.Repeat("x", 120) + ".sig"
	start := time.Now()
	for lo := 0; lo < n; lo += benchBatch {
		batch := make([]*store.Session, 0, benchBatch)
		for i := lo; i < min(lo+benchBatch, n); i++ {
			id := benchID(i)
			batch = append(batch, &store.Session{
				ID: id, UserID: fmt.Sprint(i % 100_000), Host: "a.localhost", Audience: []string{"a.localhost", "*.example.com"},
				JWT: sealer.Seal(jwt, id), UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now,
				HostsLastSeen: map[string]int64{"a.localhost": now}, IdleTimeoutMs: 1_800_000, Sliding: true,
				ExpiresAt: abs, AbsoluteExpiresAt: abs,
			})
		}
		if err := s.Import(b.Context(), batch); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	b.Logf("seeded %d sessions in %s", n, time.Since(start).Round(time.Millisecond))
}

type benchEnv struct {
	url    string
	client *http.Client
	n      int
	// parallelism is b.SetParallelism's (8: 16 clients on 2 cores, as behind a busy Traefik).
	parallelism int
}

func openBench(b *testing.B, backend string, n int) *benchEnv {
	b.Helper()
	if backend == "mongo" {
		m, err := mongo.Open(b.Context(), mongo.Options{URI: ferret.SharedURI(b), Database: ferret.DBName("bench")})
		if err != nil {
			b.Fatal(err)
		}
		env := serveBench(b, m, n)
		b.Cleanup(func() { _ = m.Drop(context.Background()) }) // before serveBench's clean-up
		// FerretDB v1 on SQLite scans the collection on every lookup and serialises writes: 16
		// clients only queue behind each other past the store's call timeout (503). Two clients.
		env.parallelism = 1
		return env
	}
	if backend == "postgres" {
		return serveBench(b, openBenchPostgres(b, n), n)
	}
	return serveBench(b, openBenchBolt(b, n), n)
}

// pgBench holds one cluster per session count for the whole run, so that each benchmark's repeated
// calls (b.N growing) seed it once; StopBenchClusters removes them.
var pgBench = map[int]*pgtest.Cluster{}

func openBenchPostgres(b *testing.B, n int) importer {
	b.Helper()
	if n >= 1_000_000 && testing.Short() {
		b.Skip("1M sessions: not in -short mode")
	}
	var url string
	switch {
	case !pgtest.IsThrowaway():
		url = pgtest.NewDatabase(b, pgtest.SharedServer(b))
	case pgBench[n] != nil:
		url = pgBench[n].URL("postgres")
	default:
		c, err := pgtest.Start(b, "fsync=on", "synchronous_commit=on", "full_page_writes=on")
		if err != nil {
			b.Fatal(err)
		}
		pgBench[n] = c
		url = c.URL("postgres")
	}
	s, err := postgres.Open(b.Context(), postgres.Options{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// stopBenchClusters removes the benchmarks' clusters (TestMain).
func stopBenchClusters() {
	for _, c := range pgBench {
		c.Remove()
	}
}

func openBenchBolt(b *testing.B, n int) importer {
	b.Helper()
	path := filepath.Join(b.TempDir(), "sessions.db")
	if n >= 1_000_000 {
		if testing.Short() {
			b.Skip("1M sessions: not in -short mode")
		}
		home, err := os.UserHomeDir()
		if err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(home, ".cache", "strapi-access-proxy", "bench", fmt.Sprintf("sessions-%d-v1.db", n))
	}
	s, err := bolt.Open(path, bolt.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return boltImporter{s}
}

func serveBench(b *testing.B, s importer, n int) *benchEnv {
	b.Helper()
	seed(b, s, n)
	sealer, _ := crypto.New(benchKey)
	reg := prometheus.NewRegistry()
	handler := New(Config{Backend: s, Sealer: sealer, Token: testToken, Registry: reg, Metrics: NewMetrics(reg, s)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	b.Cleanup(func() {
		_ = srv.Close()
		tr.CloseIdleConnections()
		_ = s.Close()
	})
	return &benchEnv{url: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}, n: n}
}

func (e *benchEnv) run(b *testing.B, method, suffix, body string) {
	if e.parallelism == 0 {
		e.parallelism = 8
	}
	b.SetParallelism(e.parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		auth := "Bearer " + testToken
		for pb.Next() {
			var r io.Reader
			if body != "" {
				r = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, e.url+"/v1/sessions/"+benchID(rng.IntN(e.n))+suffix, r)
			req.Header.Set("Authorization", auth)
			resp, err := e.client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: status %d", method, resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

var benchCases = []struct {
	backend string
	n       int
}{{"bolt", 10_000}, {"bolt", 1_000_000}, {"mongo", 10_000}, {"postgres", 10_000}, {"postgres", 1_000_000}}

// benchName keeps the historical names of the bolt runs (sessions=N) and adds backend=mongo|postgres.
func benchName(backend string, n int) string {
	if backend == "bolt" {
		return fmt.Sprintf("sessions=%d", n)
	}
	return fmt.Sprintf("backend=%s/sessions=%d", backend, n)
}

func BenchmarkGet(b *testing.B) {
	for _, c := range benchCases {
		b.Run(benchName(c.backend, c.n), func(b *testing.B) {
			openBench(b, c.backend, c.n).run(b, http.MethodGet, "", "")
		})
	}
}

func BenchmarkTouch(b *testing.B) {
	for _, c := range benchCases {
		b.Run(benchName(c.backend, c.n), func(b *testing.B) {
			openBench(b, c.backend, c.n).run(b, http.MethodPost, "/touch", `{"host":"b.localhost","idleTimeoutMs":1800000,"sliding":true}`)
		})
	}
}
