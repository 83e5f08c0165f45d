package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Reading and writing records: the columns of each table in one place, so the operations only say
// which rows.

const sessionCols = `id, user_id, family_id, host, audience, device_id, device_name, jwt, refresh,
	upstream_version, created_at, last_seen_at, hosts_last_seen, idle_timeout_ms, sliding, expires_at,
	absolute_expires_at, revalidated_at, login_addr, last_addr, remember_me, username`

func scanSession(row pgx.Row) (*store.Session, error) {
	s := &store.Session{}
	err := row.Scan(&s.ID, &s.UserID, &s.FamilyID, &s.Host, &s.Audience, &s.DeviceID, &s.DeviceName, &s.JWT, &s.Refresh,
		&s.UpstreamVersion, &s.CreatedAt, &s.LastSeenAt, &s.HostsLastSeen, &s.IdleTimeoutMs, &s.Sliding, &s.ExpiresAt,
		&s.AbsoluteExpiresAt, &s.RevalidatedAt, &s.LoginAddr, &s.LastAddr, &s.RememberMe, &s.Username)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return s, err
}

func sessionArgs(s *store.Session) []any {
	hosts := s.HostsLastSeen
	if hosts == nil {
		hosts = map[string]int64{}
	}
	return []any{s.ID, s.UserID, s.FamilyID, s.Host, strs(s.Audience), s.DeviceID, s.DeviceName, s.JWT, s.Refresh,
		s.UpstreamVersion, s.CreatedAt, s.LastSeenAt, hosts, s.IdleTimeoutMs, s.Sliding, s.ExpiresAt,
		s.AbsoluteExpiresAt, s.RevalidatedAt, s.LoginAddr, s.LastAddr, s.RememberMe, s.Username}
}

// strs stores a nil list as an empty array (the column is NOT NULL).
func strs(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// loadSession reads a session (nil when absent); forUpdate locks its row until the transaction ends.
func loadSession(ctx context.Context, tx db, id string, forUpdate bool) (*store.Session, error) {
	q := `SELECT ` + sessionCols + ` FROM sessions WHERE id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	return scanSession(tx.QueryRow(ctx, q, id))
}

// loadLiveSession is loadSession for a session live at now (else nil).
func loadLiveSession(ctx context.Context, tx db, id string, now int64, forUpdate bool) (*store.Session, error) {
	s, err := loadSession(ctx, tx, id, forUpdate)
	if err != nil || s == nil || !s.Live(now) {
		return nil, err
	}
	return s, nil
}

// querySessions reads every session the query's WHERE clause selects.
func querySessions(ctx context.Context, tx db, where string, args ...any) ([]*store.Session, error) {
	rows, err := tx.Query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// insertSession reports false when the id exists (nothing written).
func insertSession(ctx context.Context, tx db, s *store.Session) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES
		($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22) ON CONFLICT (id) DO NOTHING`,
		sessionArgs(s)...)
	return err == nil && tag.RowsAffected() == 1, err
}

// updateSession writes every mutable column of s.
func updateSession(ctx context.Context, tx db, s *store.Session) error {
	hosts := s.HostsLastSeen
	if hosts == nil {
		hosts = map[string]int64{}
	}
	_, err := tx.Exec(ctx, `UPDATE sessions SET audience=$2, jwt=$3, refresh=$4, upstream_version=$5, last_seen_at=$6,
		hosts_last_seen=$7, expires_at=$8, absolute_expires_at=$9, revalidated_at=$10, last_addr=$11 WHERE id=$1`,
		s.ID, strs(s.Audience), s.JWT, s.Refresh, s.UpstreamVersion, s.LastSeenAt, hosts, s.ExpiresAt,
		s.AbsoluteExpiresAt, s.RevalidatedAt, s.LastAddr)
	return err
}

