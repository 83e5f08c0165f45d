package e2e

// Issue 13: the proxy answers Strapi 5's own auth API (refresh, sessions, logout) so that an
// unmodified Strapi 5 client works through it. One scripted client flow is written once and run
// against the real Strapi in session mode directly and, through the real Traefik + sessionstore,
// against the real Strapi in legacy and in session mode, with the refresh token in the body and as
// an HttpOnly cookie (kept in a path-scoped cookie jar, like a browser). Each step records its
// status and the shape of its answer; the proxy's answers must carry every key of Strapi's with
// the same JSON type. Through the proxy the client must never hold a Strapi credential. Then the
// refresh-token reuse grace (two tabs refreshing at once) and accessTokenTTL (short proxy tokens)
// on the same real parts.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/e2e/harness"
)

// The two browsers of the flow, and the device names Strapi's getDeviceName gives them.
const (
	flowUAChrome       = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	flowDeviceChrome   = "Chrome on macOS"
	flowUAFirefox      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
	flowDeviceFirefox  = "Firefox on Windows"
	strapiRefreshName  = "strapi_up_refresh" // Strapi's refresh cookie (users-permissions default)
	proxyRefreshName   = "ap_refresh"        // the proxy's refresh cookie (cookie.refreshName default)
	proxyRefreshPath   = "/api/auth"         // the proxy's refresh cookie path
	refreshCookieAsk   = "X-Strapi-Refresh-Cookie"
	refreshCookieValue = "httpOnly"
)

// ---- shapes ----

// shapeOf is the shape of a decoded JSON value: "string", "number", "boolean", "null", a map of
// member shapes, or a one-element slice holding the merged shape of an array's elements (nil
// element: an empty array).
func shapeOf(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = shapeOf(e)
		}
		return m
	case []any:
		var elem any
		for _, e := range x {
			elem = mergeShapes(elem, shapeOf(e))
		}
		return []any{elem}
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("unknown %T", v)
}

