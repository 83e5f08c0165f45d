package accessproxy

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBodyParity proves readBodyFields against Strapi's own body parser: every request of the
// corpus goes to scripts/strapi-body-echo.js (Strapi 5.54's `strapi::body` middleware in Koa, from
// the e2e Strapi app's node_modules) and to readBodyFields. For every request the plugin either
// refuses it, or Strapi's parser succeeds and hands the controllers exactly the fields the plugin
// read (numbers compared as the float64 Node makes of them, strings code unit for code unit). The
// request is checked twice: as the client sent it, and as Traefik forwards it once the plugin has
// read it (Go's request writer, which is what the upstream really receives).
//
// It needs node and the cached node_modules: `make diff_test` sets ACCESSPROXY_STRAPI_NODE_MODULES
// from scripts/ensure-strapi.sh and runs it; without the variable (plain `go test`, `make unit`)
// it skips. scripts/yaegi-test.sh leaves this file out: os/exec is not in Yaegi's stdlib.
func TestBodyParity(t *testing.T) {
	nm := os.Getenv("ACCESSPROXY_STRAPI_NODE_MODULES")
	if nm == "" {
		t.Skip("ACCESSPROXY_STRAPI_NODE_MODULES is not set: `make diff_test` runs this test against Strapi's body parser")
	}
	echo := startStrapiBodyEcho(t, nm)
	corpus := bodyParityCorpus()
	t.Logf("corpus: %d requests", len(corpus))

	results := make([]parityOutcome, len(corpus))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = checkBodyParity(echo, corpus[i])
			}
		}()
	}
	for i := range corpus {
		next <- i
	}
	close(next)
	wg.Wait()

	var read, refused, overRefused, goRejected int
	var overNames []string
	for i, r := range results {
		c := corpus[i]
		for _, p := range r.problems {
			t.Errorf("%s: %s\n    request: %s", c.name, p, parityQuote(c.wire(), 400))
		}
		switch {
		case r.goRejected:
			goRejected++
		case r.refused:
			refused++
			if r.nodeRead {
				overRefused++
				if len(overNames) < 12 {
					overNames = append(overNames, c.name)
				}
			}
		default:
			read++
		}
		if c.mustRead && (r.refused || r.goRejected) {
			t.Errorf("%s: the plugin refuses a body it must read: %v\n    request: %s", c.name, r.err, parityQuote(c.wire(), 400))
		}
	}
	t.Logf("read by the plugin and by Strapi alike: %d; refused by the plugin: %d (%d of them Strapi would read, e.g. %s); refused by Go's HTTP parser: %d",
		read, refused, overRefused, strings.Join(overNames, ", "), goRejected)
	if read < len(corpus)/10 {
		t.Errorf("the plugin read only %d of %d bodies: a reader that refuses everything proves nothing", read, len(corpus))
	}
}

// parityCase is one request of the corpus: method, header lines (written as given), body; a
// Content-Length is added unless the case sets its own framing. raw, when set, is the whole request.
type parityCase struct {
	name     string
	method   string
	headers  []string
	body     []byte
	noBody   bool // send no body and no Content-Length at all
	raw      []byte
	mustRead bool // the plugin must read this one (guards against a reader that refuses too much)
}

func (c parityCase) wire() []byte {
	if c.raw != nil {
		return c.raw
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s /api/auth/local HTTP/1.1\r\nHost: a.localhost\r\n", method)
	framed := false
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
		name := strings.ToLower(strings.TrimSpace(strings.SplitN(h, ":", 2)[0]))
		framed = framed || name == "content-length" || name == "transfer-encoding"
	}
	if !framed && !c.noBody {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(c.body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(c.body)
	return b.Bytes()
}

type parityOutcome struct {
	problems   []string
	refused    bool // readBodyFields returned an error
	goRejected bool // Go's HTTP parser refused the request: Traefik answers 400 before the plugin runs
	nodeRead   bool // Strapi's parser read named fields from the request as sent
	err        error
}

// checkBodyParity sends one case to Node and to readBodyFields and says where they disagree.
func checkBodyParity(echo *strapiBodyEcho, c parityCase) parityOutcome {
	var out parityOutcome
	wire := c.wire()
	asSent, err := echo.ask(wire)
	if err != nil {
		out.problems = append(out.problems, "node: "+err.Error())
		return out
	}
	out.nodeRead = asSent.OK && asSent.Fields != "{}"
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		out.goRejected = true
		return out
	}
	sentBody := parityReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(sentBody))
	fields, perr := readBodyFields(req)
	out.err = perr
	if perr != nil {
		out.refused = true
		return out
	}
	if req.Body != nil {
		if got := parityReadAll(req.Body); !bytes.Equal(got, sentBody) {
			out.problems = append(out.problems, fmt.Sprintf("the body is not put back as sent: %q, sent %q", got, sentBody))
		}
		req.Body = io.NopCloser(bytes.NewReader(sentBody))
	}
	out.problems = append(out.problems, compareWithStrapi("as sent", fields, asSent)...)

	var fwd bytes.Buffer
	if err := req.Write(&fwd); err != nil {
		out.problems = append(out.problems, "cannot forward: "+err.Error())
		return out
	}
	forwarded, err := echo.ask(fwd.Bytes())
	if err != nil {
		out.problems = append(out.problems, "node (forwarded): "+err.Error())
		return out
	}
	out.problems = append(out.problems, compareWithStrapi("as forwarded", fields, forwarded)...)
	return out
}

