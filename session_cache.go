package accessproxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// defaultCacheSize is cacheSize's default: 100 k live sessions with room to spare. The cache
// evicts in insertion order, so a working set as large as the cache would churn: keep it at about
// twice the live sessions. Memory is used as entries come (about 1.2 KiB each; TestCacheBytesPerSession).
const defaultCacheSize = 200000

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
	// bySid and byUser find a session's tokens and a user's sessions without a scan.
	bySid  map[string][]string
	byUser map[string][]string
	// ring holds tokens in insertion order: a new token evicts the oldest, so the cache never
	// holds more than its size and eviction is O(1).
	ring insertionRing

	seq          int64
	allSeq       int64 // the latest dropAll
	revokedSid   map[string]int64
	revokedUser  map[string]int64
	tombstonesAt map[string]int64 // "s:"/"u:" + id → when, for pruning
	prunedMs     int64

	fastMu   sync.Mutex
	fastMaps []*fastMap // the instances' fast-path maps: a revocation drops its sessions there
}

// dropAll drops everything: after a refresh-token reuse the store does not say which sessions
// it revoked.
func (c *tokenCache) dropAll() {
	c.clear(true)
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{entries: map[string]*tokenEntry{}, bySid: map[string][]string{}, byUser: map[string][]string{},
		ring: insertionRing{keys: make([]string, size)}, revokedSid: map[string]int64{}, revokedUser: map[string]int64{}, tombstonesAt: map[string]int64{}}
}

// grow makes room for size entries (instances sharing the cache may ask for more than the first).
func (c *tokenCache) grow(size int) {
	c.mu.Lock()
	if old := c.ring.keys; size > len(old) {
		keys := make([]string, size)
		copy(keys, old[c.ring.pos:])
		copy(keys[len(old)-c.ring.pos:], old[:c.ring.pos])
		c.ring = insertionRing{keys: keys, pos: len(old)}
	}
	c.mu.Unlock()
}

// storeLocked puts e under token, evicting the ring's oldest token for a new one, and indexes it.
func (c *tokenCache) storeLocked(token string, e *tokenEntry) {
	if old := c.entries[token]; old != nil {
		if old.claims.Sid != e.claims.Sid { // never: a token names one session
			c.deleteLocked(token)
		} else {
			c.entries[token] = e
			return
		}
	}
	if victim := c.ring.take(token); victim != "" {
		c.deleteLocked(victim)
	}
	c.entries[token] = e
	sid := e.claims.Sid
	if len(c.bySid[sid]) == 0 {
		c.byUser[e.claims.Sub] = append(c.byUser[e.claims.Sub], sid)
	}
	c.bySid[sid] = append(c.bySid[sid], token)
}

// deleteLocked removes token and its index entries (its ring slot is left to be reused).
func (c *tokenCache) deleteLocked(token string) {
	e := c.entries[token]
	if e == nil {
		return
	}
	delete(c.entries, token)
	sid := e.claims.Sid
	toks := without(c.bySid[sid], token)
	if len(toks) > 0 {
		c.bySid[sid] = toks
		return
	}
	delete(c.bySid, sid)
	if sids := without(c.byUser[e.claims.Sub], sid); len(sids) > 0 {
		c.byUser[e.claims.Sub] = sids
	} else {
		delete(c.byUser, e.claims.Sub)
	}
}

