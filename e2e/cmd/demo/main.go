// Command demo runs Strapi Access Proxy on this machine in the foreground: the pinned Traefik with
// the plugin loaded as a local plugin, a sessionstore, and the real Strapi 5 app of e2e/strapi with
// demo users. It prints ready-to-paste curl lines; Ctrl-C stops everything.
//
//	scripts/demo.sh [-traefik-port 8080] [-store-port 8181] [-strapi-port 1337]
//
// Ports also come from DEMO_TRAEFIK_PORT, DEMO_STORE_PORT, DEMO_STRAPI_PORT. A default port that
// is taken is replaced by a free one (an explicitly requested one must be free).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func main() {
	traefikPort := flag.Int("traefik-port", envInt("DEMO_TRAEFIK_PORT", 8080), "Traefik web entry point")
	storePort := flag.Int("store-port", envInt("DEMO_STORE_PORT", 8181), "sessionstore")
	strapiPort := flag.Int("strapi-port", envInt("DEMO_STRAPI_PORT", 1337), "Strapi (direct, bypassing the proxy)")
	flag.Parse()
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, n := range []string{"traefik-port:DEMO_TRAEFIK_PORT", "store-port:DEMO_STORE_PORT", "strapi-port:DEMO_STRAPI_PORT"} {
		for i := range n {
			if n[i] == ':' && os.Getenv(n[i+1:]) != "" {
				explicit[n[:i]] = true
			}
		}
	}
	if err := run(*traefikPort, *storePort, *strapiPort, explicit); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		harness.KillAll()
		os.Exit(1)
	}
}

func pickPort(name string, want int, explicit bool) (int, error) {
	if harness.PortFree(want) {
		return want, nil
	}
	if explicit {
		return 0, fmt.Errorf("port %d (%s) is taken", want, name)
	}
	p, err := harness.FreePort()
	if err != nil {
		return 0, err
	}
	fmt.Printf("  port %d for %s is taken: using %d\n", want, name, p)
	return p, nil
}

func step(name string, f func() error) error {
	start := time.Now()
	fmt.Printf("• %-52s", name+" ...")
	if err := f(); err != nil {
		fmt.Println(" FAILED")
		return err
	}
	fmt.Printf(" %6.1fs\n", time.Since(start).Seconds())
	return nil
}

