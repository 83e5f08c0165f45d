package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The change feed: `changes` (seq → change) and `feed`, one row holding head, the last number
// handed out.
//
// Why one counter row and not a sequence (BIGSERIAL): sequence values are handed out at nextval
// and become visible at commit, so two writers can commit 6 before 5, and a reader that saw 6 and
// moved past it would never see 5. Here the number is taken by `UPDATE feed SET head = head + 1`
// inside the writing transaction, as its last statement: the row lock it takes is held until that
// transaction commits or rolls back, so the next writer (on any replica) gets its number only
// after the previous one is committed. Numbers therefore commit in order, are never skipped (a
// rollback gives its number back) nor reused, and a snapshot that sees a number sees every lower
// one. What it costs: writers that record a change (revocations, rotations, SetUser/SetUpstream)
// serialise on that row for the end of their transaction only, one short UPDATE and INSERT; touches,
// creates, reads and sweeps never take it.
//
// NOTIFY in the same transaction is delivered at its commit, to the listeners of every replica
// (notify.go): a waiting long-poll re-reads the table then, or on its own poll timeout.

// notifyChannel is the LISTEN/NOTIFY channel of the feed (per database).
const notifyChannel = "accessproxy_changes"

// recordChange stores c under the next number, in the caller's transaction (its last write).
func recordChange(ctx context.Context, tx pgx.Tx, c store.Change) error {
	var seq int64
	if err := tx.QueryRow(ctx, `UPDATE feed SET head = head + 1 WHERE id = 1 RETURNING head`).Scan(&seq); err != nil {
		return err
	}
	ids := c.SessionIDs
	if ids == nil {
		ids = []string{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO changes (seq, kind, session_ids, user_id, at, upstream_version, revalidated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, seq, c.Kind, ids, c.UserID, c.At, c.UpstreamVersion, c.RevalidatedAt); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, strconv.FormatInt(seq, 10))
	return err
}

// recordIf returns a function that records c when ok: recordIf(ctx, tx)(store.RevokedChange(rev, now)).
func recordIf(ctx context.Context, tx pgx.Tx) func(store.Change, bool) error {
	return func(c store.Change, ok bool) error {
		if !ok {
			return nil
		}
		return recordChange(ctx, tx, c)
	}
}

// Changes reads head, the oldest number and the page in one snapshot.
func (s *Store) Changes(ctx context.Context, since int64, limit int) (store.ChangePage, error) {
	var page store.ChangePage
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		page = store.ChangePage{Changes: []store.Change{}}
		if err := tx.QueryRow(ctx, `SELECT (SELECT head FROM feed WHERE id = 1), coalesce((SELECT min(seq) FROM changes), 0)`).
			Scan(&page.Head, &page.Oldest); err != nil {
			return err
		}
		if limit <= 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT seq, kind, session_ids, user_id, at, upstream_version, revalidated_at
			FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, max(since, 0), limit)
		if err != nil {
			return err
		}
		page.Changes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Change, error) {
			var c store.Change
			err := row.Scan(&c.Seq, &c.Kind, &c.SessionIDs, &c.UserID, &c.At, &c.UpstreamVersion, &c.RevalidatedAt)
			if c.SessionIDs == nil {
				c.SessionIDs = []string{}
			}
			return c, err
		})
		if page.Changes == nil {
			page.Changes = []store.Change{}
		}
		return err
	})
	if err != nil {
		return store.ChangePage{}, err
	}
	return page, nil
}

// TrimChanges deletes the oldest changes TrimPlan.Trimmed selects, at most p.Limit.
func (s *Store) TrimChanges(ctx context.Context, p store.TrimPlan) (int, bool, error) {
	var n int
	var more bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n, more = 0, false
		var head int64
		if err := tx.QueryRow(ctx, `SELECT head FROM feed WHERE id = 1`).Scan(&head); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, at FROM changes ORDER BY seq LIMIT $1`, p.Limit+1)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Change, error) {
			var c store.Change
			return c, row.Scan(&c.Seq, &c.At)
		})
		if err != nil {
			return err
		}
		last := int64(-1)
		for _, c := range list {
			if !p.Trimmed(c, head) {
				break
			}
			if n == p.Limit {
				more = true
				break
			}
			last, n = c.Seq, n+1
		}
		if n == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM changes WHERE seq <= $1`, last)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// SessionCount sums the trigger-kept slots (schema.go): exact, and 16 rows to read.
func (s *Store) SessionCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM session_count`).Scan(&n)
	})
	return n, err
}
