package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// RotateRefresh spends a refresh token as store.RotationOutcome decides on the token and family
// read under the user's lock and their row locks, in one transaction: of concurrent calls with one
// token (on any replicas) exactly one sees it unspent; the others wait for its commit and then see
// it spent (a grace rotation, or a reuse that revokes the family).
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.RotateResult, error) {
	var res store.RotateResult
	var outcome error
	note := store.AuditFrom(ctx)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res, outcome = store.RotateResult{}, nil
		if err := lockTokenUser(ctx, tx, r.TokenHash); err != nil {
			return err
		}
		t, err := loadToken(ctx, tx, r.TokenHash, true)
		if err != nil {
			return err
		}
		var f *store.Family
		if t != nil {
			if f, err = loadFamily(ctx, tx, t.FamilyID, true); err != nil {
				return err
			}
		}
		var grace bool
		grace, outcome = store.RotationOutcome(t, f, r.Now, r.ReuseGraceMs)
		switch {
		case errors.Is(outcome, store.ErrReused):
			if res.Revoked, err = revokeFamily(ctx, tx, t.FamilyID, r.Now, true); err != nil {
				return err
			}
			res.Revoked.UserID = store.RevokedUser(t, f)
			res.Revoked = res.Revoked.Sorted()
			if err := recordAudit(ctx, tx)(store.RotationEvent(note, res, outcome, r.Now)); err != nil {
				return err
			}
			return recordIf(ctx, tx)(store.RotationChange(res, outcome, r.Now))
		case outcome != nil:
			return outcome // ErrNotFound: rolled back, nothing written
		}
		sess, err := r.NewSession(f)
		if err != nil {
			return &callerError{err}
		}
		// A grace rotation writes only the new session and token: the presented token stays spent
		// with its SpentAt, and the session it was issued with went at the rotation that spent it.
		if !grace {
			t.Spend(r.Now)
			if _, err := tx.Exec(ctx, `UPDATE tokens SET spent = true, spent_at = $2 WHERE hash = $1`, t.Hash, t.SpentAt); err != nil {
				return err
			}
			var gone store.Revocation
			if err := deleteSessions(ctx, tx, &gone, r.Now, `id = $1`, t.SessionID); err != nil {
				return err
			}
		}
		ok, err := insertSession(ctx, tx, sess)
		if err == nil && ok {
			ok, err = insertToken(ctx, tx, r.NextToken(f, sess))
		}
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrConflict // rolled back: the token stays unspent
		}
		res.Session, res.Family, res.Replaced, res.Grace = sess, f, t.SessionID, grace
		if err := recordAudit(ctx, tx)(store.RotationEvent(note, res, nil, r.Now)); err != nil {
			return err
		}
		return recordIf(ctx, tx)(store.RotationChange(res, nil, r.Now))
	})
	if err != nil {
		return store.RotateResult{}, err
	}
	return res, outcome
}

// lockTokenUser takes the lock of the user the token belongs to (its own record names the user;
// a token stored without one, its family's), or nothing for an unknown token. The user of a token
// never changes, so it is read before the lock.
func lockTokenUser(ctx context.Context, tx pgx.Tx, hash string) error {
	var user string
	err := tx.QueryRow(ctx, `SELECT coalesce(nullif(t.user_id, ''), f.user_id, '') FROM tokens t
		LEFT JOIN families f ON f.id = t.family_id WHERE t.hash = $1`, hash).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && user == "") {
		return nil
	}
	if err != nil {
		return err
	}
	return lockUser(ctx, tx, user)
}
