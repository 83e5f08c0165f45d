package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func loadFamily(tx *bbolt.Tx, id string) (*store.Family, error) {
	v := tx.Bucket(bFamilies).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeFamily(v)
}

func loadToken(tx *bbolt.Tx, hash string) (*store.RefreshToken, error) {
	v := tx.Bucket(bTokens).Get([]byte(hash))
	if v == nil {
		return nil, nil
	}
	return decodeToken(v)
}

func insertFamily(tx *bbolt.Tx, f *store.Family) error {
	if err := tx.Bucket(bFamilies).Put([]byte(f.ID), encodeFamily(f)); err != nil {
		return err
	}
	if err := tx.Bucket(bFamExp).Put(expKey(f.ExpiresAt, f.ID), nil); err != nil {
		return err
	}
	return tx.Bucket(bFamUser).Put(pairKey(f.UserID, f.ID), nil)
}

func insertToken(tx *bbolt.Tx, t *store.RefreshToken) error {
	if err := tx.Bucket(bTokens).Put([]byte(t.Hash), encodeToken(t)); err != nil {
		return err
	}
	if err := tx.Bucket(bTokExp).Put(expKey(t.ExpiresAt, t.Hash), nil); err != nil {
		return err
	}
	if err := tx.Bucket(bTokSess).Put(pairKey(t.SessionID, t.Hash), nil); err != nil {
		return err
	}
	return tx.Bucket(bFamTok).Put(pairKey(t.FamilyID, t.Hash), nil)
}

func removeToken(tx *bbolt.Tx, t *store.RefreshToken) error {
	if err := tx.Bucket(bTokens).Delete([]byte(t.Hash)); err != nil {
		return err
	}
	if err := tx.Bucket(bTokExp).Delete(expKey(t.ExpiresAt, t.Hash)); err != nil {
		return err
	}
	if err := tx.Bucket(bTokSess).Delete(pairKey(t.SessionID, t.Hash)); err != nil {
		return err
	}
	return tx.Bucket(bFamTok).Delete(pairKey(t.FamilyID, t.Hash))
}

// familyOfSession returns the id of the family a session was issued in ("" when no stored token
// names the session): the token records outlive the session (rotation, expiry) and go with the
// family (revocation, or expiry at the family's own expiry).
func familyOfSession(tx *bbolt.Tx, sessionID string) (string, error) {
	for _, hash := range ownedIDs(tx.Bucket(bTokSess), sessionID) {
		t, err := loadToken(tx, hash)
		if err != nil {
			return "", err
		}
		if t != nil {
			return t.FamilyID, nil
		}
	}
	return "", nil
}

// backfillTokensBySession indexes the tokens of a file written before tokens_by_session existed.
func backfillTokensBySession(tx *bbolt.Tx) error {
	idx := tx.Bucket(bTokSess)
	return tx.Bucket(bTokens).ForEach(func(_, v []byte) error {
		t, err := decodeToken(v)
		if err != nil {
			return err
		}
		return idx.Put(pairKey(t.SessionID, t.Hash), nil)
	})
}

// removeFamilyRecord deletes the family record and its own index entries, not its members.
func removeFamilyRecord(tx *bbolt.Tx, f *store.Family) error {
	if err := tx.Bucket(bFamilies).Delete([]byte(f.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bFamExp).Delete(expKey(f.ExpiresAt, f.ID)); err != nil {
		return err
	}
	return tx.Bucket(bFamUser).Delete(pairKey(f.UserID, f.ID))
}

// revokeFamily deletes a family, its sessions and its tokens, and says which sessions went (UserID
// from the family record when it is still there). With keepSpent, spent tokens stay (until they
// expire) so later replays are still recognised as reuse.
func revokeFamily(tx *bbolt.Tx, famID string, now int64, keepSpent bool) (store.Revocation, error) {
	rev := store.Revocation{FamilyID: famID}
	for _, id := range ownedIDs(tx.Bucket(bFamSess), famID) {
		removed, live, err := removeSessionByID(tx, id, now)
		if err != nil {
			return store.Revocation{}, err
		}
		if removed {
			rev.Add(id, live)
		}
		// An index entry whose session is already gone.
		if err := tx.Bucket(bFamSess).Delete(pairKey(famID, id)); err != nil {
			return store.Revocation{}, err
		}
	}
	for _, hash := range ownedIDs(tx.Bucket(bFamTok), famID) {
		t, err := loadToken(tx, hash)
		if err != nil {
			return store.Revocation{}, err
		}
		if t == nil {
			if err := tx.Bucket(bFamTok).Delete(pairKey(famID, hash)); err != nil {
				return store.Revocation{}, err
			}
			continue
		}
		if keepSpent && t.Spent {
			continue
		}
		if err := removeToken(tx, t); err != nil {
			return store.Revocation{}, err
		}
	}
	f, err := loadFamily(tx, famID)
	if err != nil || f == nil {
		return rev, err
	}
	rev.UserID = f.UserID
	return rev, removeFamilyRecord(tx, f)
}

// RotateRefresh spends a refresh token as store.RotationOutcome decides on the token and family
// read in the same transaction (so of concurrent calls with one token exactly one spends it, and
// within a reuse grace the others see it spent and take the grace); see store.Backend.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.RotateResult, error) {
	var res store.RotateResult
	var outcome error
	note := store.AuditFrom(ctx)
	err := s.w.update(func(tx *bbolt.Tx) error {
		res = store.RotateResult{}
		t, err := loadToken(tx, r.TokenHash)
		if err != nil {
			return err
		}
		var f *store.Family
		if t != nil {
			if f, err = loadFamily(tx, t.FamilyID); err != nil {
				return err
			}
		}
		var grace bool
		switch grace, outcome = store.RotationOutcome(t, f, r.Now, r.ReuseGraceMs); outcome {
		case nil:
		case store.ErrReused:
			if res.Revoked, err = revokeFamily(tx, t.FamilyID, r.Now, true); err != nil {
				return err
			}
			res.Revoked.UserID = store.RevokedUser(t, f)
			res.Revoked = res.Revoked.Sorted()
			if err := recordAudit(tx)(store.RotationEvent(note, res, outcome, r.Now)); err != nil {
				return err
			}
			return recordIf(tx)(store.RotationChange(res, outcome, r.Now))
		default:
			return nil
		}
		sess, err := r.NewSession(f)
		if err != nil {
			return err
		}
		if tx.Bucket(bSessions).Get([]byte(sess.ID)) != nil || tx.Bucket(bTokens).Get([]byte(r.NewTokenHash)) != nil {
			outcome = store.ErrConflict
			return nil
		}
		// A grace rotation writes only the new session and token: the presented token stays spent
		// with its SpentAt, and the session it was issued with went at the rotation that spent it.
		if !grace {
			t.Spend(r.Now)
			if err := tx.Bucket(bTokens).Put([]byte(t.Hash), encodeToken(t)); err != nil {
				return err
			}
			if _, _, err := removeSessionByID(tx, t.SessionID, r.Now); err != nil {
				return err
			}
		}
		if err := insertSession(tx, sess); err != nil {
			return err
		}
		if err := insertToken(tx, r.NextToken(f, sess)); err != nil {
			return err
		}
		res.Session, res.Family, res.Replaced, res.Grace = sess, f, t.SessionID, grace
		if err := recordAudit(tx)(store.RotationEvent(note, res, nil, r.Now)); err != nil {
			return err
		}
		return recordIf(tx)(store.RotationChange(res, nil, r.Now))
	})
	if err != nil {
		return store.RotateResult{}, err
	}
	return res, outcome
}
