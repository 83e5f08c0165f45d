package main

// These tests build the real binary and run it as a process: startup validation, durability
// across SIGKILL, a wrong key on restart, graceful SIGTERM, and the admin CLI.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
	pgtest "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sessionstore-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sessionstore")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	ferret.StopShared()
	pgtest.StopShared()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testToken = "cli-test-token-0123456789abcdef0123456789"
	jwtMarker = "eyJ.SECRET-STRAPI-JWT"
)

var (
	keyA = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA1}, 32))
	keyB = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xB2}, 32))
)

// command returns the binary with a clean SESSIONSTORE_* environment plus env.
func command(args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(binPath, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// lockedBuffer collects a process's stderr while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan error
}

// startServer runs the server on a free port with the bolt file at path and the key, and waits
// for its "listening" log line.
func startServer(t *testing.T, path, key string) *server {
	t.Helper()
	return startServerArgs(t, key, "--bolt-path", path)
}

// startServerArgs runs the server on a free port with the key and args.
func startServerArgs(t *testing.T, key string, args ...string) *server {
	t.Helper()
	cmd := command(append([]string{"--listen", "127.0.0.1:0"}, args...),
		"SESSIONSTORE_TOKEN="+testToken, "SESSIONSTORE_ENCRYPTION_KEY="+key)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: &lockedBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintln(s.logs, line)
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-s.done:
		t.Fatalf("server exited: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start\n%s", s.logs)
	}
	return s
}

// stop sends sig and returns the exit error.
func (s *server) stop(sig os.Signal) error {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		s.t.Fatal("server did not exit")
		return nil
	}
}

func (s *server) call(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

type session struct {
	ID            string           `json:"id"`
	StrapiJWT     string           `json:"strapiJwt"`
	HostsLastSeen map[string]int64 `json:"hostsLastSeen"`
}

func (s *server) create(user, jwt string, refresh string) session {
	s.t.Helper()
	q := map[string]any{"userId": user, "host": "a.localhost", "audience": []string{"a.localhost"}, "strapiJwt": jwt,
		"strapiRefresh": "up-" + jwt, "idleTimeoutMs": 3_600_000, "sliding": true, "absoluteExpiresAt": time.Now().Add(2 * time.Hour).UnixMilli()}
	if refresh != "" {
		h := sha256.Sum256([]byte(refresh))
		q["refresh"] = map[string]any{"tokenHash": hex.EncodeToString(h[:]), "expiresAt": time.Now().Add(2 * time.Hour).UnixMilli()}
	}
	status, raw := s.call("POST", "/v1/sessions", q)
	var out struct{ Session session }
	if status != 201 || json.Unmarshal(raw, &out) != nil {
		s.t.Fatalf("create = %d %s", status, raw)
	}
	return out.Session
}

func TestStartupValidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	cases := []struct {
		name string
		args []string
		env  []string
		want string // in the one line on stderr
	}{
		{"no token", []string{"--encryption-key", keyA}, nil, "--token"},
		{"short token", []string{"--token", "short-token-31-bytes-long-xxxxx", "--encryption-key", keyA}, nil, "at least 32 bytes"},
		{"short token from env", []string{"--encryption-key", keyA}, []string{"SESSIONSTORE_TOKEN=short"}, "--token"},
		{"no key", []string{"--token", testToken}, nil, "--encryption-key"},
		{"key not base64", []string{"--token", testToken, "--encryption-key", "not*base64*at*all"}, nil, "not valid base64"},
		{"short key", []string{"--token", testToken}, []string{"SESSIONSTORE_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "32 bytes"},
		{"mongo", []string{"--token", testToken, "--encryption-key", keyA, "--backend", "mongo"}, nil, "--mongo-uri"},
		{"mongo from env", []string{"--token", testToken, "--encryption-key", keyA}, []string{"SESSIONSTORE_BACKEND=mongo"}, "--mongo-uri"},
		{"unknown backend", []string{"--token", testToken, "--encryption-key", keyA, "--backend", "redis"}, nil, "--backend"},
		{"zero change max", []string{"--token", testToken, "--encryption-key", keyA, "--change-max", "0"}, nil, "--change-max"},
		{"zero change retention", []string{"--token", testToken, "--encryption-key", keyA}, []string{"SESSIONSTORE_CHANGE_RETENTION=0s"}, "--change-retention"},
		{"bad env duration", []string{"--token", testToken, "--encryption-key", keyA}, []string{"SESSIONSTORE_SWEEP_INTERVAL=soon"}, "SESSIONSTORE_SWEEP_INTERVAL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(append(tc.args, "--bolt-path", path, "--listen", "127.0.0.1:0"), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit = %v, want code 2; stderr: %s", err, stderr.String())
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.Contains(out, tc.want) {
				t.Fatalf("stderr = %q, want one line containing %q", out, tc.want)
			}
			if strings.Contains(out, keyA) || strings.Contains(out, testToken) {
				t.Fatalf("stderr leaks a secret: %q", out)
			}
		})
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused start created the database: %v", err)
	}
}

