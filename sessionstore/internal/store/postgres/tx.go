package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// maxAttempts bounds how often a transaction that lost a deadlock or a serialization check runs.
const maxAttempts = 10

// tx runs fn in one READ COMMITTED transaction and commits it, running it again from the start
// when PostgreSQL aborted it as a deadlock victim or a serialization failure (fn must therefore
// reset whatever it reports on every run). The whole of it, retries included, is bounded by the
// store's OpTimeout. The change feed's NOTIFY (changes.go) is delivered at the commit.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.txOpts(ctx, pgx.TxOptions{}, fn)
}

// readTx is tx for a read that needs one snapshot across its statements.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.txOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (s *Store) txOpts(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	c, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var err error
	for attempt := range maxAttempts {
		var committing bool
		committing, err = runTx(c, s.pool, opts, fn)
		switch {
		case err == nil:
			return nil
		case retryable(err):
			continue
		case !committing && attempt < 2 && connLost(c, err):
			// A pooled connection the server ended (a restart, a failover) fails on first use;
			// nothing of this transaction was committed, so it runs again on a fresh one.
			continue
		}
		break
	}
	return wrap(err)
}

// runTx is pgx.BeginTxFunc that also says whether it failed at the commit, whose outcome a lost
// connection leaves unknown (never retried).
func runTx(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions, fn func(pgx.Tx) error) (committing bool, err error) {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after the commit
	if err := fn(tx); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// connLost: err is the connection's, not the server's answer nor a caller's outcome.
func connLost(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var own *callerError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &own), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrSessionLimit), errors.Is(err, store.ErrReused):
		return false
	case errors.As(err, &pgErr):
		return pgErr.Code[:2] == "08" || pgErr.Code == "57P01" // connection failure, terminated by the administrator
	}
	return true
}

// retryable: PostgreSQL chose this transaction as a deadlock victim (40P01) or a serialization
// failure (40001); nothing of it was committed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// lockUser takes the transaction-scoped advisory lock of a user: every operation that reads and
// writes several records of one user holds it, so that they run one at a time per user across
// every replica (package doc). The key is a 64-bit hash of the id computed by the server.
func lockUser(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('user:' || $1, 0))`, userID)
	return err
}

// Lock keys outside the user space: 'user:' keys hash anywhere, these are fixed small numbers
// whose collision with a user's hash is harmless (one more wait).
const migrateLockKey = 7_210_001

// read runs a read of single statements on the pool, again (twice at most) when it failed on a
// connection the server had ended: a read changes nothing, so running it again is safe.
func (s *Store) read(ctx context.Context, fn func(ctx context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = fn(c); err == nil || !connLost(c, err) {
			break
		}
	}
	return wrap(err)
}
