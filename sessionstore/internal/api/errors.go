package api

import "net/http"

// apiError is a 4xx/5xx answer: {"error":{"code":…,"message":…}}.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(msg string) *apiError { return &apiError{http.StatusBadRequest, "bad_request", msg} }

var (
	errUnauthorized = &apiError{http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token"}
	errNotFound     = &apiError{http.StatusNotFound, "not_found", "not found"}
	errNoRoute      = &apiError{http.StatusNotFound, "not_found", "no such endpoint"}
	errConflict     = &apiError{http.StatusConflict, "conflict", "version or key conflict: re-read and retry"}
	errReused       = &apiError{http.StatusConflict, "refresh_reused", "refresh token already used: its family has been revoked"}
	errSessionLimit = &apiError{http.StatusConflict, "session_limit", "This account already has the maximum number of sessions"}
	errTooLarge     = &apiError{http.StatusRequestEntityTooLarge, "too_large", "request body exceeds 64 KiB"}
	errUnavailable  = &apiError{http.StatusServiceUnavailable, "unavailable", "storage unavailable"}
	errInternal     = &apiError{http.StatusInternalServerError, "internal", "internal error"}
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
