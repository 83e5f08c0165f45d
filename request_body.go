package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Request bodies the proxy decides something from (the login identifier, the audience of a
// register or users-API write) are read exactly as Strapi 5.54's body middleware reads them
// (koa-body 6 → co-body 6 → raw-body + qs), or refused. Where the two could disagree, the proxy
// refuses: a request Strapi would read differently never passes a check it should have failed.
// request_body_diff_test.go proves it against Strapi's own parser (`make diff_test`).
//
// What Strapi does, and what the proxy does about it:
//   - parses POST, PUT and PATCH only; other methods reach controllers with an empty body. Same here.
//   - inflates gzip, deflate and br bodies (inflation), and answers 415 for any other
//     Content-Encoding but the exact, lower-case `identity` (also on an empty body). Here any
//     Content-Encoding but one exact `identity` is refused: 415, checked before anything else.
//   - picks the parser from the Content-Type as type-is 1.6 reads it (media-typer 0.3 grammar:
//     spaces but no tabs around the type, `; name=value` parameters with nothing after them, a
//     trailing `+` dropped); a Content-Type it cannot parse leaves the body unread. The same
//     grammar here; a type it cannot parse, or more than one Content-Type header: 415.
//   - decodes every body as UTF-8 whatever the charset says, dropping one leading BOM. Same here,
//     but bytes that are not UTF-8 are refused (400): Node and Go replace them differently.
//   - JSON for application/json, json-patch+json, vnd.api+json, csp-report, reports+json; strict:
//     the text must start with `{` or `[`, and @hapi/bourne refuses `__proto__` keys. Same here,
//     and `constructor.prototype` is refused too; a body Go cannot decode (deeper than its nesting
//     limit, trailing data) or that escapes a lone surrogate (`"\ud800"`: JavaScript keeps it, Go
//     turns it into U+FFFD) is refused: 400.
//   - urlencoded through qs with allowDots: `a[b]=`, `a.b=`, `%5B`, duplicate keys and the
//     Object.prototype names all mean something to qs. Such keys are refused here (400), and so
//     are keys with `;` (a separator to other parsers); flat keys are read as qs reads them (the
//     `]=` split rule, `+` as space, at most 1000 parts: past that qs drops parts, here it refuses).
//   - multipart through formidable, text/* as a string. Refused here (415): no credential
//     exchange needs them.
//   - a top-level JSON array reaches controllers as an array: no named field. Read here as no fields.

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
	// inflation compares the header as it is: "Identity" is a 415 to it, even on an empty body.
	if ce := req.Header.Values("Content-Encoding"); len(ce) > 1 || (len(ce) == 1 && ce[0] != "identity") {
		return nil, errBodyMediaType
	}
	raw, err := bufferBody(req, maxRequestBody)
	if err != nil || len(raw) == 0 {
		return nil, err
	}
	ct := req.Header.Values("Content-Type")
	if len(ct) != 1 {
		return nil, errBodyMediaType
	}
	mt, ok := strapiMediaType(ct[0])
	if !ok {
		return nil, errBodyMediaType
	}
	if !strapiJSONTypes[mt] && mt != formMediaType {
		return nil, errBodyMediaType
	}
	if !utf8.Valid(raw) {
		return nil, errBodyUnreadable
	}
	raw = bytes.TrimPrefix(raw, utf8BOM)
	if len(raw) == 0 {
		return nil, nil // co-body reads "" as {}, qs too
	}
	if mt == formMediaType {
		return qsFlatFields(raw)
	}
	return strictJSONFields(raw)
}

// strapiMediaType reads a Content-Type as type-is 1.6.18 does before it matches it (media-typer
// 0.3.0's parse, then format without the parameters): the lower-case type/subtype[+suffix], or
// false where type-is finds no type and koa-body leaves the body unparsed.
func strapiMediaType(v string) (string, bool) {
	typ := v
	semi := strings.IndexByte(v, ';')
	if semi >= 0 {
		typ = v[:semi]
	}
	typ = strings.Trim(asciiLower(typ), " ")
	slash := strings.IndexByte(typ, '/')
	if slash < 0 {
		return "", false
	}
	main, sub := typ[:slash], typ[slash+1:]
	if !mediaName(main, "!#$&^_-") || !mediaName(sub, "!#$&^_.+-") {
		return "", false
	}
	for i := semi; i >= 0 && i < len(v); {
		n := mediaParam(v[i:])
		if n == 0 {
			return "", false
		}
		i += n
	}
	suffix := ""
	if plus := strings.LastIndexByte(sub, '+'); plus >= 0 {
		sub, suffix = sub[:plus], sub[plus+1:]
	}
	if !mediaName(sub, "!#$&^_.-") || (suffix != "" && !mediaName(suffix, "!#$&^_-")) {
		return "", false
	}
	if suffix != "" {
		return main + "/" + sub + "+" + suffix, true
	}
	return main + "/" + sub, true
}

