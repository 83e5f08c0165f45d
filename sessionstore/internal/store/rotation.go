package store

import (
	"cmp"
	"slices"
)

// MaxReuseGraceMs bounds Rotation.ReuseGraceMs (5 minutes): a grace is for a client retrying or
// racing itself, not a second life for a stolen token.
const MaxReuseGraceMs = 300_000

// RotationOutcome decides a RotateRefresh from what storage holds: t is the presented token's
// record (nil when unknown), f its family's (nil when gone), graceMs the rotation's reuse grace.
//   - (false, nil): spend t and mint a session from f.
//   - (true, nil): a grace rotation. t was spent already, but at most graceMs ago (the same
//     millisecond included; t.SpentAt 0, a token spent before spend times were recorded, never
//     is) and f is live: mint a session from f exactly as a rotation does, and write nothing else
//     (t stays spent with its SpentAt, so the grace never extends itself; nothing is revoked).
//   - ErrReused: t was spent already and no grace applies, so the family is revoked (whatever
//     state it is in; spent tokens are kept until they expire so that every replay lands here).
//   - ErrNotFound: unknown or expired token, or a family that is gone or expired; nothing may be
//     written.
func RotationOutcome(t *RefreshToken, f *Family, now, graceMs int64) (grace bool, err error) {
	switch {
	case t == nil || !t.Live(now):
		return false, ErrNotFound
	case t.Spent && t.InGrace(now, graceMs) && familyLive(t, f, now):
		return true, nil
	case t.Spent:
		return false, ErrReused
	case !familyLive(t, f, now):
		return false, ErrNotFound
	}
	return false, nil
}

func familyLive(t *RefreshToken, f *Family, now int64) bool {
	return f != nil && f.ID == t.FamilyID && f.Live(now)
}

// InGrace reports whether a spent t presented at now is within a reuse grace of graceMs:
// -SpendSkewMs <= now - SpentAt <= graceMs, with graceMs > 0 and a recorded SpentAt. A request
// reads its time before its transaction runs, so of two tabs refreshing at once the one that
// commits second may carry the earlier time: a spend up to SpendSkewMs "ahead" is that race, not
// reuse. A clock that went back further is outside (reuse): the grace errs towards revoking.
func (t *RefreshToken) InGrace(now, graceMs int64) bool {
	elapsed := now - t.SpentAt
	return graceMs > 0 && t.SpentAt > 0 && elapsed >= -SpendSkewMs && elapsed <= graceMs
}

// SpendSkewMs is how far ahead of a rotation's own time a spend may be and still be concurrent.
const SpendSkewMs = 1000

// Spend marks t spent at now (a normal rotation; a grace rotation spends nothing).
func (t *RefreshToken) Spend(now int64) { t.Spent, t.SpentAt = true, now }

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
	// RememberIdleTimeoutMs and RememberMaxLifetimeMs replace the two for a family whose login
	// asked to be remembered (0: the same).
	RememberIdleTimeoutMs int64
	RememberMaxLifetimeMs int64
	ClientAddr            string // the rotating client's address ("" = not given: the family's login address)
	Now                   int64
}

// MintSession builds the session a rotation issues from f: the family's user, audience, device,
// rememberMe and revalidation time (a rotation is no re-read of the user), the rotating client's
// address (else the family's login address) as its login and last address, a fresh upstream
// version, a cap of MaxLifetimeMs from now that never passes the family's expiry, and a first idle
// window under it. The secrets are left to the caller, who seals them under the new id.
func (f *Family) MintSession(m Mint) *Session {
	if f.RememberMe {
		m.IdleTimeoutMs = cmp.Or(m.RememberIdleTimeoutMs, m.IdleTimeoutMs)
		m.MaxLifetimeMs = cmp.Or(m.RememberMaxLifetimeMs, m.MaxLifetimeMs)
	}
	abs := min(m.Now+m.MaxLifetimeMs, f.ExpiresAt)
	addr := cmp.Or(m.ClientAddr, f.LoginAddr)
	return &Session{
		ID: m.ID, UserID: f.UserID, FamilyID: f.ID, Host: m.Host, Audience: slices.Clone(f.Audience),
		DeviceID: f.DeviceID, DeviceName: f.DeviceName, LoginAddr: addr, LastAddr: addr, RememberMe: f.RememberMe, Username: f.Username,
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
