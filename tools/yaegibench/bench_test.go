// Package yaegibench measures the plugin's per-request cost under Yaegi v0.16.1, the interpreter
// Traefik runs plugins in, without a network: it loads the plugin from the working tree the way
// Traefik's loader does and calls ServeHTTP in a loop. It is a profiling aid for the hot path
// (`go test -bench . -cpuprofile cpu.out`); the numbers that count are `make bench` in real Traefik.
package yaegibench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

const module = "github.com/strapi-access-proxy/accessproxy"

func loadPlugin(b *testing.B) *interp.Interpreter {
	b.Helper()
	gopath := b.TempDir()
	dst := filepath.Join(gopath, "src", module)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob("../../*.go")
	files = append(files, "../../go.mod")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	i := interp.New(interp.Options{GoPath: gopath, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		b.Fatal(err)
	}
	if _, err := i.Eval(`import "` + module + `"`); err != nil {
		b.Fatal(err)
	}
	return i
}

// fakeStore answers the few store calls a warm benchmark makes.
type fakeStore struct {
	mu       sync.Mutex
	sessions map[string]map[string]interface{}
	created  int
}

func (f *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UnixMilli()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v1/sessions" {
		var in map[string]interface{}
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.created++
		id := fmt.Sprintf("%043d", f.created)
		s := map[string]interface{}{"id": id, "userId": in["userId"], "host": in["host"], "audience": in["audience"],
			"strapiJwt": in["strapiJwt"], "upstreamVersion": 1, "createdAt": now, "lastSeenAt": now,
			"hostsLastSeen": map[string]int64{in["host"].(string): now}, "idleTimeoutMs": in["idleTimeoutMs"],
			"sliding": true, "expiresAt": now + 3600000, "absoluteExpiresAt": in["absoluteExpiresAt"]}
		f.sessions[id] = s
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"session": s})
		return
	}
	if r.URL.Path == "/v1/changes" {
		// The feed: nothing ever changes here; a real store holds the poll up to waitMs.
		f.mu.Unlock()
		if r.URL.Query().Get("since") != "" {
			time.Sleep(2 * time.Second)
		}
		f.mu.Lock()
		_, _ = w.Write([]byte(`{"seq":0,"resync":false,"changes":[]}`))
		return
	}
	if r.URL.Path == "/v1/touches" {
		_, _ = w.Write([]byte(`{"sessions":[],"missing":[]}`))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/counters/") {
		var in struct {
			By int64 `json:"by"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		_, _ = w.Write([]byte(`{"count":` + fmt.Sprint(in.By) + `,"resetAt":` + fmt.Sprint(now+60000) + `}`))
		return
	}
	for _, s := range f.sessions {
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"session": s})
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

func strapiJWT() string {
	enc := base64.RawURLEncoding
	payload := fmt.Sprintf(`{"id":7,"iat":%d,"exp":%d}`, time.Now().Unix(), time.Now().Add(24*time.Hour).Unix())
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".sig"
}

type upstream struct{ jwt string }

func (u upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/auth/local" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jwt":"` + u.jwt + `","user":{"id":7,"audience":"bench.localhost"}}`))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func newMiddleware(b *testing.B, i *interp.Interpreter, storeURL string, next http.Handler, settings ...string) http.Handler {
	b.Helper()
	fnCreate, err := i.Eval("accessproxy.CreateConfig")
	if err != nil {
		b.Fatal(err)
	}
	fnNew, err := i.Eval("accessproxy.New")
	if err != nil {
		b.Fatal(err)
	}
	cfg := fnCreate.Call(nil)[0]
	c := cfg.Elem()
	c.FieldByName("Secret").SetString("kP3vX9qL2mZ7wR5tY8nB4cJ6hD1sF0gA-bench")
	c.FieldByName("StoreURL").SetString(storeURL)
	c.FieldByName("StoreToken").SetString("st0re-T0ken-for-yaegi-bench-9f8e7d6c5b4a")
	for k := 0; k+1 < len(settings); k += 2 {
		c.FieldByName(settings[k]).SetString(settings[k+1])
	}
	out := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(next), cfg, reflect.ValueOf("bench")})
	if !out[1].IsNil() {
		b.Fatal(out[1].Interface())
	}
	return out[0].Interface().(http.Handler)
}

