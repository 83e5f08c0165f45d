package api

import "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"

// Session is the wire form of a session (docs/store-api.md). The secrets are pointers so that
// list responses omit them entirely while other responses always carry them, even when "".
type Session struct {
	ID                string           `json:"id"`
	UserID            string           `json:"userId"`
	FamilyID          string           `json:"familyId"`
	Host              string           `json:"host"`
	Audience          []string         `json:"audience"`
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
}

// SessionBody is {"session": …}.
type SessionBody struct {
	Session *Session `json:"session"`
}

// SessionsBody is {"sessions": […]}.
type SessionsBody struct {
	Sessions []*Session `json:"sessions"`
}

// DeletedBody is {"deleted": N}.
type DeletedBody struct {
	Deleted int `json:"deleted"`
}

type refreshBody struct {
	Session           *Session `json:"session"`
	RefreshExpiresAt  int64    `json:"refreshExpiresAt"`
	ReplacedSessionID string   `json:"replacedSessionId"`
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
		ID: s.ID, UserID: s.UserID, FamilyID: s.FamilyID, Host: s.Host, Audience: aud,
		UpstreamVersion: s.UpstreamVersion, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt,
		HostsLastSeen: hosts, IdleTimeoutMs: s.IdleTimeoutMs, Sliding: s.Sliding,
		ExpiresAt: s.ExpiresAt, AbsoluteExpiresAt: s.AbsoluteExpiresAt,
	}
}

// withSecrets renders s with its decrypted secrets.
func withSecrets(s *store.Session, jwt, refresh string) *Session {
	v := NewSessionView(s)
	v.StrapiJWT, v.StrapiRefresh = &jwt, &refresh
	return v
}
