package api

import "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"

// Session is the wire form of a session (docs/store-api.md). The secrets are pointers so that
// list responses omit them entirely while other responses always carry them, even when "".
type Session struct {
	ID                string           `json:"id"`
	UserID            string           `json:"userId"`
	Username          string           `json:"username"` // the username Strapi showed at login, "" = unknown
	FamilyID          string           `json:"familyId"`
	Host              string           `json:"host"`
	Audience          []string         `json:"audience"`
	DeviceID          string           `json:"deviceId"`   // "" when the login named no device
	DeviceName        string           `json:"deviceName"` // "" when none
	LoginAddr         string           `json:"loginAddr"`  // client address at login, "" = unknown
	LastAddr          string           `json:"lastAddr"`   // at the last touch that named one, "" = unknown
	RememberMe        bool             `json:"rememberMe"`
	StrapiJWT         *string          `json:"strapiJwt,omitempty"`
	StrapiRefresh     *string          `json:"strapiRefresh,omitempty"`
	UpstreamVersion   int64            `json:"upstreamVersion"`
	CreatedAt         int64            `json:"createdAt"`
	LastSeenAt        int64            `json:"lastSeenAt"`
	HostsLastSeen     map[string]int64 `json:"hostsLastSeen"`
	IdleTimeoutMs     int64            `json:"idleTimeoutMs"`
	Sliding           bool             `json:"sliding"`
	ExpiresAt         int64            `json:"expiresAt"`
	AbsoluteExpiresAt int64            `json:"absoluteExpiresAt"`
	RevalidatedAt     int64            `json:"revalidatedAt"` // 0: the user was not re-read since login
}

// SessionBody is {"session": …}.
type SessionBody struct {
	Session *Session `json:"session"`
}

// CreatedBody answers a create: the session and the sessions the user's cap evicted (every
// session record the eviction removed, sorted; [] when none), so the plugin drops them at once.
type CreatedBody struct {
	Session *Session `json:"session"`
	Evicted []string `json:"evicted"`
}

// SessionsBody is {"sessions": […]}.
type SessionsBody struct {
	Sessions []*Session `json:"sessions"`
}

// DeletedBody is {"deleted": N}.
type DeletedBody struct {
	Deleted int `json:"deleted"`
}

// RevokedBody answers a revocation: the live sessions removed, every session id removed (so the
// plugin drops exactly those from its cache) and, for one session, whose they were.
type RevokedBody struct {
	Deleted    int      `json:"deleted"`
	SessionIDs []string `json:"sessionIds"`
	UserID     string   `json:"userId,omitempty"`
}

// NewRevokedBody renders rev; withUser adds its userId (DELETE of one session).
func NewRevokedBody(rev store.Revocation, withUser bool) RevokedBody {
	b := RevokedBody{Deleted: rev.Live, SessionIDs: rev.Sorted().SessionIDs}
	if withUser {
		b.UserID = rev.UserID
	}
	return b
}

// reusedBody is the 409 refresh_reused answer: the error, and what the family revocation ended.
type reusedBody struct {
	Error   errorDetail `json:"error"`
	Revoked revokedSet  `json:"revoked"`
}

type revokedSet struct {
	UserID     string   `json:"userId"`
	FamilyID   string   `json:"familyId"`
	SessionIDs []string `json:"sessionIds"`
}

type refreshBody struct {
	Session           *Session `json:"session"`
	RefreshExpiresAt  int64    `json:"refreshExpiresAt"`
	ReplacedSessionID string   `json:"replacedSessionId"`
	// Grace: the token had been spent already, within the request's reuseGraceMs: a rotation that
	// spent nothing and revoked nothing (replacedSessionId is then already gone).
	Grace bool `json:"grace"`
}

type counterBody struct {
	Count   int64 `json:"count"`
	ResetAt int64 `json:"resetAt"`
}

// NewSessionView renders s without secrets (list form).
func NewSessionView(s *store.Session) *Session {
	aud := s.Audience
	if aud == nil {
		aud = []string{}
	}
	hosts := s.HostsLastSeen
	if hosts == nil {
		hosts = map[string]int64{}
	}
	return &Session{
		ID: s.ID, UserID: s.UserID, Username: s.Username, FamilyID: s.FamilyID, Host: s.Host, Audience: aud,
		DeviceID: s.DeviceID, DeviceName: s.DeviceName, LoginAddr: s.LoginAddr, LastAddr: s.LastAddr, RememberMe: s.RememberMe,
		UpstreamVersion: s.UpstreamVersion, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt,
		HostsLastSeen: hosts, IdleTimeoutMs: s.IdleTimeoutMs, Sliding: s.Sliding,
		ExpiresAt: s.ExpiresAt, AbsoluteExpiresAt: s.AbsoluteExpiresAt, RevalidatedAt: s.RevalidatedAt,
	}
}

// withSecrets renders s with its decrypted secrets.
func withSecrets(s *store.Session, jwt, refresh string) *Session {
	v := NewSessionView(s)
	v.StrapiJWT, v.StrapiRefresh = &jwt, &refresh
	return v
}
