package mongo

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func (s *Store) loadToken(ctx context.Context, hash string) (*store.RefreshToken, error) {
	var d tokenDoc
	found, err := s.findOne(ctx, s.tokens, hash, &d)
	if err != nil || !found {
		return nil, err
	}
	return d.token(), nil
}

func (s *Store) loadFamily(ctx context.Context, id string) (*store.Family, error) {
	var d familyDoc
	found, err := s.findOne(ctx, s.families, id, &d)
	if err != nil || !found {
		return nil, err
	}
	return d.family(), nil
}

// familyOfSession returns the id of the family a session was issued in ("" when no stored token
// names it): token records outlive the session (rotation, expiry) and go with the family.
func (s *Store) familyOfSession(ctx context.Context, sessionID string) (string, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	var d struct {
		FamilyID string `bson:"familyId"`
	}
	err := s.tokens.FindOne(c, bson.D{{Key: "sessionId", Value: sessionID}},
		options.FindOne().SetProjection(bson.D{{Key: "familyId", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	return d.FamilyID, wrap(err)
}

// revokeFamily deletes a family, its sessions and its tokens (with keepSpent, spent tokens stay until
// they expire so that later replays are still reuse) and says which sessions went; the caller sets
// UserID. The caller holds the family's lock. The family record goes first: a rotation that is not
// serialised by the lock (none is) would find it gone.
func (s *Store) revokeFamily(ctx context.Context, famID string, now int64, keepSpent bool) (store.Revocation, error) {
	if _, err := s.deleteMany(ctx, s.families, byID(famID)); err != nil {
		return store.Revocation{}, err
	}
	fam := bson.D{{Key: "familyId", Value: famID}}
	rev, err := s.deleteSessions(ctx, fam, now)
	if err != nil {
		return store.Revocation{}, err
	}
	rev.FamilyID = famID
	tokens := fam
	if keepSpent {
		tokens = bson.D{{Key: "familyId", Value: famID}, {Key: "spent", Value: false}}
	}
	if _, err := s.deleteMany(ctx, s.tokens, tokens); err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

// RotateRefresh spends a token under its family's lock, so of concurrent calls with one token
// exactly one finds it unspent (on FerretDB too, where a conditional findAndModify is not atomic)
// and, within a reuse grace, the others find it spent with its spentAt: store.RotationOutcome
// decides on the token and family read under the lock.
//
// Order, without transactions: the new session and token are inserted first, then the old token is
// marked spent (the commit point), then the old session is deleted. A crash before the commit leaves
// the old token usable (the client retries; the orphans expire); a crash after it leaves the old
// session until it expires. A grace rotation only inserts the new session and token. Ids are 256-bit random, so the conflict checks are belt and braces.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.RotateResult, error) {
	// Read once without the lock only to learn which family's lock to take.
	t, err := s.loadToken(ctx, r.TokenHash)
	if err != nil {
		return store.RotateResult{}, err
	}
	if t == nil || !t.Live(r.Now) {
		return store.RotateResult{}, store.ErrNotFound
	}
	var res store.RotateResult
	var outcome error
	err = s.withLock(ctx, "f:"+t.FamilyID, func() error {
		t, err := s.loadToken(ctx, r.TokenHash) // again, under the lock
		if err != nil {
			return err
		}
		var f *store.Family
		if t != nil {
			if f, err = s.loadFamily(ctx, t.FamilyID); err != nil {
				return err
			}
		}
		var grace bool
		switch grace, outcome = store.RotationOutcome(t, f, r.Now, r.ReuseGraceMs); outcome {
		case nil:
		case store.ErrReused:
			if res.Revoked, err = s.revokeFamily(ctx, t.FamilyID, r.Now, true); err != nil {
				return err
			}
			res.Revoked.UserID = store.RevokedUser(t, f)
			res.Revoked = res.Revoked.Sorted()
			s.recordAudit(ctx)(store.RotationEvent(store.AuditFrom(ctx), res, outcome, r.Now))
			return s.recordIf(ctx)(store.RotationChange(res, outcome, r.Now))
		default:
			return nil
		}
		sess, err := r.NewSession(f)
		if err != nil {
			return err
		}
		next := r.NextToken(f, sess)
		if err := s.insert(ctx, s.tokens, toTokenDoc(next)); err != nil {
			if err == store.ErrConflict {
				outcome = err
				return nil
			}
			return err
		}
		if err := s.insert(ctx, s.sessions, toSessionDoc(sess)); err != nil {
			_, _ = s.deleteByID(ctx, s.tokens, next.Hash)
			if err == store.ErrConflict {
				outcome = err
				return nil
			}
			return err
		}
		// A grace rotation stops here: the token stays spent with its spentAt, and the session it
		// was issued with went at the rotation that spent it.
		if !grace {
			t.Spend(r.Now)
			if _, err := s.set(ctx, s.tokens, t.Hash, bson.D{{Key: "spent", Value: true}, {Key: "spentAt", Value: t.SpentAt}}); err != nil {
				_, _ = s.deleteByID(ctx, s.sessions, sess.ID)
				_, _ = s.deleteByID(ctx, s.tokens, next.Hash)
				return err
			}
			if _, err := s.deleteByID(ctx, s.sessions, t.SessionID); err != nil {
				s.log.Warn("rotation: deleting the replaced session failed; it expires by itself", "err", err)
			}
		}
		res.Session, res.Family, res.Replaced, res.Grace = sess, f, t.SessionID, grace
		// The token is spent: failing now would make the client's retry a reuse. recordChange
		// has logged the failure; other proxies keep the replaced session until it expires.
		_ = s.recordIf(ctx)(store.RotationChange(res, nil, r.Now))
		s.recordAudit(ctx)(store.RotationEvent(store.AuditFrom(ctx), res, nil, r.Now))
		return nil
	})
	if err != nil {
		return store.RotateResult{}, err
	}
	return res, outcome
}
