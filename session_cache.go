package accessproxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
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
	// revalidateAtMs is when the user is next re-read from Strapi (0: never, revalidateEvery off).
	revalidateAtMs int64
	// loadSeq is the cache's revocation sequence when sess was asked of the store: a revocation
	// after it means sess may predate that revocation (see putUnlessRevoked).
	loadSeq int64
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

	// Revocations this Traefik has seen, for the reads that were in flight when they happened:
	// seq counts them; each tombstone holds the seq of the latest revocation of a session or a
	// user, kept for tombstoneTTL (far longer than any store call may take).
	seq          int64
	allSeq       int64 // the latest dropAll
	revokedSid   map[string]int64
	revokedUser  map[string]int64
	tombstonesAt map[string]int64 // "s:"/"u:" + id → when, for pruning
	prunedMs     int64

	fastMu   sync.Mutex
	fastMaps []*fastMap // the instances' fast-path maps, emptied on every revocation
}

// dropAll drops everything: after a refresh-token reuse the store does not say which sessions
// it revoked.
func (c *tokenCache) dropAll() {
	c.mu.Lock()
	c.seq++
	c.allSeq = c.seq
	c.entries = map[string]*tokenEntry{}
	c.mu.Unlock()
	c.revoked()
}

func newTokenCache() *tokenCache {
	return &tokenCache{entries: map[string]*tokenEntry{}, revokedSid: map[string]int64{},
		revokedUser: map[string]int64{}, tombstonesAt: map[string]int64{}}
}

// tombstoneTTL is how long a revocation is remembered against reads that were in flight.
const tombstoneTTL = 2 * time.Minute

// revocationSeq is read before a store call whose answer will be cached.
func (c *tokenCache) revocationSeq() int64 {
	c.mu.RLock()
	s := c.seq
	c.mu.RUnlock()
	return s
}

// revokedSinceLocked says whether e's session or user was revoked after e was read.
func (c *tokenCache) revokedSinceLocked(e *tokenEntry) bool {
	return c.allSeq > e.loadSeq || c.revokedSid[e.claims.Sid] > e.loadSeq || c.revokedUser[e.claims.Sub] > e.loadSeq
}

// revokedSince is revokedSinceLocked for callers that hold no lock of the cache.
func (c *tokenCache) revokedSince(e *tokenEntry) bool {
	c.mu.RLock()
	r := c.revokedSinceLocked(e)
	c.mu.RUnlock()
	return r
}

// putUnlessRevoked caches e unless its session was revoked on this Traefik while e was being
// read: then it caches nothing and says false, and the caller refuses the request.
func (c *tokenCache) putUnlessRevoked(token string, e *tokenEntry, nowMs int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revokedSinceLocked(e) {
		delete(c.entries, token)
		return false
	}
	if len(c.entries) >= maxCachedTokens {
		c.evictLocked(nowMs)
	}
	c.entries[token] = e
	return true
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

// removeSessions drops every token of the given sessions.
func (c *tokenCache) removeSessions(sids []string) {
	for _, sid := range sids {
		c.removeMatching(sid, "")
	}
}

// removeMatching drops the tokens of a session or a user, leaves a tombstone against reads in
// flight, then empties every fast map (in that order: see remember).
func (c *tokenCache) removeMatching(sid, userID string) {
	nowMs := time.Now().UnixMilli() // tombstone ages are kept in system time: only pruning reads them
	c.mu.Lock()
	c.seq++
	if sid != "" {
		c.revokedSid[sid] = c.seq
		c.tombstonesAt["s:"+sid] = nowMs
	}
	if userID != "" {
		c.revokedUser[userID] = c.seq
		c.tombstonesAt["u:"+userID] = nowMs
	}
	c.pruneLocked(nowMs)
	for tok, e := range c.entries {
		if (sid != "" && e.claims.Sid == sid) || (userID != "" && e.claims.Sub == userID) {
			delete(c.entries, tok)
		}
	}
	c.mu.Unlock()
	c.revoked()
}

// pruneLocked forgets tombstones older than tombstoneTTL, at most once a second.
func (c *tokenCache) pruneLocked(nowMs int64) {
	if nowMs-c.prunedMs < 1000 {
		return
	}
	c.prunedMs = nowMs
	cutoff := nowMs - tombstoneTTL.Milliseconds()
	for k, at := range c.tombstonesAt {
		if at >= cutoff {
			continue
		}
		delete(c.tombstonesAt, k)
		if k[0] == 's' {
			delete(c.revokedSid, k[2:])
		} else {
			delete(c.revokedUser, k[2:])
		}
	}
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
	clock *clock
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
		b = &backend{http: newStoreHTTPClient(), cache: newTokenCache(), clock: &clock{}}
		backends[key] = b
	}
	return b
}

// maxFastMaps bounds how many instances' fast maps a cache keeps for revocation: each config
// reload creates new instances, and the old ones no longer serve requests.
const maxFastMaps = 256

// fastMap is one instance's fast-path map. The map itself is never replaced (the instance holds
// it directly); emptying deletes its keys.
type fastMap struct {
	mu      sync.RWMutex
	entries map[string]*fastEntry
}

func (f *fastMap) reset() {
	f.mu.Lock()
	emptyLocked(f.entries)
	f.mu.Unlock()
}

func emptyLocked(entries map[string]*fastEntry) {
	for k := range entries {
		delete(entries, k)
	}
}

// register gives an instance its fast map, which every revocation through this cache empties.
func (b *backend) register() *fastMap {
	f := &fastMap{entries: map[string]*fastEntry{}}
	c := b.cache
	c.fastMu.Lock()
	if len(c.fastMaps) >= maxFastMaps {
		c.fastMaps = c.fastMaps[1:]
	}
	c.fastMaps = append(c.fastMaps, f)
	c.fastMu.Unlock()
	return f
}

// revoked empties every instance's fast map: logout and revocation are immediate on this Traefik.
func (c *tokenCache) revoked() {
	c.fastMu.Lock()
	maps := c.fastMaps
	c.fastMu.Unlock()
	for _, f := range maps {
		f.reset()
	}
}
