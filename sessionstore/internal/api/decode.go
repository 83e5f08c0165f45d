package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// maxBody bounds request bodies; the largest legitimate one (a create with a long JWT) is a few KiB.
const maxBody = 64 << 10

// decode reads exactly one JSON object of the request type: no unknown fields, no wrong types,
// nothing after it, at most maxBody bytes. It runs before any storage call, so a rejected request
// writes nothing.
func decode(w http.ResponseWriter, r *http.Request, dst any) *apiError {
	return decodeMax(w, r, dst, maxBody)
}

// decodeMax is decode with a body limit of its own (a batch).
func decodeMax(w http.ResponseWriter, r *http.Request, dst any, limit int64) *apiError {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err, limit)
		}
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

func decodeError(err error, limit int64) *apiError {
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge) && limit == maxBody:
		return errTooLarge
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", "request body exceeds " + strconv.FormatInt(limit>>10, 10) + " KiB"}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is empty or truncated")
	case errors.As(err, &typeErr):
		return badRequest("field " + typeErr.Field + ": wrong type, want " + typeErr.Type.String())
	default:
		// Syntax and unknown-field errors name a position or a field, never a value.
		return badRequest("invalid JSON: " + err.Error())
	}
}
