package accessproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The rules of readBodyFields, one by one. request_body_diff_test.go proves the same reader
// against Strapi's own parser; these run everywhere (go test and yaegi test).

func bodyRequest(method, contentType, contentEncoding string, body []byte) *http.Request {
	req := httptest.NewRequest(method, "http://a.localhost/api/auth/local", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	return req
}

// bodyFieldsText is the fields as JSON (sorted keys, numbers as written), or "error: ..." / "nil".
func bodyFieldsText(fields map[string]interface{}, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if fields == nil {
		return "nil"
	}
	b, _ := json.Marshal(fields)
	return string(b)
}

func TestReadBodyFieldsMethods(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		fields, err := readBodyFields(bodyRequest(m, "application/json", "gzip", []byte(`{"audience":"*"}`)))
		if fields != nil || err != nil {
			t.Errorf("%s: koa-body does not parse it, got %s", m, bodyFieldsText(fields, err))
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
		fields, err := readBodyFields(bodyRequest(m, "application/json", "", []byte(`{"audience":"*"}`)))
		if got := bodyFieldsText(fields, err); got != `{"audience":"*"}` {
			t.Errorf("%s: %s", m, got)
		}
	}
}

func TestReadBodyFieldsContentEncoding(t *testing.T) {
	for _, tc := range []struct {
		ce   string
		body string
		want string
	}{
		{"", `{"a":1}`, `{"a":1}`},
		{"identity", `{"a":1}`, `{"a":1}`},
		{"identity", ``, `nil`},
		{"Identity", `{"a":1}`, "error: " + errBodyMediaType.Error()}, // inflation: 415
		{"IDENTITY", `{"a":1}`, "error: " + errBodyMediaType.Error()},
		{"Identity", ``, "error: " + errBodyMediaType.Error()}, // 415 on an empty body too
		{"gzip", `{"a":1}`, "error: " + errBodyMediaType.Error()},
		{"gzip", ``, "error: " + errBodyMediaType.Error()}, // zlib fails on it: 500
		{"deflate", `{"a":1}`, "error: " + errBodyMediaType.Error()},
		{"br", `{"a":1}`, "error: " + errBodyMediaType.Error()},
		{"identity, gzip", `{"a":1}`, "error: " + errBodyMediaType.Error()},
	} {
		got := bodyFieldsText(readBodyFields(bodyRequest(http.MethodPost, "application/json", tc.ce, []byte(tc.body))))
		if got != tc.want {
			t.Errorf("Content-Encoding %q, body %q: %s, want %s", tc.ce, tc.body, got, tc.want)
		}
	}
	req := bodyRequest(http.MethodPost, "application/json", "identity", []byte(`{"a":1}`))
	req.Header.Add("Content-Encoding", "identity")
	if _, err := readBodyFields(req); !errors.Is(err, errBodyMediaType) {
		t.Errorf("two Content-Encoding headers (Node joins them: 415): %v", err)
	}
}

func TestReadBodyFieldsContentType(t *testing.T) {
	const isJSON, isForm, refused = "json", "form", "refused"
	for _, tc := range []struct{ ct, want string }{
		{"application/json", isJSON},
		{"Application/JSON; charset=latin1", isJSON}, // the charset is ignored: UTF-8 always
		{"application/json;charset=utf-8", isJSON},
		{"application/json ; charset=utf-8", isJSON},
		{" application/json ", isJSON},
		{"application/json; charset=\"utf-8\"", isJSON},
		{"application/json; a=b; a=c", isJSON},
		{"application/json; a=\"b\\\"c;d\"", isJSON},
		{"application/json; charset = utf-8", isJSON},
		{"application/json+", isJSON}, // media-typer drops an empty suffix
		{"application/vnd.api+json", isJSON},
		{"APPLICATION/VND.API+JSON", isJSON},
		{"application/json-patch+json", isJSON},
		{"application/csp-report", isJSON},
		{"application/reports+json", isJSON},
		{"application/x-www-form-urlencoded", isForm},
		{"application/x-www-form-urlencoded; charset=ISO-8859-1", isForm},
		{"application/json;", refused}, // type-is finds no type: the body stays unparsed
		{"application/json; ", refused},
		{"application/json; a=b;", refused},
		{"application/json;\tcharset=utf-8", refused},
		{"application/json\t; charset=utf-8", refused},
		{"application/json; charset=", refused},
		{"application/json; foo", refused},
		{"application/json; a=\"unterminated", refused},
		{"application/json, text/plain", refused},
		{"application/foo+json", refused},
		{"application/merge-patch+json", refused},
		{"text/json", refused},
		{"json", refused},
		{"application/*", refused},
		{"text/plain", refused},
		{"multipart/form-data; boundary=b", refused},
		{"application/octet-stream", refused},
		{"", refused},
	} {
		body := `{"a":"1"}`
		want := `{"a":"1"}`
		if tc.want == isForm {
			body = "a=1"
		}
		if tc.want == refused {
			want = "error: " + errBodyMediaType.Error()
		}
		if got := bodyFieldsText(readBodyFields(bodyRequest(http.MethodPost, tc.ct, "", []byte(body)))); got != want {
			t.Errorf("Content-Type %q: %s, want %s", tc.ct, got, want)
		}
	}
	req := bodyRequest(http.MethodPost, "application/json", "", []byte(`{}`))
	req.Header.Add("Content-Type", "application/json")
	if _, err := readBodyFields(req); !errors.Is(err, errBodyMediaType) {
		t.Errorf("two Content-Type headers: %v", err)
	}
	if fields, err := readBodyFields(bodyRequest(http.MethodPost, "", "", nil)); fields != nil || err != nil {
		t.Errorf("no body, no Content-Type: %s", bodyFieldsText(fields, err))
	}
}

func TestReadBodyFieldsJSON(t *testing.T) {
	bad := "error: " + errBodyUnreadable.Error()
	for _, tc := range []struct{ body, want string }{
		{`{"identifier":"ann","password":"pw"}`, `{"identifier":"ann","password":"pw"}`},
		{`{"audience":"a","audience":"b"}`, `{"audience":"b"}`}, // JSON.parse: the last one wins
		{`{"\u0061udience":"*"}`, `{"audience":"*"}`},
		{`{"identifier":"\ud83d\ude00"}`, `{"identifier":"😀"}`},
		{`{"identifier":"\\ud800"}`, `{"identifier":"\\ud800"}`}, // an escaped backslash, no surrogate
		{`{"a":1e400,"b":-0,"c":12345678901234567890123}`, `{"a":1e400,"b":-0,"c":12345678901234567890123}`},
		{" \t\r\n{\"a\":1}\n ", `{"a":1}`},
		{"\xef\xbb\xbf{\"a\":1}", `{"a":1}`}, // one BOM is dropped
		{"\xef\xbb\xbf", `nil`},              // and then it is empty: {}
		{`[{"audience":"*"}]`, `nil`},        // an array names no field
		{`{}`, `{}`},
		{`{"constructor":1}`, `{"constructor":1}`},
		{"\xef\xbb\xbf\xef\xbb\xbf{\"a\":1}", bad},
		{`   `, bad},
		{`"audience"`, bad}, // co-body strict: objects and arrays only
		{`1`, bad},
		{`null`, bad},
		{`{"a":1} x`, bad},
		{`{"a":1}{}`, bad},
		{`{"a":1`, bad},
		{`{'a':1}`, bad},
		{`{"__proto__":{"audience":"*"}}`, bad}, // bourne
		{`{"a":[{"\u005f_proto__":1}]}`, bad},
		{`{"constructor":{"prototype":{"audience":"*"}}}`, bad},
		{`{"identifier":"\ud800"}`, bad}, // a lone surrogate: JavaScript keeps it, Go would not
		{`{"identifier":"\udc00x"}`, bad},
		{`{"identifier":"\ud83d\u0041"}`, bad},
		{`{"\ud800audience":1}`, bad},
		{`{"identifier":"\\\ud800"}`, bad},
		{"{\"identifier\":\"\xff\"}", bad}, // not UTF-8
		{"{\"identifier\":\"\xf0\x9f\x98\"}", bad},
		{"{\"identifier\":\"\xed\xa0\x80\"}", bad},
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), bad}, // deeper than Go decodes
	} {
		if got := bodyFieldsText(readBodyFields(bodyRequest(http.MethodPost, "application/json", "", []byte(tc.body)))); got != tc.want {
			t.Errorf("%.60q: %s, want %s", tc.body, got, tc.want)
		}
	}
}

