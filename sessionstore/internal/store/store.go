// Package store defines the storage contract of the session store: record types, the Backend
// interface every storage engine implements, and the errors they return.
//
// Backends store records as given. Secrets arrive sealed (the API layer encrypts them), ids arrive
// generated and inputs arrive validated, so a new backend only has to get persistence, indexes and
// atomicity right. Times are Unix milliseconds, passed in by the caller so that every backend applies
// expiry against the same clock.
package store

import (
	"context"
	"errors"
)

var (
	// ErrNotFound: the record is absent or expired.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap lost, or a key that must be new already exists.
	ErrConflict = errors.New("conflict")
	// ErrReused: a spent refresh token was presented; its family has been revoked.
	ErrReused = errors.New("refresh token reused")
	// ErrUnavailable: the backend is closed or cannot be reached; the caller may retry later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSessionLimit: a create with Limit.Refuse found the user at the cap; nothing was written.
	ErrSessionLimit = errors.New("session limit reached")
)

// Session is one login. JWT and Refresh are sealed (opaque to the backend).
type Session struct {
	ID                string
	UserID            string
	FamilyID          string // "" when the session has no refresh family
	Host              string
	Audience          []string
	DeviceID          string // the client device the login named, "" for none; a rotation's session has its family's
	DeviceName        string // that device's display name, "" for none
	JWT               []byte
	Refresh           []byte
	UpstreamVersion   int64
	CreatedAt         int64
	LastSeenAt        int64
	HostsLastSeen     map[string]int64
	IdleTimeoutMs     int64
	Sliding           bool
	ExpiresAt         int64 // always <= AbsoluteExpiresAt
	AbsoluteExpiresAt int64
	// RevalidatedAt is when the user was last re-read from Strapi (0: not since login). A session
	// minted by a rotation starts with its family's.
	RevalidatedAt int64
	// LoginAddr is the client address of the login (a rotation's session: the rotating client's,
	// else its family's), never changed; LastAddr the last one a touch named. "" = unknown.
	LoginAddr, LastAddr string
	// RememberMe is the login's choice, kept for every plugin instance; a rotation's session has its family's.
	RememberMe bool
	// Username is the account name Strapi's user object showed at login ("" = unknown), for
	// operators to search by; a rotation's session has its family's. Not secret, never used for access.
	Username string
}

// Family is the chain of refresh tokens issued from one login. It keeps its own sealed copy of the
// upstream credentials so a rotation can mint a session after the original one is gone.
type Family struct {
	ID         string
	UserID     string
	Host       string
	Audience   []string
	DeviceID   string // the login's device ("" for none), given to every session the family mints
	DeviceName string
	LoginAddr  string // the login's client address ("" = unknown), for sessions minted without one
	RememberMe bool   // the login's, given to every session the family mints
	Username   string // the login's username, given to every session the family mints
	JWT        []byte
	Refresh    []byte
	CreatedAt  int64
	ExpiresAt  int64
	// RevalidatedAt is the last SetUser through any of the family's sessions (0: none).
	RevalidatedAt int64
}

// RefreshToken is one refresh token, stored by the SHA-256 hash the client's token maps to.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	UserID    string // the family's user, so a replay after the family is gone still names it
	SessionID string // the session issued together with this token
	ExpiresAt int64  // the family's: a token record lives exactly as long as its family may
	Spent     bool
	// SpentAt is when the token was spent (0: unspent, or spent before spend times were recorded,
	// which no reuse grace covers). A grace rotation leaves it unchanged.
	SpentAt int64
}

// Counter is a fixed-window counter.
type Counter struct {
	Count   int64
	ResetAt int64
}

// Touch is a sliding-window extension request; see Session.ApplyTouch.
type Touch struct {
	Host          string
	IdleTimeoutMs int64
	Sliding       bool
	ClientAddr    string // the client's address, "" = not given (LastAddr stays)
	Now           int64
}

// Limit is the per-user session cap a create applies; see PlanEviction.
type Limit struct {
	// Max bounds the user's live sessions (any host) once the new one exists; 0 = no cap.
	Max int
	// Refuse: at the cap, answer ErrSessionLimit instead of evicting the least recently used.
	Refuse bool
}

// Upstream replaces a session's upstream credentials if its UpstreamVersion equals ExpectVersion.
type Upstream struct {
	ExpectVersion int64
	JWT, Refresh  []byte // sealed for the session
	// SealFamily seals the same credentials for the session's family (called only when it has one).
	// It may be called more than once and must have no side effects.
	SealFamily        func(familyID string) (jwt, refresh []byte, err error)
	AbsoluteExpiresAt int64 // 0 keeps the current cap
	Now               int64
}

