package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxRequestBody caps the request bodies the proxy reads itself (login, refresh): Strapi's own
// limit is larger, but no credential exchange needs more.
const maxRequestBody = 64 << 10

var errBodyTooLarge = errors.New("request body too large")

// readJSONBody reads a small JSON object body and puts the bytes back, so the upstream gets the
// request exactly as the client sent it. A body that is not a JSON object gives a nil map.
func readJSONBody(req *http.Request) (map[string]interface{}, error) {
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
	var obj map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&obj) != nil {
		return nil, nil
	}
	return obj, nil
}
