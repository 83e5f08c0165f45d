package accessproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// regulator holds the login limits of one middleware instance, in store counters so that every
// Traefik replica counts together (the shape of Authelia's internal/regulation):
//   - the rate limit counts the login attempts this instance's router sees from one address
//     (keyed by the instance's name: one host's logins do not spend another host's allowance);
//   - the lockout counts failed logins per identifier across every host, since an account is
//     the same account everywhere.
type regulator struct {
	store     *storeClient
	clock     *clock
	scope     string // the middleware's name
	rate      rate
	threshold int
	duration  time.Duration
}

// limited is a regulator's verdict: status 0 lets the attempt through.
type limited struct {
	status  int
	wait    int64 // seconds, for Retry-After
	message string
	reason  string // for the audit line
}

// check counts this attempt against the address's rate and refuses a locked account.
func (g *regulator) check(ctx context.Context, client, identifier string) (limited, error) {
	now := g.clock.nowMs()
	if g.rate.n > 0 {
		c, err := g.store.incrCounter(ctx, counterKey("rl", g.scope+"\x00"+client), g.rate.window, 1)
		if err != nil {
			return limited{}, err
		}
		if c.Count > g.rate.n {
			return limited{status: http.StatusTooManyRequests, wait: retryAfter(c.ResetAt, now),
				message: "Too many login attempts from your address on this site, try again later",
				reason:  "loginRateLimit"}, nil
		}
	}
	if identifier != "" && g.threshold > 0 {
		c, err := g.store.incrCounter(ctx, counterKey("locked", identifier), g.duration, 0)
		if err != nil {
			return limited{}, err
		}
		if c.Count > 0 {
			return limited{status: http.StatusTooManyRequests, wait: retryAfter(c.ResetAt, now),
				message: "This account is locked after too many failed logins, try again later",
				reason:  "lockout"}, nil
		}
	}
	return limited{}, nil
}

// record counts a failed login against the account, or clears its failures.
func (g *regulator) record(ctx context.Context, identifier string, status int) {
	if identifier == "" || g.threshold <= 0 {
		return
	}
	key := counterKey("fail", identifier)
	switch {
	case status == http.StatusBadRequest:
		// The lock is its own counter so it lasts lockoutDuration from the failure that set it.
		c, err := g.store.incrCounter(withAuditKind(ctx, "login_failed", identifier), key, g.duration, 1)
		if err == nil && c.Count >= int64(g.threshold) {
			_, _ = g.store.incrCounter(withAuditKind(ctx, "lockout", identifier), counterKey("locked", identifier), g.duration, 1)
			_ = g.store.deleteCounter(ctx, key)
		}
	case status >= 200 && status < 300:
		_ = g.store.deleteCounter(ctx, key)
	}
}

// loginIdentifier is the account a login attempt names: Strapi's `identifier`, the only field
// its local login reads (a string; Strapi refuses anything else).
func loginIdentifier(body map[string]interface{}) string {
	v, _ := body["identifier"].(string)
	return v
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

func retryAfter(resetAtMs, nowMs int64) int64 {
	s := (resetAtMs - nowMs + 999) / 1000
	if s < 1 {
		s = 1
	}
	return s
}
