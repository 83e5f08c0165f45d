package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Sweep deletes expired records, at most limit of each kind, in one short transaction. Rows
// another transaction holds are skipped (SKIP LOCKED): the sweeper never waits on live traffic,
// and what it skipped is found by a later run.
func (s *Store) Sweep(ctx context.Context, now int64, limit int) (store.SweepResult, error) {
	var res store.SweepResult
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = store.SweepResult{}
		for _, k := range []struct {
			n     *int
			table string
			key   string
			exp   string
		}{
			// ExpiresAt never passes AbsoluteExpiresAt, so the expiry index alone finds them.
			{&res.Sessions, "sessions", "id", "expires_at <= $1"},
			{&res.Tokens, "tokens", "hash", "expires_at <= $1"},
			// A family's sessions keep their own expiry; its tokens expire with it.
			{&res.Families, "families", "id", "expires_at <= $1"},
			{&res.Counters, "counters", "key", "reset_at <= $1"},
		} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+k.table+` WHERE `+k.key+` IN (SELECT `+k.key+` FROM `+k.table+
				` WHERE `+k.exp+` LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
			if err != nil {
				return err
			}
			*k.n = int(tag.RowsAffected())
			res.More = res.More || *k.n >= limit
		}
		return nil
	})
	return res, err
}