// without removes v from a short list, in place.
func without(list []string, v string) []string {
	for i, x := range list {
		if x == v {
			list[i] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
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
		c.deleteLocked(token)
		return false
	}
	c.storeLocked(token, e)
	return true
}

func (c *tokenCache) get(token string) *tokenEntry {
	c.mu.RLock()
	e := c.entries[token]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(token string, e *tokenEntry) {
	c.mu.Lock()
	c.storeLocked(token, e)
	c.mu.Unlock()
}

// remove drops a token found expired or gone. Fast-path entries need no flush for that: none
// outlives the token's expiry or cacheTTL.
func (c *tokenCache) remove(token string) {
	c.mu.Lock()
	c.deleteLocked(token)
	c.mu.Unlock()
}

// removeSession drops every token of a session (logout on this Traefik is immediate).
func (c *tokenCache) removeSession(sid string) { c.removeMatching(sid, "") }

// removeUser drops every token of a user.
func (c *tokenCache) removeUser(userID string) { c.removeMatching("", userID) }

// removeSessions drops every token of the given sessions.
// forgetOlder drops cached copies of sessions that changed in place and are older than the change
// (upstreamVersion, revalidatedAt; both 0: any copy), leaving no tombstone: a read in flight may
// still be kept (it is at most as old as the change).
func (c *tokenCache) forgetOlder(sids []string, upstreamVersion, revalidatedAt int64) {
	c.mu.Lock()
	for _, sid := range sids {
		for _, tok := range append([]string(nil), c.bySid[sid]...) {
			s := c.entries[tok].sess
			if (upstreamVersion == 0 && revalidatedAt == 0) || s.UpstreamVersion < upstreamVersion || s.RevalidatedAt < revalidatedAt {
				c.deleteLocked(tok)
			}
		}
	}
	c.mu.Unlock()
	// The fast maps may hold these sessions even where the cache no longer does: all of them go
	// (the next request reads the cache again).
	c.revoked(sids)
}

// mergeTouched takes the store's answer to a touch (a session without its secrets) into the
// cached copies of that session: its expiry and last uses, which other replicas may have moved.
func (c *tokenCache) mergeTouched(s *storeSession) {
	c.mu.Lock()
	for _, tok := range c.bySid[s.ID] {
		e := c.entries[tok]
		ns := *e.sess
		ns.ExpiresAt, ns.AbsoluteExpiresAt, ns.LastSeenAt, ns.HostsLastSeen = s.ExpiresAt, s.AbsoluteExpiresAt, s.LastSeenAt, s.HostsLastSeen
		ne := *e
		ne.sess = &ns
		c.entries[tok] = &ne
	}
	c.mu.Unlock()
}

// forgetAll empties the cache without tombstones (a feed resync).
func (c *tokenCache) forgetAll() {
	c.clear(false)
}

// clear empties the cache and the fast maps; with tombstone, reads in flight are refused too.
func (c *tokenCache) clear(tombstone bool) {
	c.mu.Lock()
	if tombstone {
		c.seq++
		c.allSeq = c.seq
	}
	c.entries = map[string]*tokenEntry{}
	c.bySid, c.byUser = map[string][]string{}, map[string][]string{}
	c.mu.Unlock()
	c.revoked(nil)
}

// removeSessions drops several sessions under one lock and one fast-path flush (a feed page).
func (c *tokenCache) removeSessions(sids []string) {
	if len(sids) == 0 {
		return
	}
	nowMs := time.Now().UnixMilli()
	c.mu.Lock()
	c.seq++
	for _, sid := range sids {
		c.revokedSid[sid] = c.seq
		c.tombstonesAt["s:"+sid] = nowMs
		c.deleteSessionLocked(sid)
	}
	c.pruneLocked(nowMs)
	c.mu.Unlock()
	c.revoked(sids)
}

// removeMatching drops the tokens of a session or a user, leaves a tombstone against reads in
// flight, then drops them from every fast map (in that order: see remember); a user's, by
// emptying the fast maps (they hold sessions the cache may have evicted).
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
	if sid != "" {
		c.deleteSessionLocked(sid)
	}
	if userID != "" {
		for _, s := range append([]string(nil), c.byUser[userID]...) {
			c.deleteSessionLocked(s)
		}
	}
	c.mu.Unlock()
	if userID != "" {
		c.revoked(nil)
	} else {
		c.revoked([]string{sid})
	}
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

func (c *tokenCache) deleteSessionLocked(sid string) {
	for _, tok := range append([]string(nil), c.bySid[sid]...) {
		c.deleteLocked(tok)
	}
}

// backend is what instances pointing at the same store and keys share, also across config
// reloads (New runs again on each): one HTTP client with its warm connections, one token cache.
type backend struct {
	http    *http.Client
	cache   *tokenCache
	clock   *clock
	feed    *feed
	touches *toucher
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
	if b != nil {
		b.cache.grow(cfg.CacheSize)
	}
	if b == nil {
		b = &backend{http: newStoreHTTPClient(), cache: newTokenCache(cfg.CacheSize), clock: &clock{}}
		// The feed's calls wait up to feedWaitMs by design; their deadline is the feed's horizon,
		// so a call that hangs ends the feed's word (and the fast path's) when its answer is late.
		b.feed = newFeed(newStoreClient(b.http, cfg.StoreURL, cfg.StoreToken, (feedWaitMs+feedSlackMs)*time.Millisecond))
		b.touches = newToucher(newStoreClient(b.http, cfg.StoreURL, cfg.StoreToken, 5*time.Second))
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
	ring    insertionRing // bounds entries
	// bySid finds a session's keys: a revocation drops those, not the whole map (with many
	// sessions, revocations and refresh rotations come every second).
	bySid map[string][]string
	// paths are raw paths known to take the fast path (plainPath and not routed: a pure function
	// of the path for an instance), so the hot path needs no regexp; bounded by pathRing.
	paths    map[string]bool
	pathRing insertionRing
}

// maxFastPaths bounds an instance's known fast paths.
const maxFastPaths = 10000

// insertionRing bounds a map by insertion order: a new key takes the oldest slot, and the key
// that held it ("" for none) is the caller's to evict. O(1); a slot may name a key already gone.
type insertionRing struct {
	keys []string
	pos  int
}

func (r *insertionRing) take(key string) (victim string) {
	victim = r.keys[r.pos]
	r.keys[r.pos] = key
	r.pos++
	if r.pos == len(r.keys) {
		r.pos = 0
	}
	return victim
}

// addPathLocked records a raw path as fast-pathable, a new one evicting the oldest.
func (f *fastMap) addPathLocked(p string) {
	if f.paths[p] {
		return
	}
	if victim := f.pathRing.take(p); victim != "" {
		delete(f.paths, victim)
	}
	f.paths[p] = true
}

// putLocked stores f under auth, a new key evicting the oldest one.
func (f *fastMap) putLocked(auth string, e *fastEntry) {
	if _, ok := f.entries[auth]; !ok {
		if victim := f.ring.take(auth); victim != "" {
			f.deleteLocked(victim)
		}
		sid := e.sid()
		f.bySid[sid] = append(f.bySid[sid], auth)
	}
	f.entries[auth] = e
}

// deleteLocked removes one key and its index entry.
func (f *fastMap) deleteLocked(auth string) {
	e := f.entries[auth]
	if e == nil {
		return
	}
	delete(f.entries, auth)
	sid := e.sid()
	if keys := without(f.bySid[sid], auth); len(keys) > 0 {
		f.bySid[sid] = keys
	} else {
		delete(f.bySid, sid)
	}
}

// dropSessions removes every key of the given sessions.
func (f *fastMap) dropSessions(sids []string) {
	f.mu.Lock()
	for _, sid := range sids {
		for _, auth := range f.bySid[sid] {
			delete(f.entries, auth)
		}
		delete(f.bySid, sid)
	}
	f.mu.Unlock()
}

func (f *fastMap) reset() {
	f.mu.Lock()
	for k := range f.entries {
		delete(f.entries, k)
	}
	f.bySid = map[string][]string{}
	f.mu.Unlock()
}

// register gives an instance its fast map, which every revocation through this cache empties.
func newFastMap(size int) *fastMap {
	return &fastMap{entries: map[string]*fastEntry{}, ring: insertionRing{keys: make([]string, size)}, bySid: map[string][]string{},
		paths: map[string]bool{}, pathRing: insertionRing{keys: make([]string, maxFastPaths)}}
}

func (b *backend) register(size int) *fastMap {
	f := newFastMap(size)
	c := b.cache
	c.fastMu.Lock()
	if len(c.fastMaps) >= maxFastMaps {
		c.fastMaps = c.fastMaps[1:]
	}
	c.fastMaps = append(c.fastMaps, f)
	c.fastMu.Unlock()
	return f
}

// revoked drops sessions sids (nil: everything) from every instance's fast map: logout and
// revocation are immediate on this Traefik.
func (c *tokenCache) revoked(sids []string) {
	c.fastMu.Lock()
	maps := c.fastMaps
	c.fastMu.Unlock()
	for _, f := range maps {
		if sids == nil {
			f.reset()
		} else {
			f.dropSessions(sids)
		}
	}
}
