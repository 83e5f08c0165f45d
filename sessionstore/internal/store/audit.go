package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// The audit trail: every state change a backend makes on the plugin's behalf is recorded as an
// AuditEvent in the same atomic step (bolt: the transaction; mongo: right after the write, under the
// lock the operation holds), with what the plugin said about the request (an AuditNote, carried by
// the call's context: WithAudit). The read and retention side is a separate interface, AuditLog,
// so a backend without it still implements Backend.

// Audit event kinds.
const (
	AuditLogin       = "login"         // a session was created (CreateSession)
	AuditRefresh     = "refresh"       // a refresh token was rotated (also a grace rotation: Reason "grace")
	AuditReuse       = "refresh_reuse" // a spent refresh token was presented: its family was revoked
	AuditRevoked     = "revoked"       // DeleteSession (an operator, a password change, …)
	AuditLogout      = "logout"        // DeleteSession with Reason "logout", or DeleteDeviceSessions
	AuditLogoutAll   = "logout_all"    // DeleteUserSessions
	AuditEvicted     = "evicted"       // a create at the user's session cap evicted the least recently used
	AuditLoginFailed = "login_failed"  // a counter incremented for a failed login (AuditNote.Kind)
	AuditLockout     = "lockout"       // a counter incremented to set a lockout (AuditNote.Kind)
)

// AuditKinds lists every kind, in display order.
var AuditKinds = []string{AuditLogin, AuditRefresh, AuditReuse, AuditRevoked, AuditLogout, AuditLogoutAll,
	AuditEvicted, AuditLoginFailed, AuditLockout}

// AuditNote is what the caller (the plugin, through the API's X-Audit-* headers, or the console)
// tells the backend about a request, for the events it records. Every field is optional.
type AuditNote struct {
	Host       string // the host the request came to
	ClientAddr string // the client's address
	UserAgent  string // a summary of the client's user agent ("Firefox 133 on macOS")
	Reason     string // why ("logout", "password_change", "console", "grace", …)
	Username   string // the account name as typed (failed logins, lockouts)
	// Kind names the event of a counter increment (AuditLoginFailed, AuditLockout); other calls
	// decide their kind themselves and ignore it.
	Kind string
}

// AuditEvent is one record of the trail.
type AuditEvent struct {
	ID         int64  // assigned by the backend: increasing with time, the paging cursor
	At         int64  // the operation's now (Unix ms)
	Kind       string // one of AuditKinds
	UserID     string
	Username   string
	SessionID  string   // the session created or minted ("" for removals)
	SessionIDs []string // the session records removed (sorted, never nil)
	Host       string
	ClientAddr string
	UserAgent  string
	Reason     string
}

// AuditQuery filters ListAudit. Events come newest first.
type AuditQuery struct {
	UserID string // "" = every user
	Kind   string // "" = every kind
	Since  int64  // At >= Since (0: no bound)
	Until  int64  // At < Until (0: no bound)
	Cursor int64  // ID < Cursor (0: from the newest)
	Limit  int    // at most this many (<= 0 or > MaxAuditPage: MaxAuditPage)
}

// MaxAuditPage bounds one page; MaxAuditScan bounds the records one ListAudit call reads.
const (
	MaxAuditPage = 500
	MaxAuditScan = 100_000
)

// AuditPage is what ListAudit returns.
type AuditPage struct {
	Events []AuditEvent // never nil
	// Next is the cursor of the next page (0: none): the ID of the last event returned, or of the
	// last record read when the scan bound was reached first.
	Next int64
}

// Match reports whether e passes q's filters (not the cursor).
func (q AuditQuery) Match(e AuditEvent) bool {
	return (q.UserID == "" || e.UserID == q.UserID) && (q.Kind == "" || e.Kind == q.Kind) &&
		(q.Since <= 0 || e.At >= q.Since) && (q.Until <= 0 || e.At < q.Until)
}

// PageLimit is the page size q asks for, bounded.
func (q AuditQuery) PageLimit() int {
	if q.Limit <= 0 || q.Limit > MaxAuditPage {
		return MaxAuditPage
	}
	return q.Limit
}

// AuditLog is implemented by backends that keep the audit trail (bolt, mongo).
type AuditLog interface {
	// ListAudit returns the events matching q, newest first.
	ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error)
	// SweepAudit removes at most limit events with At < before, oldest first, and says whether more are due.
	SweepAudit(ctx context.Context, before int64, limit int) (removed int, more bool, err error)
}

// Directory is implemented by backends that can search and count sessions for the console.
type Directory interface {
	// SearchUsers returns the users with a live session whose user id or username contains q
	// (case-insensitive; "" matches every user), at most limit, sorted by user id.
	SearchUsers(ctx context.Context, q string, now int64, limit int) ([]UserMatch, error)
	// LiveSessions counts the live sessions in total and per issuing host.
	LiveSessions(ctx context.Context, now int64) (total int, perHost map[string]int, err error)
}

