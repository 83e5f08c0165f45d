package accessproxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// The proxy's own tokens: HS256 JWTs written and checked by hand, so the plugin needs no JWT library
// (an interpreted one costs a lot per request under Yaegi).

const (
	tokenIssuer = "strapi-access-proxy"
	// jwtLeeway tolerates small clock differences between Traefik replicas.
	jwtLeeway = 5 * time.Second
)

var b64 = base64.RawURLEncoding

// b64Strict refuses non-canonical encodings (stray bits in the last character): a token has
// exactly one spelling. Go's decoder still skips CR and LF even in strict mode, so tokens
// holding them are refused before decoding (see verify).
var b64Strict = base64.RawURLEncoding.Strict()

var (
	errTokenMalformed = errors.New("token is malformed")
	errTokenAlg       = errors.New("token algorithm or key id is not accepted")
	errTokenSignature = errors.New("token signature is invalid")
	errTokenExpired   = errors.New("token has expired")
	errTokenClaims    = errors.New("token claims are invalid")
)

// tokenClaims are the claims of a proxy token.
type tokenClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Sid string `json:"sid"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// signingKey is one HMAC key with its id and its encoded header, computed once.
type signingKey struct {
	kid       string
	key       []byte
	headerB64 string
}

// keyRing signs with the first key and verifies with any of them (key rotation).
type keyRing struct {
	active   *signingKey
	byHeader map[string]*signingKey
}

// keyID derives a public id from a key; it never reveals the key.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("accessproxy-kid:"), key...))
	return hex.EncodeToString(sum[:8])
}

func newSigningKey(secret string) (*signingKey, error) {
	key := []byte(secret)
	kid := keyID(key)
	header, err := json.Marshal(tokenHeader{Alg: "HS256", Typ: "JWT", Kid: kid})
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, key: key, headerB64: b64.EncodeToString(header)}, nil
}

func newKeyRing(secret string, previous []string) (*keyRing, error) {
	active, err := newSigningKey(secret)
	if err != nil {
		return nil, err
	}
	ring := &keyRing{active: active, byHeader: map[string]*signingKey{active.headerB64: active}}
	for _, s := range previous {
		k, err := newSigningKey(s)
		if err != nil {
			return nil, err
		}
		ring.byHeader[k.headerB64] = k
	}
	return ring, nil
}

func hs256(key []byte, signingInput string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signingInput))
	return mac.Sum(nil)
}

// sign returns a compact HS256 JWT for the claims under the active key.
func (r *keyRing) sign(c tokenClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := r.active.headerB64 + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(hs256(r.active.key, input)), nil
}

// verify checks structure, algorithm, key id, signature and expiry, in that order.
// The header must be byte-for-byte one this ring writes: that pins alg=HS256 and a known kid
// without decoding attacker-controlled JSON before the signature is checked.
func (r *keyRing) verify(token string, now time.Time) (tokenClaims, error) {
	var c tokenClaims
	if len(token) > 4096 {
		return c, errTokenMalformed
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return c, errTokenMalformed
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return c, errTokenMalformed
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return c, errTokenMalformed
	}
	header, payload, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	if header == "" || payload == "" || sig == "" || strings.ContainsAny(token, "\r\n") {
		return c, errTokenMalformed
	}
	key := r.byHeader[header]
	if key == nil {
		if _, err := b64Strict.DecodeString(header); err != nil {
			return c, errTokenMalformed
		}
		return c, errTokenAlg
	}
	// The signature is compared in its encoded form: only the one canonical spelling of the
	// right MAC verifies.
	want := b64.EncodeToString(hs256(key.key, token[:dot2]))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return c, errTokenSignature
	}
	raw, err := b64Strict.DecodeString(payload)
	if err != nil {
		return c, errTokenMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, errTokenClaims
	}
	if c.Iss != tokenIssuer || c.Sub == "" || len(c.Sid) < 22 || c.Exp == 0 {
		return c, errTokenClaims
	}
	if now.Add(-jwtLeeway).Unix() >= c.Exp {
		return c, errTokenExpired
	}
	return c, nil
}

// upstreamJWTClaims are the few claims read from Strapi's JWT, which the proxy does not verify
// (it never trusts them for anything but the user id and the expiry of the token it just received).
type upstreamJWTClaims struct {
	userID string
	typ    string // "access" or "refresh" in Strapi 5 session mode, "" in legacy mode
	iat    int64
	exp    int64
}

// readUpstreamJWT decodes the payload of Strapi's JWT. Legacy tokens carry `id`, session-mode tokens `userId`.
func readUpstreamJWT(token string) (upstreamJWTClaims, error) {
	var out upstreamJWTClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return out, errTokenMalformed
	}
	raw, err := b64.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return out, errTokenMalformed
	}
	var m map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return out, errTokenMalformed
	}
	out.userID = jsonScalar(m["userId"])
	if out.userID == "" {
		out.userID = jsonScalar(m["id"])
	}
	if out.userID == "" {
		return out, errTokenClaims
	}
	out.typ, _ = m["type"].(string)
	if out.exp, err = jsonInt(m, "exp"); err != nil {
		return out, err
	}
	if out.iat, err = jsonInt(m, "iat"); err != nil {
		return out, err
	}
	return out, nil
}

// jsonInt reads an optional integer claim (0 when absent).
func jsonInt(m map[string]interface{}, key string) (int64, error) {
	v, present := m[key]
	if !present {
		return 0, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, errTokenClaims
	}
	i, err := n.Int64()
	if err != nil {
		return 0, errTokenClaims
	}
	return i, nil
}

// jsonScalar renders a JSON string or number as a string; anything else is "".
func jsonScalar(v interface{}) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	}
	return ""
}
