package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
)

// TestMongoReplicas runs two servers on one MongoDB database (FerretDB unless
// ACCESSPROXY_TEST_MONGO_URI is set): what one writes, the other sees at once (no state in the
// process), and the admin CLI works on the database directly while they run.
func TestMongoReplicas(t *testing.T) {
	uri := ferret.SharedURI(t)
	db := ferret.DBName("cmd")
	args := []string{"--backend", "mongo", "--mongo-uri", uri, "--mongo-database", db}
	a := startServerArgs(t, keyA, args...)
	b := startServerArgs(t, keyA, args...)

	s := a.create("7", jwtMarker, "refresh-1")
	status, raw := b.call("GET", "/v1/sessions/"+s.ID, nil)
	var got struct{ Session session }
	if status != 200 || json.Unmarshal(raw, &got) != nil || got.Session.StrapiJWT != jwtMarker {
		t.Fatalf("GET on the other replica = %d %s", status, raw)
	}
	if status, raw := b.call("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "b.localhost", "idleTimeoutMs": 60000, "sliding": true}); status != 200 {
		t.Fatalf("touch = %d %s", status, raw)
	}
	if status, raw := a.call("POST", "/v1/counters/login:ip:1/incr", map[string]any{"windowMs": 60000, "by": 1}); status != 200 {
		t.Fatalf("incr = %d %s", status, raw)
	}
	status, raw = b.call("POST", "/v1/counters/login:ip:1/incr", map[string]any{"windowMs": 60000, "by": 1})
	if status != 200 || !strings.Contains(string(raw), `"count":2`) {
		t.Fatalf("incr on the other replica = %d %s", status, raw)
	}
	env := []string{"SESSIONSTORE_BACKEND=mongo", "SESSIONSTORE_MONGO_URI=" + uri, "SESSIONSTORE_MONGO_DATABASE=" + db}
	code, out, errOut := runCLI(t, env, "sessions", "list", "--user", "7")
	if code != 0 || !strings.Contains(out, s.ID) || strings.Contains(out, jwtMarker) {
		t.Fatalf("CLI list = %d %q %q", code, out, errOut)
	}
	if status, raw := a.call("DELETE", "/v1/users/7/sessions", nil); status != 200 || !strings.Contains(string(raw), `"deleted":1`) {
		t.Fatalf("revoke = %d %s", status, raw)
	}
	if status, _ := b.call("GET", "/v1/sessions/"+s.ID, nil); status != 404 {
		t.Fatalf("GET after revoke on the other replica = %d", status)
	}
	if status, raw := b.call("GET", "/healthz", nil); status != 200 {
		t.Fatalf("healthz = %d %s", status, raw)
	}
	for _, srv := range []*server{a, b} {
		if err := srv.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, srv.logs)
		}
	}
}
