package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
)

const testToken = "test-token-0123456789abcdef0123456789abcdef"

// env is an API server over a real bolt file.
type env struct {
	t       *testing.T
	url     string
	backend *bolt.Store
	server  *Server
	metrics *Metrics
	client  *http.Client
	skew    *atomic.Int64 // added to the server's clock (advance)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvLog(t, nil)
}

// newEnvLog is newEnv with the server logging to log (nil: nowhere).
func newEnvLog(t *testing.T, log *slog.Logger) *env {
	t.Helper()
	return newEnvWith(t, Config{Logger: log}, nil)
}

// newEnvWith is newEnv with cfg's optional fields (Logger, MaxFeedWaiters) and, when configure is
// not nil, the http.Server configured by it before it starts.
func newEnvWith(t *testing.T, cfg Config, configure func(*http.Server)) *env {
	t.Helper()
	backend, err := bolt.Open(filepath.Join(t.TempDir(), "sessions.db"), bolt.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, backend)
	skew := new(atomic.Int64)
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	cfg.Backend, cfg.Sealer, cfg.Token, cfg.Registry, cfg.Metrics, cfg.Now = backend, sealer, testToken, reg, m, now
	handler := New(cfg)
	srv := httptest.NewUnstartedServer(handler)
	if configure != nil {
		configure(srv.Config)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := backend.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{t: t, url: srv.URL, backend: backend, server: handler, metrics: m, client: srv.Client(), skew: skew}
}

// advance moves the server's clock forward by d.
func (e *env) advance(d time.Duration) { e.skew.Add(int64(d)) }

// serverNow is the server's clock in Unix milliseconds.
func (e *env) serverNow() int64 { return time.Now().Add(time.Duration(e.skew.Load())).UnixMilli() }

// call sends body (a string, or anything else as JSON) with the test token and returns the status
// and raw response.
func (e *env) call(method, path string, body any) (int, []byte) {
	return e.callAuth(method, path, body, "Bearer "+testToken)
}

func (e *env) callAuth(method, path string, body any, auth string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(path, "/metrics") {
		e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, raw
}

// must calls and decodes a response of the wanted status into out (if not nil).
func (e *env) must(method, path string, body any, want int, out any) {
	e.t.Helper()
	status, raw := e.call(method, path, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

// wantError asserts a JSON error of the given status and code.
func (e *env) wantError(method, path string, body any, status int, code string) {
	e.t.Helper()
	got, raw := e.call(method, path, body)
	var eb errorBody
	if err := json.Unmarshal(raw, &eb); err != nil || got != status || eb.Error.Code != code || eb.Error.Message == "" {
		e.t.Fatalf("%s %s = %d %s, want %d %s", method, path, got, raw, status, code)
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// createReq is a valid create request; refreshToken "" means no refresh family.
func createReq(user, jwt, refreshToken string, idleMs int64, sliding bool, absIn time.Duration) map[string]any {
	q := map[string]any{
		"userId": user, "host": "a.localhost", "audience": []string{"a.localhost", "*.example.com"},
		"strapiJwt": jwt, "strapiRefresh": "up-" + jwt, "idleTimeoutMs": idleMs, "sliding": sliding,
		"absoluteExpiresAt": time.Now().Add(absIn).UnixMilli(),
	}
	if refreshToken != "" {
		q["refresh"] = map[string]any{"tokenHash": hashOf(refreshToken), "expiresAt": time.Now().Add(time.Hour).UnixMilli()}
	}
	return q
}

func (e *env) create(q map[string]any) *Session {
	e.t.Helper()
	var out SessionBody
	e.must("POST", "/v1/sessions", q, http.StatusCreated, &out)
	return out.Session
}

func (e *env) get(id string) (int, *Session) {
	e.t.Helper()
	status, raw := e.call("GET", "/v1/sessions/"+id, nil)
	var out SessionBody
	if status == http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatal(err)
		}
	}
	return status, out.Session
}

func (e *env) count() int64 {
	e.t.Helper()
	n, err := e.backend.SessionCount(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// metric returns the value of one sample line of /metrics (0 when absent).
func (e *env) metric(prefix string) string {
	e.t.Helper()
	_, raw := e.callAuth("GET", "/metrics", nil, "")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" ")
		}
	}
	return "0"
}

func refreshReq(token, next string) map[string]any {
	return map[string]any{"tokenHash": hashOf(token), "newTokenHash": hashOf(next), "host": "b.localhost",
		"idleTimeoutMs": 60_000, "sliding": true, "maxLifetimeMs": 3_600_000}
}
