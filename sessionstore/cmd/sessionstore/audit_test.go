package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAuditCLI: `audit list` reads the trail from a running server and from the file, with its filters.
func TestAuditCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	srv := startServer(t, path, keyA)
	a := srv.create("42", jwtMarker, "rt-a")
	srv.create("43", jwtMarker, "")
	if st, raw := srv.call("DELETE", "/v1/sessions/"+a.ID+"?family=1", nil); st != 200 {
		t.Fatalf("delete = %d %s", st, raw)
	}
	code, out, stderr := runCLI(t, nil, "audit", "list", "--server", srv.url, "--token", testToken)
	if code != 0 || !strings.Contains(out, "3 event(s)") || !strings.Contains(out, "revoked") || !strings.Contains(out, "login") {
		t.Fatalf("audit list = %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "audit", "list", "--user", "43", "--since", "1h", "--json", "--server", srv.url, "--token", testToken)
	var body struct {
		Events []struct{ Kind, UserID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &body) != nil || len(body.Events) != 1 || body.Events[0].UserID != "43" {
		t.Fatalf("audit list --user 43 = %d %s", code, out)
	}
	for _, bad := range [][]string{{"audit"}, {"audit", "list", "--kind", "nope"}, {"audit", "list", "--since", "-1h"}, {"audit", "list", "--limit", "0"}} {
		if code, _, _ := runCLI(t, nil, append(bad, "--server", srv.url, "--token", testToken)...); code != exitUsage {
			t.Fatalf("%v = %d, want %d", bad, code, exitUsage)
		}
	}
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, nil, "audit", "list", "--kind", "login", "--bolt-path", path)
	if code != 0 || !strings.Contains(out, "2 event(s)") {
		t.Fatalf("audit list from the file = %d\n%s%s", code, out, stderr)
	}
}

// TestConsoleServed: --console-listen serves the console, which needs --console-token.
func TestConsoleServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	if code, _, stderr := runCLI(t, []string{"SESSIONSTORE_TOKEN=" + testToken, "SESSIONSTORE_ENCRYPTION_KEY=" + keyA},
		"--bolt-path", path, "--console-listen", "127.0.0.1:0", "--console-token", "short"); code != exitUsage || !strings.Contains(stderr, "console-token") {
		t.Fatalf("short console token = %d %s", code, stderr)
	}
	ctoken := strings.Repeat("c", 40)
	cmd := command([]string{"--listen", "127.0.0.1:0", "--bolt-path", path, "--console-listen", "127.0.0.1:0"},
		"SESSIONSTORE_TOKEN="+testToken, "SESSIONSTORE_ENCRYPTION_KEY="+keyA, "SESSIONSTORE_CONSOLE_TOKEN="+ctoken)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "console listening" {
				addr <- rec.Addr
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("console did not start")
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if resp.Request.URL.Path != "/login" || m == nil {
		t.Fatalf("signed out / = %s %s", resp.Request.URL, page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "token": {ctoken}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Live sessions") {
		t.Fatalf("after sign-in: %d %s", resp.StatusCode, page)
	}
}
