package store

import "errors"

// The change feed: every state change that makes a session a plugin may have cached wrong is
// recorded with a sequence number, so plugins keep sessions in memory until they expire or the
// feed names them, instead of re-reading every session periodically. What is recorded is decided
// here, once, for every backend; a backend only stores the Change it is given, in the same atomic
// step as the state change (see Backend).

// Change kinds.
const (
	// ChangeRevoked: the sessions were removed (a logout, a family revocation, a device logout, a
	// refresh rotation replacing its session, a refresh-token reuse revoking its family, a
	// create evicting the least recently used sessions of a user at its cap).
	ChangeRevoked = "revoked"
	// ChangeChanged: the sessions were changed in place (SetUser: audience and revalidation;
	// SetUpstream: upstream credentials); a plugin re-reads them when next used.
	ChangeChanged = "changed"
	// ChangeUser: every session of UserID was removed (DeleteUserSessions); a plugin drops every
	// session of that user it holds, SessionIDs listing the ones the store removed.
	ChangeUser = "user"
)

// Change is one record of the feed.
type Change struct {
	Seq        int64    // assigned by the backend: strictly increasing, never reused
	Kind       string   // ChangeRevoked, ChangeChanged or ChangeUser
	SessionIDs []string // sorted, never nil
	UserID     string   // whose sessions ("" when unknown)
	At         int64    // the operation's now (Unix ms), what retention is measured on
	// UpstreamVersion and RevalidatedAt are the session's after a ChangeChanged (0 otherwise): a
	// plugin whose copy is at least that new (the replica that made the change) keeps it.
	UpstreamVersion int64
	RevalidatedAt   int64
}

// ChangePage is what Backend.Changes returns.
type ChangePage struct {
	Changes []Change // seq > since, ascending, at most limit; never nil
	Head    int64    // the highest sequence number ever assigned (0: none yet); it never goes back
	Oldest  int64    // the lowest sequence number still stored, 0 when none is
}

// Not touches, creates or expiry sweeps: a plugin checks expiry itself, and a session it has not
// cached cannot be wrong in its cache. A change that names no session is not recorded, except a
// ChangeUser (a logout everywhere reaches every cache even when the store held nothing).

// RevokedChange is the change of a revocation (DeleteSession, DeleteDeviceSessions, a reuse, a
// create's eviction);
// ok is false when it removed no session record.
func RevokedChange(rev Revocation, at int64) (c Change, ok bool) {
	rev = rev.Sorted()
	return Change{Kind: ChangeRevoked, SessionIDs: rev.SessionIDs, UserID: rev.UserID, At: at}, len(rev.SessionIDs) > 0
}

// UserChange is the change of DeleteUserSessions, always recorded.
func UserChange(userID string, rev Revocation, at int64) Change {
	return Change{Kind: ChangeUser, SessionIDs: rev.Sorted().SessionIDs, UserID: userID, At: at}
}

// SessionChange is the change of SetUser and SetUpstream on s.
func SessionChange(s *Session, at int64) Change {
	return Change{Kind: ChangeChanged, SessionIDs: []string{s.ID}, UserID: s.UserID, At: at,
		UpstreamVersion: s.UpstreamVersion, RevalidatedAt: s.RevalidatedAt}
}

// RotationChange is the change of a RotateRefresh that returned res and err: a rotation that
// spent its token names the replaced session, a reuse the sessions it revoked; a grace rotation
// (it only creates) and a refused one record nothing.
func RotationChange(res RotateResult, err error, at int64) (Change, bool) {
	switch {
	case errors.Is(err, ErrReused):
		return RevokedChange(res.Revoked, at)
	case err != nil || res.Grace || res.Session == nil || res.Replaced == "":
		return Change{}, false
	}
	return Change{Kind: ChangeRevoked, SessionIDs: []string{res.Replaced}, UserID: res.Session.UserID, At: at}, true
}

// TrimPlan is what one Backend.TrimChanges call may remove.
type TrimPlan struct {
	Before int64 // changes with At < Before go (retention)
	Keep   int64 // and so do those with Seq <= Head-Keep (at most Keep are kept); <= 0: no count bound
	Limit  int   // at most this many per call
}

// Trimmed reports whether a change at the oldest end of the feed goes under p, head being the feed's Head.
func (p TrimPlan) Trimmed(c Change, head int64) bool {
	return c.At < p.Before || (p.Keep > 0 && c.Seq <= head-p.Keep)
}

// TouchOne is one touch of a TouchMany.
type TouchOne struct {
	ID    string
	Touch Touch
}
