package accessproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Edge policy: the admin channel, login rate limits and lockout.

// clientIP is the address the request came from. Traefik removes X-Forwarded-For sent by hosts
// outside the entrypoint's forwardedHeaders.trustedIPs, so a value present here was set by a
// trusted proxy; its last entry is the peer that proxy saw.
func clientIP(req *http.Request) string {
	if xff := req.Header.Get("X-Forwarded-For"); xff != "" {
		parts := strings.Split(xff, ",")
		if ip := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(ip) != nil {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// blocked says whether a normalized path is under one of blockedPaths.
func (m *Middleware) blocked(p string) bool {
	first := p
	if i := strings.IndexByte(p[1:], '/'); i >= 0 {
		first = p[:i+1]
	}
	if m.s.blockedFirst[first] {
		return true
	}
	for _, prefix := range m.s.blockedDeep {
		if hasPathPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func (m *Middleware) adminAllowed(req *http.Request) bool {
	ip := net.ParseIP(clientIP(req))
	if ip == nil {
		return false
	}
	for _, n := range m.s.adminNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// rate is a parsed "N/unit" limit.
type rate struct {
	n      int64
	window time.Duration
}

func parseRate(v string) (rate, error) {
	parts := strings.SplitN(v, "/", 2)
	n, err := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
	if len(parts) != 2 || err != nil || n < 0 {
		return rate{}, fmt.Errorf("loginRateLimit must look like \"10/m\" (got %q)", v)
	}
	units := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	if d, ok := units[strings.TrimSpace(parts[1])]; ok {
		return rate{n: n, window: d}, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(parts[1]))
	if err != nil || d <= 0 {
		return rate{}, fmt.Errorf("loginRateLimit must look like \"10/m\" (got %q)", v)
	}
	return rate{n: n, window: d}, nil
}

func counterKey(kind, value string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(value))))
	return kind + ":" + hex.EncodeToString(sum[:16])
}

// loginIdentifier is the account a login attempt names (Strapi's `identifier`, or `email`).
func loginIdentifier(body map[string]interface{}) string {
	if v, ok := body["identifier"].(string); ok && v != "" {
		return v
	}
	v, _ := body["email"].(string)
	return v
}

// checkLoginLimits counts this attempt against the client's rate and refuses a locked account.
// It returns 0, or the status to answer with and the seconds to wait.
func (m *Middleware) checkLoginLimits(ctx context.Context, client, identifier string) (int, int64, error) {
	now := time.Now().UnixMilli()
	if m.s.loginRate.n > 0 {
		c, err := m.store.incrCounter(ctx, counterKey("rl", client), m.s.loginRate.window, 1)
		if err != nil {
			return http.StatusServiceUnavailable, 0, err
		}
		if c.Count > m.s.loginRate.n {
			return http.StatusTooManyRequests, retryAfter(c.ResetAt, now), nil
		}
	}
	if identifier != "" && m.s.lockoutThreshold > 0 {
		c, err := m.store.incrCounter(ctx, counterKey("locked", identifier), m.s.lockoutDuration, 0)
		if err != nil {
			return http.StatusServiceUnavailable, 0, err
		}
		if c.Count > 0 {
			return http.StatusTooManyRequests, retryAfter(c.ResetAt, now), nil
		}
	}
	return 0, 0, nil
}

// recordLoginOutcome counts a failed login against the account, or clears its failures.
func (m *Middleware) recordLoginOutcome(ctx context.Context, identifier string, status int) {
	if identifier == "" || m.s.lockoutThreshold <= 0 {
		return
	}
	key := counterKey("fail", identifier)
	switch {
	case status == http.StatusBadRequest:
		// The lock is its own counter so it lasts lockoutDuration from the failure that set it.
		c, err := m.store.incrCounter(ctx, key, m.s.lockoutDuration, 1)
		if err == nil && c.Count >= int64(m.s.lockoutThreshold) {
			_, _ = m.store.incrCounter(ctx, counterKey("locked", identifier), m.s.lockoutDuration, 1)
			_ = m.store.deleteCounter(ctx, key)
		}
	case status >= 200 && status < 300:
		_ = m.store.deleteCounter(ctx, key)
	}
}

func retryAfter(resetAtMs, nowMs int64) int64 {
	s := (resetAtMs - nowMs + 999) / 1000
	if s < 1 {
		s = 1
	}
	return s
}