// compareWithStrapi: the plugin read fields, so Strapi must read the same ones. The audience and
// identifier checks are the security-relevant direction, stated on their own.
func compareWithStrapi(via string, fields map[string]interface{}, node nodeAnswer) []string {
	if !node.OK {
		return []string{fmt.Sprintf("%s: the plugin reads %s, Strapi refuses the body (status %d)", via, parityJSONText(fields), node.Status)}
	}
	var problems []string
	if got := parityCanon(fields); got != node.Fields {
		problems = append(problems, fmt.Sprintf("%s: the plugin reads %s, Strapi reads %s (%s body)\n    plugin canon %s\n    strapi canon %s",
			via, parityJSONText(fields), string(node.Body), node.Kind, parityLimited(got, 300), parityLimited(node.Fields, 300)))
	}
	for _, f := range []struct {
		name string
		node *string
	}{{"audience", node.Audience}, {"identifier", node.Identifier}} {
		if f.node == nil {
			continue
		}
		v, has := fields[f.name]
		if !has {
			problems = append(problems, fmt.Sprintf("SECURITY %s: Strapi sees %s (%s), the plugin sees none", via, f.name, *f.node))
		} else if got := parityCanon(v); got != *f.node {
			problems = append(problems, fmt.Sprintf("SECURITY %s: Strapi sees %s %s, the plugin %s", via, f.name, *f.node, got))
		}
	}
	return problems
}

// parityCanon is the Go half of the canonical text strapi-body-echo.js prints: strings as the hex
// of their UTF-8, numbers as the hex of their float64 bits, object keys sorted.
func parityCanon(v interface{}) string {
	var b strings.Builder
	writeParityCanon(&b, v)
	return b.String()
}

func writeParityCanon(b *strings.Builder, v interface{}) {
	switch x := v.(type) {
	case nil:
		b.WriteString("n")
	case bool:
		if x {
			b.WriteString("t")
		} else {
			b.WriteString("f")
		}
	case string:
		b.WriteString("s" + hex.EncodeToString([]byte(x)))
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64) // out of range: ±Inf or 0, as JSON.parse makes it
		fmt.Fprintf(b, "d%016x", math.Float64bits(f))
	case []interface{}:
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(",")
			}
			writeParityCanon(b, e)
		}
		b.WriteString("]")
	case map[string]interface{}:
		keys := make([]string, 0, len(x))
		byKey := map[string]string{}
		for k := range x {
			ck := "s" + hex.EncodeToString([]byte(k))
			keys = append(keys, ck)
			byKey[ck] = k
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, ck := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(ck + ":")
			writeParityCanon(b, x[byKey[ck]])
		}
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "?%T", v)
	}
}

// strapiBodyEcho is the running scripts/strapi-body-echo.js.
type strapiBodyEcho struct {
	addr string
}

type nodeAnswer struct {
	OK         bool            `json:"ok"`
	Status     int             `json:"status"`
	Kind       string          `json:"kind"`
	Body       json.RawMessage `json:"body"`
	Fields     string          `json:"fields"`
	Audience   *string         `json:"audience"`
	Identifier *string         `json:"identifier"`
}

