package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// SetUser records a revalidation on the session and its family in one transaction.
func (s *Store) SetUser(ctx context.Context, id string, u store.UserUpdate) (*store.Session, error) {
	var sess *store.Session
	err := s.w.update(func(tx *bbolt.Tx) error {
		var err error
		if sess, err = loadLiveSession(tx, id, u.Now); err != nil || sess == nil {
			return err
		}
		sess.ApplyUser(u)
		if err := updateSession(tx, sess, sess.ExpiresAt); err != nil {
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
		f.ApplyUser(u)
		return tx.Bucket(bFamilies).Put([]byte(f.ID), encodeFamily(f))
	})
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, store.ErrNotFound
	}
	return sess, nil
}
