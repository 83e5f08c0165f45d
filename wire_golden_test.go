package accessproxy

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// The plugin's side of the wire contract with the session store (docs/store-api.md): each fixture
// in testdata/wire is one message, and sessionstore/internal/api runs the same fixtures through
// the store's types. A message the plugin decodes with no unknown field and encodes back to the
// same JSON is one both sides spell alike. (Stdlib only and no generics or closures in loops: this
// also runs under Yaegi, where scripts/yaegi-test.sh copies testdata/ next to the sources.)

const wireDir = "testdata/wire/"

type wireCase struct {
	file string
	v    interface{} // a pointer to the plugin's type for the message
	// absent lists the fields the plugin's type declares that the store leaves out of this message
	// (a path: "userId", "sessions.[].strapiJwt"); the plugin must encode them as zero values.
	absent []string
	// omitted lists the fields the plugin leaves out when zero (omitempty) that the fixture has
	// with a zero value somewhere: there the fixture's field is dropped before comparing.
	omitted []string
}

func wireCases() []wireCase {
	return []wireCase{
		{file: "create_session_request.json", v: &createSessionRequest{}},
		// A new session was never revalidated: revalidatedAt 0, which the plugin omits.
		{file: "create_session_response.json", v: &createSessionResponse{}, omitted: []string{"session.revalidatedAt"}},
		{file: "session_response.json", v: &sessionEnvelope{}},
		// Lists carry no secrets; the plugin's storeSession has them as plain strings.
		{file: "sessions_response.json", v: &sessionList{}, absent: []string{"sessions.[].strapiJwt", "sessions.[].strapiRefresh"}},
		{file: "touch_request.json", v: &touchRequest{}},
		{file: "upstream_request.json", v: &upstreamUpdate{}},
		{file: "user_request.json", v: &userUpdate{}},
		{file: "rotate_request.json", v: &rotateRequest{}},
		{file: "rotate_response.json", v: &rotateResponse{}},
		{file: "revoke_session_response.json", v: &deletedResponse{}},
		// Revoking all of a user's sessions does not repeat whose they were.
		{file: "revoke_user_response.json", v: &deletedResponse{}, absent: []string{"userId"}},
		// Only a refresh_reused answer says what was revoked.
		{file: "error_response.json", v: &storeError{}, absent: []string{"revoked"}},
		{file: "refresh_reused_error.json", v: &storeError{}},
		{file: "counter_incr_request.json", v: &counterRequest{}},
		{file: "counter_incr_response.json", v: &counterResponse{}},
		{file: "changes_response.json", v: &changesResponse{}},
		// Batched touches: a touch may name no client address.
		{file: "touches_request.json", v: &touchesRequest{}, omitted: []string{"touches.[].clientAddr"}},
		{file: "touches_response.json", v: &touchesResponse{}, absent: []string{"sessions.[].strapiJwt", "sessions.[].strapiRefresh"}},
	}
}

// wireStoreOnly are messages whose body the plugin does not read.
var wireStoreOnly = []string{
	"counter_delete_response.json", // deleteCounter only needs the 200
	"audit_response.json",          // GET /v1/audit is for operators (sessionstore audit list, the console)
}

func TestWireGolden(t *testing.T) {
	entries, err := os.ReadDir(wireDir)
	if err != nil {
		t.Fatalf("the wire fixtures are missing (%v): run from the repository root, or copy testdata/ along", err)
	}
	cases := wireCases()
	var want []string
	for _, c := range cases {
		want = append(want, c.file)
	}
	want = append(want, wireStoreOnly...)
	sort.Strings(want)
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			files = append(files, e.Name())
		}
	}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("fixtures %v, want exactly %v (a new message needs a case here)", files, want)
	}
	for _, c := range cases {
		checkWireFixture(t, c)
	}
}

func checkWireFixture(t *testing.T, c wireCase) {
	t.Helper()
	raw, err := os.ReadFile(wireDir + c.file)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c.v); err != nil {
		t.Errorf("%s: decode into %T: %v", c.file, c.v, err)
		return
	}
	out, err := json.Marshal(c.v)
	if err != nil {
		t.Fatal(err)
	}
	got := wireGeneric(t, out)
	for _, path := range c.absent {
		if msg := wireDropZero(got, strings.Split(path, ".")); msg != "" {
			t.Errorf("%s: %s: %s", c.file, path, msg)
		}
	}
	fixture := wireGeneric(t, raw)
	for _, path := range c.omitted {
		if msg := wireDropFixtureZero(fixture, strings.Split(path, ".")); msg != "" {
			t.Errorf("%s: %s: %s", c.file, path, msg)
		}
	}
	if !reflect.DeepEqual(got, fixture) {
		regot, _ := json.Marshal(got)
		var fix bytes.Buffer
		_ = json.Compact(&fix, raw)
		t.Errorf("%s: %T encodes differently from the fixture:\n got     %s\n fixture %s", c.file, c.v, regot, fix.String())
	}
}

// wireDropZero removes the field at path from v (maps from wireGeneric; "[]" steps into every element
// of an array) and says what is wrong when it is not there or not a zero value ("" when fine).
func wireDropZero(v interface{}, path []string) string {
	if path[0] == "[]" {
		list, ok := v.([]interface{})
		if !ok || len(list) == 0 {
			return "not a non-empty array"
		}
		for _, e := range list {
			if msg := wireDropZero(e, path[1:]); msg != "" {
				return msg
			}
		}
		return ""
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return "not an object"
	}
	field, ok := m[path[0]]
	if !ok {
		return "the plugin does not declare it"
	}
	if len(path) > 1 {
		return wireDropZero(field, path[1:])
	}
	if !wireZero(field) {
		return "not a zero value"
	}
	delete(m, path[0])
	return ""
}

// wireDropFixtureZero removes the field at path from the fixture v wherever it is a zero value (a
// field the plugin omits when empty); "[]" steps into every element. It says what is wrong when the
// path names nothing in the fixture ("" when fine).
func wireDropFixtureZero(v interface{}, path []string) string {
	if path[0] == "[]" {
		list, ok := v.([]interface{})
		if !ok || len(list) == 0 {
			return "not a non-empty array in the fixture"
		}
		for _, e := range list {
			if msg := wireDropFixtureZero(e, path[1:]); msg != "" {
				return msg
			}
		}
		return ""
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return "not an object in the fixture"
	}
	field, ok := m[path[0]]
	if !ok {
		return "not in the fixture"
	}
	if len(path) > 1 {
		return wireDropFixtureZero(field, path[1:])
	}
	if wireZero(field) {
		delete(m, path[0])
	}
	return ""
}

// wireZero reports whether v (from wireGeneric) is null, "", 0 or false.
func wireZero(v interface{}) bool {
	if v == nil {
		return true
	}
	if s, ok := v.(string); ok {
		return s == ""
	}
	if n, ok := v.(json.Number); ok {
		return n.String() == "0"
	}
	if b, ok := v.(bool); ok {
		return !b
	}
	return false
}

// wireGeneric decodes raw into maps, slices and json.Numbers (exact for millisecond times).
func wireGeneric(t *testing.T, raw []byte) interface{} {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
