package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// applyLimit enforces a create's session cap inside its transaction, which holds the user's lock
// (so two creates at the cap, on any replicas, never both see room): store.PlanEviction decides on
// the user's stored sessions, each session it picks is revoked with its family as DeleteSession
// with the family does, and the whole eviction is recorded as one change. A refusal is returned as
// store.ErrSessionLimit (the transaction rolls back).
func (s *Store) applyLimit(ctx context.Context, tx pgx.Tx, userID string, lim store.Limit, now int64) (store.Revocation, error) {
	rev := store.Revocation{UserID: userID}
	if lim.Max <= 0 {
		return rev, nil
	}
	sessions, err := querySessions(ctx, tx, `user_id = $1`, userID)
	if err != nil {
		return rev, err
	}
	evict, err := store.PlanEviction(sessions, lim, now)
	if err != nil || len(evict) == 0 {
		return rev, err
	}
	for _, sess := range evict {
		fr, err := revokeFamily(ctx, tx, sess.FamilyID, now, false)
		if err != nil {
			return rev, err
		}
		rev.Merge(fr)
		// Still there when the session has no family.
		if err := deleteSessions(ctx, tx, &rev, now, `id = $1`, sess.ID); err != nil {
			return rev, err
		}
	}
	return rev, recordIf(ctx, tx)(store.RevokedChange(rev, now))
}

// DeleteSession removes a session and, optionally, its whole family, as store.PlanDelete decides
// on the records read under the user's lock. The family of a session that is gone is found
// through the token it was issued with.
func (s *Store) DeleteSession(ctx context.Context, id string, d store.Deletion) (store.Revocation, error) {
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rev = store.Revocation{}
		user, err := ownerOf(ctx, tx, id, d.WithFamily)
		if err != nil {
			return err
		}
		if user != "" {
			if err := lockUser(ctx, tx, user); err != nil {
				return err
			}
		}
		sess, err := loadSession(ctx, tx, id, true)
		if err != nil {
			return err
		}
		famID, f := "", (*store.Family)(nil)
		if d.WithFamily {
			if sess != nil {
				famID = sess.FamilyID
			} else if famID, err = familyOfSession(ctx, tx, id); err != nil {
				return err
			}
			if famID != "" {
				if f, err = loadFamily(ctx, tx, famID, true); err != nil {
					return err
				}
			}
		}
		plan, err := store.PlanDelete(sess, famID, f, d)
		if err != nil {
			return err // ErrNotFound: nothing written
		}
		if plan.RevokeFamily {
			if rev, err = revokeFamily(ctx, tx, famID, d.Now, false); err != nil {
				return err
			}
		}
		rev.UserID = plan.UserID
		if plan.RemoveSession {
			if err := deleteSessions(ctx, tx, &rev, d.Now, `id = $1`, id); err != nil {
				return err
			}
		}
		if err := recordAudit(ctx, tx)(store.DeleteEvent(note, sess, rev, d.Now)); err != nil {
			return err
		}
		return recordIf(ctx, tx)(store.RevokedChange(rev, d.Now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

// ownerOf is whose records a DeleteSession of id would touch: the session's user, else (with the
// family) the user the token issued with it names, else its family's; "" when none is stored.
func ownerOf(ctx context.Context, tx pgx.Tx, id string, withFamily bool) (string, error) {
	user, err := sessionUser(ctx, tx, id)
	if err != nil || user != "" || !withFamily {
		return user, err
	}
	err = tx.QueryRow(ctx, `SELECT coalesce((SELECT nullif(t.user_id, '') FROM tokens t WHERE t.session_id = $1 LIMIT 1),
		(SELECT f.user_id FROM tokens t JOIN families f ON f.id = t.family_id WHERE t.session_id = $1 LIMIT 1), '')`, id).Scan(&user)
	return user, err
}

// DeleteUserSessions removes every session and family (with tokens) of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, now int64) (store.Revocation, error) {
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rev = store.Revocation{UserID: userID}
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		if err := s.revokeFamilies(ctx, tx, &rev, now, `user_id = $1`, userID); err != nil {
			return err
		}
		if err := deleteSessions(ctx, tx, &rev, now, `user_id = $1`, userID); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx)(store.RevocationEvent(note, store.AuditLogoutAll, rev, now)); err != nil {
			return err
		}
		return recordChange(ctx, tx, store.UserChange(userID, rev, now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

// DeleteDeviceSessions removes, in one transaction under the user's lock, every family of the
// user with that device (with its tokens and sessions) and then the user's remaining sessions of
// the device.
func (s *Store) DeleteDeviceSessions(ctx context.Context, userID, deviceID string, now int64) (store.Revocation, error) {
	if deviceID == "" { // "no device" is not a device: never a match
		return store.Revocation{UserID: userID}.Sorted(), nil
	}
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rev = store.Revocation{UserID: userID}
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		if err := s.revokeFamilies(ctx, tx, &rev, now, `user_id = $1 AND device_id = $2`, userID, deviceID); err != nil {
			return err
		}
		if err := deleteSessions(ctx, tx, &rev, now, `user_id = $1 AND device_id = $2`, userID, deviceID); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx)(store.RevocationEvent(note, store.AuditLogout, rev, now)); err != nil {
			return err
		}
		return recordIf(ctx, tx)(store.RevokedChange(rev, now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

// revokeFamilies revokes every family the WHERE clause selects and adds what went to rev.
func (s *Store) revokeFamilies(ctx context.Context, tx pgx.Tx, rev *store.Revocation, now int64, where string, args ...any) error {
	rows, err := tx.Query(ctx, `SELECT id FROM families WHERE `+where+` ORDER BY id FOR UPDATE`, args...)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, famID := range ids {
		fr, err := revokeFamily(ctx, tx, famID, now, false)
		if err != nil {
			return err
		}
		rev.Merge(fr)
	}
	return nil
}
