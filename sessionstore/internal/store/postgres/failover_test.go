package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

// ownCluster starts a cluster for one test (removed at its end); skipped on an external server.
func ownCluster(t *testing.T, settings ...string) *postgres.Cluster {
	t.Helper()
	if !postgres.IsThrowaway() {
		t.Skip("needs clusters of its own: not with " + postgres.EnvURL)
	}
	c, err := postgres.Start(t, settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Remove)
	return c
}

// TestServerRestart: the server stops under a running store (calls fail closed with
// ErrUnavailable) and comes back on the same port; the same store serves again, no reopen, and its
// listener is back: another store's revocation still reaches it.
func TestServerRestart(t *testing.T) {
	c := ownCluster(t)
	url := c.URL("postgres")
	a, b := openTest(t, url), openTest(t, url)
	sess := session("3")
	mustCreate(t, a, sess, nil, nil)

	c.Stop()
	if _, err := a.GetSession(t.Context(), sess.ID, t0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetSession with the server down = %v, want ErrUnavailable", err)
	}
	if _, err := a.DeleteSession(t.Context(), sess.ID, store.Deletion{Now: t0}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("DeleteSession with the server down = %v, want ErrUnavailable", err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(t.Context(), sess.ID, t0); err != nil {
		t.Fatalf("GetSession after the restart: %v", err)
	}
	head, err := b.Changes(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sig := b.ChangeSignal()
	if _, err := a.DeleteSession(ctx, sess.ID, store.Deletion{Now: t0}); err != nil {
		t.Fatal(err)
	}
	for {
		page, err := b.Changes(ctx, head.Head, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) == 1 {
			break
		}
		select {
		case <-sig:
			sig = b.ChangeSignal()
		case <-ctx.Done():
			t.Fatal("the other store was not woken after the restart")
		}
	}
}

// TestMultiHostURL: with a dead first host, a multi-host URL reaches the second.
func TestMultiHostURL(t *testing.T) {
	c := ownCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	s := openTest(t, fmt.Sprintf("postgres://postgres@%s,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", dead, c.Port))
	mustCreate(t, s, session("4"), nil, nil)
}

// TestFailover: a primary with a synchronous streaming standby, logins (creates) running against a
// multi-host URL. The primary is killed with SIGKILL and the standby promoted: every create that
// was acknowledged before or after is on the new primary (0 lost), every create that failed in
// the gap failed closed (ErrUnavailable), and the gap is reported.
func TestFailover(t *testing.T) {
	durable := []string{"fsync=on", "synchronous_commit=on"}
	primary := ownCluster(t, append(durable, "synchronous_standby_names=standby")...)
	// The standby names no standby of its own: promoted, it must not wait for one (it has none).
	// wal_retrieve_retry_interval: how soon a standby that lost its primary acts on the promotion
	// (default 5 s, the bulk of the gap otherwise).
	standby, err := postgres.StartStandby(t, primary, append(durable, "wal_retrieve_retry_interval=100ms")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Remove)
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		primary.Port, standby.Port)
	s := openTest(t, url)
	checkSynchronous(t, primary)

	var mu sync.Mutex
	var acked []string
	var lastBefore, firstAfter time.Time
	var killedAt, promotedAt time.Time
	failed := 0
	stop := make(chan struct{})
	recovered, loaded := make(chan struct{}), make(chan struct{})
	var recoveredOnce, loadedOnce sync.Once
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sess := session(fmt.Sprintf("w%d", w))
				began := time.Now()
				_, err := s.CreateSession(context.Background(), sess, nil, nil, store.Limit{})
				now := time.Now()
				mu.Lock()
				switch {
				case err == nil:
					acked = append(acked, sess.ID)
					if len(acked) == 200 {
						loadedOnce.Do(func() { close(loaded) })
					}
					switch {
					case killedAt.IsZero():
						lastBefore = now
					case !promotedAt.IsZero() && began.After(promotedAt) && firstAfter.IsZero():
						firstAfter = now
						recoveredOnce.Do(func() { close(recovered) })
					}
				case errors.Is(err, store.ErrUnavailable):
					failed++
				default:
					mu.Unlock()
					t.Errorf("create failed other than closed: %v", err)
					return
				}
				mu.Unlock()
			}
		}()
	}
	// Load first, then the kill, then the promotion (what an operator or a failover manager does).
	select {
	case <-loaded:
	case <-time.After(60 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatal("no load: fewer than 200 creates in 60 s")
	}
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	if err := primary.Kill9(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	promotedAt = time.Now()
	mu.Unlock()
	promoted := promotedAt.Sub(killedAt)
	select {
	case <-recovered:
	case <-time.After(60 * time.Second):
		t.Error("no create succeeded within 60 s of the promotion")
	}
	close(stop)
	wg.Wait()

	conn, err := pgx.Connect(t.Context(), standby.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var found int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE id = ANY($1)`, acked).Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != len(acked) {
		t.Fatalf("after the failover %d of %d acknowledged creates are on the new primary", found, len(acked))
	}
	t.Logf("failover: %d creates acknowledged, 0 lost, %d failed closed in the gap; promotion %v after the kill; "+
		"gap %v (last ack before the kill → first ack of a create begun after the promotion; the old primary's "+
		"backends may still commit, synchronously replicated, until they notice their postmaster died)",
		len(acked), failed, promoted.Round(time.Millisecond), firstAfter.Sub(lastBefore).Round(time.Millisecond))
}

// checkSynchronous: the primary names its standby synchronous. With synchronous_standby_names set,
// every commit waits for the standby, so the store's first commit (its migration) already waited
// for it to stream: no waiting here.
func checkSynchronous(t *testing.T, primary *postgres.Cluster) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var state string
	if err := conn.QueryRow(t.Context(), `SELECT sync_state FROM pg_stat_replication`).Scan(&state); err != nil || state != "sync" {
		t.Fatalf("standby state %q, %v; want sync", state, err)
	}
}
