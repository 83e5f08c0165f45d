package accessproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	testSecret     = "kP3vX9qL2mZ7wR5tY8nB4cJ6hD1sF0gA-unit"
	testSecretPrev = "Qw8eR7tY6uI5oP4aS3dF2gH1jK0lZx-prev"
	testSecretNew  = "Mn1bV2cX3zL4kJ5hG6fD7sA8qW9eRt-other"
	testSid        = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

func mustRing(t *testing.T, secret string, previous ...string) *keyRing {
	t.Helper()
	r, err := newKeyRing(secret, previous)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func validClaims(now time.Time) tokenClaims {
	return tokenClaims{Iss: tokenIssuer, Sub: "7", Sid: testSid, Iat: now.Unix(), Exp: now.Add(time.Hour).Unix()}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Now()
	r := mustRing(t, testSecret)
	tok, err := r.sign(validClaims(now))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.verify(tok, now)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c.Sub != "7" || c.Sid != testSid || c.Iss != tokenIssuer {
		t.Fatalf("claims = %+v", c)
	}
	header, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	var h tokenHeader
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	if h.Alg != "HS256" || h.Typ != "JWT" || h.Kid != keyID([]byte(testSecret)) {
		t.Fatalf("header = %+v", h)
	}
	if strings.Contains(string(header), testSecret) || len(h.Kid) != 16 {
		t.Fatalf("kid must be derived, not the key: %q", h.Kid)
	}
}

// forge builds a token with an arbitrary header and claims, signed with key.
func forge(header, claims string, key []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	return input + "." + b64.EncodeToString(hs256(key, input))
}

func TestVerifyRejects(t *testing.T) {
	now := time.Now()
	r := mustRing(t, testSecret)
	good, _ := r.sign(validClaims(now))
	parts := strings.Split(good, ".")
	kid := keyID([]byte(testSecret))
	claims, _ := json.Marshal(validClaims(now))
	expired := validClaims(now)
	expired.Exp = now.Add(-time.Minute).Unix()
	expiredJSON, _ := json.Marshal(expired)
	tamperedClaims := validClaims(now)
	tamperedClaims.Sub = "1"
	tamperedJSON, _ := json.Marshal(tamperedClaims)
	noSid := validClaims(now)
	noSid.Sid = ""
	noSidJSON, _ := json.Marshal(noSid)

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", errTokenMalformed},
		{"one segment", "abc", errTokenMalformed},
		{"two segments", parts[0] + "." + parts[1], errTokenMalformed},
		{"four segments", good + ".x", errTokenMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", errTokenMalformed},
		{"bad base64 header", "%%%." + parts[1] + "." + parts[2], errTokenMalformed},
		{"bad base64 signature", parts[0] + "." + parts[1] + ".***", errTokenSignature}, // compared encoded: only the one right spelling verifies,
		{"alg none", b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." + parts[1] + ".", errTokenMalformed},
		{"alg none with sig", forge(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`, string(claims), []byte(testSecret)), errTokenAlg},
		{"HS512", forge(`{"alg":"HS512","typ":"JWT","kid":"`+kid+`"}`, string(claims), []byte(testSecret)), errTokenAlg},
		{"missing kid", forge(`{"alg":"HS256","typ":"JWT"}`, string(claims), []byte(testSecret)), errTokenAlg},
		{"unknown kid", forge(`{"alg":"HS256","typ":"JWT","kid":"0123456789abcdef"}`, string(claims), []byte(testSecret)), errTokenAlg},
		{"tampered payload", parts[0] + "." + b64.EncodeToString(tamperedJSON) + "." + parts[2], errTokenSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + b64.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), errTokenSignature},
		{"other key same header", parts[0] + "." + parts[1] + "." + b64.EncodeToString(hs256([]byte(testSecretNew), parts[0]+"."+parts[1])), errTokenSignature},
		{"expired", forge(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, string(expiredJSON), []byte(testSecret)), errTokenExpired},
		{"no sid", forge(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, string(noSidJSON), []byte(testSecret)), errTokenClaims},
		{"claims not json", forge(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, `not json`, []byte(testSecret)), errTokenClaims},
		{"unknown claim", forge(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, `{"iss":"strapi-access-proxy","sub":"7","sid":"`+testSid+`","exp":9999999999,"admin":true}`, []byte(testSecret)), errTokenClaims},
		{"wrong issuer", forge(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, `{"iss":"strapi","sub":"7","sid":"`+testSid+`","exp":9999999999}`, []byte(testSecret)), errTokenClaims},
		{"oversized", strings.Repeat("a", 5000), errTokenMalformed},
	}
	for _, tc := range cases {
		_, err := r.verify(tc.token, now)
		if err != tc.want {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestVerifyLeewayAndRotation(t *testing.T) {
	now := time.Now()
	old := mustRing(t, testSecretPrev)
	c := validClaims(now)
	c.Exp = now.Add(-2 * time.Second).Unix() // inside the leeway
	tok, _ := old.sign(c)
	rotated := mustRing(t, testSecret, testSecretPrev)
	if _, err := rotated.verify(tok, now); err != nil {
		t.Fatalf("token of a previous secret inside leeway: %v", err)
	}
	if _, err := mustRing(t, testSecret).verify(tok, now); err != errTokenAlg {
		t.Fatalf("token of a dropped secret: err = %v", err)
	}
	newTok, _ := rotated.sign(validClaims(now))
	if !strings.HasPrefix(newTok, rotated.active.headerB64+".") {
		t.Fatal("rotated ring must sign with the active key")
	}
}

func TestReadUpstreamJWT(t *testing.T) {
	enc := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + b64.EncodeToString([]byte(payload)) + ".sig"
	}
	c, err := readUpstreamJWT(enc(`{"id":12,"iat":1,"exp":1700000000}`))
	if err != nil || c.userID != "12" || c.exp != 1700000000 {
		t.Fatalf("legacy: %+v %v", c, err)
	}
	c, err = readUpstreamJWT(enc(`{"userId":"abc","sessionId":"s","type":"access","exp":1700000005}`))
	if err != nil || c.userID != "abc" || c.exp != 1700000005 {
		t.Fatalf("session mode: %+v %v", c, err)
	}
	for _, bad := range []string{"x", "a.b", enc(`{"exp":1}`), enc(`[1]`), "a.!!!.c", enc(`{"id":1,"exp":"soon"}`)} {
		if _, err := readUpstreamJWT(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestVerifyRefusesNonCanonicalSpellings(t *testing.T) {
	r, err := newKeyRing(testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good, _ := r.sign(validClaims(now))
	if _, err := r.verify(good, now); err != nil {
		t.Fatalf("the issued spelling: %v", err)
	}
	dot := strings.LastIndexByte(good, '.')
	for name, tok := range map[string]string{
		"stray padding bit": strayBit(good),
		"CR in signature":   good[:dot+5] + "\r" + good[dot+5:],
		"LF in payload":     good[:dot-3] + "\n" + good[dot-3:],
	} {
		if _, err := r.verify(tok, now); err == nil {
			t.Errorf("%s: a second spelling of the token verified", name)
		}
	}
}

// strayBit sets the lowest (padding) bit of a token's last base64url character: the same bytes
// to a lenient decoder, another string.
func strayBit(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[i^1])
}

func TestKeyRotationThroughTheMiddleware(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Secret = testSecretPrev })
	oldTok := hs.login("a.localhost")
	cfg := CreateConfig()
	cfg.Secret, cfg.PreviousSecrets, cfg.StoreURL, cfg.StoreToken = testSecret, []string{testSecretPrev}, hs.store.srv.URL+hs.store.prefix, testStoreToken
	rotated, err := New(context.Background(), hs.strapi, cfg, "rotated")
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, tok string) int {
		req := httptest.NewRequest(http.MethodGet, "http://a.localhost/api/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get(rotated, oldTok); code != http.StatusOK {
		t.Fatalf("token of the previous secret: %d", code)
	}
	cfg.PreviousSecrets = nil
	dropped, _ := New(context.Background(), hs.strapi, cfg, "dropped")
	if code := get(dropped, oldTok); code != http.StatusUnauthorized {
		t.Fatalf("token of a dropped secret: %d", code)
	}
}
