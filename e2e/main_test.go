// The end-to-end suite: the real Traefik binary with the plugin loaded as a local plugin (Yaegi),
// a real sessionstore process, and either a fake Strapi (fast, deterministic: proxy_test.go) or the
// real Strapi 5 app of e2e/strapi (strapi_test.go).
package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// sharedEnv holds what lives for the whole test binary run (one Strapi, shared stacks).
var sharedEnv *harness.Env

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "accessproxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sharedEnv, err = harness.NewEnv(dir, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Strapi takes long to start: start it now, in the background, while the fake-Strapi tests run,
	// unless -run selects no Strapi test.
	if run := flag.Lookup("test.run").Value.String(); run == "" || strings.Contains(strings.ToLower(run), "strapi") {
		go startStrapi()
		go startSessionStrapi()
	}
	code := m.Run()
	if code != 0 {
		sharedEnv.DumpLogs(func(s string) { fmt.Fprintln(os.Stderr, s) })
		fmt.Fprintf(os.Stderr, "e2e: working files kept in %s\n", dir)
	}
	sharedEnv.Close()
	harness.Cleanup()
	if code == 0 {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// ---- the shared real Strapi ----

var (
	strapiOnce    sync.Once
	strapiDone    = make(chan struct{})
	sharedStrapi  *harness.Strapi
	strapiErr     error
	strapiStarted time.Duration
)

// The fixture users of the real Strapi.
var strapiUsers = []harness.StrapiUser{
	{Username: "alice", Email: "alice@example.com", Password: "Alice-passw0rd", Audience: "a.localhost", Confirmed: true},
	{Username: "bob", Email: "bob@example.com", Password: "Bob-passw0rd", Audience: "b.localhost", Confirmed: true},
	{Username: "carol", Email: "carol@example.com", Password: "Carol-passw0rd", Audience: "a.localhost, b.localhost", Confirmed: true},
	{Username: "dave", Email: "dave@example.com", Password: "Dave-passw0rd", Audience: "*.localhost", Confirmed: true},
	{Username: "erin", Email: "erin@example.com", Password: "Erin-passw0rd", Audience: "short.localhost, long.localhost", Confirmed: true},
}

func startStrapi() {
	strapiOnce.Do(func() {
		defer close(strapiDone)
		start := time.Now()
		sharedStrapi, strapiErr = harness.StartStrapi(sharedEnv, harness.StrapiOptions{
			Users:           strapiUsers,
			DefaultAudience: "a.localhost",
			ScriptLog:       os.Stderr,
		})
		strapiStarted = time.Since(start)
	})
}

// ---- a second Strapi in session mode (jwtManagement: refresh), short access tokens ----

var (
	sessionStrapiOnce sync.Once
	sessionStrapiDone = make(chan struct{})
	sessionStrapi     *harness.Strapi
	sessionStrapiErr  error
)

// sessionAccessLifespan is the Strapi access JWT lifetime of the session-mode Strapi, in seconds.
const sessionAccessLifespan = 3

func startSessionStrapi() {
	sessionStrapiOnce.Do(func() {
		defer close(sessionStrapiDone)
		env, err := harness.NewEnv(filepath.Join(sharedEnv.Dir, "session-strapi"), nil)
		if err != nil {
			sessionStrapiErr = err
			return
		}
		sharedEnv.OnClose(env.Close)
		sessionStrapi, sessionStrapiErr = harness.StartStrapi(env, harness.StrapiOptions{
			Users:           strapiUsers,
			DefaultAudience: "a.localhost",
			ScriptLog:       os.Stderr,
			ExtraEnv:        []string{"STRAPI_JWT_MANAGEMENT=refresh", fmt.Sprintf("STRAPI_ACCESS_LIFESPAN=%d", sessionAccessLifespan)},
		})
	})
}

func needSessionStrapi(t *testing.T) *harness.Strapi {
	t.Helper()
	go startSessionStrapi()
	<-sessionStrapiDone
	if sessionStrapiErr != nil {
		t.Fatalf("the real Strapi 5 (session mode) could not be started: %v", sessionStrapiErr)
	}
	return sessionStrapi
}

// needStrapi returns the shared Strapi, starting it if needed. A Strapi that cannot be installed or
// started FAILS the test: a skipped Strapi test would hide a missing feature.
func needStrapi(t *testing.T) *harness.Strapi {
	t.Helper()
	go startStrapi()
	<-strapiDone
	if strapiErr != nil {
		t.Fatalf("the real Strapi 5 could not be started: %v", strapiErr)
	}
	t.Logf("strapi at %s (started in %v)", sharedStrapi.URL, strapiStarted.Round(time.Millisecond))
	return sharedStrapi
}
