package bolt

import (
	"cmp"
	"context"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// loadSession returns the stored session or nil.
func loadSession(tx *bbolt.Tx, id string) (*store.Session, error) {
	v := tx.Bucket(bSessions).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeSession(v)
}

// loadLiveSession returns the session if it is live at now, else nil.
func loadLiveSession(tx *bbolt.Tx, id string, now int64) (*store.Session, error) {
	s, err := loadSession(tx, id)
	if err != nil || s == nil || !s.Live(now) {
		return nil, err
	}
	return s, nil
}

// insertSession stores a new session with its index entries.
func insertSession(tx *bbolt.Tx, s *store.Session) error {
	if err := tx.Bucket(bSessions).Put([]byte(s.ID), encodeSession(s)); err != nil {
		return err
	}
	if err := tx.Bucket(bSessExp).Put(expKey(s.ExpiresAt, s.ID), nil); err != nil {
		return err
	}
	if err := tx.Bucket(bSessUser).Put(pairKey(s.UserID, s.ID), nil); err != nil {
		return err
	}
	if s.FamilyID != "" {
		if err := tx.Bucket(bFamSess).Put(pairKey(s.FamilyID, s.ID), nil); err != nil {
			return err
		}
	}
	return addCount(tx, 1)
}

// updateSession rewrites s, moving its expiry index entry when the expiry changed.
func updateSession(tx *bbolt.Tx, s *store.Session, oldExpiresAt int64) error {
	if s.ExpiresAt != oldExpiresAt {
		exp := tx.Bucket(bSessExp)
		if err := exp.Delete(expKey(oldExpiresAt, s.ID)); err != nil {
			return err
		}
		if err := exp.Put(expKey(s.ExpiresAt, s.ID), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bSessions).Put([]byte(s.ID), encodeSession(s))
}

// removeSession deletes a session and its index entries.
func removeSession(tx *bbolt.Tx, s *store.Session) error {
	for _, del := range []struct {
		bucket []byte
		key    []byte
	}{
		{bSessions, []byte(s.ID)},
		{bSessExp, expKey(s.ExpiresAt, s.ID)},
		{bSessUser, pairKey(s.UserID, s.ID)},
		{bFamSess, pairKey(s.FamilyID, s.ID)},
	} {
		if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
			return err
		}
	}
	return addCount(tx, -1)
}

// removeSessionByID deletes a session if stored and reports whether it was, and was live at now.
func removeSessionByID(tx *bbolt.Tx, id string, now int64) (removed, live bool, err error) {
	s, err := loadSession(tx, id)
	if err != nil || s == nil {
		return false, false, err
	}
	return true, s.Live(now), removeSession(tx, s)
}

// CreateSession stores the session and, optionally, its family and first refresh token, after
// applying the user's session cap (evict.go) in the same transaction.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session, f *store.Family, t *store.RefreshToken, lim store.Limit) (store.Revocation, error) {
	var rev store.Revocation
	var outcome error
	note := store.AuditFrom(ctx)
	err := s.w.update(func(tx *bbolt.Tx) error {
		rev, outcome = store.Revocation{}, nil
		if tx.Bucket(bSessions).Get([]byte(sess.ID)) != nil ||
			(f != nil && tx.Bucket(bFamilies).Get([]byte(f.ID)) != nil) ||
			(t != nil && tx.Bucket(bTokens).Get([]byte(t.Hash)) != nil) {
			outcome = store.ErrConflict
			return nil
		}
		var err error
		if rev, outcome, err = applyLimit(tx, sess.UserID, lim, sess.CreatedAt); err != nil || outcome != nil {
			return err // a refusal writes nothing
		}
		if err := recordAudit(tx)(store.RevocationEvent(note, store.AuditEvicted, rev, sess.CreatedAt)); err != nil {
			return err
		}
		if f != nil {
			if err := insertFamily(tx, f); err != nil {
				return err
			}
		}
		if t != nil {
			if err := insertToken(tx, t); err != nil {
				return err
			}
		}
		if err := insertSession(tx, sess); err != nil {
			return err
		}
		return recordAudit(tx)(store.LoginEvent(note, sess), true)
	})
	if err != nil {
		return store.Revocation{}, err
	}
	if outcome != nil {
		return store.Revocation{}, outcome
	}
	return rev.Sorted(), nil
}