func run(traefikPort, storePort, strapiPort int, explicit map[string]bool) error {
	stop := make(chan os.Signal, 1)
	harness.OnSignal = func(s os.Signal) { stop <- s }

	dir, err := os.MkdirTemp("", "accessproxy-demo-")
	if err != nil {
		return err
	}
	env, err := harness.NewEnv(dir, nil)
	if err != nil {
		return err
	}
	defer harness.Cleanup()
	defer env.Close()
	total := time.Now()

	if traefikPort, err = pickPort("Traefik", traefikPort, explicit["traefik-port"]); err != nil {
		return err
	}
	if storePort, err = pickPort("sessionstore", storePort, explicit["store-port"]); err != nil {
		return err
	}
	if strapiPort, err = pickPort("Strapi", strapiPort, explicit["strapi-port"]); err != nil {
		return err
	}
	pingPort, err := harness.FreePort()
	if err != nil {
		return err
	}

	fmt.Printf("Strapi Access Proxy demo (working files in %s)\n", dir)
	if err := step("Traefik binary (scripts/ensure-traefik.sh)", func() error {
		_, err := harness.TraefikBinary(os.Stderr)
		return err
	}); err != nil {
		return err
	}
	if err := step("sessionstore binary (go build)", func() error { _, err := harness.StoreBinary(); return err }); err != nil {
		return err
	}
	var store *harness.Store
	if err := step(fmt.Sprintf("sessionstore on :%d", storePort), func() error {
		store, err = harness.StartStoreAt(env, storePort)
		return err
	}); err != nil {
		return err
	}
	var strapi *harness.Strapi
	if err := step(fmt.Sprintf("Strapi 5 on :%d (install once, then start)", strapiPort), func() error {
		strapi, err = harness.StartStrapi(env, harness.StrapiOptions{
			Port:            strapiPort,
			DefaultAudience: "localhost, a.localhost",
			ScriptLog:       os.Stderr,
			Users: []harness.StrapiUser{
				{Username: "alice", Email: "alice@example.com", Password: "Alice-passw0rd", Audience: "localhost, a.localhost", Confirmed: true},
				{Username: "bob", Email: "bob@example.com", Password: "Bob-passw0rd", Audience: "b.localhost", Confirmed: true},
				{Username: "carol", Email: "carol@example.com", Password: "Carol-passw0rd", Audience: "*.localhost, localhost", Confirmed: true},
			},
		})
		return err
	}); err != nil {
		return err
	}
	secret := harness.NewSecret()
	cfg := func(extra map[string]any) map[string]any { return harness.PluginConfig(store, secret, extra) }
	// The demo keeps the contract's limits (10 logins/min per address, lockout after 5 failures).
	base := map[string]any{"loginRateLimit": "10/m", "lockoutThreshold": 5}
	withBase := func(extra map[string]any) map[string]any {
		m := cfg(base)
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	var tr *harness.Traefik
	if err := step(fmt.Sprintf("Traefik + accessproxy plugin on :%d", traefikPort), func() error {
		tr, err = harness.StartTraefik(env, harness.TraefikOptions{
			WebPort: traefikPort, PingPort: pingPort, AccessLog: true,
			Routers: []harness.Router{
				{Host: "localhost", Upstream: strapi.URL, Plugin: withBase(nil)},
				{Host: "a.localhost", Upstream: strapi.URL, Plugin: withBase(map[string]any{"idleTimeout": "30m"})},
				{Host: "b.localhost", Upstream: strapi.URL, Plugin: withBase(map[string]any{"idleTimeout": "2m"})},
			},
		})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("ready in %.1fs\n\n", time.Since(total).Seconds())

	p := traefikPort
	fmt.Printf(`Routers (Traefik http://127.0.0.1:%[1]d, one accessproxy middleware instance each):
  http://localhost:%[1]d     idleTimeout 30m   (users with "localhost" in their audience)
  http://a.localhost:%[1]d   idleTimeout 30m
  http://b.localhost:%[1]d   idleTimeout 2m
Strapi (direct, bypassing the proxy): %[2]s     sessionstore: %[3]s
Users: alice / Alice-passw0rd (localhost, a.localhost)   bob / Bob-passw0rd (b.localhost)   carol / Carol-passw0rd (*.localhost)
New users registered through the proxy get the audience "localhost, a.localhost".
Config: %[4]s  %[5]s
Logs:   %[6]s

# log in: the jwt you get is the proxy's token, not Strapi's
curl -s http://localhost:%[1]d/api/auth/local -H 'Content-Type: application/json' -d '{"identifier":"alice","password":"Alice-passw0rd"}'
TOKEN=$(curl -s http://localhost:%[1]d/api/auth/local -H 'Content-Type: application/json' -d '{"identifier":"alice","password":"Alice-passw0rd"}' | sed -n 's/.*"jwt":"\([^"]*\)".*/\1/p'); echo "$TOKEN"

# a protected call: the proxy puts Strapi's JWT back on the way in
curl -s http://localhost:%[1]d/api/users/me -H "Authorization: Bearer $TOKEN"
curl -s http://a.localhost:%[1]d/api/users/me -H "Authorization: Bearer $TOKEN"
# another host, not in alice's audience: 403
curl -s http://b.localhost:%[1]d/api/users/me -H "Authorization: Bearer $TOKEN"
# the same with a Host header, if *.localhost does not resolve here
curl -s http://127.0.0.1:%[1]d/api/users/me -H 'Host: a.localhost' -H "Authorization: Bearer $TOKEN"

# register a new user (gets a proxy token at once)
curl -s http://localhost:%[1]d/api/auth/local/register -H 'Content-Type: application/json' -d '{"username":"zoe","email":"zoe@example.com","password":"Zoe-passw0rd"}'

# Strapi's own JWT is refused through the proxy (401), though Strapi itself accepts it
SJWT=$(curl -s %[2]s/api/auth/local -H 'Content-Type: application/json' -d '{"identifier":"alice","password":"Alice-passw0rd"}' | sed -n 's/.*"jwt":"\([^"]*\)".*/\1/p')
curl -s http://localhost:%[1]d/api/users/me -H "Authorization: Bearer $SJWT"

# log out (revokes the session; the token stops working)
curl -s -X POST http://localhost:%[1]d/api/auth/logout -H "Authorization: Bearer $TOKEN"
curl -s http://localhost:%[1]d/api/users/me -H "Authorization: Bearer $TOKEN"

Press Ctrl-C to stop everything.
`, p, strapi.URL, store.URL, tr.StaticConfigPath(), tr.DynamicConfigPath(), dir)

	select {
	case s := <-stop:
		fmt.Printf("\n%v: stopping Traefik, Strapi and the sessionstore...\n", s)
	case <-tr.Proc().Done():
		fmt.Printf("\nTraefik exited unexpectedly; log: %s\n", tr.LogPath)
	case <-store.Proc().Done():
		fmt.Printf("\nsessionstore exited unexpectedly; log: %s\n", store.Proc().LogPath)
	case <-strapi.Proc().Done():
		fmt.Printf("\nStrapi exited unexpectedly; log: %s\n", strapi.Proc().LogPath)
	}
	start := time.Now()
	go func() { <-stop; fmt.Println("second signal: killing"); harness.KillAll(); os.Exit(130) }()
	env.Close()
	fmt.Printf("stopped in %.1fs\n", time.Since(start).Seconds())
	_ = os.RemoveAll(filepath.Clean(dir))
	return nil
}
