package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	for range maxAttempts {
		err = pgx.BeginTxFunc(c, s.pool, opts, fn)
		if !retryable(err) {
			break
		}
	}
	return wrap(err)
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
