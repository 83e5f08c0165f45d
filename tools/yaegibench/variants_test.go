package yaegibench

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// BenchmarkVariants measures what single Yaegi constructs cost inside ServeHTTP, to guide the hot path.
func BenchmarkVariants(b *testing.B) {
	variants := map[string]string{
		"noop":          `n.next.ServeHTTP(rw, req)`,
		"headerDel2":    `req.Header.Del("X-A"); req.Header.Del("X-B"); n.next.ServeHTTP(rw, req)`,
		"headerGet":     `_ = req.Header.Get("Authorization"); n.next.ServeHTTP(rw, req)`,
		"mapIndexHdr":   `_ = req.Header["Authorization"]; n.next.ServeHTTP(rw, req)`,
		"methodBool":    `_ = n.b(req.URL.Path); n.next.ServeHTTP(rw, req)`,
		"method3":       `_, _, _ = n.three(req); n.next.ServeHTTP(rw, req)`,
		"funcBool":      `_ = fb(req.URL.Path); n.next.ServeHTTP(rw, req)`,
		"hasPrefix":     `_ = strings.HasPrefix(req.URL.Path, "/api/auth/"); n.next.ServeHTTP(rw, req)`,
		"timeNow":       `_ = time.Now().UnixMilli(); n.next.ServeHTTP(rw, req)`,
		"rlock":         `n.mu.RLock(); _ = n.m["x"]; n.mu.RUnlock(); n.next.ServeHTTP(rw, req)`,
		"mapLookup":     `_ = n.m["x"]; n.next.ServeHTTP(rw, req)`,
		"localMapStr":   `p := req.URL.Path; _ = n.m[p]; n.next.ServeHTTP(rw, req)`,
		"structField":   `_ = n.s.x + n.s.y; n.next.ServeHTTP(rw, req)`,
		"syncMapLoad":   `_, _ = n.sm.Load("x"); n.next.ServeHTTP(rw, req)`,
		"closureInline": `x := 0; for i := 0; i < 3; i++ { x += i }; _ = x; n.next.ServeHTTP(rw, req)`,
		"ptrMethod":     `_ = n.s.get(); n.next.ServeHTTP(rw, req)`,
		"pathChecks":    `p := req.URL.Path; if strings.ContainsAny(p, "%\\ABCDEFGHIJKLMNOPQRSTUVWXYZ") || path.Clean(p) != p || strings.HasPrefix(p, "/api/auth/") { return }; f := p; if i := strings.IndexByte(p[1:], '/'); i >= 0 { f = p[:i+1] }; if n.m[f] != 0 { return }; n.next.ServeHTTP(rw, req)`,
		"pathChecks2":   `p := req.URL.Path; if strings.ContainsAny(p, "%\\ABCDEFGHIJKLMNOPQRSTUVWXYZ") || path.Clean(p) != p { return }; n.next.ServeHTTP(rw, req)`,
		"deadBranch":    `if n.flag { a := req.Header.Get("A"); b := req.Header.Get("B"); c := a + b + req.URL.Path + req.Host; d := strings.ToLower(c); e := strings.TrimSpace(d); g := len(e) + len(a) + len(b); _ = g; rw.Header().Set("X", e); rw.WriteHeader(500); return }; n.next.ServeHTTP(rw, req)`,
		"delete2":       `h := req.Header; delete(h, "X-Auth-User-Id"); delete(h, "X-Auth-Session-Id"); n.next.ServeHTTP(rw, req)`,
		"regexp":        `_ = n.re.MatchString(req.URL.Path); n.next.ServeHTTP(rw, req)`,
		"urlPath":       `_ = req.URL.Path; n.next.ServeHTTP(rw, req)`,
		"timeUntil":     `if time.Until(n.t) < 0 { return }; n.next.ServeHTTP(rw, req)`,
		"sliceAssign":   `req.Header["Authorization"] = []string{"Bearer y"}; n.next.ServeHTTP(rw, req)`,
		"boolField":     `if n.flag { return }; n.next.ServeHTTP(rw, req)`,
		"funcRecvArg":   `_ = fr(n, req.URL.Path); n.next.ServeHTTP(rw, req)`,
		"func3":         `_, _, _ = f3(n, req); n.next.ServeHTTP(rw, req)`,
		"funcStructArg": `_ = fst(n.s); n.next.ServeHTTP(rw, req)`,
		"fieldFuncCall": `_ = n.fn(req.URL.Path); n.next.ServeHTTP(rw, req)`,
		"fastpath":      `h := req.Header; a := h["Authorization"]; if len(a) == 1 { n.mu.RLock(); e := n.c[a[0]]; n.mu.RUnlock(); now := time.Now().UnixMilli(); if e != nil && now < e.until && e.host == req.Host { p := req.URL.Path; if strings.IndexAny(p, "%ABC") < 0 && path.Clean(p) == p { delete(h, "X-A"); delete(h, "X-B"); h["Authorization"] = []string{e.auth} } } }; n.next.ServeHTTP(rw, req)`,
	}
	for name, body := range variants {
		i := interp.New(interp.Options{})
		_ = i.Use(stdlib.Symbols)
		_, err := i.Eval(`
import ("net/http"; "path"; "regexp"; "strings"; "sync"; "time")
var _ = path.Clean
type st struct{ x, y int64 }
func (s *st) get() int64 { return s.x }
type noop struct{ next http.Handler; mu sync.RWMutex; m map[string]int; s *st; sm sync.Map; fn func(string) bool; c map[string]*ent; re *regexp.Regexp; t time.Time; flag bool }
func (n *noop) b(p string) bool { return len(p) > 3 }
func fb(p string) bool { return len(p) > 3 }
func fr(n *noop, p string) bool { return len(p) > 3 && n.m != nil }
func f3(n *noop, req *http.Request) (string, bool, bool) { return "", false, true }
func fst(s *st) int64 { return s.x }
type ent struct{ until int64; host, auth string }
func (n *noop) three(req *http.Request) (string, bool, bool) { return "", false, true }
var _ = strings.HasPrefix
var _ = time.Now
func (n *noop) ServeHTTP(rw http.ResponseWriter, req *http.Request) { ` + body + ` }
func mk(next http.Handler) http.Handler { return &noop{next: next, m: map[string]int{"x": 1}, s: &st{}, fn: fb, c: map[string]*ent{"Bearer x": &ent{until: 1<<62, host: "bench.localhost", auth: "Bearer y"}}, re: regexp.MustCompile("^/(?:api/auth|admin|content-manager|content-type-builder|upload|users-permissions|i18n|email)(?:/|$)|[%A-Z]|//|/[.]|^$|^[^/]|[^/]/$"), t: time.Now().Add(time.Hour)} }`)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		mk, _ := i.Eval("mk")
		h := mk.Call([]reflect.Value{reflect.ValueOf(http.Handler(upstream{}))})[0].Interface().(http.Handler)
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://bench.localhost/api/articles", nil)
			req.Header.Set("Authorization", "Bearer x")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for n := 0; n < b.N; n++ {
				h.ServeHTTP(w, req)
			}
		})
	}
}
