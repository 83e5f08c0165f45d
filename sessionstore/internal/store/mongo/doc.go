package mongo

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The stored documents. Expiry fields are BSON dates (Unix milliseconds, the store's unit) so a
// TTL index can use them on MongoDB; other times are int64 milliseconds. Sealed secrets are binary.

type sessionDoc struct {
	ID                string           `bson:"_id"`
	UserID            string           `bson:"userId"`
	FamilyID          string           `bson:"familyId"`
	Host              string           `bson:"host"`
	Audience          []string         `bson:"audience"`
	JWT               []byte           `bson:"jwt"`
	Refresh           []byte           `bson:"refresh"`
	UpstreamVersion   int64            `bson:"upstreamVersion"`
	CreatedAt         int64            `bson:"createdAt"`
	LastSeenAt        int64            `bson:"lastSeenAt"`
	Hosts             map[string]int64 `bson:"hosts"` // keys escaped with escapeKey
	IdleTimeoutMs     int64            `bson:"idleTimeoutMs"`
	Sliding           bool             `bson:"sliding"`
	ExpiresAt         bson.DateTime    `bson:"expiresAt"`
	AbsoluteExpiresAt bson.DateTime    `bson:"absoluteExpiresAt"`
	RevalidatedAt     int64            `bson:"revalidatedAt,omitempty"` // absent in older documents: 0
	DeviceID          string           `bson:"deviceId,omitempty"`      // absent: no device (older documents too)
	DeviceName        string           `bson:"deviceName,omitempty"`
	LoginAddr         string           `bson:"loginAddr,omitempty"` // absent: unknown (older documents too)
	LastAddr          string           `bson:"lastAddr,omitempty"`
	RememberMe        bool             `bson:"rememberMe,omitempty"` // absent: false
	Username          string           `bson:"username,omitempty"`   // absent: unknown (older documents too)
}

type familyDoc struct {
	ID            string        `bson:"_id"`
	UserID        string        `bson:"userId"`
	Host          string        `bson:"host"`
	Audience      []string      `bson:"audience"`
	JWT           []byte        `bson:"jwt"`
	Refresh       []byte        `bson:"refresh"`
	CreatedAt     int64         `bson:"createdAt"`
	ExpiresAt     bson.DateTime `bson:"expiresAt"`
	RevalidatedAt int64         `bson:"revalidatedAt,omitempty"`
	DeviceID      string        `bson:"deviceId,omitempty"`
	DeviceName    string        `bson:"deviceName,omitempty"`
	LoginAddr     string        `bson:"loginAddr,omitempty"`
	RememberMe    bool          `bson:"rememberMe,omitempty"`
	Username      string        `bson:"username,omitempty"`
}

type tokenDoc struct {
	Hash      string        `bson:"_id"`
	FamilyID  string        `bson:"familyId"`
	UserID    string        `bson:"userId,omitempty"` // absent in older documents
	SessionID string        `bson:"sessionId"`        // indexed: finds the family of a session that is gone
	ExpiresAt bson.DateTime `bson:"expiresAt"`
	Spent     bool          `bson:"spent"`
	SpentAt   int64         `bson:"spentAt,omitempty"` // absent in older documents: no reuse grace
}

type counterDoc struct {
	Key     string        `bson:"_id"`
	Count   int64         `bson:"count"`
	ResetAt bson.DateTime `bson:"resetAt"`
}

// bytesOrNil keeps "no value" as nil whatever the driver decoded.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func toSessionDoc(s *store.Session) *sessionDoc {
	hosts := make(map[string]int64, len(s.HostsLastSeen))
	for h, at := range s.HostsLastSeen {
		hosts[escapeKey(h)] = at
	}
	return &sessionDoc{
		ID: s.ID, UserID: s.UserID, FamilyID: s.FamilyID, Host: s.Host, Audience: s.Audience,
		JWT: s.JWT, Refresh: s.Refresh, UpstreamVersion: s.UpstreamVersion, CreatedAt: s.CreatedAt,
		LastSeenAt: s.LastSeenAt, Hosts: hosts, IdleTimeoutMs: s.IdleTimeoutMs, Sliding: s.Sliding,
		ExpiresAt: bson.DateTime(s.ExpiresAt), AbsoluteExpiresAt: bson.DateTime(s.AbsoluteExpiresAt),
		RevalidatedAt: s.RevalidatedAt, DeviceID: s.DeviceID, DeviceName: s.DeviceName,
		LoginAddr: s.LoginAddr, LastAddr: s.LastAddr, RememberMe: s.RememberMe, Username: s.Username,
	}
}

