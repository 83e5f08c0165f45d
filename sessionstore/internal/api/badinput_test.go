package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.jwt", "rt-1", 60_000, true, time.Hour))
	var c counterBody
	e.must("POST", "/v1/counters/k/incr", map[string]any{"windowMs": 60_000, "by": 1}, 200, &c)

	future := nowMs() + 3_600_000
	valid := `{"userId":"12","host":"a.localhost","audience":["a.localhost"],"strapiJwt":"eyJ.x","idleTimeoutMs":1000,"sliding":true,"absoluteExpiresAt":%d}`
	create := func(fields string) string { // valid request with fields replaced/added
		return strings.Replace(fmt.Sprintf(valid, future), `"userId":"12"`, fields, 1)
	}
	hash := strings.Repeat("a", 64)
	sid := "/v1/sessions/" + s.ID
	huge := `{"userId":"12","host":"a.localhost","strapiJwt":"` + strings.Repeat("x", 70<<10) + `"}`
	touch := `{"host":"a.localhost","idleTimeoutMs":1000,"sliding":true}`
	rotate := func(q string) string {
		return `{"tokenHash":"` + hashOf("rt-1") + `","newTokenHash":"` + hash + `","host":"a.localhost","idleTimeoutMs":1000,"sliding":true,"maxLifetimeMs":1000` + q + `}`
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed", "POST", "/v1/sessions", `{"userId":`, 400, "bad_request"},
		{"not json", "POST", "/v1/sessions", `hello`, 400, "bad_request"},
		{"empty body", "POST", "/v1/sessions", ``, 400, "bad_request"},
		{"array", "POST", "/v1/sessions", `[]`, 400, "bad_request"},
		{"unknown field", "POST", "/v1/sessions", create(`"userId":"12","admin":true`), 400, "bad_request"},
		{"wrong type", "POST", "/v1/sessions", create(`"userId":12`), 400, "bad_request"},
		{"float duration", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), `"idleTimeoutMs":1000`, `"idleTimeoutMs":1.5`, 1), 400, "bad_request"},
		{"trailing garbage", "POST", "/v1/sessions", create(`"userId":"12"`) + `x`, 400, "bad_request"},
		{"two objects", "POST", "/v1/sessions", create(`"userId":"12"`) + `{}`, 400, "bad_request"},
		{"too large", "POST", "/v1/sessions", huge, 413, "too_large"},
		{"missing jwt", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), `"strapiJwt":"eyJ.x",`, ``, 1), 400, "bad_request"},
		{"bad user", "POST", "/v1/sessions", create(`"userId":"a b"`), 400, "bad_request"},
		{"empty user", "POST", "/v1/sessions", create(`"userId":""`), 400, "bad_request"},
		{"long user", "POST", "/v1/sessions", create(`"userId":"` + strings.Repeat("u", 129) + `"`), 400, "bad_request"},
		{"upper-case host", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), `"host":"a.localhost"`, `"host":"A.localhost"`, 1), 400, "bad_request"},
		{"audience too long", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), `"audience":["a.localhost"]`, `"audience":[`+strings.Repeat(`"a",`, 64)+`"a"]`, 1), 400, "bad_request"},
		{"zero idle", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), `"idleTimeoutMs":1000`, `"idleTimeoutMs":0`, 1), 400, "bad_request"},
		{"past cap", "POST", "/v1/sessions", strings.Replace(create(`"userId":"12"`), fmt.Sprint(future), "1000", 1), 400, "bad_request"},
		{"bad refresh hash", "POST", "/v1/sessions", create(`"userId":"12","refresh":{"tokenHash":"ABC","expiresAt":` + fmt.Sprint(future) + `}`), 400, "bad_request"},
		{"device id too long", "POST", "/v1/sessions", create(`"userId":"12","deviceId":"` + strings.Repeat("d", 256) + `"`), 400, "bad_request"},
		{"device name too long", "POST", "/v1/sessions", create(`"userId":"12","deviceName":"` + strings.Repeat("é", 128) + `"`), 400, "bad_request"},
		{"device id control char", "POST", "/v1/sessions", create(`"userId":"12","deviceId":"a\u0001b"`), 400, "bad_request"},
		{"device id newline", "POST", "/v1/sessions", create(`"userId":"12","deviceId":"a\nb"`), 400, "bad_request"},
		{"device name DEL", "POST", "/v1/sessions", create(`"userId":"12","deviceName":"a\u007fb"`), 400, "bad_request"},
		{"device name tab", "POST", "/v1/sessions", create(`"userId":"12","deviceName":"a\tb"`), 400, "bad_request"},
		{"device id invalid utf-8", "POST", "/v1/sessions", create("\"userId\":\"12\",\"deviceId\":\"a\xffb\""), 400, "bad_request"},
		{"device name invalid utf-8", "POST", "/v1/sessions", create("\"userId\":\"12\",\"deviceName\":\"\xc3\""), 400, "bad_request"},
		{"device id number", "POST", "/v1/sessions", create(`"userId":"12","deviceId":12`), 400, "bad_request"},
		{"device name array", "POST", "/v1/sessions", create(`"userId":"12","deviceName":["x"]`), 400, "bad_request"},
		{"duplicate token hash", "POST", "/v1/sessions", create(`"userId":"12","refresh":{"tokenHash":"` + hashOf("rt-1") + `","expiresAt":` + fmt.Sprint(future) + `}`), 409, "conflict"},
		{"short id", "GET", "/v1/sessions/abc", ``, 404, "not_found"},
		{"id bad char", "GET", "/v1/sessions/" + strings.Repeat("!", 43), ``, 404, "not_found"},
		{"unknown id", "GET", "/v1/sessions/" + strings.Repeat("A", 43), ``, 404, "not_found"},
		{"touch short id", "POST", "/v1/sessions/abc/touch", touch, 404, "not_found"},
		{"touch unknown field", "POST", sid + "/touch", `{"host":"a.localhost","idleTimeoutMs":1000,"sliding":true,"x":1}`, 400, "bad_request"},
		{"touch bad host", "POST", sid + "/touch", `{"host":"a.localhost:8080","idleTimeoutMs":1000,"sliding":true}`, 400, "bad_request"},
		{"touch bad ipv6", "POST", sid + "/touch", `{"host":"::g","idleTimeoutMs":1000,"sliding":true}`, 400, "bad_request"},
		{"touch host with path", "POST", sid + "/touch", `{"host":"a/b","idleTimeoutMs":1000,"sliding":true}`, 400, "bad_request"},
		{"touch zero idle", "POST", sid + "/touch", `{"host":"a.localhost","idleTimeoutMs":0,"sliding":true}`, 400, "bad_request"},
		{"touch wrong type", "POST", sid + "/touch", `{"host":"a.localhost","idleTimeoutMs":1000,"sliding":"yes"}`, 400, "bad_request"},
		{"touch garbage", "POST", sid + "/touch", touch + `]`, 400, "bad_request"},
		{"upstream no jwt", "PUT", sid + "/upstream", `{"strapiJwt":"","expectVersion":1}`, 400, "bad_request"},
		{"upstream version 0", "PUT", sid + "/upstream", `{"strapiJwt":"x","expectVersion":0}`, 400, "bad_request"},
		{"upstream past cap", "PUT", sid + "/upstream", `{"strapiJwt":"x","expectVersion":1,"absoluteExpiresAt":5}`, 400, "bad_request"},
		{"user no audience", "PUT", sid + "/user", `{}`, 400, "bad_request"},
		{"user null audience", "PUT", sid + "/user", `{"audience":null}`, 400, "bad_request"},
		{"user audience string", "PUT", sid + "/user", `{"audience":"a.localhost"}`, 400, "bad_request"},
		{"user audience entry", "PUT", sid + "/user", `{"audience":["a b"]}`, 400, "bad_request"},
		{"user audience empty entry", "PUT", sid + "/user", `{"audience":[""]}`, 400, "bad_request"},
		{"user audience too long", "PUT", sid + "/user", `{"audience":[` + strings.Repeat(`"a",`, 64) + `"a"]}`, 400, "bad_request"},
		{"user unknown field", "PUT", sid + "/user", `{"audience":[],"userId":"13"}`, 400, "bad_request"},
		{"user garbage", "PUT", sid + "/user", `{"audience":[]}x`, 400, "bad_request"},
		{"user empty body", "PUT", sid + "/user", ``, 400, "bad_request"},
		{"user too large", "PUT", sid + "/user", `{"audience":["` + strings.Repeat("x", 70<<10) + `"]}`, 413, "too_large"},
		{"user short id", "PUT", "/v1/sessions/abc/user", `{"audience":[]}`, 404, "not_found"},
		{"user wrong method", "POST", sid + "/user", `{"audience":[]}`, 404, "not_found"},
		{"delete bad family", "DELETE", sid + "?family=yes", ``, 400, "bad_request"},
		{"delete bad owner", "DELETE", sid + "?family=1&userId=a%20b", ``, 400, "bad_request"},
		{"delete empty owner", "DELETE", sid + "?family=1&userId=", ``, 400, "bad_request"},
		{"delete repeated owner", "DELETE", sid + "?family=1&userId=12&userId=12", ``, 400, "bad_request"},
		{"delete long owner", "DELETE", sid + "?userId=" + strings.Repeat("u", 129), ``, 400, "bad_request"},
		{"delete other owner", "DELETE", sid + "?family=1&userId=13", ``, 404, "not_found"},
		{"list bad user", "GET", "/v1/users/a%20b/sessions", ``, 400, "bad_request"},
		{"delete-all bad user", "DELETE", "/v1/users/a%20b/sessions", ``, 400, "bad_request"},
		{"delete device empty", "DELETE", "/v1/users/12/sessions?deviceId=", ``, 400, "bad_request"},
		{"delete device repeated", "DELETE", "/v1/users/12/sessions?deviceId=a&deviceId=a", ``, 400, "bad_request"},
		{"delete device control char", "DELETE", "/v1/users/12/sessions?deviceId=a%01", ``, 400, "bad_request"},
		{"delete device invalid utf-8", "DELETE", "/v1/users/12/sessions?deviceId=a%FF", ``, 400, "bad_request"},
		{"delete device too long", "DELETE", "/v1/users/12/sessions?deviceId=" + strings.Repeat("d", 256), ``, 400, "bad_request"},
		{"delete device bad user", "DELETE", "/v1/users/a%20b/sessions?deviceId=d", ``, 400, "bad_request"},
		{"refresh same hashes", "POST", "/v1/refresh", strings.Replace(rotate(""), hash, hashOf("rt-1"), 1), 400, "bad_request"},
		{"refresh upper hex", "POST", "/v1/refresh", strings.Replace(rotate(""), hash, strings.Repeat("A", 64), 1), 400, "bad_request"},
		{"refresh no lifetime", "POST", "/v1/refresh", strings.Replace(rotate(""), `"maxLifetimeMs":1000`, `"maxLifetimeMs":0`, 1), 400, "bad_request"},
		{"refresh unknown field", "POST", "/v1/refresh", rotate(`,"userId":"1"`), 400, "bad_request"},
		{"refresh negative grace", "POST", "/v1/refresh", rotate(`,"reuseGraceMs":-1`), 400, "bad_request"},
		{"refresh grace too long", "POST", "/v1/refresh", rotate(`,"reuseGraceMs":300001`), 400, "bad_request"},
		{"refresh float grace", "POST", "/v1/refresh", rotate(`,"reuseGraceMs":1.5`), 400, "bad_request"},
		{"refresh string grace", "POST", "/v1/refresh", rotate(`,"reuseGraceMs":"1000"`), 400, "bad_request"},
		{"counter bad key", "POST", "/v1/counters/a%20b/incr", `{"windowMs":1000,"by":1}`, 400, "bad_request"},
		{"counter negative", "POST", "/v1/counters/k/incr", `{"windowMs":1000,"by":-1}`, 400, "bad_request"},
		{"counter no window", "POST", "/v1/counters/k/incr", `{"windowMs":0,"by":1}`, 400, "bad_request"},
		{"counter string", "POST", "/v1/counters/k/incr", `{"windowMs":"1000","by":1}`, 400, "bad_request"},
		{"counter delete bad key", "DELETE", "/v1/counters/" + strings.Repeat("k", 201), ``, 400, "bad_request"},
		{"unknown route", "GET", "/v1/whatever", ``, 404, "not_found"},
		{"wrong method", "PATCH", sid, `{}`, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, url: e.url, backend: e.backend, metrics: e.metrics, client: e.client, skew: e.skew}
			before := e.count()
			e.wantError(tc.method, tc.path, tc.body, tc.status, tc.code)
			if n := e.count(); n != before {
				t.Fatalf("stored sessions %d → %d", before, n)
			}
			if st, got := e.get(s.ID); st != http.StatusOK || got.LastSeenAt != s.LastSeenAt || got.UpstreamVersion != 1 || got.ExpiresAt != s.ExpiresAt ||
				got.RevalidatedAt != 0 || !slices.Equal(got.Audience, s.Audience) {
				t.Fatalf("session changed: %d %+v", st, got)
			}
			var now counterBody
			e.must("POST", "/v1/counters/k/incr", map[string]any{"windowMs": 60_000, "by": 0}, 200, &now)
			if now.Count != 1 {
				t.Fatalf("counter changed: %+v", now)
			}
		})
	}
	// The refresh token is still unspent: no bad rotation touched it.
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
}

