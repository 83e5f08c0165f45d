// Package crypto seals the secrets a session carries (the Strapi JWT and the upstream refresh
// credential) with AES-256-GCM before they reach storage.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
)

// KeySize is the length of the encryption key: AES-256.
const KeySize = 32

// ErrOpen: the ciphertext does not authenticate under this key and additional data (wrong key,
// a record moved between ids, or corruption). It deliberately says nothing more.
var ErrOpen = errors.New("crypto: cannot decrypt stored secret (wrong --encryption-key or corrupt record)")

// Sealer encrypts and decrypts values bound to an id.
type Sealer struct {
	aead cipher.AEAD
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) 32-byte key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("encryption key is empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, errors.New("encryption key must decode to exactly 32 bytes")
			}
			return key, nil
		}
	}
	return nil, errors.New("encryption key is not valid base64")
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, errors.New("crypto: key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext under a fresh random nonce with ad (the owning record's id) as
// additional data, so a ciphertext copied into another record does not open. The result is
// nonce‖ciphertext‖tag. An empty plaintext seals to nil: there is nothing to hide.
func (s *Sealer) Seal(plaintext string, ad string) []byte {
	if plaintext == "" {
		return nil
	}
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(out) // crypto/rand.Read never fails (Go ≥ 1.24 aborts the process instead)
	return s.aead.Seal(out, out[:ns], []byte(plaintext), []byte(ad))
}

// Open reverses Seal.
func (s *Sealer) Open(sealed []byte, ad string) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return "", ErrOpen
	}
	plain, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(ad))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
