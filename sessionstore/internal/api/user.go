package api

import (
	"net/http"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// userRequest is what the plugin found when it re-read the session's user from Strapi. The
// audience is required ([] for none): a PUT that forgot it must not empty it.
type userRequest struct {
	Audience *[]string `json:"audience"`
}

// setUser records a revalidation: the session's (and its family's) audience, revalidatedAt = now.
func (s *Server) setUser(w http.ResponseWriter, r *http.Request) (int, any) {
	id := r.PathValue("id")
	if !validID(id) {
		return 0, errNotFound
	}
	var q userRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	switch {
	case q.Audience == nil:
		return 0, badRequest("audience is required ([] for none)")
	case !validAudience(*q.Audience):
		return 0, badRequest("audience: at most 64 entries of 1-253 printable chars")
	}
	sess, err := s.backend.SetUser(r.Context(), id, store.UserUpdate{Audience: *q.Audience, Now: s.nowMs()})
	if err == nil {
		s.recorded(store.SessionChange(sess, 0), true)
	}
	return s.sessionResponse(r, sess, err)
}