// UserUpdate is what a re-read of the user from Strapi found; see Backend.SetUser.
type UserUpdate struct {
	Audience []string
	Now      int64
}

// Deletion is a DeleteSession request; see PlanDelete for what it removes.
type Deletion struct {
	// WithFamily also revokes the session's refresh family: the family record, its tokens and every
	// session of it, whatever state the session itself is in.
	WithFamily bool
	// Owner, when not "", guards the revocation: only a session of that user is revoked (its record,
	// live or expired, names the user; for a session that is gone, its family's record does).
	// Another user's session answers ErrNotFound and nothing is removed.
	Owner string
	Now   int64
}

// Rotation spends TokenHash and issues NewTokenHash with a new session built from the family.
type Rotation struct {
	TokenHash    string
	NewTokenHash string
	Now          int64
	// ReuseGraceMs is how long after a token was spent presenting it again still rotates (a client
	// that lost the answer retries; concurrent tabs race) instead of revoking the family; 0: none.
	// See RotationOutcome.
	ReuseGraceMs int64
	// NewSession builds the replacement session from the live family (Family.MintSession, with the
	// secrets sealed for it), inside the atomic section. It may be called more than once (retried
	// transactions) and must have no side effects.
	NewSession func(f *Family) (*Session, error)
}

// Revocation is what one revocation removed, so that callers can drop exactly those sessions
// from what they cache.
type Revocation struct {
	UserID   string // whose sessions they were ("" only for a family revoked before tokens named it)
	FamilyID string // the refresh family revoked (also when a replay finds it already gone), "" when none
	// SessionIDs lists every session record removed (expired ones not yet swept included), sorted;
	// never nil.
	SessionIDs []string
	Live       int // how many of SessionIDs were live
}

// RotateResult is what RotateRefresh did. Revoked is set on reuse (ErrReused).
type RotateResult struct {
	Session *Session
	Family  *Family
	Revoked Revocation
	// Replaced is the id of the session the spent token was issued with (now deleted; on a grace
	// rotation deleted by the first one), so callers can drop what they cached of it.
	Replaced string
	// Grace: the token was spent already and was presented again within Rotation.ReuseGraceMs, so
	// this rotation minted a session and a token without spending it again or revoking anything.
	Grace bool
}

// SweepResult counts the expired records one Sweep call removed.
type SweepResult struct {
	Sessions, Tokens, Families, Counters int
	// Changes counts change-feed records the sweeper trimmed (TrimChanges; Sweep leaves it 0).
	Changes int
	// Audit counts audit events the sweeper removed (AuditLog.SweepAudit; Sweep leaves it 0).
	Audit int
	// More is true when a limit was reached and another call may find more.
	More bool
}

