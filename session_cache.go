package accessproxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
)

// maxCachedTokens bounds the plugin's memory; past it, expired entries go first, then any.
const maxCachedTokens = 50000

// tokenEntry is what the plugin knows about one proxy token: its verified claims and the session
// as last read from the store. Entries are never modified once cached; updates replace them.
type tokenEntry struct {
	claims tokenClaims
	expMs  int64 // claims.Exp in ms, precomputed for the hot path
	sess   *storeSession
	aud    audience
	// upstreamAuth is the Authorization header value ("Bearer <Strapi JWT>") installed as is:
	// built once, len == cap so an append elsewhere never writes into it.
	upstreamAuth []string
	fetchedMs    int64 // when sess was read from the store
	// renewAtMs is when Strapi's access JWT must be renewed upstream (session mode), 0 for never.
	renewAtMs     int64
	upstreamExpMs int64
}

// maxRenewAhead is how early, at most, an upstream access JWT is renewed before it expires.
const maxRenewAhead = 30 * 1000

func newTokenEntry(c tokenClaims, s *storeSession, fetchedMs int64) *tokenEntry {
	e := &tokenEntry{
		claims:       c,
		expMs:        c.Exp * 1000,
		sess:         s,
		aud:          parseAudience(s.Audience),
		upstreamAuth: []string{"Bearer " + s.StrapiJwt},
		fetchedMs:    fetchedMs,
	}
	if s.StrapiRefresh != "" {
		// Renew a fifth of the access token's lifetime (at most 30 s) before it ends.
		if up, err := readUpstreamJWT(s.StrapiJwt); err == nil && up.exp > 0 {
			ahead := (up.exp - up.iat) * 1000 / 5
			if up.iat == 0 || ahead > maxRenewAhead {
				ahead = maxRenewAhead
			}
			e.renewAtMs = up.exp*1000 - ahead
			e.upstreamExpMs = up.exp * 1000
		}
	}
	return e
}

// tokenCache maps a proxy token to its entry, so a repeated token skips the HMAC, the JSON
// decode and (within cacheTTL) the store round trip.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]*tokenEntry

	fastMu   sync.Mutex
	fastMaps []*fastMap // the instances' fast-path maps, emptied on every revocation
}

// dropAll drops everything: after a refresh-token reuse the store does not say which sessions
// it revoked.
func (c *tokenCache) dropAll() {
	c.revoked()
	c.mu.Lock()
	c.entries = map[string]*tokenEntry{}
	c.mu.Unlock()
}

func newTokenCache() *tokenCache {
	return &tokenCache{entries: map[string]*tokenEntry{}}
}

func (c *tokenCache) get(token string) *tokenEntry {
	c.mu.RLock()
	e := c.entries[token]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(token string, e *tokenEntry, nowMs int64) {
	c.mu.Lock()
	if len(c.entries) >= maxCachedTokens {
		c.evictLocked(nowMs)
	}
	c.entries[token] = e
	c.mu.Unlock()
}

// remove drops a token found expired or gone. Fast-path entries need no flush for that: none
// outlives the token's expiry or cacheTTL.
func (c *tokenCache) remove(token string) {
	c.mu.Lock()
	delete(c.entries, token)
	c.mu.Unlock()
}

// removeSession drops every token of a session (logout on this Traefik is immediate).
func (c *tokenCache) removeSession(sid string) { c.removeMatching(sid, "") }

// removeUser drops every token of a user.
func (c *tokenCache) removeUser(userID string) { c.removeMatching("", userID) }

func (c *tokenCache) removeMatching(sid, userID string) {
	c.revoked()
	c.mu.Lock()
	for tok, e := range c.entries {
		if (sid != "" && e.claims.Sid == sid) || (userID != "" && e.claims.Sub == userID) {
			delete(c.entries, tok)
		}
	}
	c.mu.Unlock()
}

func (c *tokenCache) evictLocked(nowMs int64) {
	for tok, e := range c.entries {
		if e.expMs <= nowMs || e.sess.AbsoluteExpiresAt <= nowMs {
			delete(c.entries, tok)
		}
	}
	// Still full: drop an arbitrary tenth; they are re-read from the store on next use.
	drop := len(c.entries) - maxCachedTokens*9/10
	for tok := range c.entries {
		if drop <= 0 {
			break
		}
		delete(c.entries, tok)
		drop--
	}
}

// backend is what instances pointing at the same store and keys share, also across config
// reloads (New runs again on each): one HTTP client with its warm connections, one token cache.
type backend struct {
	http  *http.Client
	cache *tokenCache
}

var (
	backendsMu sync.Mutex
	backends   = map[string]*backend{}
)

func sharedBackend(cfg *Config) *backend {
	// Secrets are part of the key, hashed: a changed secret must not reuse tokens verified under the old one.
	h := sha256.New()
	for _, part := range []string{cfg.StoreURL, cfg.StoreToken, cfg.Secret, strings.Join(cfg.PreviousSecrets, "\x00")} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))
	backendsMu.Lock()
	defer backendsMu.Unlock()
	b := backends[key]
	if b == nil {
		b = &backend{http: newStoreHTTPClient(), cache: newTokenCache()}
		backends[key] = b
	}
	return b
}
