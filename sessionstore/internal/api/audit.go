package api

import (
	"net/http"
	"slices"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The audit trail on the API: what the plugin tells about a request comes in X-Audit-* headers
// (every one optional, on any authenticated call; see docs/store-api.md), so no JSON body and no
// route changes; the backend records its events with them. GET /v1/audit reads the trail.

// Audit request headers.
const (
	HeaderAuditHost     = "X-Audit-Host"
	HeaderAuditAddr     = "X-Audit-Client-Addr"
	HeaderAuditAgent    = "X-Audit-User-Agent"
	HeaderAuditReason   = "X-Audit-Reason"
	HeaderAuditUsername = "X-Audit-Username"
	HeaderAuditKind     = "X-Audit-Kind"
)

// auditNote reads the X-Audit-* headers; text is cleaned (store.CleanAuditText), never refused, and a
// client address that is not one, or a kind other than login_failed/lockout, is dropped.
func auditNote(r *http.Request) (store.AuditNote, bool) {
	h := r.Header
	n := store.AuditNote{
		Host:      store.CleanAuditText(h.Get(HeaderAuditHost)),
		UserAgent: store.CleanAuditText(h.Get(HeaderAuditAgent)),
		Reason:    store.CleanAuditText(h.Get(HeaderAuditReason)),
		Username:  store.CleanAuditText(h.Get(HeaderAuditUsername)),
	}
	if a, ok := clientAddr(h.Get(HeaderAuditAddr)); ok {
		n.ClientAddr = a
	}
	if k := h.Get(HeaderAuditKind); k == store.AuditLoginFailed || k == store.AuditLockout {
		n.Kind = k
	}
	return n, n != (store.AuditNote{})
}

// AuditEvent is the wire form of an audit event.
type AuditEvent struct {
	ID         int64    `json:"id"`
	At         int64    `json:"at"`
	Kind       string   `json:"kind"`
	UserID     string   `json:"userId"`
	Username   string   `json:"username"`
	SessionID  string   `json:"sessionId"`
	SessionIDs []string `json:"sessionIds"`
	Host       string   `json:"host"`
	ClientAddr string   `json:"clientAddr"`
	UserAgent  string   `json:"userAgent"`
	Reason     string   `json:"reason"`
}

// AuditBody answers GET /v1/audit; Next is the cursor of the next page, 0 when none.
type AuditBody struct {
	Events []AuditEvent `json:"events"`
	Next   int64        `json:"next"`
}

var errNoAudit = &apiError{http.StatusNotImplemented, "not_implemented", "this backend keeps no audit trail"}

// NewAuditView renders e.
func NewAuditView(e store.AuditEvent) AuditEvent {
	ids := e.SessionIDs
	if ids == nil {
		ids = []string{}
	}
	return AuditEvent{ID: e.ID, At: e.At, Kind: e.Kind, UserID: e.UserID, Username: e.Username, SessionID: e.SessionID,
		SessionIDs: ids, Host: e.Host, ClientAddr: e.ClientAddr, UserAgent: e.UserAgent, Reason: e.Reason}
}

// ParseAuditQuery reads user, kind, since, until (Unix ms), cursor and limit; the message names the bad one.
func ParseAuditQuery(r *http.Request) (store.AuditQuery, string) {
	var q store.AuditQuery
	vals := r.URL.Query()
	for _, k := range []string{"user", "kind"} {
		if len(vals[k]) > 1 {
			return q, k + ": given more than once"
		}
	}
	if q.UserID = vals.Get("user"); q.UserID != "" && !validUserID(q.UserID) {
		return q, "user: 1-128 chars of A-Z a-z 0-9 . _ : @ -"
	}
	if q.Kind = vals.Get("kind"); q.Kind != "" && !slices.Contains(store.AuditKinds, q.Kind) {
		return q, "kind: one of login, refresh, refresh_reuse, revoked, logout, logout_all, evicted, login_failed, lockout"
	}
	var ok bool
	if q.Since, ok = intParam(r, "since", 0, 1<<53, 0); !ok {
		return q, "since: Unix ms >= 0"
	}
	if q.Until, ok = intParam(r, "until", 0, 1<<53, 0); !ok {
		return q, "until: Unix ms >= 0"
	}
	if q.Cursor, ok = intParam(r, "cursor", 0, 1<<62, 0); !ok {
		return q, "cursor: the next value of the previous page"
	}
	limit, ok := intParam(r, "limit", 1, store.MaxAuditPage, 100)
	if !ok {
		return q, "limit: 1-500"
	}
	q.Limit = int(limit)
	return q, ""
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) (int, any) {
	log, ok := s.backend.(store.AuditLog)
	if !ok {
		return 0, errNoAudit
	}
	q, msg := ParseAuditQuery(r)
	if msg != "" {
		return 0, badRequest(msg)
	}
	page, err := log.ListAudit(r.Context(), q)
	if err != nil {
		return 0, s.storeError(r, err)
	}
	body := AuditBody{Events: make([]AuditEvent, 0, len(page.Events)), Next: page.Next}
	for _, e := range page.Events {
		body.Events = append(body.Events, NewAuditView(e))
	}
	return http.StatusOK, body
}

// Recorded tells the server of a change-feed record written by another part of this process (the
// console's revocations), so that waiting GET /v1/changes calls answer at once.
func (s *Server) Recorded(c store.Change, ok bool) { s.recorded(c, ok) }