func TestReadBodyFieldsForm(t *testing.T) {
	bad := "error: " + errBodyUnreadable.Error()
	for _, tc := range []struct{ body, want string }{
		{"identifier=ann&password=pw", `{"identifier":"ann","password":"pw"}`},
		{"identifier=a+b%20c%2Bd%C3%A9", `{"identifier":"a b c+dé"}`},
		{"&&identifier=ann&&", `{"identifier":"ann"}`},
		{"identifier", `{"identifier":""}`},
		{"=x&identifier=ann", `{"identifier":"ann"}`}, // qs skips an empty key
		{"identifier=a=b", `{"identifier":"a=b"}`},
		{"identifier=ann;audience=*", `{"identifier":"ann;audience=*"}`}, // `;` is no separator to qs
		{"\xef\xbb\xbfaudience=*", `{"audience":"*"}`},
		{"a+b=1", `{"a b":"1"}`},
		{"%61udience=*", `{"audience":"*"}`},
		{"audience[]=*", bad},
		{"[audience]=*", bad},
		{".audience=*", bad},
		{"audience.x=*", bad},
		{"a[b][c]=", bad},
		{"%5Baudience%5D=*", bad},
		{"audience%5B0%5D=*", bad},
		{"%2Eaudience=*", bad},
		{"a=b]=c", bad}, // qs splits after `]=`: the key is `a=b]`
		{"audience;x=*", bad},
		{"audience%3Bx=*", bad},
		{"audience=a&audience=b", bad}, // qs makes an array of them
		{"audience=a&%61udience=b", bad},
		{"__proto__=x", bad},
		{"toString=x", bad},
		{"hasOwnProperty=x", bad},
		{"constructor=x", bad},
		{"identifier=%", bad}, // decodeURIComponent throws, qs keeps the text: refused here
		{"identifier=%zz", bad},
		{"identifier=%C3", bad},
		{"identifier=%ED%A0%80", bad},
		{"identifier=\xff", bad},
		{"\xef\xbb\xbf\xef\xbb\xbfaudience=*", "{\"\ufeffaudience\":\"*\"}"}, // the second BOM is part of the key
	} {
		if got := bodyFieldsText(readBodyFields(bodyRequest(http.MethodPost, "application/x-www-form-urlencoded", "", []byte(tc.body)))); got != tc.want {
			t.Errorf("%.60q: %s, want %s", tc.body, got, tc.want)
		}
	}
	parts := func(n int) string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = "p" + strconv.Itoa(i) + "=1"
		}
		return strings.Join(ps, "&")
	}
	if _, err := readBodyFields(bodyRequest(http.MethodPost, "application/x-www-form-urlencoded", "", []byte(parts(1000)))); err != nil {
		t.Errorf("1000 parts: %v", err)
	}
	if _, err := readBodyFields(bodyRequest(http.MethodPost, "application/x-www-form-urlencoded", "", []byte(parts(1000)+"&"))); !errors.Is(err, errBodyUnreadable) {
		t.Errorf("1001 parts (qs drops the last): %v", err)
	}
}

