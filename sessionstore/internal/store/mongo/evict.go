package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// userLock names the lock every capped create of a user takes, on every replica sharing the
// database: counting the user's sessions, evicting and inserting the new one happen under it, so
// two logins at the cap can never both see room. It is taken before any family lock (an eviction
// revokes families), never after one, so it adds no lock cycle.
func userLock(userID string) string { return "u:" + userID }

// applyLimit is the cap of a create, under the user's lock: the user's live sessions are read,
// store.PlanEviction decides, and each session it picks is revoked with its family (under the
// family's lock, as DeleteSession with the family does), the whole eviction recorded as one
// change. A refusal (store.ErrSessionLimit) writes nothing.
//
// Without transactions the eviction comes first and the inserts after it: a crash or a failed
// insert in between leaves the user with fewer sessions (the evicted ones are gone and recorded;
// the login answered an error and is retried), never with more than the cap. A token hash that is
// taken is checked before anything is evicted, so a conflict writes nothing. After the first
// eviction an error comes with what was removed so far.
func (s *Store) applyLimit(ctx context.Context, sess *store.Session, t *store.RefreshToken, lim store.Limit) (store.Revocation, error) {
	now := sess.CreatedAt
	rev := store.Revocation{UserID: sess.UserID}
	sessions, err := s.userSessions(ctx, sess.UserID, now)
	if err != nil {
		return store.Revocation{}, err
	}
	evict, err := store.PlanEviction(sessions, lim, now)
	if err != nil || len(evict) == 0 {
		return rev, err
	}
	if t != nil {
		var d tokenDoc
		if taken, err := s.findOne(ctx, s.tokens, t.Hash, &d); err != nil || taken {
			if err == nil {
				err = store.ErrConflict
			}
			return store.Revocation{}, err
		}
	}
	err = s.evict(ctx, evict, now, &rev)
	// What went is recorded also when a later eviction failed: other plugins must drop it.
	if rerr := s.recordIf(ctx)(store.RevokedChange(rev, now)); err == nil {
		err = rerr
	}
	return rev, err
}

// evict revokes each session with its family, adding what went to rev.
func (s *Store) evict(ctx context.Context, evict []*store.Session, now int64, rev *store.Revocation) error {
	for _, e := range evict {
		if e.FamilyID != "" {
			err := s.withLock(ctx, "f:"+e.FamilyID, func() error {
				fr, err := s.revokeFamily(ctx, e.FamilyID, now, false)
				rev.Merge(fr)
				return err
			})
			if err != nil {
				return err
			}
		}
		// Still there when the session has no family (or its family's revocation missed it).
		c, cancel := s.call(ctx)
		res, err := s.sessions.DeleteOne(c, byID(e.ID))
		cancel()
		if err != nil {
			return wrap(err)
		}
		if res.DeletedCount > 0 {
			rev.Add(e.ID, true)
		}
	}
	return nil
}

// userSessions reads what PlanEviction needs of the user's sessions live at now.
func (s *Store) userSessions(ctx context.Context, userID string, now int64) ([]*store.Session, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.sessions.Find(c, liveFilter(bson.D{{Key: "userId", Value: userID}}, now), options.Find().SetProjection(bson.D{
		{Key: "_id", Value: 1}, {Key: "familyId", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "lastSeenAt", Value: 1},
		{Key: "expiresAt", Value: 1}, {Key: "absoluteExpiresAt", Value: 1}}))
	if err != nil {
		return nil, wrap(err)
	}
	var docs []sessionDoc
	if err := cur.All(c, &docs); err != nil {
		return nil, wrap(err)
	}
	out := make([]*store.Session, len(docs))
	for i := range docs {
		out[i] = docs[i].session()
	}
	return out, nil
}