func (d *sessionDoc) session() *store.Session {
	var hosts map[string]int64
	if len(d.Hosts) > 0 {
		hosts = make(map[string]int64, len(d.Hosts))
		for k, at := range d.Hosts {
			hosts[unescapeKey(k)] = at
		}
	}
	return &store.Session{
		ID: d.ID, UserID: d.UserID, FamilyID: d.FamilyID, Host: d.Host, Audience: d.Audience,
		JWT: bytesOrNil(d.JWT), Refresh: bytesOrNil(d.Refresh), UpstreamVersion: d.UpstreamVersion,
		CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt, HostsLastSeen: hosts, IdleTimeoutMs: d.IdleTimeoutMs,
		Sliding: d.Sliding, ExpiresAt: int64(d.ExpiresAt), AbsoluteExpiresAt: int64(d.AbsoluteExpiresAt),
		RevalidatedAt: d.RevalidatedAt, DeviceID: d.DeviceID, DeviceName: d.DeviceName,
		LoginAddr: d.LoginAddr, LastAddr: d.LastAddr, RememberMe: d.RememberMe, Username: d.Username,
	}
}

func toFamilyDoc(f *store.Family) *familyDoc {
	return &familyDoc{ID: f.ID, UserID: f.UserID, Host: f.Host, Audience: f.Audience, JWT: f.JWT,
		Refresh: f.Refresh, CreatedAt: f.CreatedAt, ExpiresAt: bson.DateTime(f.ExpiresAt), RevalidatedAt: f.RevalidatedAt,
		DeviceID: f.DeviceID, DeviceName: f.DeviceName, LoginAddr: f.LoginAddr, RememberMe: f.RememberMe, Username: f.Username}
}

func (d *familyDoc) family() *store.Family {
	return &store.Family{ID: d.ID, UserID: d.UserID, Host: d.Host, Audience: d.Audience, JWT: bytesOrNil(d.JWT),
		Refresh: bytesOrNil(d.Refresh), CreatedAt: d.CreatedAt, ExpiresAt: int64(d.ExpiresAt), RevalidatedAt: d.RevalidatedAt,
		DeviceID: d.DeviceID, DeviceName: d.DeviceName, LoginAddr: d.LoginAddr, RememberMe: d.RememberMe, Username: d.Username}
}

func toTokenDoc(t *store.RefreshToken) *tokenDoc {
	return &tokenDoc{Hash: t.Hash, FamilyID: t.FamilyID, UserID: t.UserID, SessionID: t.SessionID, ExpiresAt: bson.DateTime(t.ExpiresAt),
		Spent: t.Spent, SpentAt: t.SpentAt}
}

func (d *tokenDoc) token() *store.RefreshToken {
	return &store.RefreshToken{Hash: d.Hash, FamilyID: d.FamilyID, UserID: d.UserID, SessionID: d.SessionID, ExpiresAt: int64(d.ExpiresAt),
		Spent: d.Spent, SpentAt: d.SpentAt}
}

// escapeKey makes a host usable as a field name: MongoDB reads '.' in a field path as nesting and
// '$' at the start as an operator, so '%', '.' and '$' are percent-encoded ("a.localhost" is stored
// as "a%2Elocalhost").
func escapeKey(s string) string {
	if !strings.ContainsAny(s, "%.$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteString("%25")
		case '.':
			b.WriteString("%2E")
		case '$':
			b.WriteString("%24")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeKey(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	r := strings.NewReplacer("%2E", ".", "%24", "$", "%25", "%")
	return r.Replace(s)
}