func TestReadBodyFieldsLimitAndPutBack(t *testing.T) {
	body := []byte(`{"identifier":"` + strings.Repeat("a", maxRequestBody-len(`{"identifier":""}`)) + `"}`)
	req := bodyRequest(http.MethodPost, "application/json", "", body)
	if _, err := readBodyFields(req); err != nil {
		t.Fatalf("a body of exactly the limit: %v", err)
	}
	if got, _ := io.ReadAll(req.Body); !bytes.Equal(got, body) || req.ContentLength != int64(len(body)) {
		t.Fatalf("the body is not put back: %d bytes, Content-Length %d", len(got), req.ContentLength)
	}
	over := append(append([]byte{}, body...), ' ')
	if _, err := readBodyFields(bodyRequest(http.MethodPost, "application/json", "", over)); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
	// A refused body is put back too: the answer is the proxy's, but nothing is lost.
	req = bodyRequest(http.MethodPost, "text/plain", "", []byte("audience=*"))
	if _, err := readBodyFields(req); !errors.Is(err, errBodyMediaType) {
		t.Fatalf("text/plain: %v", err)
	}
	if got, _ := io.ReadAll(req.Body); string(got) != "audience=*" {
		t.Fatalf("text/plain body not put back: %q", got)
	}
}

func TestBodyErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{{errBodyTooLarge, 413}, {errBodyMediaType, 415}, {errBodyUnreadable, 400}} {
		if got, msg := bodyErrorStatus(tc.err); got != tc.want || msg == "" {
			t.Errorf("%v: %d %q", tc.err, got, msg)
		}
	}
}

