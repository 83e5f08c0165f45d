package accessproxy

import (
	"errors"
	"strconv"
	"strings"
)

// A GraphQL lexer and parser for the executable subset of the language (operations, fragments,
// selections, arguments, variables, directives, every value kind), written to read a document
// exactly as graphql-js 16 (what Strapi's Apollo Server uses) does, or not at all: anything
// graphql-js would lex or parse differently is an error here, never a different tree. Type system
// definitions, which Apollo refuses to execute, are errors too. The work is bounded by the
// document size, the token count and the nesting depth.

const (
	maxGraphQLDocument = 256 << 10 // bytes of one document
	maxGraphQLTokens   = 10000     // tokens of one document, punctuation included (~50 ms under Yaegi)
	maxGraphQLDepth    = 64        // nested selection sets, list/object values and list types
)

var (
	errGraphQLTooLarge = errors.New("document too large")
	errGraphQLTooDeep  = errors.New("document nested too deeply")
	errGraphQLTooLong  = errors.New("document has too many tokens")
)

// gqlSyntaxError is a document the proxy cannot read; at is the byte offset.
type gqlSyntaxError struct {
	msg string
	at  int
}

func (e *gqlSyntaxError) Error() string { return e.msg + " at byte " + strconv.Itoa(e.at) }

type gqlTokenKind int

// A punctuator's kind is its character ('{', '$', …); the other kinds come after every byte.
// (Spelled out: Yaegi 0.16 mistypes `256 + iota` constants.)
const (
	gqlEOF         gqlTokenKind = 256
	gqlSpread      gqlTokenKind = 257 // ...
	gqlName        gqlTokenKind = 258 // [_A-Za-z][_0-9A-Za-z]*
	gqlInt         gqlTokenKind = 259 // IntValue
	gqlFloat       gqlTokenKind = 260 // FloatValue
	gqlString      gqlTokenKind = 261 // "…": text is the raw content between the quotes
	gqlBlockString gqlTokenKind = 262 // """…""": text is the raw content
)

type gqlToken struct {
	kind    gqlTokenKind
	text    string
	at      int
	escaped bool // a "…" string with escape sequences: text is not its value
}

// gqlLexer turns a document into tokens, skipping what GraphQL ignores: the BOM, white space,
// line terminators, commas and comments.
type gqlLexer struct {
	src string
	pos int
}

func isGQLNameStart(c byte) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isGQLDigit(c byte) bool { return c >= '0' && c <= '9' }

