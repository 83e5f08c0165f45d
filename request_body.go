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
	"unicode/utf8"
)

// Request bodies the proxy decides something from (the login identifier, the audience of a
// register or users-API write) are read exactly as Strapi 5.54's body middleware reads them
// (koa-body 6 → co-body 6 → raw-body + qs), or refused. Where the two could disagree, the proxy
// refuses: a request Strapi would read differently never passes a check it should have failed.
//
// What Strapi does, and what the proxy does about it:
//   - parses POST, PUT and PATCH only; other methods reach controllers with an empty body. Same here.
//   - inflates gzip, deflate and br bodies (inflation). Refused here: 415.
//   - decodes every body as UTF-8 whatever the charset says, dropping one leading BOM. Same here.
//   - JSON for application/json, json-patch+json, vnd.api+json, csp-report, reports+json; strict:
//     the text must start with `{` or `[`, and @hapi/bourne refuses `__proto__` and
//     `constructor.prototype` keys. Same here; a body Go cannot decode (deeper than its nesting
//     limit, trailing data) is refused: 400.
//   - urlencoded through qs with allowDots: `a[b]=`, `a.b=`, `%5B`, duplicate keys and the
//     Object.prototype names all mean something to qs. Such keys are refused here (400); flat
//     keys are read as qs reads them (the `]=` split rule, `+` as space, at most 1000 parts).
//   - multipart through formidable, text/* as a string. Refused here (415): no credential
//     exchange needs them.

// maxRequestBody caps the request bodies the proxy reads itself: Strapi's own limits are larger
// (1 MiB JSON, 56 KiB forms), but no credential exchange needs more.
const maxRequestBody = 56 << 10

var (
	errBodyTooLarge   = errors.New("request body too large")
	errBodyMediaType  = errors.New("unsupported body type or encoding")
	errBodyUnreadable = errors.New("request body cannot be read as Strapi would read it")
)

// strapiJSONTypes are the media types koa-body parses as JSON.
var strapiJSONTypes = map[string]bool{
	"application/json":            true,
	"application/json-patch+json": true,
	"application/vnd.api+json":    true,
	"application/csp-report":      true,
	"application/reports+json":    true,
}

const formMediaType = "application/x-www-form-urlencoded"

// qsParameterLimit is qs's parameterLimit: parts past it are silently dropped by qs.
const qsParameterLimit = 1000

// readBodyFields reads the body of a request as Strapi will see it (ctx.request.body) and puts
// the bytes back, so the upstream gets the request exactly as the client sent it. It returns nil
// when Strapi would see no fields (no body, a method Strapi does not parse, a top-level array),
// or one of errBodyTooLarge (413), errBodyMediaType (415) and errBodyUnreadable (400).
func readBodyFields(req *http.Request) (map[string]interface{}, error) {
	if req.Method != http.MethodPost && req.Method != http.MethodPut && req.Method != http.MethodPatch {
		return nil, nil
	}
	raw, err := bufferBody(req)
	if err != nil || len(raw) == 0 {
		return nil, err
	}
	if ce := req.Header.Values("Content-Encoding"); len(ce) > 1 || (len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return nil, errBodyMediaType
	}
	ct := req.Header.Values("Content-Type")
	if len(ct) != 1 {
		return nil, errBodyMediaType
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	if err != nil {
		return nil, errBodyMediaType
	}
	raw = bytes.TrimPrefix(raw, utf8BOM)
	switch {
	case strapiJSONTypes[mt]:
		return strictJSONFields(raw)
	case mt == formMediaType:
		return qsFlatFields(raw)
	}
	return nil, errBodyMediaType
}

var utf8BOM = []byte("\xEF\xBB\xBF")

// strictJSONFields is co-body's strict JSON: only objects and arrays, nothing after the value.
func strictJSONFields(raw []byte) (map[string]interface{}, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return nil, errBodyUnreadable
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, errBodyUnreadable
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBodyUnreadable
	}
	if protoPoisoned(v) {
		return nil, errBodyUnreadable
	}
	obj, _ := v.(map[string]interface{})
	return obj, nil
}