// deleteSessions removes the sessions the WHERE clause selects and adds them to rev (live at now or not).
func deleteSessions(ctx context.Context, tx db, rev *store.Revocation, now int64, where string, args ...any) error {
	rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE `+where+` RETURNING id, expires_at, absolute_expires_at`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var exp, abs int64
		if err := rows.Scan(&id, &exp, &abs); err != nil {
			return err
		}
		rev.Add(id, now < exp && now < abs)
	}
	return rows.Err()
}

const familyCols = `id, user_id, host, audience, device_id, device_name, login_addr, remember_me, jwt, refresh,
	created_at, expires_at, revalidated_at, username`

func loadFamily(ctx context.Context, tx db, id string, forUpdate bool) (*store.Family, error) {
	q := `SELECT ` + familyCols + ` FROM families WHERE id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	f := &store.Family{}
	err := tx.QueryRow(ctx, q, id).Scan(&f.ID, &f.UserID, &f.Host, &f.Audience, &f.DeviceID, &f.DeviceName, &f.LoginAddr,
		&f.RememberMe, &f.JWT, &f.Refresh, &f.CreatedAt, &f.ExpiresAt, &f.RevalidatedAt, &f.Username)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return f, err
}

func insertFamily(ctx context.Context, tx db, f *store.Family) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO families (`+familyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
		ON CONFLICT (id) DO NOTHING`,
		f.ID, f.UserID, f.Host, strs(f.Audience), f.DeviceID, f.DeviceName, f.LoginAddr, f.RememberMe, f.JWT, f.Refresh,
		f.CreatedAt, f.ExpiresAt, f.RevalidatedAt, f.Username)
	return err == nil && tag.RowsAffected() == 1, err
}

func loadToken(ctx context.Context, tx db, hash string, forUpdate bool) (*store.RefreshToken, error) {
	q := `SELECT hash, family_id, user_id, session_id, expires_at, spent, spent_at FROM tokens WHERE hash = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	t := &store.RefreshToken{}
	err := tx.QueryRow(ctx, q, hash).Scan(&t.Hash, &t.FamilyID, &t.UserID, &t.SessionID, &t.ExpiresAt, &t.Spent, &t.SpentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return t, err
}

func insertToken(ctx context.Context, tx db, t *store.RefreshToken) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO tokens (hash, family_id, user_id, session_id, expires_at, spent, spent_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (hash) DO NOTHING`,
		t.Hash, t.FamilyID, t.UserID, t.SessionID, t.ExpiresAt, t.Spent, t.SpentAt)
	return err == nil && tag.RowsAffected() == 1, err
}

// familyOfSession is the family a session was issued in, from the token issued with it ("" when
// no stored token names it): token records outlive their session and go with their family.
func familyOfSession(ctx context.Context, tx db, sessionID string) (string, error) {
	var fam string
	err := tx.QueryRow(ctx, `SELECT family_id FROM tokens WHERE session_id = $1 LIMIT 1`, sessionID).Scan(&fam)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return fam, err
}

// revokeFamily deletes a family, its sessions and its tokens (with keepSpent, spent tokens stay
// until they expire, so later replays are still reuse) and says which sessions went.
func revokeFamily(ctx context.Context, tx db, famID string, now int64, keepSpent bool) (store.Revocation, error) {
	rev := store.Revocation{FamilyID: famID}
	if famID == "" {
		return rev, nil
	}
	if err := deleteSessions(ctx, tx, &rev, now, `family_id = $1`, famID); err != nil {
		return store.Revocation{}, err
	}
	q := `DELETE FROM tokens WHERE family_id = $1`
	if keepSpent {
		q += ` AND NOT spent`
	}
	if _, err := tx.Exec(ctx, q, famID); err != nil {
		return store.Revocation{}, err
	}
	err := tx.QueryRow(ctx, `DELETE FROM families WHERE id = $1 RETURNING user_id`, famID).Scan(&rev.UserID)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return rev, err
}

// db is what the record helpers need: a transaction, or the pool for a single statement.
type db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