func startStrapiBodyEcho(t *testing.T, nm string) *strapiBodyEcho {
	t.Helper()
	cmd := exec.Command("node", filepath.Join("scripts", "strapi-body-echo.js"), nm)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the script exits when its stdin ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var hello struct {
		Port     int               `json:"port"`
		Versions map[string]string `json:"versions"`
	}
	select {
	case line := <-lines:
		if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Port == 0 {
			t.Fatalf("strapi-body-echo.js did not start: %q %v\n%s", line, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("strapi-body-echo.js did not start in 30s\n%s", stderr.String())
	}
	t.Logf("Strapi body parser: %v", hello.Versions)
	want := map[string]string{"@strapi/core": strapiVersionPinned(t), "koa-body": "6.0.1", "co-body": "6.2.0", "qs": "6.15.3"}
	for name, v := range want {
		if hello.Versions[name] != v {
			t.Fatalf("%s is %s in %s, the reader is written for %s", name, hello.Versions[name], nm, v)
		}
	}
	return &strapiBodyEcho{addr: fmt.Sprintf("127.0.0.1:%d", hello.Port)}
}

func strapiVersionPinned(t *testing.T) string {
	raw, err := os.ReadFile(filepath.Join("scripts", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "STRAPI_VERSION="); ok {
			return v
		}
	}
	t.Fatal("no STRAPI_VERSION in scripts/versions.env")
	return ""
}

// ask sends one raw request on its own connection. A request Node's HTTP parser refuses comes
// back as a non-200 answer: Strapi never sees it, so it counts as refused by Strapi.
func (e *strapiBodyEcho) ask(wire []byte) (nodeAnswer, error) {
	conn, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		return nodeAnswer{}, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = conn.Write(wire) // Node may answer (413) before it reads everything
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nodeAnswer{}, fmt.Errorf("reading the answer: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw := parityReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nodeAnswer{OK: false, Status: resp.StatusCode}, nil
	}
	var a nodeAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nodeAnswer{}, fmt.Errorf("bad answer %q: %w", parityLimited(string(raw), 200), err)
	}
	return a, nil
}

func parityReadAll(r io.Reader) []byte {
	if r == nil {
		return nil
	}
	b, _ := io.ReadAll(r)
	return b
}

func parityLimited(s string, n int) string {
	if len(s) > n {
		return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func parityQuote(b []byte, n int) string {
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + fmt.Sprintf("...(%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

func parityJSONText(v interface{}) string {
	if v == nil {
		return "no fields"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return parityLimited(string(b), 300)
}

// ---- the corpus ----

const (
	parityJSON = `{"identifier":"ann","password":"pw","audience":"*"}`
	parityForm = `identifier=ann&password=pw&audience=*`
)

func parityJSONCase(name, body string) parityCase {
	return parityCase{name: name, headers: []string{"Content-Type: application/json"}, body: []byte(body)}
}

func parityFormCase(name, body string) parityCase {
	return parityCase{name: name, headers: []string{"Content-Type: application/x-www-form-urlencoded"}, body: []byte(body)}
}

func parityMust(c parityCase) parityCase {
	c.mustRead = true
	return c
}

func bodyParityCorpus() []parityCase {
	var cs []parityCase
	cs = append(cs, parityEncodingCases()...)
	cs = append(cs, parityContentTypeCases()...)
	cs = append(cs, parityMethodCases()...)
	formCases := parityFormCases()
	jsonCases := parityJSONCases()
	cs = append(cs, formCases...)
	cs = append(cs, jsonCases...)
	cs = append(cs, parityMutants("form", formCases, 1500, 1)...)
	cs = append(cs, parityMutants("json", jsonCases, 1500, 2)...)
	cs = append(cs, parityContentTypeMutants(800, 3)...)
	return cs
}

func parityGzip(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func parityZlib(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func parityFlate(s string) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func parityUnhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Brotli has no encoder in Go's standard library: these are zlib.brotliCompressSync(parityJSON)
// and zlib.brotliCompressSync(parityForm) from Node.
var (
	parityJSONBrotli = parityUnhex("1b3200f09cc9e3ee3b8a89459c5b8ab8edb54a185c9f62d129b93bd88003e64433486085d367206eefb8872c5854008901")
	parityFormBrotli = parityUnhex("1b2400b08cd446f3d94aad120677a74d7adce4b424a6d8228ca259fb72b316a80d20")
)

func parityEncodingCases() []parityCase {
	var cs []parityCase
	for _, kind := range []struct{ name, ct, body string }{
		{"json", "application/json", parityJSON},
		{"form", "application/x-www-form-urlencoded", parityForm},
	} {
		br := parityJSONBrotli
		if kind.name == "form" {
			br = parityFormBrotli
		}
		for _, e := range []struct {
			ce   []string
			body []byte
		}{
			{[]string{"gzip"}, parityGzip(kind.body)},
			{[]string{"x-gzip"}, parityGzip(kind.body)},
			{[]string{"GZIP"}, parityGzip(kind.body)},
			{[]string{"deflate"}, parityZlib(kind.body)},
			{[]string{"deflate"}, parityGzip(kind.body)}, // Node's createUnzip takes either framing
			{[]string{"gzip"}, parityZlib(kind.body)},
			{[]string{"deflate"}, parityFlate(kind.body)},
			{[]string{"br"}, br},
			{[]string{"br"}, []byte(kind.body)},
			{[]string{"compress"}, []byte(kind.body)},
			{[]string{"gzip, identity"}, parityGzip(kind.body)},
			{[]string{"identity, gzip"}, parityGzip(kind.body)},
			{[]string{"identity"}, []byte(kind.body)},
			{[]string{"Identity"}, []byte(kind.body)},
			{[]string{"IDENTITY"}, []byte(kind.body)},
			{[]string{" identity "}, []byte(kind.body)},
			{[]string{"identity;q=1"}, []byte(kind.body)},
			{[]string{"identity, identity"}, []byte(kind.body)},
			{[]string{"identity", "identity"}, []byte(kind.body)},
			{[]string{"identity", "gzip"}, parityGzip(kind.body)},
			{[]string{"gzip", "gzip"}, parityGzip(string(parityGzip(kind.body)))},
			{[]string{""}, []byte(kind.body)},
			{[]string{"gzip"}, nil},     // Content-Length: 0
			{[]string{"identity"}, nil}, // Content-Length: 0
			{[]string{"Identity"}, nil}, // Content-Length: 0
			{[]string{"br"}, nil},       // Content-Length: 0
		} {
			c := parityCase{name: fmt.Sprintf("%s content-encoding %q (%d bytes)", kind.name, e.ce, len(e.body)),
				headers: []string{"Content-Type: " + kind.ct}, body: e.body}
			if c.body == nil {
				c.body = []byte{}
			}
			for _, v := range e.ce {
				c.headers = append(c.headers, "Content-Encoding: "+v)
			}
			if len(e.ce) == 1 && e.ce[0] == "identity" {
				c.mustRead = true
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func parityContentTypeCases() []parityCase {
	var cs []parityCase
	types := []string{
		"application/json", "Application/JSON; charset=latin1", "APPLICATION/JSON", "application/json; charset=utf-8",
		"application/json;charset=utf-8", "application/json ; charset=utf-8", "application/json;  charset=utf-8",
		"application/json;\tcharset=utf-8", "application/json\t; charset=utf-8", "application/json; charset=\"utf-8\"",
		"application/json; charset = utf-8", "application/json; charset=utf-8 ", "application/json; charset=", "application/json;",
		"application/json; ", "application/json; foo", "application/json; a=b; a=c", "application/json; a=b;",
		"application/json;;a=b", "application/json; a=\"b\\\"c\"", "application/json; a=\"b;c\"", "application/json; a=\"unterminated",
		"application/json; charset*=utf-8''x", "application/json; a=\xe9", "application/json; a=\"\xe9\"",
		"application/json; q=1, text/plain", "application/json, text/plain", "application/json,", "application/json/x",
		"application/ json", "application /json", "application/json+", "application/json+json", "application/json+x",
		"application/vnd.api+json", "application/VND.API+JSON", "application/vnd.api+json; ext=x", "application/foo+json",
		"application/json-patch+json", "application/merge-patch+json", "application/csp-report", "application/reports+json",
		"application/json-seq", "text/json", "application/x-json", "json", "application/*", "*/*", "application/json\x7f",
		"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
		"application/x-www-form-urlencoded;charset=iso-8859-1", "Application/X-WWW-Form-URLencoded",
		"application/x-www-form-urlencoded+", "application/x-www-form-urlencoded ;", "application/x-www-form-urlencoded\t;a=b",
		"text/plain", "text/plain; charset=utf-8", "text/html", "text/x-www-form-urlencoded",
		"multipart/form-data; boundary=b", "multipart/mixed; boundary=b", "application/octet-stream", "",
	}
	multipart := "--b\r\nContent-Disposition: form-data; name=\"audience\"\r\n\r\n*\r\n--b\r\nContent-Disposition: form-data; name=\"identifier\"\r\n\r\nann\r\n--b--\r\n"
	for _, ct := range types {
		for _, body := range []string{parityJSON, parityForm, multipart} {
			if body == multipart && !strings.HasPrefix(ct, "multipart") {
				continue
			}
			c := parityCase{name: fmt.Sprintf("content-type %q, body %s", ct, parityLimited(body, 20)), headers: []string{"Content-Type: " + ct}, body: []byte(body)}
			switch {
			case ct == "application/json" && body == parityJSON,
				ct == "Application/JSON; charset=latin1" && body == parityJSON,
				ct == "application/vnd.api+json" && body == parityJSON,
				ct == "application/x-www-form-urlencoded; charset=UTF-8" && body == parityForm:
				c.mustRead = true
			}
			cs = append(cs, c)
		}
	}
	for _, body := range []string{parityJSON, parityForm} {
		cs = append(cs,
			parityCase{name: "no content-type " + parityLimited(body, 10), body: []byte(body)},
			parityCase{name: "two content-types json+form " + parityLimited(body, 10), body: []byte(body),
				headers: []string{"Content-Type: application/json", "Content-Type: application/x-www-form-urlencoded"}},
			parityCase{name: "two content-types form+json " + parityLimited(body, 10), body: []byte(body),
				headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Type: application/json"}},
			parityCase{name: "content-type with spaces around " + parityLimited(body, 10), body: []byte(body),
				headers: []string{"Content-Type: \t application/json \t"}},
			parityCase{name: "content-type header name in odd case " + parityLimited(body, 10), body: []byte(body),
				headers: []string{"cOnTeNt-TyPe: application/json"}},
		)
	}
	return cs
}

func parityMethodCases() []parityCase {
	var cs []parityCase
	for _, m := range []string{"GET", "DELETE", "OPTIONS", "PUT", "PATCH", "POST"} {
		for _, k := range []struct{ ct, body string }{
			{"application/json", parityJSON}, {"application/x-www-form-urlencoded", parityForm},
		} {
			c := parityCase{name: m + " with a body " + k.ct, method: m, headers: []string{"Content-Type: " + k.ct}, body: []byte(k.body), mustRead: true}
			cs = append(cs, c)
			cs = append(cs, parityCase{name: m + " Content-Length 0 " + k.ct, method: m, headers: []string{"Content-Type: " + k.ct}, body: []byte{}, mustRead: true})
			cs = append(cs, parityCase{name: m + " no body " + k.ct, method: m, headers: []string{"Content-Type: " + k.ct}, noBody: true, mustRead: true})
		}
		cs = append(cs, parityCase{name: m + " no body, no content-type", method: m, noBody: true, mustRead: true})
		cs = append(cs, parityCase{name: m + " Content-Length 0, no content-type", method: m, body: []byte{}, mustRead: true})
	}
	chunked := func(name, ct string, chunks ...string) parityCase {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /api/auth/local HTTP/1.1\r\nHost: a.localhost\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", ct)
		for _, c := range chunks {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
		}
		b.WriteString("0\r\n\r\n")
		return parityCase{name: name, raw: b.Bytes()}
	}
	cs = append(cs,
		parityMust(chunked("chunked json", "application/json", `{"identifier":`, `"ann","audience"`, `:"*"}`)),
		parityMust(chunked("chunked form", "application/x-www-form-urlencoded", "identifier=an", "n&audi", "ence=*")),
		parityMust(chunked("chunked empty json", "application/json")),
		chunked("chunked json with a BOM split across chunks", "application/json", "\xef", "\xbb\xbf{\"audience\":\"*\"}"),
		chunked("chunked form with a split escape", "application/x-www-form-urlencoded", "audience=%", "2A&identifier=%C3", "%A9"),
	)
	return cs
}

func parityFormCases() []parityCase {
	var cs []parityCase
	keys := []string{
		"audience", "identifier", "audience[]", "[audience]", ".audience", "audience.", "audience.x", "a[b][c]", "a[b]",
		"%5Baudience%5D", "%5baudience%5d", "audience%5B0%5D", "audience%5b%5d", "audience%5B", "audience%5D", "%2Eaudience",
		"%2eaudience", "audience%2Ex", "%61udience", "audienc%65", "%61%75%64%69%65%6E%63%65", "__proto__", "constructor", "toString",
		"hasOwnProperty", "valueOf", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString", "__defineGetter__",
		"__lookupSetter__", "__proto__[audience]", "__proto__.audience", "toString.x", "prototype", "__proto", "constructor.prototype",
		"audience ", " audience", "+audience", "audience+", "audi%20ence", "aud+ience", "?audience", "#audience", "audience;x",
		"audience%3Bx", "", "a]", "]", "[", "[]", "audience]", "%5D", "%5B", "a%", "a%zz", "a%c3", "a%c3%a9", "a%ed%a0%80",
		"a%f4%90%80%80", "a%c0%af", "a%e2%82", "\xff", "a\xc3", "\xc3\xa9", "a%00", "0", "length", "a[", "a]b", "a.b.c", "a..b",
		"a.[b]", "a[.b]", "a\xe2\x80\xa8", "a%u0061", "%", "%%", "%2", "a=", "audience%3D", "audience%26x", "%2Baudience",
		"\xef\xbb\xbfaudience", "audience\x00", "AUDIENCE", "Audience",
	}
	values := []string{
		"*", "", "a+b", "a%20b", "%2B", "+", "%", "%zz", "%c3", "%c3%a9", "]=", "x]=y", "=", "a=b", "%5B", "%5D=", "%5D",
		"\xff", "\xc3\xa9", ";", "a;b=c", "%00", "%ed%a0%80", "%f0%9f%98%80", "%F0%9F%98", "%e2%80%a8", "[*]", "a.b", "%2E",
		"%u002A", "\xef\xbb\xbf", "%EF%BB%BF*",
	}
	for _, k := range keys {
		cs = append(cs, parityFormCase("form key "+strconv.Quote(k), k+"=*"))
		cs = append(cs, parityFormCase("form key without = "+strconv.Quote(k), k))
		cs = append(cs, parityFormCase("form login + key "+strconv.Quote(k), "identifier=ann&password=pw&"+k+"=*"))
		cs = append(cs, parityFormCase("form key last, empty value "+strconv.Quote(k), "identifier=ann&"+k+"="))
	}
	for _, v := range values {
		cs = append(cs, parityFormCase("form audience value "+strconv.Quote(v), "audience="+v))
		cs = append(cs, parityFormCase("form identifier value "+strconv.Quote(v), "identifier="+v+"&password=pw"))
	}
	cs = append(cs,
		parityMust(parityFormCase("form login", "identifier=ann&password=pw")),
		parityMust(parityFormCase("form plus and escapes", "identifier=a+b%20c%2Bd%C3%A9&password=p%26w%3D")),
		parityMust(parityFormCase("form empty parts", "&&identifier=ann&&password=pw&&")),
		parityMust(parityFormCase("form semicolons stay in values", "identifier=ann;audience=*&password=pw")),
		parityMust(parityFormCase("form utf-8 raw", "identifier=\xc3\xa9l\xc3\xa8ve")),
		parityMust(parityFormCase("form BOM", "\xef\xbb\xbfidentifier=ann&audience=*")),
		parityMust(parityFormCase("form empty key skipped", "=x&identifier=ann")),
		parityMust(parityFormCase("form = in value", "identifier=a=b==")),
		parityFormCase("form BOM twice", "\xef\xbb\xbf\xef\xbb\xbfaudience=*&identifier=ann"),
		parityFormCase("form BOM mid-body", "identifier=ann&\xef\xbb\xbfaudience=*"),
		parityFormCase("form duplicate", "audience=a&audience=b"),
		parityFormCase("form duplicate identifier", "identifier=ann&identifier=bob"),
		parityFormCase("form duplicate spelled two ways", "audience=a&%61udience=b"),
		parityFormCase("form duplicate plus and space", "a+b=1&a%20b=2"),
		parityFormCase("form duplicate empty", "audience&audience"),
		parityFormCase("form duplicate empty keys", "=a&=b&identifier=ann"),
		parityFormCase("form duplicate with brackets", "audience=a&audience[]=b"),
		parityFormCase("form duplicate with dot", "audience=a&audience.x=b"),
		parityFormCase("form split a]=b", "a]=b"),
		parityFormCase("form split a]=b=c", "a]=b=c"),
		parityFormCase("form split a=b]=c", "a=b]=c"),
		parityFormCase("form split audience=x]=y", "audience=x]=y"),
		parityFormCase("form split %5D=", "a%5D=b"),
		parityFormCase("form split value %5D=", "audience=%5D=*"),
		parityFormCase("form split ]=x", "]=x"),
		parityFormCase("form split a]]=b", "a]]=b"),
		parityFormCase("form split a[=]=b", "a[=]=b"),
		parityFormCase("form split identifier=a%5D%3Db", "identifier=a%5D%3Db"),
		parityFormCase("form only &", "&"),
		parityFormCase("form only &&&&", "&&&&"),
		parityFormCase("form only =", "="),
		parityFormCase("form only ==", "=="),
		parityFormCase("form a==b", "a==b"),
		parityFormCase("form whitespace", "   "),
		parityFormCase("form newline", "identifier=ann\r\n&audience=*\r\n"),
		parityFormCase("form json body", parityJSON),
		parityFormCase("form query prefix", "?audience=*"),
		parityFormCase("form utf8 sentinel", "utf8=%E2%9C%93&audience=*"),
		parityFormCase("form iso sentinel", "utf8=%26%2310003%3B&audience=%E9"),
		parityFormCase("form latin1 raw", "identifier=\xe9"),
		parityFormCase("form overlong", "identifier=%C0%AF"),
		parityFormCase("form utf-16 surrogate escapes", "identifier=%ED%A0%BD%ED%B8%80"),
	)
	// qs reads at most 1000 parts and drops the rest silently.
	params := func(n int, last string) string {
		parts := make([]string, 0, n)
		for i := 0; i < n-1; i++ {
			parts = append(parts, fmt.Sprintf("p%d=x", i))
		}
		return strings.Join(append(parts, last), "&")
	}
	cs = append(cs,
		parityMust(parityFormCase("form 999 parts", params(999, "audience=*"))),
		parityMust(parityFormCase("form 1000 parts", params(1000, "audience=*"))),
		parityFormCase("form 1001 parts, audience last", params(1001, "audience=*")),
		parityFormCase("form 1002 parts", params(1002, "identifier=ann")),
		parityMust(parityFormCase("form 999 empty parts then audience", strings.Repeat("&", 999)+"audience=*")),
		parityFormCase("form 1000 empty parts then audience", strings.Repeat("&", 1000)+"audience=*"),
		parityFormCase("form 1000 parts, trailing &", params(1000, "audience=*")+"&"),
	)
	// Strapi's form limit is 56 KiB, the plugin's too.
	big := "identifier=" + strings.Repeat("a", maxRequestBody-len("identifier="))
	cs = append(cs, parityMust(parityFormCase("form of exactly the limit", big)), parityFormCase("form one byte over the limit", big+"a"))
	return cs
}

func parityJSONCases() []parityCase {
	var cs []parityCase
	bodies := []string{
		`{"identifier":"ann"}`, `{"audience":"*"}`, `{"audience":"a","audience":"b"}`, `{"audience":"*","audience":null}`,
		`{"identifier":"ann","identifier":"bob"}`, `{"\u0061udience":"*"}`, `{"audi\u0065nce":"*"}`, `{"\u0041udience":"*"}`,
		`{"__proto__":{"audience":"*"}}`, `{"a":{"__proto__":1}}`, `{"\u005f_proto__":{}}`, `{"__proto\u005F_":{}}`,
		`{"__\u0070roto__":1}`, `{"__pr\u006fto__":1}`, `{"__prot\u006F__":1}`, `{"\u005f\u005f\u0070\u0072\u006f\u0074\u006f\u005f\u005f":1}`,
		`{"__proto__" :1}`, "{\"__proto__\"\n:1}", `{"__proto__":null}`, `{"x":"__proto__"}`, `{"x":"\"__proto__\":"}`,
		`{"constructor":{"prototype":{"audience":"*"}}}`, `{"constructor":{"prototype":1}}`, `{"constructor":1}`,
		`{"a":{"constructor":{"prototype":1}}}`, `{"prototype":1}`, `{"toString":1,"hasOwnProperty":2,"valueOf":3}`,
		`[{"__proto__":1}]`, `[{"audience":"*"}]`, `[]`, `[1,2]`, `"audience"`, `1`, `true`, `null`, `{}`,
		` {"identifier":"ann"}`, "\t\r\n{\"identifier\":\"ann\"}\n", "\f{\"a\":1}", "\v{\"a\":1}", "\xc2\xa0{\"a\":1}",
		`{"a":1} x`, `{"a":1}{}`, `{"a":1},`, `{"a":1}]`, "{\"a\":1}\x00", `{"a":1}//`, `{"a":1} /* c */`, "   ", "\n",
		`{"a":1`, `{'a':1}`, `{a:1}`, `{"a":01}`, `{"a":+1}`, `{"a":.5}`, `{"a":1.}`, `{"a":1e}`, `{"a":0x10}`,
		`{"a":1e400}`, `{"a":-1e400}`, `{"a":1e-400}`, `{"a":-0}`, `{"a":12345678901234567890123}`, `{"a":0.1}`,
		`{"a":9007199254740993}`, `{"a":1.7976931348623157e308}`, `{"a":4.9e-324}`, `{"a":NaN}`, `{"a":Infinity}`,
		`{"a":1,}`, `{"a":[1,]}`, `{"a" 1}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\U0041"}`, `{"a":"\/"}`,
		`{"identifier":"\ud800"}`, `{"identifier":"\udc00"}`, `{"identifier":"\ud83d\ude00"}`, `{"identifier":"\ud83d"}`,
		`{"identifier":"\ud83d\u0041"}`, `{"identifier":"\ude00\ud83d"}`, `{"identifier":"\ud83d\ud83d\ude00"}`,
		`{"\ud800audience":1}`, `{"audience\udfff":1}`, `{"identifier":"\\ud800"}`, `{"identifier":"\\\ud800"}`,
		`{"identifier":"\ufffd"}`, `{"identifier":"\uFEFF"}`, `{"identifier":"\u0000"}`, `{"identifier":"\u2028\u2029"}`,
		"{\"identifier\":\"\xff\"}", "{\"identifier\":\"\xf0\x9f\x98\"}", "{\"identifier\":\"\xed\xa0\x80\"}",
		"{\"identifier\":\"\xc0\xaf\"}", "{\"identifier\":\"\xf4\x90\x80\x80\"}", "{\"identifier\":\"\xc3\xa9\"}",
		"{\"identifier\":\"\xe2\x80\xa8\"}", "{\"identifier\":\"tab\there\"}", "{\"identifier\":\"\x7f\"}", "{\"\xff\":1}",
		"{\"identifier\":\"\xef\xbb\xbf\"}", `{"identifier":1}`, `{"identifier":["a"]}`, `{"identifier":{"$ne":null}}`,
		`{"identifier":true}`, `{"audience":["*"]}`, `{"audience":null}`, `{"audience":{"x":1}}`, `{"Audience":"*","AUDIENCE":"*"}`,
		`{"audience ":"*"," audience":"*"}`, `{"":1}`, `{"a.b":1,"a[b]":2}`,
		"\xef\xbb\xbf{\"identifier\":\"ann\"}", "\xef\xbb\xbf\xef\xbb\xbf{\"identifier\":\"ann\"}", "\xef\xbb\xbf {\"a\":1}",
		" \xef\xbb\xbf{\"a\":1}", "\xef\xbb\xbf", "\xef\xbb\xbf   ", "\xef\xbb", "\xfe\xff\x00{\x00}", "\xff\xfe{\x00}\x00",
		"{\x00\"\x00a\x00\"\x00:\x001\x00}\x00", "\xef\xbb\xbf[]",
	}
	for _, b := range bodies {
		cs = append(cs, parityJSONCase("json "+parityLimited(strconv.Quote(b), 80), b))
	}
	cs = append(cs,
		parityMust(parityJSONCase("json login", `{"identifier":"ann","password":"pw"}`)),
		parityMust(parityJSONCase("json duplicate keys, last wins", `{"identifier":"ann","identifier":"bob","audience":"a","audience":"b"}`)),
		parityMust(parityJSONCase("json escaped key", `{"\u0061udience":"*","identifier":"\u0061nn"}`)),
		parityMust(parityJSONCase("json BOM", "\xef\xbb\xbf{\"identifier\":\"ann\"}")),
		parityMust(parityJSONCase("json top-level array", `[{"audience":"*"}]`)),
		parityMust(parityJSONCase("json surrogate pair", `{"identifier":"\ud83d\ude00"}`)),
		parityMust(parityJSONCase("json numbers", `{"a":1e400,"b":-0,"c":12345678901234567890123,"d":0.1}`)),
	)
	// Deep nesting: Node parses any depth; Go stops at 10000 and the plugin must refuse there.
	for _, d := range []int{100, 1000, 5000, 9998, 9999, 10000, 10001, 10002, 20000, 28000} {
		arr := strings.Repeat("[", d) + strings.Repeat("]", d)
		cs = append(cs, parityJSONCase(fmt.Sprintf("json array nested %d", d), arr))
		cs = append(cs, parityJSONCase(fmt.Sprintf("json audience beside an array nested %d", d), `{"audience":"*","x":`+arr+`}`))
		if 5*d+d+1 < maxRequestBody {
			obj := strings.Repeat(`{"a":`, d) + "1" + strings.Repeat("}", d)
			cs = append(cs, parityJSONCase(fmt.Sprintf("json object nested %d", d), obj))
			cs = append(cs, parityJSONCase(fmt.Sprintf("json proto poisoning nested %d", d), strings.Repeat(`{"a":`, d)+`{"__proto__":1}`+strings.Repeat("}", d)))
		}
	}
	big := `{"identifier":"` + strings.Repeat("a", maxRequestBody-len(`{"identifier":""}`)) + `"}`
	cs = append(cs, parityMust(parityJSONCase("json of exactly the limit", big)), parityJSONCase("json one byte over the limit", big[:len(big)-2]+`a"}`))
	// The other JSON media types go the same way.
	for _, ct := range []string{"application/vnd.api+json", "application/json-patch+json", "application/csp-report", "application/reports+json"} {
		for _, b := range []string{`{"audience":"*"}`, `{"identifier":"\ud800"}`, "{\"identifier\":\"\xff\"}", `[1]`, `"s"`} {
			cs = append(cs, parityCase{name: ct + " " + b, headers: []string{"Content-Type: " + ct}, body: []byte(b)})
		}
	}
	return cs
}

var (
	parityFormTokens = []string{
		"[", "]", ".", "=", "&", ";", "+", "%", "%5B", "%5b", "%5D", "%5d", "%2E", "%2e", "%3D", "%26", "%25", "%2B", "%20",
		"%00", "%zz", "%c3", "%c3%a9", "%ed%a0%80", "\xff", "\xc3\xa9", "\xef\xbb\xbf", "]=", "[]", "[0]", "audience",
		"identifier", "__proto__", "toString", "constructor", "hasOwnProperty", "a", "x", " ", "?", "#", "\r\n",
	}
	parityJSONTokens = []string{
		"{", "}", "[", "]", ",", ":", `"`, `\`, `\u0061`, `\ud800`, `\udc00`, `\ud83d\ude00`, `\u005f`, `\\`, `"audience"`,
		`"identifier"`, `"__proto__"`, `"constructor"`, `"prototype"`, `{"prototype":1}`, "1e400", "-0", "0.1", "null",
		"true", " ", "\n", "\t", "\xef\xbb\xbf", "\xff", "\xc3\xa9", "\x00", "\xe2\x80\xa8", "\xf0\x9f\x98", `"x":1,`,
	}
	parityMutantTypes = []string{
		"application/json", "application/x-www-form-urlencoded", "application/vnd.api+json", "Application/Json;charset=latin1",
		"application/json ;charset=utf-8", "application/x-www-form-urlencoded;\tcharset=utf-8",
	}
)

// parityMutants derives n requests from seeds with a fixed random source: tokens that mean
// something to qs or JSON inserted, spans cut, duplicated or replaced, now and then another
// content type.
func parityMutants(kind string, seeds []parityCase, n int, seed int64) []parityCase {
	rnd := rand.New(rand.NewSource(seed))
	tokens := parityJSONTokens
	if kind == "form" {
		tokens = parityFormTokens
	}
	var usable []parityCase
	for _, s := range seeds {
		if len(s.body) > 0 && len(s.body) < 2000 {
			usable = append(usable, s)
		}
	}
	out := make([]parityCase, 0, n)
	for i := 0; i < n; i++ {
		base := usable[rnd.Intn(len(usable))]
		body := append([]byte(nil), base.body...)
		for ops := 1 + rnd.Intn(3); ops > 0; ops-- {
			pos := rnd.Intn(len(body) + 1)
			end := pos + rnd.Intn(len(body)-pos+1)
			tok := []byte(tokens[rnd.Intn(len(tokens))])
			switch rnd.Intn(4) {
			case 0: // insert
				body = append(body[:pos], append(tok, body[pos:]...)...)
			case 1: // cut
				body = append(body[:pos], body[end:]...)
			case 2: // replace
				body = append(body[:pos], append(tok, body[end:]...)...)
			case 3: // duplicate
				body = append(body[:end], append(append([]byte(nil), body[pos:end]...), body[end:]...)...)
			}
		}
		headers := base.headers
		if rnd.Intn(8) == 0 {
			headers = []string{"Content-Type: " + parityMutantTypes[rnd.Intn(len(parityMutantTypes))]}
		}
		out = append(out, parityCase{name: fmt.Sprintf("%s mutant %d of %s", kind, i, base.name), headers: headers, body: body})
	}
	return out
}

// parityContentTypeMutants derives n Content-Types from the JSON and form types with a fixed
// random source (spaces, tabs, separators, quotes, parameters, case), each sent with a body of
// its kind: type-is decides whether Strapi parses at all, so the plugin must agree to the byte.
func parityContentTypeMutants(n int, seed int64) []parityCase {
	rnd := rand.New(rand.NewSource(seed))
	bases := []struct{ ct, body string }{
		{"application/json", parityJSON}, {"application/vnd.api+json", parityJSON},
		{"application/x-www-form-urlencoded", parityForm}, {"application/json; charset=utf-8", parityJSON},
		{"application/x-www-form-urlencoded; charset=utf-8", parityForm},
	}
	tokens := []string{" ", "  ", "\t", ";", "=", "\"", "+", "\\", ",", "/", "a=b", "; a=b", ";charset=utf-8", "; q=\"x\\\"y\"",
		"*", "J", "X", "\xe9", "(", ")", "{", "json", "+json", ".", "-", "!", "#", "~", "'", "%"}
	out := make([]parityCase, 0, n)
	for i := 0; i < n; i++ {
		base := bases[rnd.Intn(len(bases))]
		ct := []byte(base.ct)
		for ops := 1 + rnd.Intn(3); ops > 0; ops-- {
			pos := rnd.Intn(len(ct) + 1)
			end := pos + rnd.Intn(len(ct)-pos+1)
			tok := []byte(tokens[rnd.Intn(len(tokens))])
			switch rnd.Intn(4) {
			case 0:
				ct = append(ct[:pos], append(tok, ct[pos:]...)...)
			case 1:
				ct = append(ct[:pos], ct[end:]...)
			case 2:
				ct = append(ct[:pos], append(tok, ct[end:]...)...)
			case 3: // upper-case a span
				copy(ct[pos:end], strings.ToUpper(string(ct[pos:end])))
			}
		}
		out = append(out, parityCase{name: fmt.Sprintf("content-type mutant %d %q", i, ct),
			headers: []string{"Content-Type: " + string(ct)}, body: []byte(base.body)})
	}
	return out
}