// mediaName is media-typer's name rule: a letter or digit, then up to 126 of those or extra.
func mediaName(s, extra string) bool {
	if len(s) == 0 || len(s) > 127 || !isASCIIAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isASCIIAlnum(s[i]) && strings.IndexByte(extra, s[i]) < 0 {
			return false
		}
	}
	return true
}

// mediaParam is the length of media-typer's parameter `; *token *= *(quoted|token) *` at the
// start of s, or 0 when there is none.
//
//nolint:gocyclo // media-typer's grammar, step by step
func mediaParam(s string) int {
	const token = "!#$%&'*+-.^_`|~" //nolint:gosec // RFC 7230 tchar, not a credential
	isToken := func(c byte) bool { return isASCIIAlnum(c) || strings.IndexByte(token, c) >= 0 }
	spaces := func(i int) int {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		return i
	}
	tokens := func(i int) int {
		for i < len(s) && isToken(s[i]) {
			i++
		}
		return i
	}
	if len(s) == 0 || s[0] != ';' {
		return 0
	}
	i := spaces(1)
	j := tokens(i)
	if j == i {
		return 0
	}
	i = spaces(j)
	if i >= len(s) || s[i] != '=' {
		return 0
	}
	i = spaces(i + 1)
	if i < len(s) && s[i] == '"' {
		for i++; ; i++ {
			if i >= len(s) {
				return 0
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				if i+1 >= len(s) || s[i+1] < 0x20 || s[i+1] > 0x7e {
					return 0
				}
				i++
				continue
			}
			if c != ' ' && c != '!' && (c < 0x23 || c > 0x7e || c == '\\') && c < 0x80 {
				return 0
			}
		}
	} else {
		j = tokens(i)
		if j == i {
			return 0
		}
		i = j
	}
	return spaces(i)
}

func isASCIIAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// asciiLower lower-cases A-Z only: Node holds header values as Latin-1, where no other
// character lower-cases into ASCII.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var utf8BOM = []byte("\xEF\xBB\xBF")

// strictJSONFields is co-body's strict JSON: only objects and arrays, nothing after the value.
func strictJSONFields(raw []byte) (map[string]interface{}, error) {
	v, err := decodeStrictJSON(raw)
	if err != nil {
		return nil, err
	}
	if protoPoisoned(v) || escapesLoneSurrogate(bytes.TrimLeft(raw, " \t\r\n")) {
		return nil, errBodyUnreadable
	}
	obj, _ := v.(map[string]interface{})
	return obj, nil
}

// escapesLoneSurrogate finds a `\uD800`-`\uDFFF` escape that is not half of a pair, in JSON text
// Go has decoded already (so every backslash is an escape inside a string).
func escapesLoneSurrogate(text []byte) bool {
	for i := 0; i < len(text); i++ {
		if text[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if text[i] != 'u' {
			continue
		}
		r := hexRune(text[i+1 : i+5])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(text) || text[i+1] != '\\' || text[i+2] != 'u' {
				return true
			}
			if low := hexRune(text[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hexRune reads the four hex digits of a \u escape that Go's decoder has accepted.
func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		default:
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// protoPoisoned finds `__proto__` keys (@hapi/bourne refuses them) and `prototype` inside a
// `constructor` object (bourne lets it through; refused here all the same), at any depth.
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
// only: any key qs would nest, combine or drop is refused, and so is a key with `;`.
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
		if strings.ContainsAny(key, "[].;") || objectPrototypeNames[key] {
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

// bufferBody reads the body (at most limit bytes) and puts it back; nil when there is none.
// A body that breaks off (bad chunking, a client that hangs up) is errBodyUnreadable.
func bufferBody(req *http.Request, limit int) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, int64(limit)+1))
	_ = req.Body.Close()
	if err != nil {
		return nil, errBodyUnreadable
	}
	if len(raw) > limit {
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

// decodeStrictJSON is co-body's strict JSON (an object or an array, nothing after it), with
// numbers kept as written.
func decodeStrictJSON(raw []byte) (interface{}, error) {
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
	return v, nil
}
