package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
)

// Two store processes on one database: each Store has its own pool and nothing shared in memory,
// so only the database serialises them.

// TestRotateRaceTwoStores: 20 rotations of one refresh token at once, split over two stores, no
// reuse grace: exactly one wins, every other one is a reuse.
func TestRotateRaceTwoStores(t *testing.T) {
	db := freshDB(t)
	stores := []*Store{openTest(t, db), openTest(t, db)}
	sess := session("9")
	f := &store.Family{ID: storetest.NewID(), UserID: "9", Host: sess.Host, JWT: []byte("fj"), CreatedAt: t0, ExpiresAt: t0 + 3_600_000}
	sess.FamilyID = f.ID
	tok := &store.RefreshToken{Hash: storetest.NewHash(), FamilyID: f.ID, UserID: "9", SessionID: sess.ID, ExpiresAt: f.ExpiresAt}
	mustCreate(t, stores[0], sess, f, tok)

	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, reused := 0, 0
	var other []error
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := stores[i%2].RotateRefresh(context.Background(), store.Rotation{TokenHash: tok.Hash, NewTokenHash: storetest.NewHash(), Now: t0 + 1,
				NewSession: func(f *store.Family) (*store.Session, error) {
					s := f.MintSession(store.Mint{ID: storetest.NewID(), Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, MaxLifetimeMs: 60_000, Now: t0 + 1})
					s.JWT = f.JWT
					return s, nil
				}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrReused):
				reused++
			default:
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won != 1 || reused != n-1 || len(other) > 0 {
		t.Fatalf("won %d, reused %d, other %v; want 1 and %d", won, reused, other, n-1)
	}
}

// TestCounterTwoStores: 200 concurrent increments of one counter over two stores are all counted.
func TestCounterTwoStores(t *testing.T) {
	db := freshDB(t)
	stores := []*Store{openTest(t, db), openTest(t, db)}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := stores[i%2].IncrCounter(context.Background(), "login:ip:1", 60_000, 1, t0); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := stores[1].IncrCounter(t.Context(), "login:ip:1", 60_000, 0, t0)
	if err != nil || c.Count != n {
		t.Fatalf("count = %+v, %v; want %d", c, err, n)
	}
}

// TestMigrateTogether: stores starting at once on an empty database all come up on one schema
// (the migration runs once, under its advisory lock).
func TestMigrateTogether(t *testing.T) {
	db := freshDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Options{URL: db})
			if err != nil {
				errs <- err
				return
			}
			_ = s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer store is refused with one line naming
// both versions, at once (no waiting out the startup timeout).
func TestNewerSchemaRefused(t *testing.T) {
	db := freshDB(t)
	s := openTest(t, db)
	if _, err := s.pool.Exec(t.Context(), `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Open(t.Context(), Options{URL: db, StartupTimeout: 20 * time.Second})
	if time.Since(start) >= 20*time.Second {
		t.Fatal("Open waited out its startup timeout on a newer schema")
	}
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer than this sessionstore knows (2)") ||
		strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "not ready") {
		t.Fatalf("Open on a newer schema = %v", err)
	}
}

// TestUnavailable: with the server gone, calls fail with store.ErrUnavailable (503, fail closed).
func TestUnavailable(t *testing.T) {
	s := openTest(t, freshDB(t))
	s.pool.Close()
	if _, err := s.GetSession(t.Context(), "x", t0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetSession on a closed pool = %v", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a closed pool = %v", err)
	}
}
