package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	pgtest "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

// TestPostgresReplicas runs two servers on one PostgreSQL database (a throwaway cluster unless
// ACCESSPROXY_TEST_POSTGRES_URL is set): what one writes the other sees at once, a long-poll of
// the change feed on one is woken by the other's revocation (LISTEN/NOTIFY) and answers it before
// its wait ends, and the admin CLI works on the database directly while they run.
func TestPostgresReplicas(t *testing.T) {
	url := pgtest.NewDatabase(t, pgtest.SharedServer(t))
	args := []string{"--backend", "postgres"}
	env := []string{"SESSIONSTORE_POSTGRES_URL=" + url} // never on a command line: it may hold a password
	a := startServerArgs(t, keyA, append(args, "--postgres-url", url)...)
	b := startServerArgs(t, keyA, append(args, "--postgres-url", url)...)

	s := a.create("7", jwtMarker, "refresh-1")
	status, raw := b.call("GET", "/v1/sessions/"+s.ID, nil)
	var got struct{ Session session }
	if status != 200 || json.Unmarshal(raw, &got) != nil || got.Session.StrapiJWT != jwtMarker {
		t.Fatalf("GET on the other replica = %d %s", status, raw)
	}
	for _, srv := range []*server{a, b} {
		if status, raw := srv.call("POST", "/v1/counters/login:ip:1/incr", map[string]any{"windowMs": 60000, "by": 1}); status != 200 {
			t.Fatalf("incr = %d %s", status, raw)
		}
	}
	if status, raw := a.call("POST", "/v1/counters/login:ip:1/incr", map[string]any{"windowMs": 60000, "by": 0}); status != 200 || !strings.Contains(string(raw), `"count":2`) {
		t.Fatalf("counter over both replicas = %d %s", status, raw)
	}

	_, raw = b.call("GET", "/v1/changes", nil)
	var feed struct{ Seq int64 }
	if err := json.Unmarshal(raw, &feed); err != nil {
		t.Fatal(err)
	}
	type poll struct {
		status int
		raw    []byte
		at     time.Time
	}
	polled := make(chan poll, 1)
	start := time.Now()
	go func() {
		st, r := b.call("GET", "/v1/changes?since="+strconv.FormatInt(feed.Seq, 10)+"&waitMs=30000", nil)
		polled <- poll{st, r, time.Now()}
	}()
	code, out, errOut := runCLI(t, append(env, "SESSIONSTORE_BACKEND=postgres"), "sessions", "list", "--user", "7")
	if code != 0 || !strings.Contains(out, s.ID) || strings.Contains(out, jwtMarker) {
		t.Fatalf("CLI list = %d %q %q", code, out, errOut)
	}
	if status, raw := a.call("DELETE", "/v1/users/7/sessions", nil); status != 200 || !strings.Contains(string(raw), `"deleted":1`) {
		t.Fatalf("revoke = %d %s", status, raw)
	}
	p := <-polled
	if p.status != 200 || !strings.Contains(string(p.raw), s.ID) || !strings.Contains(string(p.raw), `"kind":"user"`) {
		t.Fatalf("long-poll on the other replica = %d %s", p.status, p.raw)
	}
	if p.at.Sub(start) >= 30*time.Second {
		t.Fatal("the long-poll answered only at the end of its wait")
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

// TestPostgresNewerSchema: a database migrated by a newer store is refused at start with one line
// naming both versions, exit 1, without waiting out the startup timeout.
func TestPostgresNewerSchema(t *testing.T) {
	url := pgtest.NewDatabase(t, pgtest.SharedServer(t))
	s := startServerArgs(t, keyA, "--backend", "postgres", "--postgres-url", url)
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), `UPDATE schema_version SET version = 99`)
	_ = conn.Close(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cmd := command([]string{"--listen", "127.0.0.1:0", "--backend", "postgres"},
		"SESSIONSTORE_TOKEN="+testToken, "SESSIONSTORE_ENCRYPTION_KEY="+keyA, "SESSIONSTORE_POSTGRES_URL="+url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	msg := stderr.String()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || strings.Count(msg, "\n") != 1 ||
		!strings.Contains(msg, "database schema version 99 is newer than this sessionstore knows") {
		t.Fatalf("start on a newer schema = %v, stderr %q; want exit 1 and one line", err, msg)
	}
}
