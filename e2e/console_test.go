package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// The operator console (sessionstore --console-listen) in a real headless Chromium (Debian's, driven
// over the DevTools protocol with chromedp), with Traefik and the plugin in front of the real Strapi:
// alice logs in twice through Traefik, an operator signs in to the console, finds her, revokes one
// session in the page; that token is refused through Traefik at once, the other still works. A
// wrong console token is refused, and hostile text (a username registered in Strapi, a User-Agent)
// renders as text. ACCESSPROXY_CONSOLE_SCREENSHOTS=DIR writes the three pages as PNG into DIR.

const hostileName = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// chromiumPath finds Debian's chromium, installing it through scripts/ensure-chromium.sh when missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "ensure-chromium.sh")).Output()
	if err != nil {
		t.Fatalf("chromium: scripts/ensure-chromium.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// sidOf reads the sid claim of a proxy token.
func sidOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Sid string }
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Sid == "" {
		t.Fatalf("no sid in %q", token)
	}
	return c.Sid
}

//nolint:funlen,gocyclo // one browser session, step by step
func TestConsole(t *testing.T) {
	st := needStrapi(t)
	chrome := chromiumPath(t)
	consoleToken := harness.RandomString(32)
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	consoleURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	store, err := harness.StartStoreWith(sharedEnv, harness.StoreOptions{Name: "sessionstore-console", Env: []string{
		fmt.Sprintf("SESSIONSTORE_CONSOLE_LISTEN=127.0.0.1:%d", port), "SESSIONSTORE_CONSOLE_TOKEN=" + consoleToken}})
	if err != nil {
		t.Fatal(err)
	}
	const host = "a.localhost"
	tr, err := harness.StartTraefik(sharedEnv, harness.TraefikOptions{Routers: []harness.Router{
		{Host: host, Upstream: st.URL, Plugin: harness.PluginConfig(store, harness.NewSecret(), map[string]any{"audienceCheck": false, "cacheTTL": "1h"})},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := &strapiStack{strapi: st, store: store, traefik: tr, c: harness.NewClient(tr.URL()), direct: harness.NewClient(st.URL)}
	checkLogAtEnd(t, tr)

	// alice logs in twice through Traefik (two browsers), and both tokens work.
	body := map[string]string{"identifier": "alice@example.com", "password": "Alice-passw0rd"}
	r := do(t, s.c, "POST", host, "/api/auth/local", "", body, "User-Agent", uaChromeMac)
	expectStatus(t, r, 200, "alice's first login")
	tok1 := r.JSON()["jwt"].(string)
	r = do(t, s.c, "POST", host, "/api/auth/local", "", body, "User-Agent", uaFirefoxLinux)
	expectStatus(t, r, 200, "alice's second login")
	tok2 := r.JSON()["jwt"].(string)
	sid1, sid2 := sidOf(t, tok1), sidOf(t, tok2)
	for _, tok := range []string{tok1, tok2} {
		expectStatus(t, do(t, s.c, "GET", host, "/api/users/me", tok, nil), 200, "alice's token before the revocation")
	}
	// A hostile username registered at Strapi, logged in with a hostile User-Agent.
	hostileUser := fmt.Sprintf("%s%d", hostileName, time.Now().UnixNano()%1e6)
	email := fmt.Sprintf("hostile%d@example.com", time.Now().UnixNano()%1e9)
	r = do(t, s.direct, "POST", "", "/api/auth/local/register", "", map[string]string{"username": hostileUser, "email": email, "password": "Hostile-passw0rd"})
	expectStatus(t, r, 200, "registering a hostile username at Strapi")
	r = do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": email, "password": "Hostile-passw0rd"},
		"User-Agent", `<script>alert(3)</script> Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 <img src=x onerror=alert(4)>`)
	expectStatus(t, r, 200, "the hostile user's login")
	// A failed login, for the audit trail.
	r = do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": "alice@example.com", "password": "wrong"})
	expectStatus(t, r, 400, "a wrong password")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 860))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	// An alert() that ran would hold the page (a JavaScript dialog) and time the next action out.
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	evalInt := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	path := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// A wrong console token is refused; the pages stay behind the sign-in.
	run("wrong token", chromedp.Navigate(consoleURL+"/users"), chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), "wrong-"+consoleToken), chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(".error")))
	if p, msg := path(), text(".error"); p != "/login" || !strings.Contains(msg, "Wrong console token") {
		t.Fatalf("after a wrong token: %s %q", p, msg)
	}
	run("signed out", chromedp.Navigate(consoleURL+"/audit"), chromedp.WaitVisible(css("#token")))
	if p := path(); p != "/login" {
		t.Fatalf("the audit page signed out: %s", p)
	}

	// Sign in, see the overview.
	shots := os.Getenv("ACCESSPROXY_CONSOLE_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("sign in", chromedp.SendKeys(css("#token"), consoleToken), chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("#live-total")))
	if live := text("#live-total"); live != "3" {
		t.Fatalf("live sessions = %q, want 3", live)
	}
	shot("console-overview.png")

	// Find alice, revoke her first session in the page.
	run("search", chromedp.Navigate(consoleURL+"/users"), chromedp.WaitVisible(css("#q")),
		chromedp.SendKeys(css("#q"), "ALICE"), chromedp.Submit(css("#q")),
		chromedp.WaitVisible(css("#matches a")), chromedp.Click(css("#matches a")), chromedp.WaitVisible(css("#sessions")))
	if name := text("#user-name"); name != "alice" {
		t.Fatalf("username shown %q", name)
	}
	rows := evalInt(`document.querySelectorAll('#sessions tr[data-session]').length`)
	devices := text("#sessions tbody")
	if rows != 2 || !strings.Contains(devices, "Chrome on macOS") || !strings.Contains(devices, "Firefox on Linux") || !strings.Contains(devices, "127.0.0.1") {
		t.Fatalf("alice's sessions: %d rows\n%s", rows, devices)
	}
	shot("console-users.png")
	run("revoke", chromedp.Click(css(`tr[data-session="`+sid1+`"] button`)), chromedp.WaitVisible(css(".flash")))
	if rows := evalInt(`document.querySelectorAll('#sessions tr[data-session]').length`); rows != 1 ||
		evalInt(`document.querySelectorAll('tr[data-session="`+sid2+`"]').length`) != 1 {
		t.Fatalf("after the revocation: %d rows, the other one not among them", rows)
	}
	// Through Traefik: the revoked token is refused (the change feed told the plugin, whose cache
	// would otherwise keep it for an hour), the other works.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = do(t, s.c, "GET", host, "/api/users/me", tok1, nil)
		if r.Status == 401 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectStatus(t, r, 401, "the token revoked in the console")
	expectStatus(t, do(t, s.c, "GET", host, "/api/users/me", tok2, nil), 200, "alice's other token")

	// Hostile text renders as text: the username in search, on the user page and in the audit trail.
	noInjection := func(where string) {
		t.Helper()
		if n := evalInt(`document.querySelectorAll('script, img, [onerror]').length`); n != 0 {
			t.Fatalf("%s: %d injected element(s)", where, n)
		}
	}
	run("hostile search", chromedp.Navigate(consoleURL+"/users?q="+url.QueryEscape(hostileUser[:8])), chromedp.WaitVisible(css("#matches")))
	if name := text("#matches .username"); name != hostileUser {
		t.Fatalf("hostile username shown as %q, want %q", name, hostileUser)
	}
	noInjection("search")
	run("hostile user", chromedp.Click(css("#matches a")), chromedp.WaitVisible(css("#sessions")))
	if name := text("#user-name"); name != hostileUser {
		t.Fatalf("hostile user page shows %q", name)
	}
	noInjection("user page")
	run("audit", chromedp.Navigate(consoleURL+"/audit"), chromedp.WaitVisible(css("#events")))
	audit := text("#events")
	for _, want := range []string{"login_failed", "revoked", "console", hostileUser, "Chrome on macOS"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("the audit page lacks %q:\n%s", want, audit)
		}
	}
	noInjection("audit")
	shot("console-audit.png")
}
