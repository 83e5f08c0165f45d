package api

import "net/http"

type incrRequest struct {
	WindowMs int64 `json:"windowMs"`
	By       int64 `json:"by"`
}

func (s *Server) incrCounter(w http.ResponseWriter, r *http.Request) (int, any) {
	key := r.PathValue("key")
	if !validCounterKey(key) {
		return 0, badRequest("counter key: 1-200 chars of A-Z a-z 0-9 : . _ -")
	}
	var q incrRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	switch {
	case !validDuration(q.WindowMs):
		return 0, badRequest("windowMs must be > 0")
	case q.By < 0 || q.By > maxCounterStep:
		return 0, badRequest("by must be >= 0")
	}
	c, err := s.backend.IncrCounter(r.Context(), key, q.WindowMs, q.By, s.nowMs())
	if err != nil {
		return 0, s.storeError(r, err)
	}
	return http.StatusOK, counterBody{c.Count, c.ResetAt}
}

func (s *Server) deleteCounter(w http.ResponseWriter, r *http.Request) (int, any) {
	key := r.PathValue("key")
	if !validCounterKey(key) {
		return 0, badRequest("counter key: 1-200 chars of A-Z a-z 0-9 : . _ -")
	}
	deleted, err := s.backend.DeleteCounter(r.Context(), key)
	if err != nil {
		return 0, s.storeError(r, err)
	}
	n := 0
	if deleted {
		n = 1
	}
	return http.StatusOK, DeletedBody{n}
}
