package bolt

import (
	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// applyLimit enforces a create's session cap inside its transaction: the user's sessions are read
// through the user index, store.PlanEviction decides, and each session it picks is revoked with its
// family as DeleteSession with the family does, the whole eviction recorded as one change. outcome
// is store.ErrSessionLimit (nothing written) for a refusal. Creates are serialised by bbolt's single
// writer, so two creates at the cap can never both see room.
func applyLimit(tx *bbolt.Tx, userID string, lim store.Limit, now int64) (rev store.Revocation, outcome, err error) {
	rev = store.Revocation{UserID: userID}
	if lim.Max <= 0 {
		return rev, nil, nil
	}
	var sessions []*store.Session
	for _, id := range ownedIDs(tx.Bucket(bSessUser), userID) {
		sess, err := loadSession(tx, id)
		if err != nil {
			return rev, nil, err
		}
		if sess != nil {
			sessions = append(sessions, sess)
		}
	}
	evict, outcome := store.PlanEviction(sessions, lim, now)
	if outcome != nil || len(evict) == 0 {
		return rev, outcome, nil
	}
	for _, sess := range evict {
		if sess.FamilyID != "" {
			fr, err := revokeFamily(tx, sess.FamilyID, now, false)
			if err != nil {
				return rev, nil, err
			}
			rev.Merge(fr)
		}
		// Still there when the session has no family (or an earlier one's revocation took it).
		removed, live, err := removeSessionByID(tx, sess.ID, now)
		if err != nil {
			return rev, nil, err
		}
		if removed {
			rev.Add(sess.ID, live)
		}
	}
	return rev, nil, recordIf(tx)(store.RevokedChange(rev, now))
}
