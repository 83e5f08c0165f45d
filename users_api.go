package accessproxy

import (
	"net/http"
)

// Strapi's users API (`<prefix>/users`, `<prefix>/users/:id`). With the users-permissions
// `update` or `destroy` permission Strapi lets a user write *any* user, and any field of it,
// audience included. The proxy knows who is calling, so it holds writes to the caller's own
// record (usersApiSelfOnly) and keeps the audience out of every write: operators set audiences
// in the admin panel, on the admin channel.

// userWriteAllowed checks a request to the users API; e is the caller's session (nil: anonymous).
// On refusal it has answered the request.
func (m *Middleware) userWriteAllowed(rw http.ResponseWriter, req *http.Request, p string, e *tokenEntry) bool {
	if safeMethod(req.Method) {
		return true
	}
	if id := m.s.routes.userRecordID(p); id != "" && m.s.usersSelfOnly {
		// The id as Strapi's router sees it (decoded): "02" or "2 " may name user 2 in the
		// database, so only the exact id of the caller passes.
		if e == nil || id != e.claims.Sub {
			m.auditReason("denied", req, entryUser(e), entrySession(e), "users API write to another user's record")
			writeError(rw, http.StatusForbidden, "You may only change your own user record")
			return false
		}
	}
	body, err := readBodyFields(req)
	if err != nil {
		status, msg := bodyErrorStatus(err)
		writeError(rw, status, msg)
		return false
	}
	if setsField(body, m.s.audienceField) {
		m.auditReason("denied", req, entryUser(e), entrySession(e), "user update sets "+m.s.audienceField)
		writeError(rw, http.StatusBadRequest, "Invalid parameters: "+m.s.audienceField+" cannot be changed through the API")
		return false
	}
	return true
}

func entryUser(e *tokenEntry) string {
	if e == nil {
		return ""
	}
	return e.claims.Sub
}

func entrySession(e *tokenEntry) string {
	if e == nil {
		return ""
	}
	return e.claims.Sid
}
