package mongo

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }

// findOne decodes the document with _id id into out; found is false when there is none.
func (s *Store) findOne(ctx context.Context, coll *mongo.Collection, id string, out any) (found bool, err error) {
	c, cancel := s.call(ctx)
	defer cancel()
	err = coll.FindOne(c, byID(id)).Decode(out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, wrap(err)
}

func (s *Store) insert(ctx context.Context, coll *mongo.Collection, doc any) error {
	c, cancel := s.call(ctx)
	defer cancel()
	_, err := coll.InsertOne(c, doc)
	if mongo.IsDuplicateKeyError(err) {
		return store.ErrConflict
	}
	return wrap(err)
}

// deleteByID removes one document (clean-up of a failed multi-step write; runs even if ctx ended).
func (s *Store) deleteByID(ctx context.Context, coll *mongo.Collection, id string) (bool, error) {
	c, cancel := s.detached(ctx)
	defer cancel()
	res, err := coll.DeleteOne(c, byID(id))
	if err != nil {
		return false, wrap(err)
	}
	return res.DeletedCount > 0, nil
}

func (s *Store) deleteMany(ctx context.Context, coll *mongo.Collection, filter bson.D) (int, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	res, err := coll.DeleteMany(c, filter)
	if err != nil {
		return 0, wrap(err)
	}
	return int(res.DeletedCount), nil
}

func (s *Store) set(ctx context.Context, coll *mongo.Collection, id string, fields bson.D) (matched bool, err error) {
	c, cancel := s.call(ctx)
	defer cancel()
	res, err := coll.UpdateOne(c, byID(id), bson.D{{Key: "$set", Value: fields}})
	if err != nil {
		return false, wrap(err)
	}
	return res.MatchedCount > 0, nil
}

// loadSession returns the stored session or nil.
func (s *Store) loadSession(ctx context.Context, id string) (*store.Session, error) {
	var d sessionDoc
	found, err := s.findOne(ctx, s.sessions, id, &d)
	if err != nil || !found {
		return nil, err
	}
	return d.session(), nil
}

func (s *Store) loadLiveSession(ctx context.Context, id string, now int64) (*store.Session, error) {
	sess, err := s.loadSession(ctx, id)
	if err != nil || sess == nil || !sess.Live(now) {
		return nil, err
	}
	return sess, nil
}

// CreateSession applies the user's session cap (evict.go), then inserts the records (insertLogin).
// Without a cap it takes no lock: there is nothing to count.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session, f *store.Family, t *store.RefreshToken, lim store.Limit) (store.Revocation, error) {
	note := store.AuditFrom(ctx)
	if lim.Max <= 0 {
		err := s.insertLogin(ctx, sess, f, t)
		if err == nil {
			s.recordAudit(ctx)(store.LoginEvent(note, sess), true)
		}
		return store.Revocation{UserID: sess.UserID}.Sorted(), err
	}
	var rev store.Revocation
	err := s.withLock(ctx, userLock(sess.UserID), func() error {
		var err error
		rev, err = s.applyLimit(ctx, sess, t, lim)
		s.recordAudit(ctx)(store.RevocationEvent(note, store.AuditEvicted, rev, sess.CreatedAt))
		if err != nil {
			return err
		}
		if err := s.insertLogin(ctx, sess, f, t); err != nil {
			return err
		}
		s.recordAudit(ctx)(store.LoginEvent(note, sess), true)
		return nil
	})
	// With an error, rev is what an eviction removed before the insert failed (else empty).
	return rev.Sorted(), err
}