// TestDurabilityAfterSIGKILL: every 201 means the session is on disk, every 200 of a touch (single
// or batched) that its use is, every 200 of a revocation that the session is gone and the change
// feed names it.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sessions.db")
	srv := startServer(t, path, keyA)
	const n = 200
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ids[i] = srv.create(fmt.Sprintf("u%d", i%10), fmt.Sprintf("%s-%d", jwtMarker, i), "").ID
			}
		})
	}
	wg.Wait()
	// Concurrent single touches (grouped into shared transactions) and batches, then revocations.
	for w := range 8 {
		wg.Go(func() {
			var batch []map[string]any
			for i := w; i < n; i += 8 {
				if (i/8)%2 == 0 {
					if status, raw := srv.call("POST", "/v1/sessions/"+ids[i]+"/touch", map[string]any{"host": "touched.localhost"}); status != 200 {
						t.Errorf("touch %d: %d %s", i, status, raw)
					}
				} else {
					batch = append(batch, map[string]any{"id": ids[i], "host": "touched.localhost"})
				}
			}
			if status, raw := srv.call("POST", "/v1/touches", map[string]any{"touches": batch}); status != 200 {
				t.Errorf("touches: %d %s", status, raw)
			}
		})
	}
	wg.Wait()
	const revoked = 10
	for i := range revoked {
		if status, raw := srv.call("DELETE", "/v1/sessions/"+ids[i], nil); status != 200 {
			t.Fatalf("revoke %d: %d %s", i, status, raw)
		}
	}
	if err := srv.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: process exited cleanly?")
	}

	srv = startServer(t, path, keyA)
	for i, id := range ids {
		status, raw := srv.call("GET", "/v1/sessions/"+id, nil)
		if i < revoked {
			if status != 404 {
				t.Fatalf("revoked session %d after SIGKILL: %d %s", i, status, raw)
			}
			continue
		}
		var out struct{ Session session }
		if status != 200 || json.Unmarshal(raw, &out) != nil || out.Session.StrapiJWT != fmt.Sprintf("%s-%d", jwtMarker, i) ||
			out.Session.HostsLastSeen["touched.localhost"] == 0 {
			t.Fatalf("session %d after SIGKILL: %d %s", i, status, raw)
		}
	}
	status, raw := srv.call("GET", "/v1/changes?since=0", nil)
	var feed struct {
		Seq     int64
		Changes []struct{ SessionIDs []string }
	}
	if status != 200 || json.Unmarshal(raw, &feed) != nil || feed.Seq != revoked || len(feed.Changes) != revoked {
		t.Fatalf("change feed after SIGKILL: %d %s", status, raw)
	}
	for i, c := range feed.Changes {
		if len(c.SessionIDs) != 1 || c.SessionIDs[0] != ids[i] {
			t.Fatalf("change %d after SIGKILL: %v, want %s", i, c.SessionIDs, ids[i])
		}
	}
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, srv.logs)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop logged:\n%s", srv.logs)
	}
}

func TestWrongKeyOnRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	srv := startServer(t, path, keyA)
	s := srv.create("12", jwtMarker, "refresh-token-plain")
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	srv = startServer(t, path, keyB)
	for range 3 {
		status, raw := srv.call("GET", "/v1/sessions/"+s.ID, nil)
		if status != 500 || !strings.Contains(string(raw), `"code":"internal"`) || strings.Contains(string(raw), "SECRET") {
			t.Fatalf("read with the wrong key = %d %s, want 500 internal", status, raw)
		}
	}
	h := sha256.Sum256([]byte("refresh-token-plain"))
	status, raw := srv.call("POST", "/v1/refresh", map[string]any{"tokenHash": hex.EncodeToString(h[:]), "newTokenHash": strings.Repeat("b", 64),
		"host": "a.localhost", "idleTimeoutMs": 1000, "sliding": true, "maxLifetimeMs": 1000})
	if status != 500 || !strings.Contains(string(raw), `"code":"internal"`) {
		t.Fatalf("rotation with the wrong key = %d %s, want 500 internal", status, raw)
	}
	if status, _ := srv.call("GET", "/healthz", nil); status != 200 {
		t.Fatalf("server unhealthy after decrypt failures: %d", status)
	}
	// Metadata stays readable without the key.
	if status, raw := srv.call("GET", "/v1/users/12/sessions", nil); status != 200 || !strings.Contains(string(raw), s.ID) {
		t.Fatalf("list = %d %s", status, raw)
	}
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, "cannot decrypt") {
		t.Fatalf("decrypt failure not logged:\n%s", logs)
	}
	for _, secret := range []string{jwtMarker, "SECRET", "refresh-token-plain", testToken, keyA, keyB, s.ID} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := command(args, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestAdminCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	srv := startServer(t, path, keyA)
	a := srv.create("42", jwtMarker, "rt-a")
	b := srv.create("42", jwtMarker, "")
	c := srv.create("43", jwtMarker, "")
	status, raw := srv.call("POST", "/v1/sessions", map[string]any{"userId": "44", "host": "a.localhost", "audience": []string{},
		"strapiJwt": jwtMarker, "deviceId": "5b0f7e3c-9d2a", "deviceName": "Firefox on macOS", "clientAddr": "2001:db8::7", "rememberMe": true,
		"idleTimeoutMs": 3_600_000, "sliding": true, "absoluteExpiresAt": time.Now().Add(2 * time.Hour).UnixMilli()})
	if status != 201 {
		t.Fatalf("create with a device = %d %s", status, raw)
	}

	// The file is locked while the server runs: a clear pointer to --server.
	code, _, stderr := runCLI(t, nil, "sessions", "list", "--user", "42", "--bolt-path", path)
	if code != 1 || !strings.Contains(stderr, "--server") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("list on a locked file = %d %q", code, stderr)
	}
	code, out, stderr := runCLI(t, []string{"SESSIONSTORE_SERVER=" + srv.url, "SESSIONSTORE_TOKEN=" + testToken}, "sessions", "list", "--user", "42")
	if code != 0 || !strings.Contains(out, a.ID) || !strings.Contains(out, b.ID) || strings.Contains(out, c.ID) || !strings.Contains(out, "2 session(s)") || strings.Contains(out, "SECRET") {
		t.Fatalf("list via server = %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, nil, "sessions", "list", "--user", "44", "--server", srv.url, "--token", testToken)
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 2 ||
		!strings.Contains(lines[0], "USER  DEVICE         DEVICE NAME       LOGIN ADDR   LAST ADDR    REMEMBER  HOST") ||
		!strings.Contains(lines[1], "44    5b0f7e3c-9d2a  Firefox on macOS  2001:db8::7  2001:db8::7  yes       a.localhost") {
		t.Fatalf("list of a device's session = %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "sessions", "list", "--user", "42", "--server", srv.url, "--token", testToken)
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 2 || !strings.Contains(lines[1], "42    -       -            -           -          no        a.localhost") {
		t.Fatalf("list without a device = %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "sessions", "revoke", "--session", a.ID, "--server", srv.url, "--token", testToken, "--json")
	if code != 0 || !strings.Contains(out, `"deleted": 1`) {
		t.Fatalf("revoke via server = %d %s", code, out)
	}
	code, _, stderr = runCLI(t, nil, "sessions", "revoke", "--session", a.ID, "--server", srv.url, "--token", testToken)
	if code != 1 || !strings.Contains(stderr, "no live session") {
		t.Fatalf("second revoke = %d %q", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "sessions", "list", "--user", "42", "--server", srv.url, "--token", "wrong-token")
	if code != 1 || !strings.Contains(stderr, "401") {
		t.Fatalf("list with a wrong token = %d %q", code, stderr)
	}
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Directly on the file, no key needed.
	code, out, stderr = runCLI(t, []string{"SESSIONSTORE_BOLT_PATH=" + path}, "sessions", "list", "--user", "42", "--json")
	var list struct{ Sessions []map[string]any }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Sessions) != 1 || list.Sessions[0]["id"] != b.ID || strings.Contains(out, "strapiJwt") {
		t.Fatalf("list on the file = %d %s %s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, []string{"SESSIONSTORE_BOLT_PATH=" + path}, "sessions", "list", "--user", "44", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Sessions) != 1 ||
		list.Sessions[0]["deviceId"] != "5b0f7e3c-9d2a" || list.Sessions[0]["deviceName"] != "Firefox on macOS" ||
		list.Sessions[0]["loginAddr"] != "2001:db8::7" || list.Sessions[0]["lastAddr"] != "2001:db8::7" || list.Sessions[0]["rememberMe"] != true {
		t.Fatalf("list --json of a device's session on the file = %d %s %s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "sessions", "revoke", "--user", "42", "--bolt-path", path)
	if code != 0 || strings.TrimSpace(out) != "revoked 1 session(s)" {
		t.Fatalf("revoke --user on the file = %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "sessions", "revoke", "--session", c.ID, "--bolt-path", path)
	if code != 0 || strings.TrimSpace(out) != "revoked 1 session(s)" {
		t.Fatalf("revoke --session on the file = %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "sessions", "list", "--user", "43", "--bolt-path", path)
	if code != 0 || !strings.Contains(out, "0 session(s)") {
		t.Fatalf("list after revoke = %d %q", code, out)
	}

	for _, args := range [][]string{
		{"sessions"}, {"sessions", "list"}, {"sessions", "revoke"}, {"sessions", "revoke", "--user", "1", "--session", "x"}, {"sessions", "list", "--bogus"},
	} {
		if code, _, _ := runCLI(t, nil, append(args, "--bolt-path", path)...); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestAdminRevokeRotatedAway: `sessions revoke --session` with the id of a session a refresh
// replaced (the id an operator finds in an old log line) ends its refresh family, through the
// server and directly on the file.
func TestAdminRevokeRotatedAway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	srv := startServer(t, path, keyA)
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	rotate := func(srv *server, from, to string) (int, session) {
		t.Helper()
		status, raw := srv.call("POST", "/v1/refresh", map[string]any{"tokenHash": hash(from), "newTokenHash": hash(to),
			"host": "a.localhost", "idleTimeoutMs": 60_000, "sliding": true, "maxLifetimeMs": 3_600_000})
		var out struct{ Session session }
		_ = json.Unmarshal(raw, &out)
		return status, out.Session
	}
	a := srv.create("42", jwtMarker, "rt-a")
	_, a2 := rotate(srv, "rt-a", "rt-a2")
	b := srv.create("42", jwtMarker, "rt-b")
	_, b2 := rotate(srv, "rt-b", "rt-b2")

	code, out, stderr := runCLI(t, nil, "sessions", "revoke", "--session", a.ID, "--server", srv.url, "--token", testToken, "--json")
	var rev struct {
		Deleted    int      `json:"deleted"`
		SessionIDs []string `json:"sessionIds"`
		UserID     string   `json:"userId"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rev) != nil || rev.Deleted != 1 || len(rev.SessionIDs) != 1 || rev.SessionIDs[0] != a2.ID || rev.UserID != "42" {
		t.Fatalf("revoke rotated-away via server = %d %s %s", code, out, stderr)
	}
	if status, _ := rotate(srv, "rt-a2", "rt-a3"); status != 404 {
		t.Fatalf("refresh after revoke = %d, want 404", status)
	}
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	code, out, stderr = runCLI(t, nil, "sessions", "revoke", "--session", b.ID, "--bolt-path", path)
	if code != 0 || strings.TrimSpace(out) != "revoked 1 session(s)" {
		t.Fatalf("revoke rotated-away on the file = %d %q %q", code, out, stderr)
	}
	code, _, stderr = runCLI(t, nil, "sessions", "revoke", "--session", b.ID, "--bolt-path", path)
	if code != 1 || !strings.Contains(stderr, "no live session or refresh family") {
		t.Fatalf("second revoke on the file = %d %q", code, stderr)
	}
	srv = startServer(t, path, keyA)
	if status, _ := srv.call("GET", "/v1/sessions/"+b2.ID, nil); status != 404 {
		t.Fatalf("successor after revoke on the file = %d", status)
	}
	if status, _ := rotate(srv, "rt-b2", "rt-b3"); status != 404 {
		t.Fatalf("refresh after revoke on the file = %d, want 404", status)
	}
}
