package mongo

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ferret.StopShared()
	os.Exit(code)
}

// openTest opens a store on a fresh database of the shared server and drops it afterwards.
func openTest(t *testing.T, uri string, opts Options) *Store {
	t.Helper()
	opts.URI = uri
	if opts.Database == "" {
		opts.Database = ferret.DBName("t")
	}
	// The suite's clock is in 2023: a TTL monitor (real MongoDB) would delete its records.
	opts.NoTTL = true
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if s2, err := Open(ctx, Options{URI: uri, Database: opts.Database, NoTTL: true}); err == nil {
			_ = s2.db.Drop(ctx)
			_ = s2.Close()
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	uri := ferret.SharedURI(t)
	storetest.Run(t, func(t *testing.T) store.Backend { return openTest(t, uri, Options{}) })
}

// TestReplicas: two stores on one database, as replicas behind a load balancer (each with its own
// in-process lock queue: only the database locks serialise them).
func TestReplicas(t *testing.T) {
	uri := ferret.SharedURI(t)
	storetest.RunReplicas(t, func(t *testing.T) (store.Backend, store.Backend) {
		db := ferret.DBName("r")
		return openTest(t, uri, Options{Database: db}), openTest(t, uri, Options{Database: db})
	})
}

// A client value is only ever a typed value in a filter: operator-looking user ids, session ids,
// counter keys and hosts are matched and stored literally.
func TestOperatorLookingValuesAreLiteral(t *testing.T) {
	s := openTest(t, ferret.SharedURI(t), Options{})
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	const now = int64(1_700_000_000_000)
	mk := func(user, host string) *store.Session {
		return &store.Session{ID: storetest.NewID(), UserID: user, Host: host, JWT: []byte("j"),
			HostsLastSeen: map[string]int64{host: now}, IdleTimeoutMs: 1000, Sliding: true,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now + 1000, AbsoluteExpiresAt: now + 60_000}
	}
	victim := mk("12", "a.localhost")
	odd := mk(`{"$ne":""}`, "$where.x%2E")
	for _, sess := range []*store.Session{victim, odd} {
		if _, err := s.CreateSession(ctx, sess, nil, nil, store.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{`{"$ne":""}`, "$ne", `{"$gt":""}`, "$where", ".*"} {
		list, err := s.ListUserSessions(ctx, user, now)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if user == odd.UserID {
			want = 1
		}
		if len(list) != want {
			t.Fatalf("ListUserSessions(%q) = %d sessions, want %d", user, len(list), want)
		}
	}
	if rev, err := s.DeleteUserSessions(ctx, "$ne", now); err != nil || len(rev.SessionIDs) != 0 {
		t.Fatalf("DeleteUserSessions($ne) = %+v, %v", rev, err)
	}
	for _, id := range []string{`{"$gt":""}`, "$gt", ""} {
		if _, err := s.GetSession(ctx, id, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetSession(%q) = %v, want not found", id, err)
		}
	}
	// Hosts with '.', '$' and '%' round-trip as field names.
	got, err := s.TouchSession(ctx, odd.ID, store.Touch{Host: "$set.evil", IdleTimeoutMs: 1000, Sliding: true, Now: now + 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.HostsLastSeen["$set.evil"] != now+1 || got.HostsLastSeen["$where.x%2E"] != now {
		t.Fatalf("hosts = %v", got.HostsLastSeen)
	}
	if g, err := s.GetSession(ctx, odd.ID, now+1); err != nil || len(g.HostsLastSeen) != 2 || g.HostsLastSeen["$set.evil"] != now+1 {
		t.Fatalf("stored hosts = %+v, %v", g, err)
	}
	// Counter keys are values too.
	if c, err := s.IncrCounter(ctx, `{"$gt":""}`, 1000, 1, now); err != nil || c.Count != 1 {
		t.Fatalf("counter = %+v, %v", c, err)
	}
	if ok, err := s.DeleteCounter(ctx, "$gt"); err != nil || ok {
		t.Fatalf("DeleteCounter($gt) = %v, %v", ok, err)
	}
	if n, _ := s.SessionCount(ctx); n != 2 {
		t.Fatalf("sessions = %d, want 2", n)
	}
	if _, err := s.GetSession(ctx, victim.ID, now); err != nil {
		t.Fatal(err)
	}
}

// TestTTLIndexes: a TTL index where the server has them; FerretDB answers NotImplemented and the
// store falls back to plain indexes and the sweeper.
func TestTTLIndexes(t *testing.T) {
	uri := ferret.SharedURI(t)
	db := ferret.DBName("ttl")
	s, err := Open(t.Context(), Options{URI: uri, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.db.Drop(context.Background()); _ = s.Close() }()
	if ferret.IsFerret() == s.TTL {
		t.Fatalf("TTL = %v on FerretDB=%v", s.TTL, ferret.IsFerret())
	}
	cur, err := s.sessions.Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var idx []bson.M
	if err := cur.All(t.Context(), &idx); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, ix := range idx {
		names[ix["name"].(string)] = true
	}
	exp := "expiresAt_1"
	if s.TTL {
		exp = "expiresAt_ttl"
	}
	for _, n := range []string{"_id_", "userId_1", "familyId_1", exp} {
		if !names[n] {
			t.Fatalf("index %s missing: %v", n, names)
		}
	}
	// The family of a session that is gone is looked up by the token's sessionId.
	cur, err = s.tokens.Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	idx = nil
	if err := cur.All(t.Context(), &idx); err != nil {
		t.Fatal(err)
	}
	names = map[string]bool{}
	for _, ix := range idx {
		names[ix["name"].(string)] = true
	}
	if !names["sessionId_1"] || !names["familyId_1"] {
		t.Fatalf("token indexes: %v", names)
	}
}

// TestStartupGivesUp: an unreachable server fails Open after the startup bound, with a clear error.
func TestStartupGivesUp(t *testing.T) {
	start := time.Now()
	_, err := Open(t.Context(), Options{URI: "mongodb://127.0.0.1:1/", OpTimeout: 300 * time.Millisecond, StartupTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "not ready after 2s") {
		t.Fatalf("Open = %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("Open took %s", d)
	}
	if _, err := Open(t.Context(), Options{URI: "http://x"}); err == nil {
		t.Fatal("bad URI accepted")
	}
}

// TestRecoversAfterDatabaseRestart kills FerretDB mid-run (SIGKILL) and starts it again on the same
// port and data: calls fail with ErrUnavailable while it is down and succeed afterwards, without
// reopening the store.
func TestRecoversAfterDatabaseRestart(t *testing.T) {
	if !ferret.IsFerret() {
		t.Skip("needs a FerretDB it can kill (ACCESSPROXY_TEST_MONGO_URI is set)")
	}
	srv, err := ferret.Start(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	s, err := Open(t.Context(), Options{URI: srv.URI(), Database: "recovery", OpTimeout: 500 * time.Millisecond, NoTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	now := time.Now().UnixMilli()
	mk := func() *store.Session {
		return &store.Session{ID: storetest.NewID(), UserID: "1", Host: "a.localhost", JWT: []byte("j"),
			HostsLastSeen: map[string]int64{"a.localhost": now}, IdleTimeoutMs: 60_000, Sliding: true,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now + 60_000, AbsoluteExpiresAt: now + 3_600_000}
	}
	before := mk()
	if _, err := s.CreateSession(ctx, before, nil, nil, store.Limit{}); err != nil {
		t.Fatal(err)
	}

	// Load running while the database dies and comes back.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unavailable, other int
	var otherErr error
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.TouchSession(ctx, before.ID, store.Touch{Host: "b.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: time.Now().UnixMilli()})
				mu.Lock()
				switch {
				case err == nil:
				case errors.Is(err, store.ErrUnavailable):
					unavailable++
				default:
					other++
					otherErr = err
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	srv.Kill()

	// Down: every kind of call fails with ErrUnavailable, each within its timeout.
	for _, call := range []func() error{
		func() error { _, err := s.GetSession(ctx, before.ID, now); return err },
		func() error { _, err := s.CreateSession(ctx, mk(), nil, nil, store.Limit{}); return err },
		func() error { _, err := s.IncrCounter(ctx, "k", 1000, 1, now); return err },
		func() error { return s.Ping(ctx) },
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("while down: err = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("a call took %s while the database was down", d)
		}
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Up again: the same Store works (the driver reconnects), and the data survived.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.GetSession(ctx, before.ID, time.Now().UnixMilli())
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := mk()
	if _, err := s.CreateSession(ctx, after, nil, nil, store.Limit{}); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	if c, err := s.IncrCounter(ctx, "k2", 1000, 1, now); err != nil || c.Count != 1 {
		t.Fatalf("counter after restart: %+v, %v", c, err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if other > 0 {
		t.Fatalf("%d touches failed with an error other than unavailable, e.g. %v", other, otherErr)
	}
	if unavailable == 0 {
		t.Fatal("no touch saw the outage")
	}
	if _, err := s.TouchSession(ctx, before.ID, store.Touch{Host: "c.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: time.Now().UnixMilli()}); err != nil {
		t.Fatalf("touch after restart: %v", err)
	}
	t.Logf("touches answered unavailable during the outage: %d", unavailable)
}