// mergeShapes merges the shapes of two array elements: objects member by member, scalars of
// different types into "a|b" (sorted).
func mergeShapes(a, b any) any {
	if a == nil {
		return b
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		out := make(map[string]any, len(am))
		for k, v := range am {
			out[k] = v
		}
		for k, v := range bm {
			if cur, ok := out[k]; ok {
				out[k] = mergeShapes(cur, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		return []any{mergeShapes(as[0], bs[0])}
	}
	sa, sb := shapeName(a), shapeName(b)
	if sa == sb {
		return a
	}
	set := map[string]bool{}
	for _, s := range append(strings.Split(sa, "|"), strings.Split(sb, "|")...) {
		set[s] = true
	}
	var parts []string
	for s := range set {
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, "|")
}

func shapeName(s any) string {
	switch x := s.(type) {
	case string:
		return x
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "?"
}

// stringOrNull are the members whose type may be a string on one side and null on the other:
// Strapi's session entries carry `deviceId: null` for a login without one (its register, a client
// that sends none), the proxy's the same; which logins carry one is the flow's business, not the
// shape's. Paths are written with [] for "any element".
var stringOrNull = map[string]bool{"data[].deviceId": true}

// shapeGaps lists where got (the proxy's shape) lacks a member of want (Strapi's) or has it with
// another type. Extra members in got are allowed (the proxy adds `host`… to session entries and
// `revoked` to logout answers).
func shapeGaps(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: Strapi has an object, the proxy %s", orRoot(path), shapeName(got))}
		}
		var out []string
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s: missing in the proxy's answer (Strapi: %s)", p, shapeName(w[k])))
				continue
			}
			out = append(out, shapeGaps(p, w[k], gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: Strapi has an array, the proxy %s", orRoot(path), shapeName(got))}
		}
		switch {
		case w[0] == nil && g[0] == nil:
			return nil
		case w[0] == nil || g[0] == nil:
			return []string{fmt.Sprintf("%s: one side's array is empty (Strapi %v, proxy %v)", orRoot(path), w[0] != nil, g[0] != nil)}
		}
		return shapeGaps(path+"[]", w[0], g[0])
	}
	ws, gs := shapeName(want), shapeName(got)
	if stringOrNull[path] {
		ws, gs = widenStringOrNull(ws), widenStringOrNull(gs)
	}
	if ws != gs {
		return []string{fmt.Sprintf("%s: Strapi has %s, the proxy %s", orRoot(path), ws, gs)}
	}
	return nil
}

func widenStringOrNull(s string) string {
	if s == "string" || s == "null" || s == "null|string" {
		return "string-or-null"
	}
	return s
}

func orRoot(p string) string {
	if p == "" {
		return "(body)"
	}
	return p
}

// ---- the scripted client ----

// flowReach says how the flow reaches the server.
type flowReach struct {
	name           string
	base           string // the address requests go to (Traefik's or Strapi's)
	host           string // the Host header ("" straight to Strapi)
	cookie         bool   // refresh delivery: the HttpOnly cookie form (else the body form)
	requestRefresh bool   // legacy Strapi behind the proxy: the login asks for a refresh token
	refreshCookie  string // the refresh cookie the client should get: Strapi's or the proxy's
	// direct: straight to Strapi, whose access JWTs are stateless: one of a logged-out session
	// still works until its exp (3 s here). The flow then waits that out before the "refused"
	// step, so that the steps compare; through the proxy the refusal is checked at once.
	direct bool
	// check runs on every response (through the proxy: no Strapi credential in it).
	check func(t *testing.T, r *harness.Response, what string)
	// identifier and password of a user of this run only, with no session yet.
	identifier, password, username string
}

// flowStep is what one step of the flow saw.
type flowStep struct {
	Name    string
	Status  int
	Shape   any
	ErrName string // error.name of an error answer
	Cookie  bool   // the client's jar holds a refresh cookie for the auth routes after the step
	Refresh bool   // the step posted to the refresh route
	Body    string // the answer, for messages (an error answer only: it holds no credential)
}

func (s flowStep) String() string {
	raw, _ := json.Marshal(s.Shape)
	return fmt.Sprintf("%d %s cookie=%v shape %s body %s", s.Status, s.ErrName, s.Cookie, raw, s.Body)
}

// flowDevice is one browser: its own cookie jar, its own User-Agent.
type flowDevice struct {
	c    *harness.Client
	jar  *cookiejar.Jar
	ua   string
	host string
}

func newFlowDevice(t *testing.T, base, host, ua string) *flowDevice {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &flowDevice{jar: jar, ua: ua, host: host, c: &harness.Client{Base: base, HTTP: &http.Client{
		Timeout:       15 * time.Second,
		Jar:           jar,
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}}
}

// authCookies are the cookies the jar would send to the refresh route. net/http keeps a
// response's cookies under the request's Host header when one is set (Go ≥ 1.23), else under
// the URL's host: both are asked.
func (d *flowDevice) authCookies() []*http.Cookie {
	var out []*http.Cookie
	for _, base := range []string{"http://" + d.host, d.c.Base} {
		if base == "http://" {
			continue
		}
		u, _ := url.Parse(base + "/api/auth/refresh")
		if out = d.jar.Cookies(u); len(out) > 0 {
			return out
		}
	}
	return out
}

func (d *flowDevice) refreshCookie(name string) string {
	for _, c := range d.authCookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

type flowRun struct {
	t     *testing.T
	rc    flowReach
	steps []flowStep
}

// send makes one request of the flow from device d, records it as step name and checks its status.
func (f *flowRun) send(d *flowDevice, name string, want int, method, path, token string, body any, auth bool, extra ...string) *harness.Response {
	f.t.Helper()
	headers := append([]string{"User-Agent", d.ua}, extra...)
	if auth && f.rc.cookie {
		headers = append(headers, refreshCookieAsk, refreshCookieValue)
	}
	r := do(f.t, d.c, method, f.rc.host, path, token, body, headers...)
	f.rc.check(f.t, r, f.rc.name+": "+name)
	st := flowStep{Name: name, Status: r.Status, Cookie: d.refreshCookie(f.rc.refreshCookie) != "", Refresh: path == "/api/auth/refresh"}
	if r.Status >= 400 {
		st.Body = strings.TrimSpace(string(r.Body))
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		f.t.Fatalf("%s: %s %s answered a body that is not JSON: %s", f.rc.name, method, path, r)
	}
	st.Shape = shapeOf(v)
	if m, ok := v.(map[string]any); ok {
		if e, ok := m["error"].(map[string]any); ok {
			st.ErrName, _ = e["name"].(string)
		}
	}
	f.steps = append(f.steps, st)
	if r.Status != want {
		f.t.Fatalf("%s: step %q: %s %s answered %s %q, want status %d", f.rc.name, name, method, path, r, r.Header.Values("Set-Cookie"), want)
	}
	return r
}

// credential returns the refresh credential a login/refresh answer left with the client (body or
// jar) and checks it is where the delivery form puts it.
func (f *flowRun) credential(d *flowDevice, r *harness.Response, what string) string {
	f.t.Helper()
	inBody, _ := r.JSON()["refreshToken"].(string)
	inJar := d.refreshCookie(f.rc.refreshCookie)
	if f.rc.cookie {
		if inBody != "" || inJar == "" {
			f.t.Fatalf("%s: %s in the cookie form: refreshToken in the body %q, %s cookie %q (want only the cookie); Set-Cookie %q",
				f.rc.name, what, inBody, f.rc.refreshCookie, inJar, r.Header.Values("Set-Cookie"))
		}
		return inJar
	}
	if inBody == "" || inJar != "" {
		f.t.Fatalf("%s: %s in the body form: refreshToken in the body %q, %s cookie %q (want only the body)", f.rc.name, what, inBody, f.rc.refreshCookie, inJar)
	}
	return inBody
}

// refreshBody is what a client posts to the refresh route: its token in the body form, nothing
// (the cookie goes by itself) in the cookie form.
func (f *flowRun) refreshBody(token string) any {
	if f.rc.cookie {
		return map[string]any{}
	}
	return map[string]string{"refreshToken": token}
}

type flowSession struct {
	ID           string  `json:"id"`
	DeviceID     *string `json:"deviceId"`
	DeviceName   *string `json:"deviceName"`
	Current      bool    `json:"current"`
	LoginAt      string  `json:"loginAt"`
	LastActiveAt string  `json:"lastActiveAt"`
}

func (f *flowRun) sessions(r *harness.Response, want ...[2]string) []flowSession {
	f.t.Helper()
	var out struct {
		Data []flowSession `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		f.t.Fatalf("%s: session list: %v: %s", f.rc.name, err, r)
	}
	if len(out.Data) != len(want) {
		f.t.Fatalf("%s: session list has %d entries, want %d: %s", f.rc.name, len(out.Data), len(want), r)
	}
	for i, w := range want {
		s := out.Data[i]
		if s.ID == "" || s.DeviceID == nil || *s.DeviceID != w[0] || s.DeviceName == nil || *s.DeviceName != w[1] || s.Current != (i == 0) {
			f.t.Fatalf("%s: session list entry %d = %+v (deviceId %v, deviceName %v), want deviceId %q, deviceName %q, current %v: %s",
				f.rc.name, i, s, deref(s.DeviceID), deref(s.DeviceName), w[0], w[1], i == 0, r)
		}
		for _, ts := range []string{s.LoginAt, s.LastActiveAt} {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				f.t.Fatalf("%s: session list entry %d: a time %q that is not ISO 8601: %s", f.rc.name, i, ts, r)
			}
		}
	}
	return out.Data
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return strconv.Quote(*p)
}

// runClientFlow is the Strapi 5 client: log in with a deviceId, call the API, refresh, list the
// sessions, log in a second device and revoke it, log out everywhere, and find the refreshed
// credentials refused. It returns what each step saw.
func runClientFlow(t *testing.T, rc flowReach) []flowStep {
	f := &flowRun{t: t, rc: rc}
	devA, devB := "dev-a-"+harness.RandomString(8), "dev-b-"+harness.RandomString(8)
	a := newFlowDevice(t, rc.base, rc.host, flowUAChrome)
	login := func(d *flowDevice, name, deviceID string) (string, string) {
		t.Helper()
		body := map[string]any{"identifier": rc.identifier, "password": rc.password, "deviceId": deviceID}
		if rc.requestRefresh {
			body["requestRefresh"] = true
		}
		r := f.send(d, name, 200, "POST", "/api/auth/local", "", body, true)
		jwt, _ := r.JSON()["jwt"].(string)
		if user, _ := r.JSON()["user"].(map[string]any); jwt == "" || user["username"] != rc.username {
			t.Fatalf("%s: %s answered %s", rc.name, name, r)
		}
		return jwt, f.credential(d, r, name)
	}
	me := func(d *flowDevice, name, jwt string, want int) {
		t.Helper()
		r := f.send(d, name, want, "GET", "/api/users/me", jwt, nil, false)
		if want == 200 && r.JSON()["username"] != rc.username {
			t.Fatalf("%s: %s answered %s", rc.name, name, r)
		}
	}

	// Log in (device A, Chrome) and call the API.
	jwt1, rt1 := login(a, "login", devA)
	me(a, "me", jwt1, 200)

	// Refresh at Strapi 5's path: a new access token and a new refresh token.
	r := f.send(a, "refresh", 200, "POST", "/api/auth/refresh", "", f.refreshBody(rt1), true)
	jwt2, _ := r.JSON()["jwt"].(string)
	rt2 := f.credential(a, r, "refresh")
	if jwt2 == "" || jwt2 == jwt1 || rt2 == rt1 {
		t.Fatalf("%s: the refresh answered the same or no credentials: %s", rc.name, r)
	}
	me(a, "me with the refreshed token", jwt2, 200)

	// The session list: this device only, current, with its deviceId and device name.
	r = f.send(a, "sessions", 200, "GET", "/api/auth/sessions", jwt2, nil, false)
	f.sessions(r, [2]string{devA, flowDeviceChrome})

	// A second device (Firefox) logs in; the list shows both, the caller's first; the first
	// device revokes the second by id.
	b := newFlowDevice(t, rc.base, rc.host, flowUAFirefox)
	jwtB, rtB := login(b, "login device B", devB)
	me(b, "me on device B", jwtB, 200)
	r = f.send(a, "sessions with two devices", 200, "GET", "/api/auth/sessions", jwt2, nil, false)
	list := f.sessions(r, [2]string{devA, flowDeviceChrome}, [2]string{devB, flowDeviceFirefox})
	idB := list[1].ID
	r = f.send(a, "delete device B", 200, "DELETE", "/api/auth/sessions/"+url.PathEscape(idB), jwt2, nil, false)
	if string(r.Body) != `{"data":{}}` {
		t.Fatalf("%s: revoking a session answered %s, want {\"data\":{}}", rc.name, r)
	}
	f.send(a, "delete device B again", 404, "DELETE", "/api/auth/sessions/"+url.PathEscape(idB), jwt2, nil, false)
	f.send(b, "refresh on device B after its revocation", 401, "POST", "/api/auth/refresh", "", f.refreshBody(rtB), true)
	if !rc.direct {
		// The proxy refuses the revoked session's token at once (Strapi's stays good until exp).
		expectError(t, do(t, b.c, "GET", rc.host, "/api/users/me", jwtB, nil), 401, "UnauthorizedError", rc.name+": device B's token after its revocation")
	}
	r = f.send(a, "sessions after the revocation", 200, "GET", "/api/auth/sessions", jwt2, nil, false)
	f.sessions(r, [2]string{devA, flowDeviceChrome})

	// Log out everywhere. What the jar held before is kept (a stale tab, a copied cookie).
	stale := a.authCookies()
	r = f.send(a, "logout all", 200, "POST", "/api/auth/logout", jwt2, map[string]string{"scope": "all"}, true)
	if r.JSON()["ok"] != true {
		t.Fatalf("%s: logout answered %s", rc.name, r)
	}
	if rev, ok := r.JSON()["revoked"]; ok && !rc.direct && rev != float64(1) {
		t.Fatalf("%s: logout {scope: all} answered revoked %v, want the 1 session left", rc.name, rev)
	}

	// The refreshed credentials are refused: the refresh token (as the body form sends it, or as
	// the stale cookie), then the access token.
	if rc.cookie {
		f.send(a, "refresh with the jar after logout", 400, "POST", "/api/auth/refresh", "", f.refreshBody(""), true)
		var parts []string
		for _, c := range stale {
			parts = append(parts, c.Name+"="+c.Value)
		}
		if len(parts) == 0 {
			t.Fatalf("%s: the jar held no cookie for the auth routes before logout", rc.name)
		}
		bare := newFlowDevice(t, rc.base, rc.host, flowUAChrome) // an empty jar: the stale cookie goes by hand
		f.send(bare, "refresh with the stale refresh cookie", 401, "POST", "/api/auth/refresh", "", map[string]any{}, true, "Cookie", strings.Join(parts, "; "))
	} else {
		f.send(a, "refresh with the refreshed token after logout", 401, "POST", "/api/auth/refresh", "", f.refreshBody(rt2), true)
	}
	if rc.direct {
		waitPastExp(t, jwt2)
	}
	me(a, "me with the refreshed token after logout", jwt2, 401)
	return f.steps
}

// waitPastExp sleeps until a JWT's exp has passed (at most 5 s: the session-mode Strapis' access
// JWTs live 3 s).
func waitPastExp(t *testing.T, jwt string) {
	t.Helper()
	_, c, err := harness.DecodeJWT(jwt)
	if err != nil {
		t.Fatalf("access token %q: %v", jwt, err)
	}
	exp, _ := strconv.ParseInt(claim(c, "exp"), 10, 64)
	d := time.Until(time.Unix(exp+1, 0))
	if d > 5*time.Second {
		t.Fatalf("the access token expires in %v, want at most Strapi's %d s", d, sessionAccessLifespan)
	}
	time.Sleep(d)
}

// compareFlows checks a proxy run against Strapi's: the same steps with the same status codes,
// error names and refresh cookie held, and every member of Strapi's answers in the proxy's with
// the same type.
func compareFlows(t *testing.T, strapi, proxy []flowStep) {
	t.Helper()
	if len(strapi) != len(proxy) {
		t.Fatalf("Strapi's flow has %d steps, the proxy's %d", len(strapi), len(proxy))
	}
	for i := range strapi {
		w, g := strapi[i], proxy[i]
		if w.Name != g.Name {
			t.Fatalf("step %d: %q vs %q", i, w.Name, g.Name)
		}
		var gaps []string
		if w.Status != g.Status {
			gaps = append(gaps, fmt.Sprintf("status: Strapi %d, the proxy %d", w.Status, g.Status))
		}
		if w.ErrName != g.ErrName {
			gaps = append(gaps, fmt.Sprintf("error.name: Strapi %q, the proxy %q", w.ErrName, g.ErrName))
		}
		// Allowed: the proxy clears its refresh cookie when it refuses the token in it (Set-Cookie
		// ap_refresh with Max-Age=0 on the 401); Strapi leaves its dead cookie in the browser. A
		// client that retries then gets 400 "Missing refresh token" instead of a second 401.
		clearedDead := w.Refresh && w.Status == 401 && g.Status == 401 && w.Cookie && !g.Cookie
		if w.Cookie != g.Cookie && !clearedDead {
			gaps = append(gaps, fmt.Sprintf("refresh cookie held afterwards: Strapi %v, the proxy %v", w.Cookie, g.Cookie))
		}
		gaps = append(gaps, shapeGaps("", w.Shape, g.Shape)...)
		if len(gaps) > 0 {
			t.Errorf("step %d %q differs from Strapi:\n  %s\n  Strapi: %s\n  proxy:  %s", i+1, w.Name, strings.Join(gaps, "\n  "), w, g)
		}
	}
}

// ---- the stack: one Traefik, one store, a spy before each of the three Strapis ----

type clientFlowStack struct {
	traefik *harness.Traefik
	c       *harness.Client
	strapis []*harness.Strapi
	spies   []*strapiSpy
}

// proxyRouterConfig: audienceCheck off (users registered for one run get Strapi's
// DEFAULT_AUDIENCE a.localhost, and each router has a host of its own), cookies without Secure
// (plain HTTP on 127.0.0.1, where Go's cookie jar, unlike a browser on localhost, drops Secure
// cookies; Strapi's refresh cookie is configured the same way), cacheTTL 0s.
func proxyRouterConfig(store *harness.Store, secret string, extra map[string]any) map[string]any {
	cfg := map[string]any{"cacheTTL": "0s", "audienceCheck": false, "cookie": map[string]any{"secure": false}}
	for k, v := range extra {
		cfg[k] = v
	}
	return harness.PluginConfig(store, secret, cfg)
}

// clean fails if a response through the proxy carries a Strapi credential: a JWT signed by one of
// the Strapis, a refresh token a spy saw Strapi hand out, Strapi's refresh cookie (by name), a
// body `jwt` that is not a proxy token or a `refreshToken` that is not the proxy's, or a cookie
// other than the proxy's.
func (s *clientFlowStack) clean(t *testing.T, r *harness.Response, what string) {
	t.Helper()
	all := r.Everything()
	for _, j := range harness.FindJWTs(all) {
		for _, st := range s.strapis {
			if harness.VerifyHS256(j, []byte(st.JWTSecret)) {
				t.Fatalf("%s: a Strapi-signed JWT reached the client: %s", what, j)
			}
		}
	}
	if strings.Contains(strings.ToLower(all), strapiRefreshName) {
		t.Fatalf("%s: Strapi's refresh cookie name reached the client: %s", what, all)
	}
	for _, spy := range s.spies {
		_, _, _, refreshes := spy.snapshot()
		for _, rt := range refreshes {
			if strings.Contains(all, rt) {
				t.Fatalf("%s: a Strapi refresh token reached the client", what)
			}
		}
	}
	if m := r.JSON(); m != nil {
		if j, ok := m["jwt"]; ok {
			js, _ := j.(string)
			checkProxyToken(t, js)
		}
		if rt, ok := m["refreshToken"]; ok {
			if rs, _ := rt.(string); !strings.HasPrefix(rs, "apr_") {
				t.Fatalf("%s: refreshToken %v is not the proxy's", what, rt)
			}
		}
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name != proxyRefreshName {
			t.Fatalf("%s: a cookie %q that is not the proxy's refresh cookie: %q", what, c.Name, r.Header.Values("Set-Cookie"))
		}
		if (c.Value != "" && !strings.HasPrefix(c.Value, "apr_")) || !c.HttpOnly || c.Path != proxyRefreshPath {
			t.Fatalf("%s: the proxy's refresh cookie is not an HttpOnly apr_ token on %s: %q", what, proxyRefreshPath, r.Header.Values("Set-Cookie"))
		}
	}
}

// registerFresh registers a user of one run straight at st and, in session mode, ends the Strapi
// session the registration opened, so that the flow starts with no session anywhere.
func registerFresh(t *testing.T, st *harness.Strapi, prefix string) (name, email, password string) {
	t.Helper()
	direct := harness.NewClient(st.URL)
	name = fmt.Sprintf("%s%d%s", prefix, time.Now().UnixNano()%1e9, strings.ToLower(harness.RandomString(4)))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return 'x'
	}, name)
	email, password = name+"@example.com", "Cf-passw0rd-"+name
	r := do(t, direct, "POST", "", "/api/auth/local/register", "", map[string]string{"username": name, "email": email, "password": password})
	expectStatus(t, r, 200, "register straight at Strapi")
	if rt, _ := r.JSON()["refreshToken"].(string); rt != "" {
		jwt, _ := r.JSON()["jwt"].(string)
		expectStatus(t, do(t, direct, "POST", "", "/api/auth/logout", jwt, map[string]string{"refreshToken": rt}), 200, "ending the registration's Strapi session")
	}
	return name, email, password
}

// TestStrapiClientFlowParity: one Strapi 5 client flow (login with a deviceId from Chrome, a
// protected call, refresh at /api/auth/refresh, the session list, a second device logged in and
// revoked by id, logout {scope: all}, the refreshed credentials refused) run straight at the real
// Strapi in session mode and through the proxy in front of the real Strapi in legacy and in
// session mode, in the body form and the HttpOnly-cookie form. Every proxy run has Strapi's
// status codes, error names, cookie behaviour and answer shapes, and never hands the client a
// Strapi credential.
func TestStrapiClientFlowParity(t *testing.T) {
	go startCookieSessionStrapi()
	t.Parallel()
	legacy, session, cookie := needStrapi(t), needSessionStrapi(t), needCookieSessionStrapi(t)
	env := harness.ForTest(t)
	s := &clientFlowStack{strapis: []*harness.Strapi{legacy, session, cookie}}
	for _, st := range s.strapis {
		s.spies = append(s.spies, startStrapiSpy(t, env, st))
	}
	// One store per Strapi: each Strapi numbers its users from 1, and a store keys sessions by
	// user id, so two Strapis behind one store would list each other's sessions (one store serves
	// one Strapi's users, as in a deployment).
	var stores []*harness.Store
	for range s.strapis {
		store, err := harness.StartStore(env)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, store)
	}
	secret := harness.NewSecret()
	var err error
	s.traefik, err = harness.StartTraefik(env, harness.TraefikOptions{Name: "traefik-clientflow", AccessLog: true, Routers: []harness.Router{
		{Host: "cf-legacy.localhost", Upstream: s.spies[0].URL, Plugin: proxyRouterConfig(stores[0], secret, nil)},
		{Host: "cf-session.localhost", Upstream: s.spies[1].URL, Plugin: proxyRouterConfig(stores[1], secret, nil)},
		{Host: "cf-cookie.localhost", Upstream: s.spies[2].URL, Plugin: proxyRouterConfig(stores[2], secret, nil)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkLogAtEnd(t, s.traefik)
	noCheck := func(*testing.T, *harness.Response, string) {}

	// Strapi's own answers: session mode, body form (the body Strapi) and cookie form (the Strapi
	// with sessions.httpOnly; the flow sends the header too).
	var strapiBody, strapiCookie []flowStep
	t.Run("strapi", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			st     *harness.Strapi
			cookie bool
			out    *[]flowStep
		}{{"body", session, false, &strapiBody}, {"cookie", cookie, true, &strapiCookie}} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				name, email, password := registerFresh(t, c.st, "cfd")
				*c.out = runClientFlow(t, flowReach{name: "Strapi " + c.name, base: c.st.URL, cookie: c.cookie, direct: true,
					refreshCookie: strapiRefreshName, check: noCheck, identifier: email, password: password, username: name})
			})
		}
	})
	if strapiBody == nil || strapiCookie == nil {
		t.Fatal("Strapi's own flow did not complete: nothing to compare the proxy with")
	}

	for _, c := range []struct {
		name           string
		host           string
		st             *harness.Strapi
		spy            *strapiSpy
		cookie         bool
		requestRefresh bool
	}{
		{"legacy/body", "cf-legacy.localhost", legacy, s.spies[0], false, true},
		{"legacy/cookie", "cf-legacy.localhost", legacy, s.spies[0], true, true},
		{"session/body", "cf-session.localhost", session, s.spies[1], false, false},
		{"session/cookie", "cf-cookie.localhost", cookie, s.spies[2], true, false},
		// Strapi in the body form, the client asking for the cookie form by header (Strapi, told
		// so, answers with its cookie; the client gets the proxy's).
		{"session/cookie-by-header", "cf-session.localhost", session, s.spies[1], true, false},
	} {
		t.Run("proxy/"+c.name, func(t *testing.T) {
			t.Parallel()
			name, email, password := registerFresh(t, c.st, "cfp")
			_, _, _, before := c.spy.snapshot()
			steps := runClientFlow(t, flowReach{name: "proxy " + c.name, base: s.traefik.URL(), host: c.host, cookie: c.cookie,
				requestRefresh: c.requestRefresh, refreshCookie: proxyRefreshName, check: s.clean,
				identifier: email, password: password, username: name})
			if !c.requestRefresh {
				// In session mode Strapi did hand out refresh credentials (two logins at least):
				// the checks above had something to find.
				if _, _, _, after := c.spy.snapshot(); len(after)-len(before) < 2 {
					t.Fatalf("the spy saw %d new Strapi refresh tokens during the flow, want ≥ 2", len(after)-len(before))
				}
			}
			ref := strapiBody
			if c.cookie {
				ref = strapiCookie
			}
			compareFlows(t, ref, steps)
		})
	}
}

// ---- grace and accessTokenTTL, on a stack of their own in front of the legacy Strapi ----

var lifetimeStack lazyStack

func getLifetimeStack(t *testing.T) *strapiStack {
	t.Helper()
	return lifetimeStack.get(t, "the grace and accessTokenTTL tests", func(store *harness.Store, up, secret string) []harness.Router {
		return []harness.Router{
			{Host: "grace.localhost", Upstream: up, Plugin: proxyRouterConfig(store, secret, map[string]any{"refreshReuseGrace": "3s"})},
			{Host: "ttl.localhost", Upstream: up, Plugin: proxyRouterConfig(store, secret, map[string]any{"accessTokenTTL": "3s"})},
		}
	})
}

// TestRefreshGraceParallel (refreshReuseGrace 3s, cacheTTL 0s, the real Strapi): two tabs refresh
// one token at the same moment: both get a new pair, both new tokens work, nothing is revoked (a
// second login of the user works throughout). Presented again after the grace, the spent token
// is a reuse: 401, and its whole family is revoked (both new tokens and refresh tokens refused),
// the other login still fine. Traefik's log has the refresh_grace and refresh_reuse audit lines.
func TestRefreshGraceParallel(t *testing.T) {
	t.Parallel()
	s := getLifetimeStack(t)
	const host = "grace.localhost"
	name, email, password := registerFresh(t, s.strapi, "grace")
	meOK := func(token, what string) {
		t.Helper()
		r := do(t, s.c, "GET", host, "/api/users/me", token, nil)
		expectStatus(t, r, 200, what)
		if r.JSON()["username"] != name {
			t.Fatalf("%s: %s", what, r)
		}
		s.noStrapiJWT(t, r, "", what)
	}
	refused := func(token, what string) {
		t.Helper()
		expectError(t, do(t, s.c, "GET", host, "/api/users/me", token, nil), 401, "UnauthorizedError", what)
	}
	p1, _ := loginWithRefresh(t, s.c, host, email, password)
	other, _ := loginWithRefresh(t, s.c, host, email, password)
	meOK(p1.JWT, "the login's token")

	// Two refreshes of p1's refresh token at once.
	var start, done sync.WaitGroup
	res := make([]*harness.Response, 2)
	errs := make([]error, 2)
	start.Add(1)
	for i := range res {
		done.Add(1)
		go func(i int) {
			defer done.Done()
			start.Wait()
			res[i], errs[i] = s.c.Do("POST", host, "/api/auth/refresh", "", map[string]string{"refreshToken": p1.RefreshToken})
		}(i)
	}
	spentAt := time.Now()
	start.Done()
	done.Wait()
	var pairs []refreshPair
	for i, r := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		expectStatus(t, r, 200, fmt.Sprintf("parallel refresh %d of 2 within the grace", i+1))
		s.noStrapiJWT(t, r, "", "parallel refresh")
		var p refreshPair
		if err := json.Unmarshal(r.Body, &p); err != nil || !strings.HasPrefix(p.RefreshToken, "apr_") {
			t.Fatalf("parallel refresh %d: %s", i+1, r)
		}
		checkProxyToken(t, p.JWT)
		pairs = append(pairs, p)
	}
	if pairs[0].JWT == pairs[1].JWT || pairs[0].RefreshToken == pairs[1].RefreshToken || pairs[0].RefreshToken == p1.RefreshToken {
		t.Fatalf("the two refreshes answered the same credentials: %+v", pairs)
	}
	for i, p := range pairs {
		meOK(p.JWT, fmt.Sprintf("the new token of parallel refresh %d", i+1))
	}
	meOK(other.JWT, "the other login after the parallel refreshes")
	if el := time.Since(spentAt); el > 2500*time.Millisecond {
		t.Fatalf("the grace checks took %v: too close to the 3 s grace to tell it from its end", el)
	}

	// After the grace the spent token is a reuse: the family ends.
	time.Sleep(time.Until(spentAt.Add(3*time.Second + 700*time.Millisecond)))
	expectError(t, do(t, s.c, "POST", host, "/api/auth/refresh", "", map[string]string{"refreshToken": p1.RefreshToken}), 401, "UnauthorizedError", "the spent refresh token after the grace")
	for i, p := range pairs {
		refused(p.JWT, fmt.Sprintf("the new token of parallel refresh %d after the reuse", i+1))
		expectError(t, do(t, s.c, "POST", host, "/api/auth/refresh", "", map[string]string{"refreshToken": p.RefreshToken}), 401, "UnauthorizedError",
			fmt.Sprintf("the new refresh token of parallel refresh %d after the reuse", i+1))
	}
	refused(p1.JWT, "the login's token after the reuse")
	meOK(other.JWT, "the other login (another family) after the reuse")

	// The audit lines, on this router's host.
	want := map[string]bool{"refresh_grace": false, "refresh_reuse": false}
	deadline := time.Now().Add(5 * time.Second)
	for {
		events, _ := auditEvents(t, s.traefik.LogPath)
		for _, ev := range events {
			if n, _ := ev["event"].(string); ev["host"] == host {
				if _, ok := want[n]; ok {
					want[n] = true
				}
			}
		}
		if (want["refresh_grace"] && want["refresh_reuse"]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for ev, ok := range want {
		if !ok {
			t.Errorf("Traefik's log has no %s audit line for %s", ev, host)
		}
	}
}

// TestAccessTokenTTL (accessTokenTTL 3s, the real Strapi in legacy mode): a plain login (no
// requestRefresh) answers a refresh token with the short token; the token works under constant use
// (a request every 300 ms) for its 3 s and no longer: refused within 4.5 s of the login; a
// refresh with the login's refresh token restores access, with a token as short.
func TestAccessTokenTTL(t *testing.T) {
	t.Parallel()
	s := getLifetimeStack(t)
	const host = "ttl.localhost"
	name, email, password := registerFresh(t, s.strapi, "ttl")
	shortLived := func(token, what string) {
		t.Helper()
		c := checkProxyToken(t, token)
		iat, _ := strconv.ParseInt(claim(c, "iat"), 10, 64)
		exp, _ := strconv.ParseInt(claim(c, "exp"), 10, 64)
		if exp-iat < 3 || exp-iat > 4 {
			t.Fatalf("%s: exp - iat = %d s, want accessTokenTTL 3 s (rounded up to the second)", what, exp-iat)
		}
	}

	loginAt := time.Now()
	r := do(t, s.c, "POST", host, "/api/auth/local", "", map[string]string{"identifier": email, "password": password})
	expectStatus(t, r, 200, "login")
	s.noStrapiJWT(t, r, "", "login")
	var p refreshPair
	if err := json.Unmarshal(r.Body, &p); err != nil || p.JWT == "" || !strings.HasPrefix(p.RefreshToken, "apr_") {
		t.Fatalf("a login with accessTokenTTL, without requestRefresh, answered %s: want a jwt and the proxy's refreshToken", r)
	}
	shortLived(p.JWT, "the login's token")

	uses, refusedAt := 0, time.Duration(0)
	for refusedAt == 0 {
		sent := time.Since(loginAt)
		if sent > 4500*time.Millisecond {
			t.Fatalf("the token still worked %v after the login (%d uses), want it refused within 4.5 s", sent.Round(time.Millisecond), uses)
		}
		r := do(t, s.c, "GET", host, "/api/users/me", p.JWT, nil)
		switch {
		case r.Status == 200 && r.JSON()["username"] == name:
			uses++
		case r.Status == 401:
			expectError(t, r, 401, "UnauthorizedError", "the expired token")
			if sent < 2800*time.Millisecond {
				t.Fatalf("the token was refused %v after the login (after %d uses), want it good for accessTokenTTL 3 s", sent.Round(time.Millisecond), uses)
			}
			refusedAt = sent
			continue
		default:
			t.Fatalf("/api/users/me %v after the login: %s", sent.Round(time.Millisecond), r)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if uses < 8 {
		t.Fatalf("only %d uses before the token was refused at %v, want constant use (≥ 8)", uses, refusedAt)
	}
	t.Logf("%d uses, refused %v after the login", uses, refusedAt.Round(time.Millisecond))

	r = do(t, s.c, "POST", host, "/api/auth/refresh", "", map[string]string{"refreshToken": p.RefreshToken})
	expectStatus(t, r, 200, "refresh after the token expired")
	s.noStrapiJWT(t, r, "", "refresh")
	var next refreshPair
	if err := json.Unmarshal(r.Body, &next); err != nil || !strings.HasPrefix(next.RefreshToken, "apr_") {
		t.Fatalf("refresh answered %s", r)
	}
	shortLived(next.JWT, "the refreshed token")
	r = do(t, s.c, "GET", host, "/api/users/me", next.JWT, nil)
	expectStatus(t, r, 200, "the refreshed token")
	if r.JSON()["username"] != name {
		t.Fatalf("the refreshed token: %s", r)
	}
	expectError(t, do(t, s.c, "GET", host, "/api/users/me", p.JWT, nil), 401, "UnauthorizedError", "the expired token after the refresh")
}
