package accessproxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Errors go out in Strapi's own shape, so clients handle them like Strapi's.
type errorBody struct {
	Data  interface{} `json:"data"`
	Error errorDetail `json:"error"`
}

// errorDetail is Strapi's error object; Strapi always sends `details`, `{}` when it has none.
type errorDetail struct {
	Status  int      `json:"status"`
	Name    string   `json:"name"`
	Message string   `json:"message"`
	Details struct{} `json:"details"`
}

func errorName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "ValidationError"
	case http.StatusUnauthorized:
		return "UnauthorizedError"
	case http.StatusForbidden:
		return "ForbiddenError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusRequestEntityTooLarge:
		return "PayloadTooLargeError"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaTypeError"
	case http.StatusConflict:
		return "ConflictError" // koa's name for a 409, as Strapi's ctx.throw(409) answers
	case http.StatusTooManyRequests:
		return "RateLimitError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableError"
	}
	return "ApplicationError"
}

func writeError(rw http.ResponseWriter, status int, message string) {
	writeNamedError(rw, status, errorName(status), message)
}

// writeNamedError is writeError with Strapi's error name given, where Strapi's own answer to the
// same request names it otherwise (ctx.badRequest is a BadRequestError, not a ValidationError).
func writeNamedError(rw http.ResponseWriter, status int, name, message string) {
	body, err := json.Marshal(errorBody{Error: errorDetail{Status: status, Name: name, Message: message}})
	if err != nil {
		body = []byte(`{"data":null,"error":{"status":500,"name":"ApplicationError","message":"internal error","details":{}}}`)
	}
	writeJSON(rw, status, body)
}

func writeJSON(rw http.ResponseWriter, status int, body []byte) {
	h := rw.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

func writeJSONValue(rw http.ResponseWriter, status int, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(rw, status, body)
}