// insertLogin inserts token, family, then session; the unique _id of each makes a duplicate a
// conflict. Without transactions, a conflict removes what this call inserted before; a crash in
// between leaves an orphan token/family that no client knows (nothing was acknowledged), which
// expires and is swept.
func (s *Store) insertLogin(ctx context.Context, sess *store.Session, f *store.Family, t *store.RefreshToken) error {
	var undo []func()
	fail := func(err error) error {
		for _, u := range slices.Backward(undo) {
			u()
		}
		return err
	}
	if t != nil {
		if err := s.insert(ctx, s.tokens, toTokenDoc(t)); err != nil {
			return err
		}
		undo = append(undo, func() { _, _ = s.deleteByID(ctx, s.tokens, t.Hash) })
	}
	if f != nil {
		if err := s.insert(ctx, s.families, toFamilyDoc(f)); err != nil {
			return fail(err)
		}
		undo = append(undo, func() { _, _ = s.deleteByID(ctx, s.families, f.ID) })
	}
	if err := s.insert(ctx, s.sessions, toSessionDoc(sess)); err != nil {
		return fail(err)
	}
	return nil
}

// GetSession is one lookup by _id.
func (s *Store) GetSession(ctx context.Context, id string, now int64) (*store.Session, error) {
	sess, err := s.loadLiveSession(ctx, id, now)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// TouchSession reads, applies store.Session.ApplyTouch and writes the changed fields back, under
// the session's lock (FerretDB has neither pipeline updates nor atomic findAndModify).
func (s *Store) TouchSession(ctx context.Context, id string, t store.Touch) (*store.Session, error) {
	var sess *store.Session
	err := s.withLock(ctx, "s:"+id, func() error {
		var err error
		if sess, err = s.loadLiveSession(ctx, id, t.Now); err != nil || sess == nil {
			return err
		}
		sess.ApplyTouch(t)
		fields := bson.D{
			{Key: "lastSeenAt", Value: sess.LastSeenAt},
			{Key: "hosts", Value: toSessionDoc(sess).Hosts},
			{Key: "expiresAt", Value: bson.DateTime(sess.ExpiresAt)},
		}
		if t.ClientAddr != "" {
			fields = append(fields, bson.E{Key: "lastAddr", Value: sess.LastAddr})
		}
		matched, err := s.set(ctx, s.sessions, id, fields)
		if err == nil && !matched { // deleted meanwhile
			sess = nil
		}
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

// withSessionLocks runs fn under the session's lock and, first, its family's (if it has one): fn
// writes both records. The order family → session is the only one in which two locks are held, so
// it cannot deadlock; holding the family's lock keeps a rotation from minting a session from the
// family between fn's two writes. Without a live session fn is not called (the caller's result
// stays nil: not found); fn must read the session again, under the locks.
func (s *Store) withSessionLocks(ctx context.Context, id string, now int64, fn func() error) error {
	sess, err := s.loadLiveSession(ctx, id, now) // the family id never changes
	if err != nil || sess == nil {
		return err
	}
	if sess.FamilyID == "" {
		return s.withLock(ctx, "s:"+id, fn)
	}
	return s.withLock(ctx, "f:"+sess.FamilyID, func() error { return s.withLock(ctx, "s:"+id, fn) })
}

// SetUpstream is a compare-and-swap on upstreamVersion under the session's and family's locks. The
// session is written first, then the family's copy (without transactions a crash in between leaves
// the family with the previous credentials: the next rotation mints a session with them and the
// proxy refreshes upstream again).
func (s *Store) SetUpstream(ctx context.Context, id string, u store.Upstream) (*store.Session, error) {
	var sess *store.Session
	var conflict bool
	err := s.withSessionLocks(ctx, id, u.Now, func() error {
		var err error
		if sess, err = s.loadLiveSession(ctx, id, u.Now); err != nil || sess == nil {
			return err
		}
		if sess.ApplyUpstream(u) != nil {
			conflict = true
			return nil
		}
		matched, err := s.set(ctx, s.sessions, id, bson.D{
			{Key: "jwt", Value: sess.JWT}, {Key: "refresh", Value: sess.Refresh},
			{Key: "upstreamVersion", Value: sess.UpstreamVersion},
			{Key: "absoluteExpiresAt", Value: bson.DateTime(sess.AbsoluteExpiresAt)},
			{Key: "expiresAt", Value: bson.DateTime(sess.ExpiresAt)},
		})
		if err != nil || !matched {
			sess = nil
			return err
		}
		if sess.FamilyID != "" {
			jwt, refresh, err := u.SealFamily(sess.FamilyID)
			if err != nil {
				return err
			}
			if _, err := s.set(ctx, s.families, sess.FamilyID, bson.D{{Key: "jwt", Value: jwt}, {Key: "refresh", Value: refresh}}); err != nil {
				return err
			}
		}
		return s.recordChange(ctx, store.SessionChange(sess, u.Now))
	})
	switch {
	case err != nil:
		return nil, err
	case conflict:
		return nil, store.ErrConflict
	case sess == nil:
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// DeleteSession removes a session and, optionally, its family (see revokeFamily), as
// store.PlanDelete decides. The family of a session that is gone is found through its token. With
// a family the decision is taken under the family's lock, on the family record read under it, and
// the revocation follows under the same lock. A session's user and family never change, so for
// the owner guard the session record read before the lock is as good as one read under it.
func (s *Store) DeleteSession(ctx context.Context, id string, d store.Deletion) (store.Revocation, error) {
	sess, err := s.loadSession(ctx, id)
	if err != nil {
		return store.Revocation{}, err
	}
	famID := ""
	if d.WithFamily {
		if sess != nil {
			famID = sess.FamilyID
		} else if famID, err = s.familyOfSession(ctx, id); err != nil {
			return store.Revocation{}, err
		}
	}
	var plan store.DeletePlan
	var rev store.Revocation
	if famID == "" {
		plan, err = store.PlanDelete(sess, "", nil, d)
	} else {
		err = s.withLock(ctx, "f:"+famID, func() error {
			f, err := s.loadFamily(ctx, famID)
			if err != nil {
				return err
			}
			if plan, err = store.PlanDelete(sess, famID, f, d); err != nil || !plan.RevokeFamily {
				return err // a 4xx writes nothing
			}
			rev, err = s.revokeFamily(ctx, famID, d.Now, false)
			return err
		})
	}
	if err != nil {
		return store.Revocation{}, err
	}
	rev.UserID = plan.UserID
	if plan.RemoveSession {
		// Still there when the session has no family (or it was not asked for).
		c, cancel := s.call(ctx)
		defer cancel()
		res, err := s.sessions.DeleteOne(c, byID(id))
		if err != nil {
			return store.Revocation{}, wrap(err)
		}
		if res.DeletedCount > 0 {
			rev.Add(id, sess.Live(d.Now))
		}
	}
	// After the last write (the family's revocation ran under its lock, released by now).
	note := store.AuditFrom(ctx)
	s.recordAudit(ctx)(store.DeleteEvent(note, sess, rev, d.Now))
	if err := s.recordIf(ctx)(store.RevokedChange(rev, d.Now)); err != nil {
		return store.Revocation{}, err
	}
	return rev.Sorted(), nil
}

// deleteSessions deletes the sessions filter matches and says which went. It deletes by the ids it
// found, so what it reports is exactly what it removed (a session inserted meanwhile stays).
func (s *Store) deleteSessions(ctx context.Context, filter bson.D, now int64) (store.Revocation, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.sessions.Find(c, filter, options.Find().SetProjection(bson.D{
		{Key: "_id", Value: 1}, {Key: "expiresAt", Value: 1}, {Key: "absoluteExpiresAt", Value: 1}}))
	if err != nil {
		return store.Revocation{}, wrap(err)
	}
	var docs []sessionDoc
	if err := cur.All(c, &docs); err != nil {
		return store.Revocation{}, wrap(err)
	}
	var rev store.Revocation
	if len(docs) == 0 {
		return rev, nil
	}
	ids := make([]string, len(docs))
	for i := range docs {
		ids[i] = docs[i].ID
	}
	if _, err := s.deleteMany(ctx, s.sessions, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return store.Revocation{}, err
	}
	for i := range docs {
		rev.Add(docs[i].ID, docs[i].session().Live(now))
	}
	return rev, nil
}

// liveFilter matches the live sessions among filter's (expiresAt <= absoluteExpiresAt always).
func liveFilter(filter bson.D, now int64) bson.D {
	return append(slices.Clone(filter), bson.E{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: bson.DateTime(now)}}})
}

// ListUserSessions finds the user's sessions by the userId index (the value is a plain string:
// "$ne" or "{...}" in it is matched literally).
func (s *Store) ListUserSessions(ctx context.Context, userID string, now int64) ([]*store.Session, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.sessions.Find(c, liveFilter(bson.D{{Key: "userId", Value: userID}}, now))
	if err != nil {
		return nil, wrap(err)
	}
	var docs []sessionDoc
	if err := cur.All(c, &docs); err != nil {
		return nil, wrap(err)
	}
	out := make([]*store.Session, 0, len(docs))
	for i := range docs {
		if sess := docs[i].session(); sess.Live(now) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *store.Session) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteUserSessions revokes every family of the user, then deletes the remaining sessions.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, now int64) (store.Revocation, error) {
	rev, err := s.revokeMatching(ctx, userID, bson.D{{Key: "userId", Value: userID}}, now)
	if err == nil {
		s.recordAudit(ctx)(store.RevocationEvent(store.AuditFrom(ctx), store.AuditLogoutAll, rev, now))
		err = s.recordChange(ctx, store.UserChange(userID, rev, now))
	}
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

// DeleteDeviceSessions revokes every family of the user with that device, then deletes the user's
// remaining sessions of the device. Without transactions, a login of that device inserted between
// the reads and the deletes survives: acceptable for a logout (it is a later login).
func (s *Store) DeleteDeviceSessions(ctx context.Context, userID, deviceID string, now int64) (store.Revocation, error) {
	if deviceID == "" { // "no device" is not a device: never a match (and deviceId is omitted when "")
		return store.Revocation{UserID: userID}.Sorted(), nil
	}
	rev, err := s.revokeMatching(ctx, userID, bson.D{{Key: "userId", Value: userID}, {Key: "deviceId", Value: deviceID}}, now)
	if err == nil {
		s.recordAudit(ctx)(store.RevocationEvent(store.AuditFrom(ctx), store.AuditLogout, rev, now))
		err = s.recordIf(ctx)(store.RevokedChange(rev, now))
	}
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

// revokeMatching revokes the families filter matches (each under its lock), then deletes the
// sessions it matches: filter names fields that families and sessions share (userId, deviceId).
func (s *Store) revokeMatching(ctx context.Context, userID string, filter bson.D, now int64) (store.Revocation, error) {
	c, cancel := s.call(ctx)
	cur, err := s.families.Find(c, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	var fams []familyDoc
	if err == nil {
		err = cur.All(c, &fams)
	}
	cancel()
	if err != nil {
		return store.Revocation{}, wrap(err)
	}
	rev := store.Revocation{UserID: userID}
	for _, f := range fams {
		err := s.withLock(ctx, "f:"+f.ID, func() error {
			fr, err := s.revokeFamily(ctx, f.ID, now, false)
			rev.Merge(fr)
			return err
		})
		if err != nil {
			return store.Revocation{}, err
		}
	}
	rest, err := s.deleteSessions(ctx, filter, now)
	if err != nil {
		return store.Revocation{}, err
	}
	rev.Merge(rest)
	return rev.Sorted(), nil
}

// Import inserts sessions in batches (bulk loads: benchmarks, migrations). ErrConflict if an id exists.
func (s *Store) Import(ctx context.Context, sessions []*store.Session) error {
	docs := make([]any, len(sessions))
	for i, sess := range sessions {
		docs[i] = toSessionDoc(sess)
	}
	c, cancel := context.WithTimeout(ctx, s.opTimeout*20)
	defer cancel()
	_, err := s.sessions.InsertMany(c, docs)
	if mongo.IsDuplicateKeyError(err) {
		return store.ErrConflict
	}
	return wrap(err)
}
