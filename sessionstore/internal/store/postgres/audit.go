package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The audit trail is the table `audit`, one row per event, inserted in the transaction of the
// state change (committed with it or not at all). Its id is a bigserial: unlike the change feed,
// nobody follows the trail by number, so ids that commit slightly out of order (two logins at
// once) only mean an operator's page may show an event a moment late; a counter row would make
// every login wait for the previous one's commit.

var (
	_ store.AuditLog  = (*Store)(nil)
	_ store.Directory = (*Store)(nil)
)

// recordAudit returns a function that stores e when ok, in the caller's transaction:
// recordAudit(ctx, tx)(store.LoginEvent(note, s), true).
func recordAudit(ctx context.Context, tx pgx.Tx) func(store.AuditEvent, bool) error {
	return func(e store.AuditEvent, ok bool) error {
		if !ok {
			return nil
		}
		ids := e.SessionIDs
		if ids == nil {
			ids = []string{}
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit (at, kind, user_id, username, session_id, session_ids, host, client_addr, user_agent, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			e.At, e.Kind, e.UserID, e.Username, e.SessionID, ids, e.Host, e.ClientAddr, e.UserAgent, e.Reason)
		return err
	}
}

// ListAudit reads one page newest first through the primary key (and the user index when filtered).
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error) {
	limit := q.PageLimit()
	page := store.AuditPage{Events: []store.AuditEvent{}}
	err := s.read(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT id, at, kind, user_id, username, session_id, session_ids, host, client_addr, user_agent, reason
			FROM audit WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR kind = $2) AND ($3::bigint <= 0 OR at >= $3::bigint)
				AND ($4::bigint <= 0 OR at < $4::bigint) AND ($5::bigint <= 0 OR id < $5::bigint)
			ORDER BY id DESC LIMIT $6::bigint`, q.UserID, q.Kind, q.Since, q.Until, q.Cursor, limit+1)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AuditEvent, error) {
			var e store.AuditEvent
			err := row.Scan(&e.ID, &e.At, &e.Kind, &e.UserID, &e.Username, &e.SessionID, &e.SessionIDs, &e.Host,
				&e.ClientAddr, &e.UserAgent, &e.Reason)
			if e.SessionIDs == nil {
				e.SessionIDs = []string{}
			}
			return e, err
		})
		if err != nil {
			return err
		}
		page = store.AuditPage{Events: events}
		if len(events) > limit { // one more than the page: there is a next one
			page.Events = events[:limit]
			page.Next = events[limit-1].ID
		}
		if page.Events == nil {
			page.Events = []store.AuditEvent{}
		}
		return nil
	})
	if err != nil {
		return store.AuditPage{}, err
	}
	return page, nil
}

// SweepAudit removes at most limit of the oldest events older than before in one short transaction.
func (s *Store) SweepAudit(ctx context.Context, before int64, limit int) (int, bool, error) {
	var n int
	var more bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)`, before, limit)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit WHERE at < $1)`, before).Scan(&more)
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// SearchUsers scans the live sessions (the console's query, not the plugin's) and matches them
// with store.MatchUser, so that case folding is Go's, as on the other backends.
func (s *Store) SearchUsers(ctx context.Context, q string, now int64, limit int) ([]store.UserMatch, error) {
	var users map[string]*store.UserMatch
	err := s.read(ctx, func(ctx context.Context) error {
		users = map[string]*store.UserMatch{}
		newest := map[string]int64{}
		rows, err := s.pool.Query(ctx, `SELECT user_id, username, created_at FROM sessions
			WHERE expires_at > $1 AND absolute_expires_at > $1 ORDER BY id`, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var user, name string
			var created int64
			if err := rows.Scan(&user, &name, &created); err != nil {
				return err
			}
			if !store.MatchUser(q, user, name) {
				continue
			}
			u := users[user]
			if u == nil {
				u = &store.UserMatch{UserID: user}
				users[user] = u
			}
			u.Sessions++
			if name != "" && created >= newest[user] {
				u.Username, newest[user] = name, created
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return store.SortMatches(users, limit), nil
}

// LiveSessions counts the live sessions per issuing host.
func (s *Store) LiveSessions(ctx context.Context, now int64) (int, map[string]int, error) {
	total, per := 0, map[string]int{}
	err := s.read(ctx, func(ctx context.Context) error {
		total, per = 0, map[string]int{}
		rows, err := s.pool.Query(ctx, `SELECT host, count(*) FROM sessions
			WHERE expires_at > $1 AND absolute_expires_at > $1 GROUP BY host`, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var host string
			var n int
			if err := rows.Scan(&host, &n); err != nil {
				return err
			}
			per[host], total = n, total+n
		}
		return rows.Err()
	})
	return total, per, err
}
