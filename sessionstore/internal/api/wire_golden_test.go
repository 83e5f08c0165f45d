package api

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// wireDir holds one JSON fixture per message of docs/store-api.md, shared with the plugin's
// golden test (wire_golden_test.go at the repository root): both sides decode the same bytes.
var wireDir = filepath.Join("..", "..", "..", "testdata", "wire")

// wireTypes maps each fixture to the type the store reads (requests) or writes (responses) it with.
var wireTypes = map[string]func() any{
	"create_session_request.json":  func() any { return new(createRequest) },
	"create_session_response.json": func() any { return new(CreatedBody) },
	"session_response.json":        func() any { return new(SessionBody) },
	"sessions_response.json":       func() any { return new(SessionsBody) },
	"touch_request.json":           func() any { return new(touchRequest) },
	"upstream_request.json":        func() any { return new(upstreamRequest) },
	"user_request.json":            func() any { return new(userRequest) },
	"rotate_request.json":          func() any { return new(refreshRequest) },
	"rotate_response.json":         func() any { return new(refreshBody) },
	"revoke_session_response.json": func() any { return new(RevokedBody) },
	"revoke_user_response.json":    func() any { return new(RevokedBody) },
	"error_response.json":          func() any { return new(errorBody) },
	"refresh_reused_error.json":    func() any { return new(reusedBody) },
	"counter_incr_request.json":    func() any { return new(incrRequest) },
	"counter_incr_response.json":   func() any { return new(counterBody) },
	"counter_delete_response.json": func() any { return new(DeletedBody) },
	"touches_request.json":         func() any { return new(touchesRequest) },
	"touches_response.json":        func() any { return new(TouchesBody) },
	"changes_response.json":        func() any { return new(ChangesBody) },
	"audit_response.json":          func() any { return new(AuditBody) },
}

// TestWireGolden: every fixture decodes into the store's type with no unknown field and encodes
// back to the same JSON, so a field renamed, added or dropped on the store's side fails here (and
// the fixture, then the plugin, must change with it).
func TestWireGolden(t *testing.T) {
	entries, err := os.ReadDir(wireDir)
	if err != nil {
		t.Fatalf("the wire fixtures (repository root testdata/wire) are missing: %v", err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			files = append(files, e.Name())
		}
	}
	var want []string
	for name := range wireTypes {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Fatalf("fixtures %v, want exactly %v (a new message needs a fixture and a type here)", files, want)
	}
	for _, name := range files {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(wireDir, name))
			if err != nil {
				t.Fatal(err)
			}
			v := wireTypes[name]()
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got, fixture := generic(t, out), generic(t, raw); !reflect.DeepEqual(got, fixture) {
				t.Fatalf("%T encodes differently from the fixture:\n got     %s\n fixture %s", v, out, compact(t, raw))
			}
		})
	}
}

// generic decodes raw into maps, slices and json.Numbers (exact for millisecond times).
func generic(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
