package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/mongo"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/postgres"
)

// backendFlags choose and locate the storage. The server and the admin CLI register the same
// flags (so one environment serves both) and open the storage through openBackend: the one place
// that knows the backends.
type backendFlags struct {
	backend, boltPath, mongoURI, mongoDatabase, postgresURL string
}

func (b *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.backend, "backend", "bolt", "storage backend: bolt | mongo | postgres")
	fs.StringVar(&b.boltPath, "bolt-path", "./data/sessions.db", "bolt database file (bolt backend)")
	fs.StringVar(&b.mongoURI, "mongo-uri", "", "MongoDB connection string (mongo backend)")
	fs.StringVar(&b.mongoDatabase, "mongo-database", "accessproxy", "MongoDB database (mongo backend)")
	fs.StringVar(&b.postgresURL, "postgres-url", "", "PostgreSQL connection string (postgres backend)")
}

// usageError is a refused configuration (exit 2: nothing was started).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// check validates the choice without touching any storage, so that a refused start creates no file.
func (b *backendFlags) check() error {
	switch b.backend {
	case "bolt":
		return nil
	case "mongo":
		if b.mongoURI == "" {
			return &usageError{"--mongo-uri (SESSIONSTORE_MONGO_URI) is required with --backend mongo"}
		}
		return nil
	case "postgres":
		if b.postgresURL == "" {
			return &usageError{"--postgres-url (SESSIONSTORE_POSTGRES_URL) is required with --backend postgres"}
		}
		return nil
	}
	return &usageError{fmt.Sprintf("--backend (SESSIONSTORE_BACKEND) must be bolt, mongo or postgres, got %q", b.backend)}
}

// logAttrs say in a log line which storage is in use (never a database URL: it may hold a password).
func (b *backendFlags) logAttrs() []any {
	switch b.backend {
	case "mongo":
		return []any{"backend", b.backend, "mongoDatabase", b.mongoDatabase}
	case "postgres":
		return []any{"backend", b.backend}
	}
	return []any{"backend", b.backend, "boltPath", b.boltPath}
}

// openOptions are what differs between the server and the CLI when they open the storage.
type openOptions struct {
	lockTimeout    time.Duration // bolt: how long to wait for the file lock (bolt.ErrLocked after)
	readOnly       bool          // bolt: open the file read-only
	startupTimeout time.Duration // mongo, postgres: how long to wait for the database (0: the default)
	log            *slog.Logger  // mongo, postgres: their warnings (nil: none)
}

// openBackend opens the storage the flags choose. A *usageError is a bad choice; bolt.ErrLocked
// means another process holds the file; anything else is the storage's own failure.
func openBackend(ctx context.Context, b *backendFlags, o openOptions) (store.Backend, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	// Each branch returns a nil interface on failure, not a typed nil.
	if b.backend == "postgres" {
		s, err := postgres.Open(ctx, postgres.Options{URL: b.postgresURL, StartupTimeout: o.startupTimeout, Logger: o.log})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if b.backend == "mongo" {
		s, err := mongo.Open(ctx, mongo.Options{URI: b.mongoURI, Database: b.mongoDatabase, StartupTimeout: o.startupTimeout, Logger: o.log})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := bolt.Open(b.boltPath, bolt.Options{LockTimeout: o.lockTimeout, ReadOnly: o.readOnly})
	if err != nil {
		return nil, err
	}
	return s, nil
}