func isGQLHex(c byte) bool {
	return isGQLDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (l *gqlLexer) fail(msg string, at int) error { return &gqlSyntaxError{msg: msg, at: at} }

// byteAt is the byte at i, or -1 past the end.
func (l *gqlLexer) byteAt(i int) int {
	if i >= len(l.src) {
		return -1
	}
	return int(l.src[i])
}

// all reads every token of the document, ending with gqlEOF. It is one loop on purpose: under
// Yaegi a call costs more than the work of most tokens.
//
//nolint:gocyclo // a lexer: one switch over the next byte
func (l *gqlLexer) all() ([]gqlToken, error) {
	var out []gqlToken
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		if c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r' {
			l.pos++
			continue
		}
		if c == '#' {
			end := strings.IndexAny(src[l.pos:], "\n\r")
			if end < 0 {
				l.pos = len(src)
			} else {
				l.pos += end
			}
			continue
		}
		if c == 0xEF && strings.HasPrefix(src[l.pos:], "\uFEFF") {
			l.pos += 3
			continue
		}
		if len(out) >= maxGraphQLTokens {
			return nil, errGraphQLTooLong
		}
		start := l.pos
		// Character classes are spelled out in the loops below: a call per byte is what costs.
		if lc := c | 0x20; c == '_' || (lc >= 'a' && lc <= 'z') {
			end := l.pos + 1
			for end < len(src) {
				b := src[end]
				if lb := b | 0x20; b != '_' && (lb < 'a' || lb > 'z') && (b < '0' || b > '9') {
					break
				}
				end++
			}
			l.pos = end
			out = append(out, gqlToken{kind: gqlName, text: src[start:end], at: start})
			continue
		}
		if strings.IndexByte("!$&():=@[]{|}", c) >= 0 {
			l.pos++
			out = append(out, gqlToken{kind: gqlTokenKind(c), text: src[start:l.pos], at: start})
			continue
		}
		if c >= '1' && c <= '9' {
			// The common integer, inline; anything more is number's.
			end := l.pos + 1
			for end < len(src) && src[end] >= '0' && src[end] <= '9' {
				end++
			}
			if end == len(src) || (src[end] != '.' && src[end] != 'e' && src[end] != 'E' && !isGQLNameStart(src[end])) {
				l.pos = end
				out = append(out, gqlToken{kind: gqlInt, text: src[start:end], at: start})
				continue
			}
		}
		var t gqlToken
		var err error
		switch {
		case c == '.':
			if !strings.HasPrefix(src[l.pos:], "...") {
				return nil, l.fail("unexpected '.'", start)
			}
			l.pos += 3
			t = gqlToken{kind: gqlSpread, text: "...", at: start}
		case c == '"' && strings.HasPrefix(src[l.pos:], `"""`):
			t, err = l.blockString()
		case c == '"':
			t, err = l.str()
		case c == '-' || isGQLDigit(c):
			t, err = l.number()
		default:
			return nil, l.fail("unexpected character", start)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return append(out, gqlToken{kind: gqlEOF, at: len(src)}), nil
}

// digits reads one or more digits from l.pos.
func (l *gqlLexer) digits() error {
	if l.pos >= len(l.src) || !isGQLDigit(l.src[l.pos]) {
		return l.fail("invalid number, expected a digit", l.pos)
	}
	for l.pos < len(l.src) && isGQLDigit(l.src[l.pos]) {
		l.pos++
	}
	return nil
}

// number reads an IntValue or FloatValue as graphql-js does: no leading zeros, and a number
// must not run into a `.` or a name (`1.`, `0x1`, `1e` are errors).
func (l *gqlLexer) number() (gqlToken, error) {
	start := l.pos
	kind := gqlInt
	if l.src[l.pos] == '-' {
		l.pos++
	}
	if l.byteAt(l.pos) == '0' {
		l.pos++
		if c := l.byteAt(l.pos); c >= 0 && isGQLDigit(byte(c)) { //nolint:gosec // c >= 0 is a byte
			return gqlToken{}, l.fail("invalid number, unexpected digit after 0", l.pos)
		}
	} else if err := l.digits(); err != nil {
		return gqlToken{}, err
	}
	if l.byteAt(l.pos) == '.' {
		kind = gqlFloat
		l.pos++
		if err := l.digits(); err != nil {
			return gqlToken{}, err
		}
	}
	if c := l.byteAt(l.pos); c == 'e' || c == 'E' {
		kind = gqlFloat
		l.pos++
		if c := l.byteAt(l.pos); c == '+' || c == '-' {
			l.pos++
		}
		if err := l.digits(); err != nil {
			return gqlToken{}, err
		}
	}
	if c := l.byteAt(l.pos); c == '.' || (c >= 0 && isGQLNameStart(byte(c))) { //nolint:gosec // c >= 0 is a byte
		return gqlToken{}, l.fail("invalid number", l.pos)
	}
	return gqlToken{kind: kind, text: l.src[start:l.pos], at: start}, nil
}

// str reads a "…" string. Line terminators end it with an error; escapes are checked as
// graphql-js checks them (\uXXXX, \u{X…}, one of \" \\ \/ \b \f \n \r \t) but not decoded.
func (l *gqlLexer) str() (gqlToken, error) {
	start := l.pos
	l.pos++
	escaped := false
	for {
		i := strings.IndexAny(l.src[l.pos:], "\"\\\n\r")
		if i < 0 {
			return gqlToken{}, l.fail("unterminated string", start)
		}
		l.pos += i
		switch l.src[l.pos] {
		case '"':
			l.pos++
			return gqlToken{kind: gqlString, text: l.src[start+1 : l.pos-1], at: start, escaped: escaped}, nil
		case '\\':
			escaped = true
			if err := l.escape(); err != nil {
				return gqlToken{}, err
			}
		default:
			return gqlToken{}, l.fail("unterminated string", start)
		}
	}
}

// escape checks the escape sequence at l.pos and moves past it.
//
//nolint:gocyclo // one case per escape the spec allows
func (l *gqlLexer) escape() error {
	at := l.pos
	c := l.byteAt(at + 1)
	if c < 0 {
		return l.fail("unterminated string", at)
	}
	if strings.IndexByte(`"\/bfnrt`, byte(c)) >= 0 { //nolint:gosec // c >= 0 here: a byte
		l.pos += 2
		return nil
	}
	if c != 'u' {
		return l.fail("invalid escape sequence", at)
	}
	if l.byteAt(at+2) == '{' {
		// \u{X…}: one to eight hex digits naming a Unicode scalar value.
		end := strings.IndexByte(l.src[at+3:], '}')
		if end < 1 || end > 8 {
			return l.fail("invalid unicode escape", at)
		}
		hex := l.src[at+3 : at+3+end]
		for i := 0; i < len(hex); i++ {
			if !isGQLHex(hex[i]) {
				return l.fail("invalid unicode escape", at)
			}
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) {
			return l.fail("invalid unicode escape", at)
		}
		l.pos = at + 3 + end + 1
		return nil
	}
	v, ok := l.hex4(at + 2)
	if !ok || (v >= 0xDC00 && v <= 0xDFFF) {
		return l.fail("invalid unicode escape", at)
	}
	if v >= 0xD800 && v <= 0xDBFF {
		// A leading surrogate counts only as the first half of a pair.
		w, ok := l.hex4(at + 8)
		if !ok || l.src[at+6] != '\\' || l.src[at+7] != 'u' || w < 0xDC00 || w > 0xDFFF {
			return l.fail("invalid unicode escape", at)
		}
		l.pos = at + 12
		return nil
	}
	l.pos = at + 6
	return nil
}

// hex4 reads the four hex digits at i.
func (l *gqlLexer) hex4(i int) (uint64, bool) {
	if i+4 > len(l.src) {
		return 0, false
	}
	for j := i; j < i+4; j++ {
		if !isGQLHex(l.src[j]) {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(l.src[i:i+4], 16, 32)
	return v, err == nil
}

// blockString reads a """…""" string: anything up to the closing """, where \""" is an escaped
// triple quote.
func (l *gqlLexer) blockString() (gqlToken, error) {
	start := l.pos
	l.pos += 3
	for {
		i := strings.IndexAny(l.src[l.pos:], "\"\\")
		if i < 0 {
			return gqlToken{}, l.fail("unterminated block string", start)
		}
		l.pos += i
		switch {
		case strings.HasPrefix(l.src[l.pos:], `"""`):
			l.pos += 3
			return gqlToken{kind: gqlBlockString, text: l.src[start+3 : l.pos-3], at: start, escaped: true}, nil
		case strings.HasPrefix(l.src[l.pos:], `\"""`):
			l.pos += 4
		default:
			l.pos++
		}
	}
}

// ---- the tree ----

type gqlSelectionKind int

const (
	gqlFieldSel  gqlSelectionKind = iota
	gqlSpreadSel                  // ...Name
	gqlInlineSel                  // ... on T { } or ... { }
)

// The tree holds no type that refers to itself (Yaegi mistypes those): selections and values
// live in the document's sels and vals, and refer to each other by index.

// gqlSelection is a field (name, arguments, sub-selections), a fragment spread (name) or an
// inline fragment (sub-selections). Directives are read and dropped: the guard judges a selection
// whatever @skip or @include say.
type gqlSelection struct {
	kind       gqlSelectionKind
	name       string
	alias      string
	args       []gqlArgument
	selections []int // in doc.sels
}

// gqlArgument is an argument, or a field of an object value.
type gqlArgument struct {
	name  string
	value int // in doc.vals
}

type gqlValueKind int

const (
	gqlVariableVal gqlValueKind = iota
	gqlIntVal
	gqlFloatVal
	gqlStringVal
	gqlBoolVal
	gqlNullVal
	gqlEnumVal
	gqlListVal
	gqlObjectVal
)

// gqlValue is a value literal or a variable. text is the variable's name, the literal's text, or
// a string's raw content (its value when plain).
type gqlValue struct {
	kind   gqlValueKind
	text   string
	plain  bool  // a "…" string without escapes: text is its value
	block  bool  // a """…""" string
	items  []int // in doc.vals
	fields []gqlArgument
}

type gqlOperation struct {
	kind       string // query, mutation or subscription
	name       string
	vars       map[string]int // defined variables and their default values (in doc.vals; -1: none)
	selections []int
}

type gqlFragment struct {
	name       string
	selections []int
}

type gqlDocument struct {
	operations []*gqlOperation
	fragments  map[string]*gqlFragment
	sels       []*gqlSelection // every selection of the document, at any depth
	vals       []*gqlValue     // every value
}

// ---- the parser ----

// The parser is recursive descent with its hot paths (fields, arguments, values) written out
// inline: under Yaegi a method call costs more than the rest of a token's work. p.next() and the
// inlined `p.i++; p.tok = &p.toks[p.i]` are only ever reached on a token that is not gqlEOF, the
// last one, so the index never runs past the end.

type gqlParser struct {
	toks  []gqlToken // ending with gqlEOF
	i     int
	tok   *gqlToken // &toks[i]
	depth int
	doc   *gqlDocument
}

// parseGraphQL reads an executable document.
func parseGraphQL(src string) (*gqlDocument, error) {
	if len(src) > maxGraphQLDocument {
		return nil, errGraphQLTooLarge
	}
	l := &gqlLexer{src: src}
	toks, err := l.all()
	if err != nil {
		return nil, err
	}
	p := &gqlParser{toks: toks, tok: &toks[0], doc: &gqlDocument{fragments: map[string]*gqlFragment{}}}
	if p.tok.kind == gqlEOF {
		return nil, p.unexpected()
	}
	for p.tok.kind != gqlEOF {
		if err := p.definition(); err != nil {
			return nil, err
		}
	}
	return p.doc, nil
}

func (p *gqlParser) next() {
	p.i++
	p.tok = &p.toks[p.i]
}

func (p *gqlParser) unexpected() error {
	if p.tok.kind == gqlEOF {
		return &gqlSyntaxError{msg: "unexpected end of document", at: p.tok.at}
	}
	return &gqlSyntaxError{msg: "unexpected " + strconv.Quote(p.tok.text), at: p.tok.at}
}

// expect moves past a token of kind k.
func (p *gqlParser) expect(k gqlTokenKind) error {
	if p.tok.kind != k {
		return p.unexpected()
	}
	p.next()
	return nil
}

func (p *gqlParser) name() (string, error) {
	if p.tok.kind != gqlName {
		return "", p.unexpected()
	}
	n := p.tok.text
	p.next()
	return n, nil
}

func (p *gqlParser) isKeyword(name string) bool { return p.tok.kind == gqlName && p.tok.text == name }

func (p *gqlParser) enter() error {
	p.depth++
	if p.depth > maxGraphQLDepth {
		return errGraphQLTooDeep
	}
	return nil
}

func (p *gqlParser) definition() error {
	if p.tok.kind == '{' {
		sels, err := p.selectionSet()
		if err != nil {
			return err
		}
		p.doc.operations = append(p.doc.operations, &gqlOperation{kind: "query", vars: map[string]int{}, selections: sels})
		return nil
	}
	p.description()
	if p.tok.kind == gqlName {
		switch p.tok.text {
		case "query", "mutation", "subscription":
			return p.operation()
		case "fragment":
			return p.fragment()
		}
	}
	// Type system definitions and extensions are not executable.
	return p.unexpected()
}

// description skips the description graphql-js 16.15 allows before an operation, a fragment or
// a variable definition (a string).
func (p *gqlParser) description() {
	if p.tok.kind == gqlString || p.tok.kind == gqlBlockString {
		p.next()
	}
}

func (p *gqlParser) operation() error {
	op := &gqlOperation{kind: p.tok.text, vars: map[string]int{}}
	p.next()
	if p.tok.kind == gqlName {
		op.name = p.tok.text
		p.next()
	}
	if p.tok.kind == '(' {
		if err := p.variableDefinitions(op); err != nil {
			return err
		}
	}
	if err := p.directives(false); err != nil {
		return err
	}
	sels, err := p.selectionSet()
	if err != nil {
		return err
	}
	op.selections = sels
	p.doc.operations = append(p.doc.operations, op)
	return nil
}

func (p *gqlParser) variableDefinitions(op *gqlOperation) error {
	p.next() // (
	for {
		p.description()
		if err := p.expect('$'); err != nil {
			return err
		}
		name, err := p.name()
		if err != nil {
			return err
		}
		if _, dup := op.vars[name]; dup {
			return &gqlSyntaxError{msg: "variable $" + name + " defined twice", at: p.tok.at}
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := p.typeRef(); err != nil {
			return err
		}
		def := -1
		if p.tok.kind == '=' {
			p.next()
			if def, err = p.value(true); err != nil {
				return err
			}
		}
		op.vars[name] = def
		if err := p.directives(true); err != nil {
			return err
		}
		if p.tok.kind == ')' {
			p.next()
			return nil
		}
	}
}

// typeRef reads a type: Name, [Type], either followed by !.
func (p *gqlParser) typeRef() error {
	if err := p.enter(); err != nil {
		return err
	}
	if p.tok.kind == '[' {
		p.next()
		if err := p.typeRef(); err != nil {
			return err
		}
		if err := p.expect(']'); err != nil {
			return err
		}
	} else if _, err := p.name(); err != nil {
		return err
	}
	p.depth--
	if p.tok.kind == '!' {
		p.next()
	}
	return nil
}

func (p *gqlParser) fragment() error {
	p.next() // fragment
	if p.isKeyword("on") {
		return p.unexpected()
	}
	name, err := p.name()
	if err != nil {
		return err
	}
	if !p.isKeyword("on") {
		return p.unexpected()
	}
	p.next()
	if _, err := p.name(); err != nil {
		return err
	}
	if err := p.directives(false); err != nil {
		return err
	}
	sels, err := p.selectionSet()
	if err != nil {
		return err
	}
	if _, dup := p.doc.fragments[name]; dup {
		return &gqlSyntaxError{msg: "fragment " + name + " defined twice", at: p.tok.at}
	}
	p.doc.fragments[name] = &gqlFragment{name: name, selections: sels}
	return nil
}

// selectionSet reads { Selection+ } and returns the selections' indexes in doc.sels.
func (p *gqlParser) selectionSet() ([]int, error) {
	p.depth++
	if p.depth > maxGraphQLDepth {
		return nil, errGraphQLTooDeep
	}
	if p.tok.kind != '{' {
		return nil, p.unexpected()
	}
	p.i++
	p.tok = &p.toks[p.i]
	var out []int
	for {
		var s int
		var err error
		if p.tok.kind == gqlSpread {
			s, err = p.fragmentSelection()
		} else {
			s, err = p.field()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if p.tok.kind == '}' {
			p.depth--
			p.i++
			p.tok = &p.toks[p.i]
			return out, nil
		}
	}
}

// field reads Alias? Name Arguments? Directives? SelectionSet?
func (p *gqlParser) field() (int, error) {
	if p.tok.kind != gqlName {
		return -1, p.unexpected()
	}
	s := &gqlSelection{kind: gqlFieldSel, name: p.tok.text}
	p.i++
	p.tok = &p.toks[p.i]
	if p.tok.kind == ':' {
		p.i++
		p.tok = &p.toks[p.i]
		if p.tok.kind != gqlName {
			return -1, p.unexpected()
		}
		s.alias = s.name
		s.name = p.tok.text
		p.i++
		p.tok = &p.toks[p.i]
	}
	var err error
	if p.tok.kind == '(' {
		if s.args, err = p.arguments(false); err != nil {
			return -1, err
		}
	}
	if p.tok.kind == '@' {
		if err = p.directives(false); err != nil {
			return -1, err
		}
	}
	if p.tok.kind == '{' {
		if s.selections, err = p.selectionSet(); err != nil {
			return -1, err
		}
	}
	p.doc.sels = append(p.doc.sels, s)
	return len(p.doc.sels) - 1, nil
}

// fragmentSelection reads what follows `...`: `on T` starts an inline fragment, another name is
// a fragment spread, anything else an inline fragment without a type condition.
func (p *gqlParser) fragmentSelection() (int, error) {
	p.next() // ...
	if p.tok.kind == gqlName && p.tok.text != "on" {
		p.doc.sels = append(p.doc.sels, &gqlSelection{kind: gqlSpreadSel, name: p.tok.text})
		p.next()
		return len(p.doc.sels) - 1, p.directives(false)
	}
	if p.isKeyword("on") {
		p.next()
		if _, err := p.name(); err != nil {
			return -1, err
		}
	}
	if err := p.directives(false); err != nil {
		return -1, err
	}
	sels, err := p.selectionSet()
	if err != nil {
		return -1, err
	}
	p.doc.sels = append(p.doc.sels, &gqlSelection{kind: gqlInlineSel, selections: sels})
	return len(p.doc.sels) - 1, nil
}

// arguments reads ( Argument+ ), or the fields of an object value ({ ObjectField* }) when
// object is set; at p.tok is the opening token.
func (p *gqlParser) fields(constant, object bool) ([]gqlArgument, error) {
	closing := gqlTokenKind(')')
	if object {
		closing = '}'
	}
	p.i++
	p.tok = &p.toks[p.i]
	var out []gqlArgument
	for !object || p.tok.kind != closing {
		if p.tok.kind != gqlName {
			return nil, p.unexpected()
		}
		name := p.tok.text
		p.i++
		p.tok = &p.toks[p.i]
		if p.tok.kind != ':' {
			return nil, p.unexpected()
		}
		p.i++
		p.tok = &p.toks[p.i]
		v, err := p.value(constant)
		if err != nil {
			return nil, err
		}
		out = append(out, gqlArgument{name: name, value: v})
		if !object && p.tok.kind == closing {
			break
		}
	}
	p.i++
	p.tok = &p.toks[p.i]
	return out, nil
}

func (p *gqlParser) arguments(constant bool) ([]gqlArgument, error) {
	return p.fields(constant, false)
}

func (p *gqlParser) directives(constant bool) error {
	for p.tok.kind == '@' {
		p.next()
		if _, err := p.name(); err != nil {
			return err
		}
		if p.tok.kind == '(' {
			if _, err := p.arguments(constant); err != nil {
				return err
			}
		}
	}
	return nil
}

// value reads a value and returns its index in doc.vals; constant values (defaults, directives
// of variables) hold no variable. Literals are read here; lists, objects and variables by
// compound (one function each would cost a call more, one function for all a larger frame on
// every literal, under Yaegi).
func (p *gqlParser) value(constant bool) (int, error) {
	k := p.tok.kind
	if k == '[' || k == '{' || k == '$' {
		return p.compound(constant)
	}
	v := &gqlValue{kind: gqlEnumVal, text: p.tok.text}
	switch k {
	case gqlInt:
		v.kind = gqlIntVal
	case gqlFloat:
		v.kind = gqlFloatVal
	case gqlString, gqlBlockString:
		v.kind = gqlStringVal
		v.plain = !p.tok.escaped
		v.block = k == gqlBlockString
	case gqlName:
		switch v.text {
		case "true", "false":
			v.kind = gqlBoolVal
		case "null":
			v.kind = gqlNullVal
		}
	default:
		return -1, p.unexpected()
	}
	p.i++
	p.tok = &p.toks[p.i]
	p.doc.vals = append(p.doc.vals, v)
	return len(p.doc.vals) - 1, nil
}

func (p *gqlParser) compound(constant bool) (int, error) {
	v := &gqlValue{}
	switch p.tok.kind {
	case '$':
		if constant {
			return -1, p.unexpected()
		}
		p.next()
		if p.tok.kind != gqlName {
			return -1, p.unexpected()
		}
		v.kind = gqlVariableVal
		v.text = p.tok.text
		p.next()
	case '[':
		if err := p.enter(); err != nil {
			return -1, err
		}
		v.kind = gqlListVal
		p.next()
		for p.tok.kind != ']' {
			item, err := p.value(constant)
			if err != nil {
				return -1, err
			}
			v.items = append(v.items, item)
		}
		p.next()
		p.depth--
	default: // {
		if err := p.enter(); err != nil {
			return -1, err
		}
		v.kind = gqlObjectVal
		fields, err := p.fields(constant, true)
		if err != nil {
			return -1, err
		}
		v.fields = fields
		p.depth--
	}
	p.doc.vals = append(p.doc.vals, v)
	return len(p.doc.vals) - 1, nil
}