func TestValidators(t *testing.T) {
	for host, want := range map[string]bool{
		"a.localhost": true, "::1": true, "fe80::1": true, "127.0.0.1": true, "x_y-z.example.com": true,
		"": false, "A.localhost": false, "a.localhost:80": false, "[::1]": false, "a b": false, "::G": false, strings.Repeat("a", 254): false,
	} {
		if validHost(host) != want {
			t.Errorf("validHost(%q) = %v", host, !want)
		}
	}
	for id, want := range map[string]bool{
		strings.Repeat("a", 43): true, "AZaz09-_" + strings.Repeat("x", 35): true,
		strings.Repeat("a", 42): false, strings.Repeat("a", 44): false, strings.Repeat("a", 42) + "=": false, strings.Repeat("a", 42) + "/": false,
	} {
		if validID(id) != want {
			t.Errorf("validID(%q) = %v", id, !want)
		}
	}
	for user, want := range map[string]bool{"12": true, "a.b_c:d@e-f": true, "": false, "a/b": false, "ü": false} {
		if validUserID(user) != want {
			t.Errorf("validUserID(%q) = %v", user, !want)
		}
	}
	for dev, want := range map[string]bool{
		"": true, "5b0f7e3c-9d2a-4c61-8e47-1a2b3c4d5e6f": true, "Ana’s iPhone 15 — Safari": true, "a b/c?d=e&f": true,
		strings.Repeat("d", 255): true, strings.Repeat("é", 127) + "x": true, "\u00a0\u200b🙂": true,
		strings.Repeat("d", 256): false, strings.Repeat("é", 128): false, "a\x00b": false, "a\x1fb": false, "a\x7fb": false,
		"\tx": false, "x\r\n": false, "a\xffb": false, "\xc3": false, "\xed\xa0\x80": false, // a UTF-16 surrogate encoded as UTF-8
	} {
		if validDeviceText(dev) != want {
			t.Errorf("validDeviceText(%q) = %v", dev, !want)
		}
	}
}