// Backend is a storage engine. Every method is safe for concurrent use, and every method that
// changes more than one record does so atomically. A method that revokes returns a Revocation
// naming exactly the session records it removed (callers drop those from their caches); one that
// answers ErrNotFound, ErrConflict or ErrSessionLimit has changed nothing.
//
// The change feed (changes.go): DeleteSession, DeleteUserSessions, DeleteDeviceSessions,
// RotateRefresh, SetUser, SetUpstream and a CreateSession that evicts record the Change that
// RevokedChange, UserChange, RotationChange or SessionChange makes of their outcome (when it is
// to be recorded), with the next sequence number, in the same atomic step as the state change: a
// reader of Changes never sees the state change without its record, nor a record before
// everything with a lower number (bolt: the same transaction, a sequence of the bucket). A backend
// without transactions (mongo) writes the record right after the state change, under the lock the
// operation holds, and documents what it guarantees. No other method records anything (touches,
// creates that evict nothing, sweeps).
type Backend interface {
	// CreateSession stores s and, when f is not nil, the family f and its first token t.
	// ErrConflict if any of the ids or the token hash exists. With lim.Max > 0 it first applies
	// the cap to the user's sessions live at s.CreatedAt, as PlanEviction decides, in the same
	// atomic step (bolt: the transaction; without transactions: under a lock per user that every
	// capped create of the user takes, on every replica): ErrSessionLimit and nothing written, or
	// the evicted sessions revoked each with its family exactly as DeleteSession with WithFamily
	// (recorded in the change feed as one RevokedChange), then s stored. The Revocation names
	// what the eviction removed (empty, never nil SessionIDs, when nothing); with an error it is
	// empty, except on a backend without transactions whose insert failed after its eviction
	// (then it names what went, which stays gone and recorded).
	CreateSession(ctx context.Context, s *Session, f *Family, t *RefreshToken, lim Limit) (Revocation, error)
	// GetSession returns a live session or ErrNotFound.
	GetSession(ctx context.Context, id string, now int64) (*Session, error)
	// TouchSession applies Session.ApplyTouch atomically and returns the result.
	TouchSession(ctx context.Context, id string, t Touch) (*Session, error)
	// SetUpstream is a compare-and-swap on UpstreamVersion (Session.ApplyUpstream): ErrNotFound,
	// ErrConflict or the new session. The family copy of the credentials is updated in the same atomic step.
	SetUpstream(ctx context.Context, id string, u Upstream) (*Session, error)
	// SetUser replaces the audience of a live session and sets its RevalidatedAt to u.Now, and does
	// the same to its family when it has one (so later rotations mint sessions with them), in one
	// atomic step (Session.ApplyUser, Family.ApplyUser). ErrNotFound when the session is absent or expired.
	SetUser(ctx context.Context, id string, u UserUpdate) (*Session, error)
	// DeleteSession removes a session and, with d.WithFamily, its family, the family's tokens and
	// every session of the family. The family is found whatever state the session is in: live,
	// expired (swept or not) or rotated away, for as long as the family's token records are
	// stored (they expire with it). What goes is PlanDelete's decision on the records read, taken
	// in the same atomic step as the removal: ErrNotFound, and nothing removed, unless the session
	// is live or (WithFamily) its family is, and (with d.Owner) they are the owner's.
	DeleteSession(ctx context.Context, id string, d Deletion) (Revocation, error)
	// ListUserSessions returns the user's live sessions sorted by CreatedAt.
	ListUserSessions(ctx context.Context, userID string, now int64) ([]*Session, error)
	// DeleteUserSessions removes every session and family (with tokens) of the user.
	DeleteUserSessions(ctx context.Context, userID string, now int64) (Revocation, error)
	// DeleteDeviceSessions removes the user's sessions (live or expired) whose DeviceID is deviceID
	// (never ""), and every family of the user with that DeviceID, with its tokens and all its
	// sessions: also a family whose session already ended, so the device's refresh token mints
	// nothing afterwards. A backend without transactions may let a login of that device that races
	// the call survive (acceptable for a logout); other devices' records are never touched.
	DeleteDeviceSessions(ctx context.Context, userID, deviceID string, now int64) (Revocation, error)
	// RotateRefresh, as RotationOutcome decides on the token and family records read in the
	// atomic step: unknown/expired token or family → ErrNotFound; spent token within the reuse
	// grace of a live family → RotateResult.Grace: the new session and token are stored and
	// nothing else is written (the token stays spent with its SpentAt, no session is removed);
	// other spent token → the family, its sessions and its unspent tokens are deleted (spent
	// tokens stay until they expire, so every replay is detected), RotateResult.Revoked says what
	// went (UserID and FamilyID from the spent token, so also on later replays) and ErrReused;
	// else the token is spent (SpentAt = now), its session deleted, the new session and token
	// (Rotation.NextToken) stored. Of concurrent calls with one token exactly one spends it: with
	// no grace the others are ErrReused, within a grace they are grace rotations.
	RotateRefresh(ctx context.Context, r Rotation) (RotateResult, error)
	// IncrCounter adds by to the key's window, starting a new window of windowMs when none is open.
	IncrCounter(ctx context.Context, key string, windowMs, by, now int64) (Counter, error)
	// DeleteCounter reports whether a counter was removed.
	DeleteCounter(ctx context.Context, key string) (bool, error)
	// Sweep deletes records expired at now, at most limit of each kind, in one short transaction.
	Sweep(ctx context.Context, now int64, limit int) (SweepResult, error)
	// TouchMany applies each touch as TouchSession does, in order (a repeated id sees the earlier
	// touches), in one atomic step where the backend has one. The result is aligned with touches:
	// the session after its touch, nil for one absent or expired.
	TouchMany(ctx context.Context, touches []TouchOne) ([]*Session, error)
	// Changes returns the changes with Seq > since, ascending, at most limit (0: none, only Head
	// and Oldest), with the feed's Head and Oldest read in the same step.
	Changes(ctx context.Context, since int64, limit int) (ChangePage, error)
	// TrimChanges removes changes from the oldest end while TrimPlan.Trimmed holds, at most
	// p.Limit of them, and reports how many went and whether more are due. Head never goes back.
	TrimChanges(ctx context.Context, p TrimPlan) (removed int, more bool, err error)
	// SessionCount is the number of stored sessions (expired ones not yet swept included); it must be cheap.
	SessionCount(ctx context.Context) (int64, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	Close() error
}
