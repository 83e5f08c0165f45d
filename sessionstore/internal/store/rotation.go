package store

import (
	"cmp"
	"slices"
)

// RotationOutcome decides a RotateRefresh from what storage holds: t is the presented token's
// record (nil when unknown), f its family's (nil when gone). nil: spend t and mint a session from
// f. ErrReused: t was spent already, so the family is revoked (whatever state it is in; spent
// tokens are kept until they expire so that every replay lands here). ErrNotFound: unknown or
// expired token, or a family that is gone or expired; nothing may be written.
func RotationOutcome(t *RefreshToken, f *Family, now int64) error {
	switch {
	case t == nil || !t.Live(now):
		return ErrNotFound
	case t.Spent:
		return ErrReused
	case f == nil || f.ID != t.FamilyID || !f.Live(now):
		return ErrNotFound
	}
	return nil
}

// RevokedUser is whose family a reuse revoked: the spent token's user (it outlives the family),
// else the family record's (a token stored before tokens named their user), else "".
func RevokedUser(t *RefreshToken, f *Family) string {
	if f == nil {
		return t.UserID
	}
	return cmp.Or(t.UserID, f.UserID)
}

// Mint is what the caller of a rotation chooses for the session it issues; the rest comes from
// the family.
type Mint struct {
	ID            string
	Host          string
	IdleTimeoutMs int64
	Sliding       bool
	MaxLifetimeMs int64 // the new session's cap, from now (never past the family's expiry)
	Now           int64
}

// MintSession builds the session a rotation issues from f: the family's user, audience and
// revalidation time (a rotation is no re-read of the user), a fresh upstream version, a cap of
// MaxLifetimeMs from now that never passes the family's expiry, and a first idle window under it.
// The secrets are left to the caller, who seals them under the new id.
func (f *Family) MintSession(m Mint) *Session {
	abs := min(m.Now+m.MaxLifetimeMs, f.ExpiresAt)
	return &Session{
		ID: m.ID, UserID: f.UserID, FamilyID: f.ID, Host: m.Host, Audience: slices.Clone(f.Audience),
		UpstreamVersion: 1, CreatedAt: m.Now, LastSeenAt: m.Now, HostsLastSeen: map[string]int64{m.Host: m.Now},
		IdleTimeoutMs: m.IdleTimeoutMs, Sliding: m.Sliding,
		ExpiresAt: FirstExpiry(m.Now, m.IdleTimeoutMs, abs), AbsoluteExpiresAt: abs,
		RevalidatedAt: f.RevalidatedAt,
	}
}

// NextToken is the token record a rotation issues with sess: the family's user and expiry (a token
// lives exactly as long as its family may), naming sess so that the family of sess is found once
// sess is gone.
func (r Rotation) NextToken(f *Family, sess *Session) *RefreshToken {
	return &RefreshToken{Hash: r.NewTokenHash, FamilyID: f.ID, UserID: f.UserID, SessionID: sess.ID, ExpiresAt: f.ExpiresAt}
}
