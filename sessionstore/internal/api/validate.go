package api

import (
	"encoding/json"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Limits from docs/store-api.md.
const (
	idLen          = 43 // base64url of 32 bytes, no padding
	maxUserID      = 128
	maxHost        = 253
	maxAudience    = 64
	maxCounterKey  = 200
	maxDeviceText  = 255                          // bytes of deviceId, deviceName
	maxDurationMs  = 100 * 365 * 24 * 3600 * 1000 // keeps now+duration far from overflow
	maxCounterStep = 1 << 30
)

func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validUserID: ^[A-Za-z0-9._:@-]{1,128}$
func validUserID(s string) bool {
	return len(s) >= 1 && len(s) <= maxUserID && allBytes(s, func(c byte) bool {
		return alnum(c) || strings.IndexByte("._:@-", c) >= 0
	})
}

// validHost: 1–253 chars of lower-case letters, digits and . - _, or an IPv6 address (the form
// net.SplitHostPort leaves); a colon otherwise would be a port, which is refused.
func validHost(s string) bool {
	if len(s) < 1 || len(s) > maxHost {
		return false
	}
	if strings.IndexByte(s, ':') >= 0 {
		ip, err := netip.ParseAddr(s)
		return err == nil && ip.Is6() && ip.Zone() == "" && strings.ToLower(s) == s
	}
	return allBytes(s, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
	})
}

// validAudienceEntry: 1–253 printable ASCII chars without spaces (patterns like *.example.com).
func validAudienceEntry(s string) bool {
	return len(s) >= 1 && len(s) <= maxHost && allBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f })
}

// validTokenHash: 64 lower-case hex chars (a SHA-256).
func validTokenHash(s string) bool {
	return len(s) == 64 && allBytes(s, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' })
}

// validCounterKey: ^[A-Za-z0-9:._-]{1,200}$
func validCounterKey(s string) bool {
	return len(s) >= 1 && len(s) <= maxCounterKey && allBytes(s, func(c byte) bool {
		return alnum(c) || strings.IndexByte(":._-", c) >= 0
	})
}

func validAudience(a []string) bool {
	if len(a) > maxAudience {
		return false
	}
	for _, s := range a {
		if !validAudienceEntry(s) {
			return false
		}
	}
	return true
}

// clientAddr checks a client address field (create, touch, rotate): "" (not given) or a textual
// IPv4 or IPv6 address without a zone. It returns the canonical form (netip's: "2001:db8::1" for
// "2001:DB8:0::1"), so that one address is always stored alike.
func clientAddr(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return "", false
	}
	return ip.String(), true
}

func okAddr(s string) bool {
	_, ok := clientAddr(s)
	return ok
}

const badClientAddr = "clientAddr: \"\" or an IPv4/IPv6 address without a zone"

// validDeviceText: a deviceId or deviceName, "" (none) or at most 255 bytes of valid UTF-8
// without control characters (U+0000–U+001F, U+007F).
func validDeviceText(s string) bool {
	if len(s) > maxDeviceText || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// deviceText is a device field of a request. encoding/json replaces invalid UTF-8 in a string by
// U+FFFD without a word; a deviceText keeps such a value invalid (its raw bytes) instead, so that
// validDeviceText refuses it rather than storing a mangled name.
type deviceText string

func (d *deviceText) UnmarshalJSON(b []byte) error {
	if !utf8.Valid(b) {
		*d = deviceText(b)
		return nil
	}
	var s string // null leaves it ""
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = deviceText(s)
	return nil
}

func validDuration(ms int64) bool { return ms > 0 && ms <= maxDurationMs }

func alnum(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
