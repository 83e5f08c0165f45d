package accessproxy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzGraphQLParse: any input parses or fails without panicking, within the bounds; what parses
// prints back to a document that parses to the same tree; the guard judges every parsed document
// without panicking, and never lets a root login through. (scripts/yaegi-test.sh leaves fuzz
// files out: Yaegi has no testing.F.)
func FuzzGraphQLParse(f *testing.F) {
	for _, s := range []string{
		`{ me { id username } }`,
		`mutation { a: login(input: {identifier: "x", password: "y"}) { jwt } b: login(input: {}) { user { id } } }`,
		"mutation M { ...F } fragment F on Mutation { ... on Mutation { register(input: {}) { user { id } } } }",
		`query Q($d: UsersPermissionsUserInput = {audience: "*"}, $id: ID! = 7) @x { updateUsersPermissionsUser(id: $id, data: $d) { data { id } } }`,
		"# c\r{ a(s: \"\\u{1F600}\\uD83D\\uDE00\", b: \"\"\" \\\"\"\" \"\"\", n: -0.5e+3, l: [[], {}], e: ENUM, t: true, z: null) }",
		"\uFEFF{,__typename}", `"d" query ("v" $a: [Int!]!) { a }`, "{ a", "type Q { a: Int }", "{ ..F }",
	} {
		f.Add(s)
	}
	cfg := CreateConfig()
	cfg.Secret, cfg.StoreURL, cfg.StoreToken = testSecret, "http://x", testStoreToken
	s, err := parseConfig(cfg)
	if err != nil {
		f.Fatal(err)
	}
	m := &Middleware{s: s}
	caller := &tokenEntry{claims: tokenClaims{Sub: "7", Sid: "s"}}
	vars := map[string]interface{}{"d": map[string]interface{}{"audience": "*"}, "id": "7", "a": nil}
	f.Fuzz(func(t *testing.T, src string) {
		doc, err := parseGraphQL(src)
		if err != nil {
			if doc != nil {
				t.Fatal("an error with a document")
			}
			return
		}
		if len(src) > maxGraphQLDocument || len(doc.sels)+len(doc.vals) > maxGraphQLTokens {
			t.Fatalf("a document past the bounds parsed: %d bytes, %d nodes", len(src), len(doc.sels)+len(doc.vals))
		}
		printed := printGQL(doc)
		again, err := parseGraphQL(printed)
		if errors.Is(err, errGraphQLTooLong) || errors.Is(err, errGraphQLTooLarge) {
			return // the canonical spelling can be a little longer
		}
		if err != nil || printGQL(again) != printed {
			t.Fatalf("%q printed as %q, which reads back as %v", src, printed, err)
		}
		r := m.checkGraphQL(doc, vars, caller)
		_ = m.checkGraphQL(doc, nil, nil)
		for _, op := range doc.operations {
			fields, _, ok := doc.rootFields(op, maxGraphQLVisits)
			for _, fl := range fields {
				if ok && fl.name == "login" && r == nil {
					t.Fatalf("%q: a root login passed", src)
				}
			}
		}
		if r != nil && (r.status < 400 || r.msg == "" || strings.Contains(r.msg, "\n")) {
			t.Fatalf("%q: refusal %+v", src, r)
		}
	})
}
