package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// IncrCounter is one upsert: the row lock of INSERT … ON CONFLICT DO UPDATE makes concurrent
// increments of one key (on any replicas) exact. A window that ended restarts at now. It runs in
// a transaction so that a connection lost before the commit can be retried without counting twice.
func (s *Store) IncrCounter(ctx context.Context, key string, windowMs, by, now int64) (store.Counter, error) {
	var out store.Counter
	if by == 0 { // a read: nothing stored
		err := s.read(ctx, func(ctx context.Context) error {
			err := s.pool.QueryRow(ctx, `SELECT count, reset_at FROM counters WHERE key = $1`, key).Scan(&out.Count, &out.ResetAt)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && now >= out.ResetAt) {
				out, err = store.Counter{Count: 0, ResetAt: now + windowMs}, nil
			}
			return err
		})
		return out, err
	}
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := recordAudit(ctx, tx)(store.CounterEvent(note, by, now)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO counters AS c (key, count, reset_at) VALUES ($1, $2::bigint, $3::bigint + $4::bigint)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN $3 >= c.reset_at THEN $2 ELSE c.count + $2 END,
				reset_at = CASE WHEN $3 >= c.reset_at THEN $3::bigint + $4::bigint ELSE c.reset_at END
			RETURNING count, reset_at`, key, by, now, windowMs).Scan(&out.Count, &out.ResetAt)
	})
	return out, err
}

// DeleteCounter removes the counter of key.
func (s *Store) DeleteCounter(ctx context.Context, key string) (bool, error) {
	var deleted bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM counters WHERE key = $1`, key)
		deleted = tag.RowsAffected() > 0
		return err
	})
	return deleted, err
}
