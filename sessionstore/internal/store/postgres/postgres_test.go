package postgres

import (
	"log/slog"
	"os"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	postgres.StopShared()
	os.Exit(code)
}

// openTest opens a store on url (closed when the test ends).
func openTest(t *testing.T, url string) *Store {
	t.Helper()
	opts := Options{URL: url}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// freshDB is a new database on the shared server.
func freshDB(t *testing.T) string {
	t.Helper()
	return postgres.NewDatabase(t, postgres.SharedServer(t))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openTest(t, freshDB(t)) })
}

// TestReplicas: two stores on one database, as replicas behind a load balancer.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Backend, store.Backend) {
		db := freshDB(t)
		return openTest(t, db), openTest(t, db)
	})
}
