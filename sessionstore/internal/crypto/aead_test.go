package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func testSealer(t *testing.T, fill byte) *Sealer {
	t.Helper()
	s, err := New(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := testSealer(t, 1)
	sealed := s.Seal("eyJhbGciOi.secret", "session-a")
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	if again := s.Seal("eyJhbGciOi.secret", "session-a"); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	got, err := s.Open(sealed, "session-a")
	if err != nil || got != "eyJhbGciOi.secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "session-b"); !errors.Is(err, ErrOpen) {
		t.Fatalf("other additional data: err = %v, want ErrOpen", err)
	}
	if _, err := testSealer(t, 2).Open(sealed, "session-a"); !errors.Is(err, ErrOpen) {
		t.Fatalf("other key: err = %v, want ErrOpen", err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Open(tampered, "session-a"); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered: err = %v, want ErrOpen", err)
	}
	if _, err := s.Open([]byte{1, 2, 3}, "session-a"); !errors.Is(err, ErrOpen) {
		t.Fatalf("short: err = %v, want ErrOpen", err)
	}
	if s.Seal("", "x") != nil {
		t.Fatal("empty plaintext should seal to nil")
	}
	if v, err := s.Open(nil, "x"); v != "" || err != nil {
		t.Fatalf("Open(nil) = %q, %v", v, err)
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := ParseKey(enc.EncodeToString(raw))
		if err != nil || !bytes.Equal(key, raw) {
			t.Fatalf("ParseKey(%s) = %x, %v", enc.EncodeToString(raw), key, err)
		}
	}
	for _, bad := range []string{"", "   ", "not base64 !!", base64.StdEncoding.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 1))} {
		if _, err := ParseKey(bad); err == nil {
			t.Fatalf("ParseKey(%q) accepted", bad)
		} else if strings.Contains(err.Error(), bad) && bad != "" && strings.TrimSpace(bad) != "" {
			t.Fatalf("error echoes the key: %v", err)
		}
	}
}
