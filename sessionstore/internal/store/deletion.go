package store

// DeletePlan is what a DeleteSession removes, decided by PlanDelete before anything is written.
type DeletePlan struct {
	// RevokeFamily: revoke the family (its record, tokens and every session of it).
	RevokeFamily bool
	// RemoveSession: remove the session record itself too (a family revocation may already have:
	// removing it again is a no-op). False only when the record is gone.
	RemoveSession bool
	// UserID is whose the removed records are, for the Revocation.
	UserID string
}

// PlanDelete decides a DeleteSession from what storage holds: sess is the session record (nil when
// it is gone: swept or rotated away), famID the family it was issued in (from sess, or for a gone
// session from the token record naming it; "" when there is none or d.WithFamily is false) and f
// that family's record (nil when gone). ErrNotFound means nothing may be written.
//
// A live session is revoked (with its family, if asked); a session that is not live counts only
// through a live family. With d.Owner, the records must be the owner's: the session record when it
// is still stored (live or expired), else the family record. An owner who is not the user answers
// exactly like an id never stored, so a caller learns nothing of other users' sessions.
func PlanDelete(sess *Session, famID string, f *Family, d Deletion) (DeletePlan, error) {
	if d.Owner != "" && !ownedBy(sess, f, d.Owner) {
		return DeletePlan{}, ErrNotFound
	}
	live := sess != nil && sess.Live(d.Now)
	plan := DeletePlan{RevokeFamily: d.WithFamily && famID != "" && (live || (f != nil && f.Live(d.Now)))}
	if !live && !plan.RevokeFamily {
		return DeletePlan{}, ErrNotFound
	}
	switch {
	case sess != nil:
		plan.RemoveSession, plan.UserID = true, sess.UserID
	case f != nil:
		plan.UserID = f.UserID
	}
	return plan, nil
}

// ownedBy reports whether what would be revoked is owner's: every record there is (a session and
// its family always share their user), and at least one.
func ownedBy(sess *Session, f *Family, owner string) bool {
	if sess == nil && f == nil {
		return false
	}
	return (sess == nil || sess.UserID == owner) && (f == nil || f.UserID == owner)
}
