// Package postgres is the PostgreSQL backend (jackc/pgx v5 and its pool). Any number of
// sessionstore replicas can share one database: every operation is one transaction, and nothing
// that matters lives in the process.
//
// Tables (schema.go; ids are the primary keys, so uniqueness is the database's):
//
//	sessions       id; user_id, family_id, expires_at indexed; secrets as the sealed bytea the API gives
//	families       id; user_id, expires_at indexed
//	tokens         hash; family_id, session_id, expires_at indexed; spent, spent_at
//	counters       key; reset_at indexed
//	changes, feed  the change feed (changes.go)
//	session_count  16 slots summed by SessionCount, kept by statement triggers (cheap and exact)
//	schema_version the migrations applied
//
// Atomicity: transactions at READ COMMITTED with locks, never lease documents. Every operation on
// more than one record of a user (creates with or without a cap, rotations, revocations, SetUser,
// SetUpstream) first takes pg_advisory_xact_lock on the user, then reads what it decides on, so
// per user they run one at a time on every replica, exactly as bolt's single writer runs them.
// Single-row changes (touches, counters) lock their row (SELECT … FOR UPDATE, INSERT … ON CONFLICT
// DO UPDATE). A transaction that still loses a deadlock or a serialization check is run again
// from the start (retry in tx.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Options configure Open.
type Options struct {
	URL string // postgres://… or a keyword/value string (host=a,b … target_session_attrs=read-write)
	// OpTimeout bounds every operation (default 3s): while no server answers, calls fail with
	// store.ErrUnavailable after at most this long.
	OpTimeout time.Duration
	// StartupTimeout bounds how long Open waits for the database and the migrations (default 30s).
	StartupTimeout time.Duration
	Logger         *slog.Logger
}

// Store is the PostgreSQL Backend.
type Store struct {
	pool      *pgxpool.Pool
	opTimeout time.Duration
	log       *slog.Logger
	listener  *listener // LISTEN/NOTIFY wake-ups of the change feed (notify.go)

	closeOnce sync.Once
}

var _ store.Backend = (*Store)(nil)

// Open connects, migrates the schema (schema.go) and starts listening for change notifications,
// retrying until StartupTimeout while the database is not up yet.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("postgres: --postgres-url is required with --backend postgres")
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 3 * time.Second
	}
	if o.StartupTimeout <= 0 {
		o.StartupTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad --postgres-url: %w", redact(err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > o.OpTimeout {
		cfg.ConnConfig.ConnectTimeout = min(o.OpTimeout, 2*time.Second)
	}
	if !strings.Contains(o.URL, "pool_max_conns") {
		// pgxpool's default (max(4, CPUs)) leaves concurrent touches queueing for a connection while
		// each waits for its commit's WAL flush; 16 lets their commits share flushes.
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "sessionstore"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	s := &Store{pool: pool, opTimeout: o.OpTimeout, log: o.Logger}
	deadline := time.Now().Add(o.StartupTimeout)
	for {
		err = s.migrate(ctx)
		var newer *newerSchemaError
		if err == nil || errors.As(err, &newer) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		pool.Close()
		var newer *newerSchemaError
		if errors.As(err, &newer) {
			return nil, fmt.Errorf("postgres: %s: %w", safeTarget(cfg), newer)
		}
		return nil, fmt.Errorf("postgres: %s not ready after %s: %w", safeTarget(cfg), o.StartupTimeout, err)
	}
	s.listener = startListener(cfg.ConnConfig.Copy(), o.Logger)
	return s, nil
}

// Close stops the listener and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.listener.stop()
		s.pool.Close()
	})
	return nil
}

// Ping reports whether a server answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.read(ctx, func(ctx context.Context) error { return s.pool.Ping(ctx) })
}

// wrap maps what means "the database cannot be reached" to store.ErrUnavailable (the API answers
// 503 and the plugin fails closed); any other database error stays itself (500).
func wrap(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrSessionLimit) || errors.Is(err, store.ErrReused) {
		return err // an outcome, or already mapped
	}
	var own *callerError
	if errors.As(err, &own) {
		return own.err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53", "25": // connection, operator intervention (shutdown), resources, read-only standby
			return fmt.Errorf("%w: postgres: %s", store.ErrUnavailable, pgErr.Message)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller went away
	}
	// Anything else the driver reports without a server error is about the connection (refused,
	// reset, closed, timed out, no server accepting writes: target_session_attrs): fail closed.
	return fmt.Errorf("%w: postgres: %v", store.ErrUnavailable, redact(err))
}

// callerError carries an error of a caller's callback (sealing, minting) through a transaction
// unchanged: it is not the database's.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// redact keeps a connection error without the password pgx may echo from the URL.
func redact(err error) error {
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && connErr.Config != nil && connErr.Config.Password != "" {
		return errors.New(stripPassword(err.Error(), connErr.Config.Password))
	}
	return err
}

func stripPassword(msg, pw string) string { return strings.ReplaceAll(msg, pw, "xxxxx") }

// safeTarget names the server(s) and database for a log line, never the password.
func safeTarget(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	hosts := c.Host
	for _, fb := range c.Fallbacks {
		if fb.Host != c.Host {
			hosts += "," + fb.Host
		}
	}
	return fmt.Sprintf("postgres://%s/%s", hosts, c.Database)
}