// protoPoisoned finds the keys @hapi/bourne refuses: `__proto__`, and `prototype` inside a
// `constructor` object, at any depth.
func protoPoisoned(v interface{}) bool {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, child := range t {
			if k == "__proto__" {
				return true
			}
			if c, ok := child.(map[string]interface{}); ok && k == "constructor" {
				if _, has := c["prototype"]; has {
					return true
				}
			}
			if protoPoisoned(child) {
				return true
			}
		}
	case []interface{}:
		for _, child := range t {
			if protoPoisoned(child) {
				return true
			}
		}
	}
	return false
}

// objectPrototypeNames are the keys qs drops (allowPrototypes: false).
var objectPrototypeNames = map[string]bool{
	"__proto__": true, "constructor": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toLocaleString": true, "toString": true, "valueOf": true,
	"__defineGetter__": true, "__defineSetter__": true, "__lookupGetter__": true, "__lookupSetter__": true,
}

// qsFlatFields reads a urlencoded body as qs.parse(str, {allowDots: true}) does, for flat keys
// only: any key qs would nest, combine or drop is refused.
func qsFlatFields(raw []byte) (map[string]interface{}, error) {
	s := string(raw)
	parts := strings.Split(s, "&")
	if len(parts) > qsParameterLimit {
		return nil, errBodyUnreadable
	}
	out := map[string]interface{}{}
	for _, part := range parts {
		if part == "" {
			continue
		}
		key, val, err := qsPart(part)
		if err != nil {
			return nil, err
		}
		if key == "" {
			continue // qs skips empty keys
		}
		if strings.ContainsAny(key, "[].") || objectPrototypeNames[key] {
			return nil, errBodyUnreadable
		}
		if _, dup := out[key]; dup {
			return nil, errBodyUnreadable
		}
		out[key] = val
	}
	return out, nil
}

// qsPart splits one `key=value` part where qs does (after a `]=` if there is one, else at the
// first `=`) and decodes both halves as qs's decoder does (`+` is a space, then percent-decoding).
func qsPart(part string) (string, string, error) {
	// qs turns %5B/%5D into brackets before splitting; a key with either is refused anyway,
	// but the split position must be the one qs uses.
	bracketed := strings.NewReplacer("%5B", "[", "%5b", "[", "%5D", "]", "%5d", "]").Replace(part)
	pos := strings.Index(bracketed, "]=")
	if pos >= 0 {
		pos++
	} else {
		pos = strings.IndexByte(bracketed, '=')
	}
	rawKey, rawVal := bracketed, ""
	if pos >= 0 {
		rawKey, rawVal = bracketed[:pos], bracketed[pos+1:]
	}
	key, err := qsDecode(rawKey)
	if err != nil {
		return "", "", err
	}
	val, err := qsDecode(rawVal)
	if err != nil {
		return "", "", err
	}
	return key, val, nil
}

// qsDecode is qs's decoder for UTF-8. Where decodeURIComponent would throw (a bad escape, bytes
// that are not UTF-8), qs keeps the text undecoded; the proxy refuses instead.
func qsDecode(s string) (string, error) {
	out, err := url.QueryUnescape(s)
	if err != nil || !utf8.ValidString(out) {
		return "", errBodyUnreadable
	}
	return out, nil
}

// bufferBody reads the body (at most maxRequestBody) and puts it back; nil when there is none.
// A body that breaks off (bad chunking, a client that hangs up) is errBodyUnreadable.
func bufferBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	_ = req.Body.Close()
	if err != nil {
		return nil, errBodyUnreadable
	}
	if len(raw) > maxRequestBody {
		return nil, errBodyTooLarge
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	return raw, nil
}

// bodyErrorStatus maps a readBodyFields error to the answer.
func bodyErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "Request body too large"
	case errors.Is(err, errBodyMediaType):
		return http.StatusUnsupportedMediaType, "Send the body as JSON (application/json) or a flat urlencoded form, without Content-Encoding"
	}
	return http.StatusBadRequest, "Request body cannot be read: send one JSON object, or a flat urlencoded form without nested keys ([ ] .) or repeated keys"
}

// setsField says whether a body sets field (its exact key: nested and dotted form keys are
// refused before this is asked).
func setsField(body map[string]interface{}, field string) bool {
	_, ok := body[field]
	return ok
}