func BenchmarkPlugin(b *testing.B) {
	i := loadPlugin(b)
	store := httptest.NewServer(&fakeStore{sessions: map[string]map[string]interface{}{}})
	defer store.Close()
	h := newMiddleware(b, i, store.URL, upstream{jwt: strapiJWT()})

	login := httptest.NewRequest(http.MethodPost, "http://bench.localhost/api/auth/local", strings.NewReader(`{"identifier":"a","password":"b"}`))
	login.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, login)
	var body map[string]interface{}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["jwt"] == nil {
		b.Fatalf("login: %d %s", rec.Code, rec.Body.String())
	}
	auth := "Bearer " + body["jwt"].(string)

	run := func(b *testing.B, h http.Handler, withToken bool) {
		runPath(b, h, withToken, auth, "/api/articles?populate=*")
	}
	b.Run("token", func(b *testing.B) { run(b, h, true) })
	b.Run("anonymous", func(b *testing.B) { run(b, h, false) })
	// A path the fast path leaves to serveSlow (trailing slash: normalized there): the cost of a
	// request whose token is cached but not remembered for the fast path, such as a touch due.
	b.Run("token-slow", func(b *testing.B) { runPath(b, h, true, auth, "/api/articles/") })
	b.Run("token-touch-due", func(b *testing.B) { runTouchDue(b, i, store.URL) })

	// Baseline: an interpreted middleware that only calls next, as a no-op plugin does.
	noop := interp.New(interp.Options{})
	_ = noop.Use(stdlib.Symbols)
	v, err := noop.Eval(`
import "net/http"
type noop struct{ next http.Handler }
func (n *noop) ServeHTTP(rw http.ResponseWriter, req *http.Request) { n.next.ServeHTTP(rw, req) }
func mk(next http.Handler) http.Handler { return &noop{next: next} }`)
	_ = v
	if err != nil {
		b.Fatal(err)
	}
	mk, err := noop.Eval("mk")
	if err != nil {
		b.Fatal(err)
	}
	nh := mk.Call([]reflect.Value{reflect.ValueOf(http.Handler(upstream{}))})[0].Interface().(http.Handler)
	b.Run("noop-plugin", func(b *testing.B) { run(b, nh, true) })
}

func runPath(b *testing.B, h http.Handler, withToken bool, auth, path string) {
	req := httptest.NewRequest(http.MethodGet, "http://bench.localhost"+path, nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if withToken {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.Code != http.StatusOK {
		b.Fatalf("status %d %s", w.Code, w.Body.String())
	}
}

// runTouchDue measures a request whose token this instance remembered but whose sliding touch is
// due: many sessions, each logged in, then each used once after a tenth of the idle window
// (idleTimeout 20s: a touch is due 2 s after login). Run it with -benchtime Nx, N <= 3000.
func runTouchDue(b *testing.B, i *interp.Interpreter, storeURL string) {
	h := newMiddleware(b, i, storeURL, upstream{jwt: strapiJWT()}, "IdleTimeout", "20s", "LoginRateLimit", "1000000/m")
	n := b.N
	auths := make([]string, n)
	for k := range auths {
		login := httptest.NewRequest(http.MethodPost, "http://bench.localhost/api/auth/local", strings.NewReader(`{"identifier":"a","password":"b"}`))
		login.Header.Set("Content-Type", "application/json")
		login.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1234", k/250, k%250)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, login)
		var body map[string]interface{}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["jwt"] == nil {
			b.Fatalf("login %d: %d %s", k, rec.Code, rec.Body.String())
		}
		auths[k] = "Bearer " + body["jwt"].(string)
	}
	time.Sleep(2100 * time.Millisecond)
	req := httptest.NewRequest(http.MethodGet, "http://bench.localhost/api/articles?populate=*", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < n; k++ {
		req.Header.Set("Authorization", auths[k])
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.Code != http.StatusOK {
		b.Fatalf("status %d %s", w.Code, w.Body.String())
	}
}
