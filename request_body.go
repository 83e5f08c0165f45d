package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxRequestBody caps the request bodies the proxy reads itself (login, refresh): Strapi's own
// limit is larger, but no credential exchange needs more.
const maxRequestBody = 64 << 10

var (
	errBodyTooLarge   = errors.New("request body too large")
	errBodyMediaType  = errors.New("unsupported body type")
	formContentType   = "application/x-www-form-urlencoded"
	jsonContentSuffix = "json"
)

// readJSONBody reads a small JSON object body and puts the bytes back, so the upstream gets the
// request exactly as the client sent it. A body that is not a JSON object gives a nil map.
func readJSONBody(req *http.Request) (map[string]interface{}, error) {
	raw, err := bufferBody(req)
	if err != nil || raw == nil {
		return nil, err
	}
	return jsonObject(raw), nil
}

// readLoginBody reads a login request's body the way Strapi will: JSON, or a urlencoded form
// (koa-body accepts both). Any other non-empty body is refused, so no encoding can carry fields
// past the proxy's checks (the register audience rule, the lockout identifier).
func readLoginBody(req *http.Request) (map[string]interface{}, error) {
	raw, err := bufferBody(req)
	if err != nil || raw == nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch {
	case mt == formContentType:
		values, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, errBodyMediaType
		}
		out := map[string]interface{}{}
		for k, v := range values {
			out[k] = v[0]
		}
		return out, nil
	case mt == "" || strings.HasSuffix(mt, jsonContentSuffix):
		return jsonObject(raw), nil
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	return nil, errBodyMediaType
}

// bufferBody reads the body (at most maxRequestBody) and puts it back; nil when there is none.
func bufferBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxRequestBody {
		return nil, errBodyTooLarge
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	return raw, nil
}

func jsonObject(raw []byte) map[string]interface{} {
	var obj map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&obj) != nil {
		return nil
	}
	return obj
}

// setsField says whether a body sets field, also as a nested form key (`audience[0]`, `audience.x`).
func setsField(body map[string]interface{}, field string) bool {
	for k := range body {
		if k == field || strings.HasPrefix(k, field+"[") || strings.HasPrefix(k, field+".") {
			return true
		}
	}
	return false
}
