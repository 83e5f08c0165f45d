package e2e

// Issue 16: failover of the PostgreSQL backend through the whole stack. A primary with a
// synchronous streaming standby; two Traefiks, each with its own sessionstore, both stores on a
// multi-host URL (primary, standby) with target_session_attrs=read-write. Under login load through
// Traefik 1 the primary is SIGKILLed and the standby promoted: every login answered 200 before,
// during or after still works afterwards through Traefik 2 (which never saw the tokens, so its
// store must read them from the new primary), every login in the gap is refused 503 (fail
// closed), and the gap is measured and logged.

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

func TestFailoverPostgres(t *testing.T) {
	env := harness.ForTest(t)
	primary, err := harness.StartPostgres(env, os.Stderr, "synchronous_standby_names=standby")
	if err != nil {
		t.Fatalf("PostgreSQL could not be installed or started: %v", err)
	}
	// A short retry interval: how soon the standby acts on the promotion once its primary is gone.
	standby, err := harness.StartPostgresStandby(env, os.Stderr, primary, "wal_retrieve_retry_interval=100ms")
	if err != nil {
		t.Fatalf("standby: %v", err)
	}
	url := fmt.Sprintf("postgres://postgres@%s,%s/postgres?sslmode=disable&target_session_attrs=read-write", primary.Addr(), standby.Addr())
	cl := &mnCluster{t: t, db: postgresDB{primary}, dbName: "PostgreSQL"}
	startMultiNodeStores(t, env, cl, time.Now(), harness.StoreOptions{Backend: "postgres", PostgresURL: url}, "postgres primary + synchronous standby")
	n1, n2 := cl.n1, cl.n2
	user := mnUsers[0]

	type result struct {
		token         string
		status        int
		began, answer time.Time
	}
	var mu sync.Mutex
	var results []result
	var killedAt, promotedAt time.Time
	loaded, recovered, stop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var loadedOnce, recoveredOnce sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now()
				r, err := n1.c.Do("POST", "app.localhost", "/api/auth/local", "", map[string]string{"identifier": user.Username, "password": user.Password})
				res := result{began: began, answer: time.Now()}
				if err == nil {
					res.status = r.Status
					var lb loginBody
					if r.Status == 200 && json.Unmarshal(r.Body, &lb) == nil {
						res.token = lb.JWT
					}
				}
				mu.Lock()
				results = append(results, res)
				ok := 0
				for _, x := range results {
					if x.token != "" {
						ok++
					}
				}
				if ok >= 40 {
					loadedOnce.Do(func() { close(loaded) })
				}
				if res.token != "" && !promotedAt.IsZero() && began.After(promotedAt) {
					recoveredOnce.Do(func() { close(recovered) })
				}
				mu.Unlock()
			}
		}()
	}
	finish := func() { close(stop); wg.Wait() }
	select {
	case <-loaded:
	case <-time.After(60 * time.Second):
		finish()
		t.Fatal("fewer than 40 logins in 60 s")
	}
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	primary.Kill()
	if err := standby.Promote(); err != nil {
		finish()
		t.Fatalf("promote: %v", err)
	}
	mu.Lock()
	promotedAt = time.Now()
	mu.Unlock()
	select {
	case <-recovered:
	case <-time.After(60 * time.Second):
		finish()
		t.Fatal("no login succeeded within 60 s of the promotion")
	}
	finish()

	// Every answered login works through the other node; nothing but 200 and 503 was answered.
	var lastBefore, firstAfter time.Time
	acked, refused := 0, 0
	for _, r := range results {
		switch {
		case r.token != "":
			acked++
			if r.began.Before(killedAt) && r.answer.After(lastBefore) {
				lastBefore = r.answer
			}
			if r.began.After(promotedAt) && (firstAfter.IsZero() || r.answer.Before(firstAfter)) {
				firstAfter = r.answer
			}
			if st := do(t, n2.c, "GET", "app.localhost", "/api/articles", r.token, nil); st.Status != 200 {
				t.Errorf("a login answered 200 %v after the kill (negative: before) is %s through traefik2 after the failover",
					r.answer.Sub(killedAt).Round(time.Millisecond), st)
			}
		case r.status == 503:
			refused++
		default:
			t.Errorf("a login during the failover answered %d: want 200 or 503 (fail closed)", r.status)
		}
	}
	t.Logf("failover through Traefik: %d logins answered 200 (all still valid through the other node), %d refused 503 in the gap; "+
		"promotion %v after the kill; gap %v (last 200 of a login begun before the kill → first 200 of one begun after the promotion)",
		acked, refused, promotedAt.Sub(killedAt).Round(time.Millisecond), firstAfter.Sub(lastBefore).Round(time.Millisecond))
}