// GetSession reads a live session.
func (s *Store) GetSession(ctx context.Context, id string, now int64) (*store.Session, error) {
	var sess *store.Session
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		sess, err = loadLiveSession(tx, id, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// TouchSession applies the sliding extension atomically.
func (s *Store) TouchSession(ctx context.Context, id string, t store.Touch) (*store.Session, error) {
	var sess *store.Session
	err := s.w.update(func(tx *bbolt.Tx) error {
		var err error
		if sess, err = loadLiveSession(tx, id, t.Now); err != nil || sess == nil {
			return err
		}
		old := sess.ExpiresAt
		sess.ApplyTouch(t)
		return updateSession(tx, sess, old)
	})
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// TouchMany applies every touch in one transaction (shared, like every write, with the writes
// queued beside it): one commit and one fsync for the whole batch, acknowledged after both.
func (s *Store) TouchMany(ctx context.Context, touches []store.TouchOne) ([]*store.Session, error) {
	out := make([]*store.Session, len(touches))
	err := s.w.update(func(tx *bbolt.Tx) error {
		clear(out)
		for i, one := range touches {
			sess, err := loadLiveSession(tx, one.ID, one.Touch.Now)
			if err != nil {
				return err
			}
			if sess == nil {
				continue
			}
			old := sess.ExpiresAt
			sess.ApplyTouch(one.Touch)
			if err := updateSession(tx, sess, old); err != nil {
				return err
			}
			out[i] = sess
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetUpstream replaces the upstream credentials if the version matches.
func (s *Store) SetUpstream(ctx context.Context, id string, u store.Upstream) (*store.Session, error) {
	var sess *store.Session
	var conflict bool
	err := s.w.update(func(tx *bbolt.Tx) error {
		conflict = false
		var err error
		if sess, err = loadLiveSession(tx, id, u.Now); err != nil || sess == nil {
			return err
		}
		old := sess.ExpiresAt
		if sess.ApplyUpstream(u) != nil {
			conflict = true
			return nil
		}
		if err := updateSession(tx, sess, old); err != nil {
			return err
		}
		if err := recordChange(tx, store.SessionChange(sess, u.Now)); err != nil {
			return err
		}
		if sess.FamilyID == "" {
			return nil
		}
		f, err := loadFamily(tx, sess.FamilyID)
		if err != nil || f == nil {
			return err
		}
		if f.JWT, f.Refresh, err = u.SealFamily(f.ID); err != nil {
			return err
		}
		return tx.Bucket(bFamilies).Put([]byte(f.ID), encodeFamily(f))
	})
	switch {
	case err != nil:
		return nil, err
	case sess == nil:
		return nil, store.ErrNotFound
	case conflict:
		return nil, store.ErrConflict
	}
	return sess, nil
}

// DeleteSession removes a session and, optionally, its whole family, as store.PlanDelete decides
// on the records read in the same transaction. The family of a session that is gone is found
// through the token it was issued with.
func (s *Store) DeleteSession(ctx context.Context, id string, d store.Deletion) (store.Revocation, error) {
	var rev store.Revocation
	var outcome error
	note := store.AuditFrom(ctx)
	err := s.w.update(func(tx *bbolt.Tx) error {
		rev, outcome = store.Revocation{}, nil
		sess, err := loadSession(tx, id)
		if err != nil {
			return err
		}
		famID, f := "", (*store.Family)(nil)
		if d.WithFamily {
			if sess != nil {
				famID = sess.FamilyID
			} else if famID, err = familyOfSession(tx, id); err != nil {
				return err
			}
			if famID != "" {
				if f, err = loadFamily(tx, famID); err != nil {
					return err
				}
			}
		}
		plan, err := store.PlanDelete(sess, famID, f, d)
		if err != nil {
			outcome = err // nothing written
			return nil
		}
		if plan.RevokeFamily {
			if rev, err = revokeFamily(tx, famID, d.Now, false); err != nil {
				return err
			}
		}
		rev.UserID = plan.UserID
		if plan.RemoveSession {
			// Still there when the session has no family (or it was not asked for).
			removed, live, err := removeSessionByID(tx, id, d.Now)
			if err != nil {
				return err
			}
			if removed {
				rev.Add(id, live)
			}
		}
		if err := recordAudit(tx)(store.DeleteEvent(note, sess, rev, d.Now)); err != nil {
			return err
		}
		return recordIf(tx)(store.RevokedChange(rev, d.Now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	if outcome != nil {
		return store.Revocation{}, outcome
	}
	return rev.Sorted(), nil
}

// ListUserSessions reads the user's live sessions through the user index.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now int64) ([]*store.Session, error) {
	out := []*store.Session{}
	err := s.view(func(tx *bbolt.Tx) error {
		for _, id := range ownedIDs(tx.Bucket(bSessUser), userID) {
			sess, err := loadLiveSession(tx, id, now)
			if err != nil {
				return err
			}
			if sess != nil {
				out = append(out, sess)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *store.Session) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteUserSessions removes every session and family of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, now int64) (store.Revocation, error) {
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.w.update(func(tx *bbolt.Tx) error {
		rev = store.Revocation{UserID: userID}
		for _, famID := range ownedIDs(tx.Bucket(bFamUser), userID) {
			fr, err := revokeFamily(tx, famID, now, false)
			if err != nil {
				return err
			}
			rev.Merge(fr)
		}
		for _, id := range ownedIDs(tx.Bucket(bSessUser), userID) {
			removed, live, err := removeSessionByID(tx, id, now)
			if err != nil {
				return err
			}
			if removed {
				rev.Add(id, live)
			}
		}
		if err := recordAudit(tx)(store.RevocationEvent(note, store.AuditLogoutAll, rev, now)); err != nil {
			return err
		}
		return recordChange(tx, store.UserChange(userID, rev, now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

// DeleteDeviceSessions removes, in one transaction, every family of the user with that device
// (with its tokens and sessions) and then the user's remaining sessions of the device.
func (s *Store) DeleteDeviceSessions(ctx context.Context, userID, deviceID string, now int64) (store.Revocation, error) {
	if deviceID == "" { // "no device" is not a device: never a match
		return store.Revocation{UserID: userID}.Sorted(), nil
	}
	var rev store.Revocation
	note := store.AuditFrom(ctx)
	err := s.w.update(func(tx *bbolt.Tx) error {
		rev = store.Revocation{UserID: userID}
		for _, famID := range ownedIDs(tx.Bucket(bFamUser), userID) {
			f, err := loadFamily(tx, famID)
			if err != nil {
				return err
			}
			if f == nil || f.DeviceID != deviceID {
				continue
			}
			fr, err := revokeFamily(tx, famID, now, false)
			if err != nil {
				return err
			}
			rev.Merge(fr)
		}
		for _, id := range ownedIDs(tx.Bucket(bSessUser), userID) {
			sess, err := loadSession(tx, id)
			if err != nil {
				return err
			}
			if sess == nil || sess.DeviceID != deviceID {
				continue
			}
			if err := removeSession(tx, sess); err != nil {
				return err
			}
			rev.Add(id, sess.Live(now))
		}
		if err := recordAudit(tx)(store.RevocationEvent(note, store.AuditLogout, rev, now)); err != nil {
			return err
		}
		return recordIf(tx)(store.RevokedChange(rev, now))
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}
