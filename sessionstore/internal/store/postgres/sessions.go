package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// CreateSession stores the session (and its family and first token) under the user's lock, after
// applying the user's session cap (evict.go) in the same transaction. Returning an outcome error
// from the transaction rolls it back, so a conflict or a refusal writes nothing (an eviction
// included).
func (s *Store) CreateSession(ctx context.Context, sess *store.Session, f *store.Family, t *store.RefreshToken, lim store.Limit) (store.Revocation, error) {
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, sess.UserID); err != nil {
			return err
		}
		// Conflicts first, so that a create that is refused as a duplicate evicts nothing.
		var dup bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1)
			OR EXISTS (SELECT 1 FROM families WHERE id = $2) OR EXISTS (SELECT 1 FROM tokens WHERE hash = $3)`,
			sess.ID, familyID(f), tokenHash(t)).Scan(&dup); err != nil {
			return err
		}
		if dup {
			return store.ErrConflict
		}
		var err error
		if rev, err = s.applyLimit(ctx, tx, sess.UserID, lim, sess.CreatedAt); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx)(store.RevocationEvent(note, store.AuditEvicted, rev, sess.CreatedAt)); err != nil {
			return err
		}
		ok := true
		if f != nil && ok {
			ok, err = insertFamily(ctx, tx, f)
		}
		if t != nil && ok && err == nil {
			ok, err = insertToken(ctx, tx, t)
		}
		if ok && err == nil {
			ok, err = insertSession(ctx, tx, sess)
		}
		if err == nil && !ok { // inserted concurrently by a create of another user with the same ids
			err = store.ErrConflict
		}
		if err != nil {
			return err
		}
		return recordAudit(ctx, tx)(store.LoginEvent(note, sess), true)
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

func familyID(f *store.Family) string {
	if f == nil {
		return ""
	}
	return f.ID
}

func tokenHash(t *store.RefreshToken) string {
	if t == nil {
		return ""
	}
	return t.Hash
}

// GetSession reads a live session (one statement, no transaction).
func (s *Store) GetSession(ctx context.Context, id string, now int64) (*store.Session, error) {
	var sess *store.Session
	err := s.read(ctx, func(ctx context.Context) error {
		var err error
		sess, err = scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	if sess == nil || !sess.Live(now) {
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// TouchSession applies the sliding extension under the session's row lock.
func (s *Store) TouchSession(ctx context.Context, id string, t store.Touch) (*store.Session, error) {
	out, err := s.TouchMany(ctx, []store.TouchOne{{ID: id, Touch: t}})
	if err != nil {
		return nil, err
	}
	if out[0] == nil {
		return nil, store.ErrNotFound
	}
	return out[0], nil
}

// TouchMany locks every session of the batch at once, in id order (so two batches never wait on
// each other in a cycle), applies the touches in the given order (a repeated id sees the earlier
// ones) and writes each touched session once, in one transaction.
func (s *Store) TouchMany(ctx context.Context, touches []store.TouchOne) ([]*store.Session, error) {
	out := make([]*store.Session, len(touches))
	ids := make([]string, 0, len(touches))
	for _, one := range touches {
		ids = append(ids, one.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		clear(out)
		list, err := querySessions(ctx, tx, `id = ANY($1) ORDER BY id FOR UPDATE`, ids)
		if err != nil {
			return err
		}
		byID := make(map[string]*store.Session, len(list))
		for _, sess := range list {
			byID[sess.ID] = sess
		}
		touched := map[string]bool{}
		for i, one := range touches {
			sess := byID[one.ID]
			if sess == nil || !sess.Live(one.Touch.Now) {
				continue
			}
			sess.ApplyTouch(one.Touch)
			touched[sess.ID] = true
			cp := *sess
			cp.HostsLastSeen = cloneHosts(sess.HostsLastSeen)
			out[i] = &cp
		}
		batch := &pgx.Batch{}
		for _, id := range ids {
			if touched[id] {
				queueUpdate(batch, byID[id])
			}
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func cloneHosts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// queueUpdate is updateSession for a batch (one round trip for a whole TouchMany).
func queueUpdate(b *pgx.Batch, s *store.Session) {
	b.Queue(`UPDATE sessions SET last_seen_at=$2, hosts_last_seen=$3, expires_at=$4, last_addr=$5 WHERE id=$1`,
		s.ID, s.LastSeenAt, s.HostsLastSeen, s.ExpiresAt, s.LastAddr)
}

// sessionUser is the owner of a stored session ("" when none): a session's user never changes,
// so it may be read before the user's lock is taken.
func sessionUser(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	var user string
	err := tx.QueryRow(ctx, `SELECT user_id FROM sessions WHERE id = $1`, id).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return user, err
}

// lockSessionUser takes the lock of the session's user; false when there is no such session.
func lockSessionUser(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	user, err := sessionUser(ctx, tx, id)
	if err != nil || user == "" {
		return false, err
	}
	return true, lockUser(ctx, tx, user)
}

// changeSession runs change on the live session id under its user's lock, writes the session
// back and records the change, in one transaction: the shape of SetUpstream and SetUser.
func (s *Store) changeSession(ctx context.Context, id string, now int64, change func(tx pgx.Tx, cur *store.Session) error) (*store.Session, error) {
	var sess *store.Session
	err := s.tx(ctx, func(tx pgx.Tx) error {
		sess = nil
		if found, err := lockSessionUser(ctx, tx, id); err != nil || !found {
			return orNotFound(err)
		}
		cur, err := loadLiveSession(ctx, tx, id, now, true)
		if err != nil || cur == nil {
			return orNotFound(err)
		}
		if err := change(tx, cur); err != nil {
			return err
		}
		sess = cur
		return recordChange(ctx, tx, store.SessionChange(cur, now))
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// SetUpstream is the compare-and-swap of the upstream credentials, the family's copy updated in
// the same transaction, under the user's lock.
func (s *Store) SetUpstream(ctx context.Context, id string, u store.Upstream) (*store.Session, error) {
	return s.changeSession(ctx, id, u.Now, func(tx pgx.Tx, cur *store.Session) error {
		if err := cur.ApplyUpstream(u); err != nil {
			return err // ErrConflict: nothing written
		}
		if err := updateSession(ctx, tx, cur); err != nil {
			return err
		}
		if cur.FamilyID == "" {
			return nil
		}
		f, err := loadFamily(ctx, tx, cur.FamilyID, true)
		if err != nil || f == nil {
			return err
		}
		jwt, refresh, err := u.SealFamily(f.ID)
		if err != nil {
			return &callerError{err}
		}
		_, err = tx.Exec(ctx, `UPDATE families SET jwt=$2, refresh=$3 WHERE id=$1`, f.ID, jwt, refresh)
		return err
	})
}

// SetUser records a revalidation on the session and its family in one transaction.
func (s *Store) SetUser(ctx context.Context, id string, u store.UserUpdate) (*store.Session, error) {
	return s.changeSession(ctx, id, u.Now, func(tx pgx.Tx, cur *store.Session) error {
		cur.ApplyUser(u)
		if err := updateSession(ctx, tx, cur); err != nil {
			return err
		}
		if cur.FamilyID == "" {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE families SET audience=$2, revalidated_at=$3 WHERE id=$1`,
			cur.FamilyID, strs(u.Audience), u.Now)
		return err
	})
}

// orNotFound is err, or store.ErrNotFound when there was none (the record is absent or expired).
func orNotFound(err error) error {
	if err == nil {
		return store.ErrNotFound
	}
	return err
}

// ListUserSessions reads the user's live sessions through the user index.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now int64) ([]*store.Session, error) {
	var out []*store.Session
	err := s.read(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT `+sessionCols+` FROM sessions
			WHERE user_id = $1 AND expires_at > $2 AND absolute_expires_at > $2 ORDER BY created_at, id`, userID, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []*store.Session{}
		for rows.Next() {
			sess, err := scanSession(rows)
			if err != nil {
				return err
			}
			out = append(out, sess)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
