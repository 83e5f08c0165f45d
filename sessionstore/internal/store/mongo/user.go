package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// SetUser records a revalidation under the family's and the session's locks (withSessionLocks):
// the session first, then the family. Without transactions a crash in between leaves the family
// with the previous audience; a rotation then mints a session with it, and the proxy re-reads the
// user on every refresh anyway.
func (s *Store) SetUser(ctx context.Context, id string, u store.UserUpdate) (*store.Session, error) {
	var sess *store.Session
	err := s.withSessionLocks(ctx, id, u.Now, func() error {
		var err error
		if sess, err = s.loadLiveSession(ctx, id, u.Now); err != nil || sess == nil {
			return err
		}
		sess.ApplyUser(u)
		// The family's record takes the same two fields (what store.Family.ApplyUser sets).
		user := bson.D{{Key: "audience", Value: sess.Audience}, {Key: "revalidatedAt", Value: sess.RevalidatedAt}}
		matched, err := s.set(ctx, s.sessions, id, user)
		if err != nil || !matched {
			sess = nil
			return err
		}
		if sess.FamilyID != "" {
			if _, err := s.set(ctx, s.families, sess.FamilyID, user); err != nil {
				return err
			}
		}
		return s.recordChange(ctx, store.SessionChange(sess, u.Now))
	})
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, store.ErrNotFound
	}
	return sess, nil
}