func TestStrapiMediaType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"application/json", "application/json"},
		{"  Application/Vnd.Api+JSON  ; A=B", "application/vnd.api+json"},
		{"application/json+", "application/json"},
		{"text/plain;charset=\"a\\\\b\"", "text/plain"},
		{"application/json;charset=utf-8 ; q=1 ", "application/json"},
		{"application/json; q=\"\xe9\"", "application/json"}, // obs-text in a quoted value
		{"application/json;", ""},
		{"application/json;;q=1", ""},
		{"application/json;q=1;", ""},
		{"application/json\t", ""},
		{"application/+json", ""},
		{"application/json+x+", ""},
		{"-application/json", ""},
		{"application", ""},
		{"application/json/x", ""},
		{"application/j\xe9son", ""},
		{"application/" + strings.Repeat("x", 128), ""},
	} {
		got, ok := strapiMediaType(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%q: %q %v, want %q", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzReadBodyFields: no input panics the reader; what it returns is refused, or fields that
// re-encode deterministically and read back the same, hold nothing a decoder made up (U+FFFD
// from bytes that are not UTF-8 or a lone surrogate), and for a form no key qs would nest, merge
// or drop.
func FuzzReadBodyFields(f *testing.F) {
	for _, s := range []struct{ ct, ce, body string }{
		{"application/json", "", `{"identifier":"ann","password":"pw"}`},
		{"application/json; charset=utf-8", "identity", `{"a":[1,{"b":null}],"c":1e400}`},
		{"application/vnd.api+json", "", "\xef\xbb\xbf{\"\\u0061udience\":\"*\"}"},
		{"application/json", "", `{"identifier":"\ud800"}`},
		{"application/json", "", `{"__proto__":{}}`},
		{"application/json", "", `[{"audience":"*"}]`},
		{"application/json", "", `{"a":"\\\ud83d\ude00"}`},
		{"application/x-www-form-urlencoded", "", "identifier=a+b%20c&password=p%26w"},
		{"application/x-www-form-urlencoded", "", "audience%5B0%5D=*&a.b=1&a;b=2"},
		{"application/x-www-form-urlencoded", "", "a=b]=c&=x&&toString=1"},
		{"application/x-www-form-urlencoded; charset=latin1", "", "\xef\xbb\xbfidentifier=%C3%A9"},
		{"application/json ;a=\"b\\\"\"", "", `{}`},
		{"text/plain", "", "audience=*"},
		{"application/json", "gzip", "\x1f\x8b"},
	} {
		f.Add(s.ct, s.ce, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct, ce string, body []byte) {
		req := bodyRequest(http.MethodPost, ct, ce, body)
		fields, err := readBodyFields(req)
		if err != nil {
			if !errors.Is(err, errBodyTooLarge) && !errors.Is(err, errBodyMediaType) && !errors.Is(err, errBodyUnreadable) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if got, _ := io.ReadAll(req.Body); !bytes.Equal(got, body) || req.ContentLength != int64(len(body)) {
			t.Fatalf("body not put back: %q (Content-Length %d), sent %q", got, req.ContentLength, body)
		}
		if len(fields) == 0 {
			return
		}
		mt, _ := strapiMediaType(ct)
		isForm := mt == formMediaType
		if !isForm && !strapiJSONTypes[mt] {
			t.Fatalf("read fields from %q", ct)
		}
		enc1, err1 := json.Marshal(fields)
		enc2, err2 := json.Marshal(fields)
		if err1 != nil || err2 != nil || !bytes.Equal(enc1, enc2) {
			t.Fatalf("fields do not re-encode deterministically: %v %v", err1, err2)
		}
		madeUp := !bytes.Contains(body, []byte("\xef\xbf\xbd")) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) &&
			!bytes.Contains(bytes.ToUpper(body), []byte("%EF%BF%BD"))
		checkBodyStrings(t, fields, madeUp, isForm)
		// Read back from their own encoding, they are the same fields.
		again := enc1
		againType := "application/json"
		if isForm {
			again, againType = []byte(formEncode(fields)), formMediaType
		}
		if len(again) > maxRequestBody {
			return
		}
		back, err := readBodyFields(bodyRequest(http.MethodPost, againType, "", again))
		if err != nil {
			t.Fatalf("fields %s do not read back: %v", enc1, err)
		}
		if enc3, _ := json.Marshal(back); !bytes.Equal(enc3, enc1) {
			t.Fatalf("read back as %s, were %s", enc3, enc1)
		}
	})
}

// checkBodyStrings: every key and string is UTF-8 and, unless the body spelled one, free of
// U+FFFD; form keys are flat, form values strings.
func checkBodyStrings(t *testing.T, v interface{}, noReplacement, form bool) {
	t.Helper()
	checkString := func(s string) {
		if !utf8.ValidString(s) || (noReplacement && strings.ContainsRune(s, utf8.RuneError)) {
			t.Fatalf("a decoder made up %q", s)
		}
	}
	switch x := v.(type) {
	case string:
		checkString(x)
	case []interface{}:
		for _, e := range x {
			checkBodyStrings(t, e, noReplacement, false)
		}
	case map[string]interface{}:
		for k, e := range x {
			checkString(k)
			if k == "__proto__" {
				t.Fatalf("a __proto__ key got through")
			}
			if form {
				if k == "" || strings.ContainsAny(k, "[].;") || objectPrototypeNames[k] {
					t.Fatalf("form key %q means something to qs", k)
				}
				if _, ok := e.(string); !ok {
					t.Fatalf("form value %T", e)
				}
			}
			checkBodyStrings(t, e, noReplacement, false)
		}
	}
}

func formEncode(fields map[string]interface{}) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		s, _ := fields[k].(string)
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(s))
	}
	return strings.Join(parts, "&")
}