// UserMatch is one user SearchUsers found.
type UserMatch struct {
	UserID   string
	Username string // of the user's most recent session that has one
	Sessions int    // live sessions
}

// MatchUser reports whether a session of userID/username matches a SearchUsers query.
func MatchUser(q, userID, username string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	return strings.Contains(strings.ToLower(userID), q) || strings.Contains(strings.ToLower(username), q)
}

type auditKey struct{}

// WithAudit returns ctx carrying n for the backend calls made with it.
func WithAudit(ctx context.Context, n AuditNote) context.Context {
	return context.WithValue(ctx, auditKey{}, n)
}

// AuditFrom returns the note ctx carries (zero when none).
func AuditFrom(ctx context.Context) AuditNote {
	n, _ := ctx.Value(auditKey{}).(AuditNote)
	return n
}

// MaxAuditField bounds every text field of a note, in bytes.
const MaxAuditField = 255

// CleanAuditText makes s fit for the trail: valid UTF-8 (invalid bytes replaced), no control
// characters, at most MaxAuditField bytes (cut at a rune boundary). Audit text is never refused.
func CleanAuditText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) <= MaxAuditField {
		return s
	}
	cut := MaxAuditField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Event builds the event of kind at now from the note; the caller fills in what the backend knows.
func (n AuditNote) Event(kind string, now int64) AuditEvent {
	return AuditEvent{At: now, Kind: kind, SessionIDs: []string{}, Host: n.Host, ClientAddr: n.ClientAddr,
		UserAgent: n.UserAgent, Reason: n.Reason, Username: n.Username}
}

// LoginEvent is the event of a CreateSession of s.
func LoginEvent(n AuditNote, s *Session) AuditEvent {
	e := n.Event(AuditLogin, s.CreatedAt)
	e.UserID, e.SessionID, e.Username = s.UserID, s.ID, s.Username
	e.Host = firstOf(s.Host, n.Host)
	e.ClientAddr = firstOf(s.LoginAddr, n.ClientAddr)
	e.UserAgent = firstOf(n.UserAgent, s.DeviceName)
	return e
}

// RevocationEvent is the event of a revocation of kind (AuditRevoked, AuditLogout, AuditLogoutAll,
// AuditEvicted, AuditReuse); ok is false when it removed nothing and is not to be recorded
// (a logout everywhere is always recorded).
func RevocationEvent(n AuditNote, kind string, rev Revocation, now int64) (AuditEvent, bool) {
	rev = rev.Sorted()
	e := n.Event(kind, now)
	e.UserID, e.SessionIDs = rev.UserID, rev.SessionIDs
	return e, len(rev.SessionIDs) > 0 || kind == AuditLogoutAll
}

// DeleteEvent is the event of a DeleteSession of sess (nil when its record was gone) that removed rev.
func DeleteEvent(n AuditNote, sess *Session, rev Revocation, now int64) (AuditEvent, bool) {
	e, ok := RevocationEvent(n, DeleteKind(n), rev, now)
	if sess != nil {
		e.Username = firstOf(e.Username, sess.Username)
		e.Host = firstOf(e.Host, sess.Host)
	}
	return e, ok
}

// DeleteKind is the kind of a DeleteSession's event.
func DeleteKind(n AuditNote) string {
	if n.Reason == "logout" {
		return AuditLogout
	}
	return AuditRevoked
}

// RotationEvent is the event of a RotateRefresh that returned res and err (a refused one: none).
func RotationEvent(n AuditNote, res RotateResult, err error, now int64) (AuditEvent, bool) {
	switch {
	case errors.Is(err, ErrReused):
		return RevocationEvent(n, AuditReuse, res.Revoked, now)
	case err != nil || res.Session == nil:
		return AuditEvent{}, false
	}
	e := n.Event(AuditRefresh, now)
	s := res.Session
	e.UserID, e.SessionID, e.Username = s.UserID, s.ID, s.Username
	e.Host = firstOf(s.Host, n.Host)
	e.ClientAddr = firstOf(n.ClientAddr, s.LoginAddr)
	e.UserAgent = firstOf(n.UserAgent, s.DeviceName)
	if res.Replaced != "" {
		e.SessionIDs = []string{res.Replaced}
	}
	if res.Grace && e.Reason == "" {
		e.Reason = "grace"
	}
	return e, true
}

// CounterEvent is the event of an IncrCounter by by: only a note naming AuditLoginFailed or
// AuditLockout records one.
func CounterEvent(n AuditNote, by, now int64) (AuditEvent, bool) {
	if by <= 0 || (n.Kind != AuditLoginFailed && n.Kind != AuditLockout) {
		return AuditEvent{}, false
	}
	return n.Event(n.Kind, now), true
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SortMatches returns the matches sorted by user id, at most limit (<= 0: all).
func SortMatches(users map[string]*UserMatch, limit int) []UserMatch {
	out := make([]UserMatch, 0, len(users))
	for _, u := range users {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b UserMatch) int { return cmp.Compare(a.UserID, b.UserID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
