package accessproxy

import (
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestGraphQLParity proves the parser against graphql-js itself (the graphql package of the e2e
// Strapi app's node_modules, which Strapi's Apollo Server uses): every document of a corpus of
// seeds and their random mutations is parsed by both and printed in printGQL's canonical form.
// The parser may refuse what graphql-js reads (it does for a variable defined twice, which
// graphql-js leaves to validation), but must never read a document graphql-js refuses, nor read
// one differently. Like TestBodyParity it needs node: `make diff_test` sets
// ACCESSPROXY_STRAPI_NODE_MODULES; without it the test skips.
func TestGraphQLParity(t *testing.T) {
	nm := os.Getenv("ACCESSPROXY_STRAPI_NODE_MODULES")
	if nm == "" {
		t.Skip("ACCESSPROXY_STRAPI_NODE_MODULES is not set: `make diff_test` runs this test against graphql-js")
	}
	corpus := graphQLParityCorpus(60000)
	dir := t.TempDir()
	script, docs, out := filepath.Join(dir, "print.js"), filepath.Join(dir, "docs.jsonl"), filepath.Join(dir, "js.txt")
	var lines []string
	for _, d := range corpus {
		raw, _ := json.Marshal(d)
		lines = append(lines, string(raw))
	}
	if err := os.WriteFile(script, []byte(graphQLParityJS), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docs, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("node", script, nm, docs, out).CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	js := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(js) != len(corpus) {
		t.Fatalf("graphql-js answered %d documents of %d", len(js), len(corpus))
	}
	same, stricter := 0, 0
	for i, src := range corpus {
		want := js[i]
		if want == "NONEXEC" {
			want = "ERR" // type system definitions: graphql-js reads them, Apollo refuses to run them
		}
		got := "ERR"
		if doc, err := parseGraphQL(src); err == nil {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(printGQL(doc))
			got = strings.TrimSpace(b.String())
		}
		switch got {
		case want:
			same++
		case "ERR":
			stricter++
		default:
			t.Errorf("%q:\n  proxy      %s\n  graphql-js %s", src, got, want)
		}
	}
	t.Logf("%d documents: %d read alike, %d refused by the proxy only", len(corpus), same, stricter)
	if same < len(corpus)/2 {
		t.Fatalf("only %d documents read alike: the corpus or the printers are off", same)
	}
}

// graphQLParityCorpus is n documents: seeds, and seeds mutated where lexing and parsing are
// delicate (quotes, escapes, comments, numbers, spreads, keywords).
func graphQLParityCorpus(n int) []string {
	seeds := []string{
		`query Q($a: [Int!]! = [1, -2], $b: In = {x: "y", z: [{w: null}]}) @d(a: 1) { me @skip(if: $b) { id } }`,
		`mutation { a: login(input: {identifier: "x", password: "y"}) { user { id } } b: login(input: {}) { jwt } }`,
		"mutation M { ...F } fragment F on Mutation { ...G register(input: {}) { user { id } } } fragment G on Mutation { login(input: {}) { user { id } } }",
		`{ ... on Mutation { login(input: {}) { user { id } } } ... @include(if: true) { forgotPassword(email: "a") { ok } } }`,
		"# c\n{ me { id } } #x\rmutation { login }",
		`{ a(s: """ \""" login(""") b(s: "\" \\ \u0041 \u{1F600} \uD83D\uDE00") c(n: 0, f: 1.5e+10, g: -0.25E-3, e: E, t: true, l: [], o: {}) }`,
		"\uFEFF{,a,,b\t\r\nc(x: $ y)}",
		`"d" query ("v" $x: ID = "7") { updateUsersPermissionsUser(id: $x, data: {audience: "*"}) { data { id } } }`,
	}
	alphabet := []string{"{", "}", "(", ")", "[", "]", ":", "$", "@", ".", "...", "!", "\"", `"""`, `\`, `\"""`, "#",
		"\n", "\r", ",", "=", "|", "&", " ", "a", "on", "fragment", "query", "mutation", "0", "1", "-", "e", ".5",
		"\\u", "\\u{", "\\uD83D", "é", "\uFEFF", "\t", "'", "\x00", "type", "true", "null", "_x", "Z9", "0x", "1."}
	rng := rand.New(rand.NewSource(20240601))
	out := append([]string{}, seeds...)
	for len(out) < n {
		d := seeds[rng.Intn(len(seeds))]
		for j := 1 + rng.Intn(8); j > 0; j-- {
			pos := rng.Intn(len(d) + 1)
			switch rng.Intn(3) {
			case 0:
				d = d[:pos] + alphabet[rng.Intn(len(alphabet))] + d[pos:]
			case 1:
				end := pos + 1 + rng.Intn(3)
				if end > len(d) {
					end = len(d)
				}
				d = d[:pos] + d[end:]
			default:
				if pos < len(d) {
					d = d[:pos] + alphabet[rng.Intn(len(alphabet))] + d[pos+1:]
				}
			}
		}
		if !strings.ContainsRune(d, 0xFFFD) && utf8.ValidString(d) {
			out = append(out, d)
		}
	}
	return out
}

// graphQLParityJS prints what graphql-js parses in printGQL's form: "ERR" for a syntax error,
// "NONEXEC" for a document with type system definitions.
const graphQLParityJS = `const { parse } = require(process.argv[2] + '/graphql');
const fs = require('fs');
const lines = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(Boolean);
const out = [];
function val(v, src) {
  switch (v.kind) {
    case 'Variable': return '$' + v.name.value;
    case 'StringValue': return v.block ? '"""' + src.slice(v.loc.start + 3, v.loc.end - 3) + '"""' : '"' + src.slice(v.loc.start + 1, v.loc.end - 1) + '"';
    case 'ListValue': return '[' + v.values.map((x) => val(x, src)).join(' ') + ']';
    case 'ObjectValue': return '{' + v.fields.map((f) => f.name.value + ': ' + val(f.value, src)).join(' ') + '}';
    case 'BooleanValue': return v.value ? 'true' : 'false';
    case 'NullValue': return 'null';
    default: return v.value;
  }
}
function sels(ss, src) {
  return '{' + ss.selections.map((s) => {
    if (s.kind === 'FragmentSpread') return '...' + s.name.value;
    if (s.kind === 'InlineFragment') return '... ' + sels(s.selectionSet, src);
    let p = s.name.value;
    if (s.alias) p = s.alias.value + ': ' + p;
    if (s.arguments && s.arguments.length) p += '(' + s.arguments.map((a) => a.name.value + ': ' + val(a.value, src)).join(' ') + ')';
    if (s.selectionSet) p += ' ' + sels(s.selectionSet, src);
    return p;
  }).join(' ') + '}';
}
for (const line of lines) {
  const src = JSON.parse(line);
  let doc;
  try { doc = parse(src); } catch (e) { out.push('ERR'); continue; }
  let b = '';
  const frags = [];
  let bad = false;
  for (const d of doc.definitions) {
    if (d.kind === 'OperationDefinition') {
      b += d.operation;
      if (d.name) b += ' ' + d.name.value;
      const vars = (d.variableDefinitions || []).slice().sort((x, y) => (x.variable.name.value < y.variable.name.value ? -1 : 1));
      if (vars.length) {
        b += '(' + vars.map((v) => '$' + v.variable.name.value + ': T' + (v.defaultValue ? ' = ' + val(v.defaultValue, src) : '')).join(' ') + ')';
      }
      b += ' ' + sels(d.selectionSet, src) + '\n';
    } else if (d.kind === 'FragmentDefinition') {
      frags.push(d);
    } else bad = true;
  }
  if (bad) { out.push('NONEXEC'); continue; }
  frags.sort((x, y) => (x.name.value < y.name.value ? -1 : 1));
  for (const f of frags) b += 'fragment ' + f.name.value + ' on T ' + sels(f.selectionSet, src) + '\n';
  out.push(JSON.stringify(b));
}
fs.writeFileSync(process.argv[4], out.join('\n') + '\n');
`
