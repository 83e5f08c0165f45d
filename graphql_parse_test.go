package accessproxy

import (
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// printGQL writes a parsed document back in one canonical spelling (directives dropped, as the
// parser drops them): parse(print(parse(x))) must print the same.
func printGQL(doc *gqlDocument) string {
	var b strings.Builder
	for _, op := range doc.operations {
		b.WriteString(op.kind)
		if op.name != "" {
			b.WriteString(" " + op.name)
		}
		if len(op.vars) > 0 {
			names := make([]string, 0, len(op.vars))
			for n := range op.vars {
				names = append(names, n)
			}
			sort.Strings(names)
			b.WriteString("(")
			for i, n := range names {
				if i > 0 {
					b.WriteString(" ")
				}
				b.WriteString("$" + n + ": T")
				if def := op.vars[n]; def >= 0 {
					b.WriteString(" = " + printGQLValue(doc, doc.vals[def]))
				}
			}
			b.WriteString(")")
		}
		b.WriteString(" " + printGQLSelections(doc, op.selections) + "\n")
	}
	names := make([]string, 0, len(doc.fragments))
	for n := range doc.fragments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString("fragment " + n + " on T " + printGQLSelections(doc, doc.fragments[n].selections) + "\n")
	}
	return b.String()
}

func printGQLSelections(doc *gqlDocument, sels []int) string {
	parts := make([]string, 0, len(sels))
	for _, i := range sels {
		s := doc.sels[i]
		switch s.kind {
		case gqlSpreadSel:
			parts = append(parts, "..."+s.name)
		case gqlInlineSel:
			parts = append(parts, "... "+printGQLSelections(doc, s.selections))
		default:
			p := s.name
			if s.alias != "" {
				p = s.alias + ": " + s.name
			}
			if len(s.args) > 0 {
				p += "(" + printGQLFields(doc, s.args) + ")"
			}
			if len(s.selections) > 0 {
				p += " " + printGQLSelections(doc, s.selections)
			}
			parts = append(parts, p)
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func printGQLFields(doc *gqlDocument, args []gqlArgument) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, a.name+": "+printGQLValue(doc, doc.vals[a.value]))
	}
	return strings.Join(parts, " ")
}

