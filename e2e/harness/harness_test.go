package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The harness's own checks: a store survives SIGKILL and SIGTERM restarts on its file; the fake
// Strapi answers like Strapi; the benchmark doc section is replaced in place.

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestHarnessStoreRestart(t *testing.T) {
	env := ForTest(t)
	s, err := StartStore(env)
	if err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Healthy() {
		t.Fatal("store healthy after SIGKILL")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if !s.Healthy() {
		t.Fatal("store not healthy after restart")
	}
	pid := s.Proc().Pid()
	env.Close()
	if _, err := os.Stat(filepath.Join("/proc", itoa(pid))); err == nil {
		if raw, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat")); !strings.Contains(string(raw), ") Z") {
			t.Fatalf("store process %d still running after Close", pid)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestHarnessFakeStrapi(t *testing.T) {
	env := ForTest(t)
	f, err := StartFakeStrapi(env, []FakeUser{{ID: 7, Username: "ann", Email: "ann@example.com", Password: "pw", Audience: "a.localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(f.URL)
	r, err := c.Do("POST", "", "/api/auth/local", "", map[string]string{"identifier": "ann@example.com", "password": "pw"})
	if err != nil || r.Status != 200 {
		t.Fatalf("login: %v %v", r, err)
	}
	var b struct {
		JWT  string         `json:"jwt"`
		User map[string]any `json:"user"`
	}
	_ = json.Unmarshal(r.Body, &b)
	if f.IssuedTo(b.JWT) != "ann" || !VerifyHS256(b.JWT, f.Secret) || b.User["audience"] != "a.localhost" {
		t.Fatalf("login body %s", r.Body)
	}
	if _, c2, err := DecodeJWT(b.JWT); err != nil || c2["id"].(json.Number).String() != "7" {
		t.Fatalf("jwt claims %v %v", c2, err)
	}
	r, _ = c.Do("POST", "", "/api/auth/local", "", map[string]string{"identifier": "ann", "password": "no"})
	if err := r.ErrorShape(400, "ValidationError"); err != nil {
		t.Fatal(err)
	}
	r, _ = c.Do("GET", "x.localhost", "/api/x", b.JWT, nil, "X-Auth-User-Id", "1")
	var e Echo
	_ = json.Unmarshal(r.Body, &e)
	if e.Authorization != "Bearer "+b.JWT || e.AuthHeaders["X-Auth-User-Id"] != "1" || e.Host != "x.localhost" || f.Received() != 1 {
		t.Fatalf("echo %+v", e)
	}
}
