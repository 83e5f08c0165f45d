package api

import (
	"net/netip"
	"strings"
)

// Limits from docs/store-api.md.
const (
	idLen          = 43 // base64url of 32 bytes, no padding
	maxUserID      = 128
	maxHost        = 253
	maxAudience    = 64
	maxCounterKey  = 200
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