func printGQLValue(doc *gqlDocument, v *gqlValue) string {
	switch v.kind {
	case gqlVariableVal:
		return "$" + v.text
	case gqlStringVal:
		if v.block {
			return `"""` + v.text + `"""`
		}
		return `"` + v.text + `"`
	case gqlListVal:
		parts := make([]string, 0, len(v.items))
		for _, it := range v.items {
			parts = append(parts, printGQLValue(doc, doc.vals[it]))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case gqlObjectVal:
		return "{" + printGQLFields(doc, v.fields) + "}"
	}
	return v.text
}

func mustParseGQL(t *testing.T, src string) *gqlDocument {
	t.Helper()
	doc, err := parseGraphQL(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return doc
}

func rootNames(t *testing.T, doc *gqlDocument) []string {
	t.Helper()
	var names []string
	for _, op := range doc.operations {
		fields, _, ok := doc.rootFields(op, maxGraphQLVisits)
		if !ok {
			t.Fatalf("rootFields of %s failed", op.name)
		}
		for _, f := range fields {
			names = append(names, f.name)
		}
	}
	sort.Strings(names)
	return names
}

func TestGraphQLParseValid(t *testing.T) {
	cases := []struct {
		src  string
		root string // the root field names of every operation, sorted, space separated
	}{
		{`{ me { id } }`, "me"},
		{"\uFEFF{ me { id } }", "me"},
		{"query Q($a: [Int!]! = [1, -2], $b: In = {x: \"y\", z: [{w: null}]}) @d(a: 1) { me @skip(if: $b) { id } }", "me"},
		{`mutation { a: login(input: {identifier: "x", password: "y"}) { user { id } } b: login(input: {}) { user { id } } }`, "login login"},
		{"mutation M { ...F } fragment F on Mutation { ...G register(input: {}) { user { id } } } fragment G on Mutation { login(input: {}) { user { id } } }", "login register"},
		{`mutation { ... on Mutation { login(input: {}) { user { id } } } ... @include(if: true) { forgotPassword(email: "a") { ok } } }`, "forgotPassword login"},
		{"query A { me { id } } mutation B { login(input: {}) { user { id } } }", "login me"},
		{"# mutation { login }\n{ me { id } }", "me"},
		{"{ me { id } } # \rmutation { login(input: {}) { user { id } } }", "login me"},
		{`{ a(s: "# not a comment") login(input: {}) { user { id } } }`, "a login"},
		{`{ a(s: """ \""" login(""") }`, "a"},
		{`{ a(s: """ \""" """) login(input: {}) { user { id } } }`, "a login"},
		{`{ a(s: "\" login(") }`, "a"},
		{`{ a(s: "\\") login(input: {}) { user { id } } }`, "a login"},
		{`{ a(s: "\u0041\u{1F600}\uD83D\uDE00\/\b\f\n\r\t") }`, "a"},
		{`{ a(n: 0, m: -0, f: 1.5e+10, g: -0.25E-3, e: ENUM, t: true, u: false, v: null, l: [], o: {}) }`, "a"},
		{`query ($ a: Int) { a(x: $ a) }`, "a"},
		{`query query { on: query fragment: subscription }`, "query subscription"},
		{`subscription S { a }`, "a"},
		{`{ __typename }`, "__typename"},
		{"{,a,,b\t\r\nc}", "a b c"},
		{`"""An operation""" query Q("a variable" $a: Int) { a } "a fragment" fragment F on T { b }`, "a"},
	}
	for _, c := range cases {
		doc := mustParseGQL(t, c.src)
		if got := strings.Join(rootNames(t, doc), " "); got != c.root {
			t.Errorf("%q: root fields %q, want %q", c.src, got, c.root)
		}
		printed := printGQL(doc)
		again := mustParseGQL(t, printed)
		if printGQL(again) != printed {
			t.Errorf("%q: print is not stable:\n%s\n%s", c.src, printed, printGQL(again))
		}
	}
}

func TestGraphQLParseInvalid(t *testing.T) {
	for _, src := range []string{
		"", "   ", "# only a comment", "{}", "{ a", "{ a } }", "{ a }'", "{ 'a' }",
		"{ a(b:) }", "{ a() }", "{ a(b: $) }", "{ a(b: $1) }", "query() { a }", "query ($a: Int = $b) { a }",
		"query ($a: Int!!) { a }", "query ($a) { a }", "query ($a: Int, $a: Int) { a }", "query ($a: [Int) { a }",
		"{ a(b: 01) }", "{ a(b: 1.) }", "{ a(b: .5) }", "{ a(b: 1e) }", "{ a(b: 0x1) }", "{ a(b: 1a) }", "{ a(b: 1.5.) }", "{ a(b: -) }", "{ a(b: --1) }",
		"{ a(b: \"x\ny\") }", "{ a(b: \"x\ry\") }", `{ a(b: "\q") }`, `{ a(b: "\u12") }`, `{ a(b: "\u{}") }`, `{ a(b: "\u{110000}") }`,
		`{ a(b: "\u{D800}") }`, `{ a(b: "\uD83D") }`, `{ a(b: "\uDE00") }`, `{ a(b: "\uD83D\u0041") }`, `{ a(b: "\uD83D`, `{ a(b: "\u{123456789}") }`, `{ a(b: "unterminated) }`, `{ a(b: """x) }`, `{ a(b: "\`,
		"{ ..F }", "{ . }", "{ ....F }", "{ ... }", "{ ...on }", "{ ... on { a } }",
		"fragment on on T { a }", "fragment F { a }", "fragment F on T", "fragment F on T { a } fragment F on T { b }",
		"type Q { a: Int }", `"desc" type Q { a: Int }`, `"desc" { a }`, `"desc" "desc" query { a }`, `query ("d" "d" $a: Int) { a }`, `{ a("d" b: 1) }`, "extend type Q { a: Int }", "schema { query: Q }",
		"scalar S", "directive @d on FIELD", "{ é }", "{ a\x00 }", "{ a(b: [1, 2) }", "{ a(b: {c}) }", "{ a(b: {c: 1) }",
		"{ a @ }", "{ a @d( }", "query Q @d { a } extra", "mutation", "query Q", "{ a: }", "{ a: b: c }", "{ a { } }",
	} {
		if doc, err := parseGraphQL(src); err == nil {
			t.Errorf("%q parsed: %s", src, printGQL(doc))
		}
	}
}

func TestGraphQLParseLimits(t *testing.T) {
	deep := func(n int) string {
		return strings.Repeat("{ a ", n) + strings.Repeat("}", n)
	}
	mustParseGQL(t, deep(maxGraphQLDepth))
	if _, err := parseGraphQL(deep(maxGraphQLDepth + 1)); !errors.Is(err, errGraphQLTooDeep) {
		t.Fatalf("selection sets %d deep: %v", maxGraphQLDepth+1, err)
	}
	list := "{ a(b: " + strings.Repeat("[", maxGraphQLDepth) + strings.Repeat("]", maxGraphQLDepth) + ") }"
	if _, err := parseGraphQL(list); !errors.Is(err, errGraphQLTooDeep) {
		t.Fatalf("lists %d deep in a selection set: %v", maxGraphQLDepth, err)
	}
	obj := "{ a(b: " + strings.Repeat("{c: ", maxGraphQLDepth) + "1" + strings.Repeat("}", maxGraphQLDepth) + ") }"
	if _, err := parseGraphQL(obj); !errors.Is(err, errGraphQLTooDeep) {
		t.Fatalf("objects %d deep in a selection set: %v", maxGraphQLDepth, err)
	}
	typ := "query ($a: " + strings.Repeat("[", maxGraphQLDepth+1) + "Int" + strings.Repeat("]", maxGraphQLDepth+1) + ") { a }"
	if _, err := parseGraphQL(typ); !errors.Is(err, errGraphQLTooDeep) {
		t.Fatalf("list types %d deep: %v", maxGraphQLDepth+1, err)
	}
	many := "{" + strings.Repeat(" a", maxGraphQLTokens) + " }"
	if _, err := parseGraphQL(many); !errors.Is(err, errGraphQLTooLong) {
		t.Fatalf("%d tokens: %v", maxGraphQLTokens+2, err)
	}
	big := "{ a(s: \"" + strings.Repeat("x", maxGraphQLDocument) + "\") }"
	if _, err := parseGraphQL(big); !errors.Is(err, errGraphQLTooLarge) {
		t.Fatalf("%d bytes: %v", len(big), err)
	}
	// Comments and commas are not tokens, but they are bytes.
	mustParseGQL(t, "{ a }"+strings.Repeat("#"+strings.Repeat(",", 1000)+"\n", 200))
}

// A fragment spread many times costs one expansion per operation, not one per spread.
func TestGraphQLFragmentsExpandOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ ...F0 }\n")
	for i := 0; i < 30; i++ {
		b.WriteString("fragment F" + strconv.Itoa(i) + " on Query { ...F" + strconv.Itoa(i+1) + " ...F" + strconv.Itoa(i+1) + " a }\n")
	}
	b.WriteString("fragment F30 on Query { login(input: {}) { user { id } } }\n")
	doc := mustParseGQL(t, b.String())
	fields, visits, ok := doc.rootFields(doc.operations[0], maxGraphQLVisits)
	if !ok || visits > 200 {
		t.Fatalf("expansion: ok=%v, %d visits", ok, visits)
	}
	found := false
	for _, f := range fields {
		found = found || f.name == "login"
	}
	if !found {
		t.Fatal("login at the end of a fragment chain not found")
	}
	// Fragment cycles (a validation error for Strapi) end too.
	doc = mustParseGQL(t, "{ ...A } fragment A on Query { ...B a } fragment B on Query { ...A b }")
	if got := strings.Join(rootNames(t, doc), " "); got != "a b" {
		t.Fatalf("cycle: %q", got)
	}
	doc = mustParseGQL(t, "{ ...Missing }")
	if _, _, ok := doc.rootFields(doc.operations[0], maxGraphQLVisits); ok {
		t.Fatal("an unknown fragment must not pass")
	}
}
