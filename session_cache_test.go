package accessproxy

import (
	"runtime"
	"strconv"
	"testing"
)

func cacheEntry(user, sid string) *tokenEntry {
	return newTokenEntry(tokenClaims{Sub: user, Sid: sid, Exp: 4102444800}, &storeSession{ID: sid, UserID: user,
		StrapiJwt: "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6MX0.c2ln", AbsoluteExpiresAt: 4102444800000, Audience: []string{"a.localhost"}}, 0)
}

// checkIndexes wants bySid and byUser to name exactly what entries holds.
func checkIndexes(t *testing.T, c *tokenCache) {
	t.Helper()
	n := 0
	for sid, toks := range c.bySid {
		for _, tok := range toks {
			e := c.entries[tok]
			if e == nil || e.claims.Sid != sid {
				t.Fatalf("bySid[%s] names %s, which is not cached under it", sid, tok)
			}
			n++
		}
	}
	if n != len(c.entries) {
		t.Fatalf("bySid indexes %d tokens, the cache holds %d", n, len(c.entries))
	}
	for user, sids := range c.byUser {
		for _, sid := range sids {
			if len(c.bySid[sid]) == 0 || c.entries[c.bySid[sid][0]].claims.Sub != user {
				t.Fatalf("byUser[%s] names %s", user, sid)
			}
		}
	}
}

func TestCacheBoundAndOldestEvicted(t *testing.T) {
	c := newTokenCache(3)
	for i := 0; i < 5; i++ {
		c.put("t"+strconv.Itoa(i), cacheEntry("u"+strconv.Itoa(i%2), "s"+strconv.Itoa(i)))
		checkIndexes(t, c)
	}
	if len(c.entries) != 3 || c.get("t0") != nil || c.get("t1") != nil || c.get("t4") == nil {
		t.Fatalf("after 5 puts into 3: %d entries, t0 %v, t4 %v", len(c.entries), c.get("t0") != nil, c.get("t4") != nil)
	}
	// Updating a cached token takes no new slot.
	c.put("t2", cacheEntry("u0", "s2"))
	if c.get("t3") == nil || c.get("t2") == nil {
		t.Fatal("an update evicted a neighbour")
	}
	// A removed token's slot names nothing: evicting it removes nothing else.
	c.remove("t2")
	c.put("t5", cacheEntry("u1", "s5")) // takes t2's old slot: evicts nothing live
	c.put("t6", cacheEntry("u0", "s6"))
	checkIndexes(t, c)
	if len(c.entries) > 3 {
		t.Fatalf("%d entries in a cache of 3", len(c.entries))
	}
	c.removeUser("u1")
	checkIndexes(t, c)
	for tok, e := range c.entries {
		if e.claims.Sub == "u1" {
			t.Fatalf("%s of u1 survived its user's removal", tok)
		}
	}
	c.grow(10)
	for i := 10; i < 20; i++ {
		c.put("t"+strconv.Itoa(i), cacheEntry("u2", "s"+strconv.Itoa(i)))
	}
	checkIndexes(t, c)
	if len(c.entries) != 10 {
		t.Fatalf("grown to 10: %d entries", len(c.entries))
	}
	c.removeSessions([]string{"s10", "s11", "nope"})
	checkIndexes(t, c)
	if c.get("t10") != nil || c.get("t11") != nil || len(c.entries) != 8 {
		t.Fatalf("removeSessions: %d left", len(c.entries))
	}
}

func TestFastMapBound(t *testing.T) {
	f := newFastMap(2)
	for _, k := range []string{"a", "b", "a", "c"} {
		f.putLocked(k, fastFor(k))
	}
	if len(f.entries) != 2 || f.entries["a"] != nil || f.entries["c"] == nil || f.entries["b"] == nil {
		t.Fatalf("fast map: %v", f.entries)
	}
	if len(f.bySid) != 2 || f.bySid["sid-a"] != nil {
		t.Fatalf("fast map index after eviction: %v", f.bySid)
	}
}

func fastFor(sid string) *fastEntry {
	return &fastEntry{e: &tokenEntry{claims: tokenClaims{Sid: "sid-" + sid}}}
}

// A revocation drops its sessions' keys from the fast maps and leaves the others': with many
// sessions, a logout or a rotation every second must not send every token the slow way.
func TestFastMapDropsOnlyRevokedSessions(t *testing.T) {
	c := newTokenCache(10)
	f := newFastMap(10)
	c.fastMaps = append(c.fastMaps, f)
	f.putLocked("Bearer a1", fastFor("a"))
	f.putLocked("bearer a1", fastFor("a")) // another spelling of the same token
	f.putLocked("Bearer b1", fastFor("b"))
	f.putLocked("Bearer c1", fastFor("c"))
	c.removeSession("sid-a")
	if f.entries["Bearer a1"] != nil || f.entries["bearer a1"] != nil || f.bySid["sid-a"] != nil {
		t.Fatal("a revoked session stayed in the fast map")
	}
	if f.entries["Bearer b1"] == nil || f.entries["Bearer c1"] == nil {
		t.Fatal("a revocation dropped other sessions from the fast map")
	}
	c.removeSessions([]string{"sid-b"})
	c.forgetOlder([]string{"sid-c"}, 2, 0)
	if len(f.entries) != 0 || len(f.bySid) != 0 {
		t.Fatalf("fast map after the feed's revocation and change: %v %v", f.entries, f.bySid)
	}
	f.putLocked("Bearer d1", fastFor("d"))
	c.removeUser("u1") // a user's sessions may be gone from the cache: everything goes
	if len(f.entries) != 0 {
		t.Fatal("a user's revocation left the fast map")
	}
}

// TestCacheBytesPerSession measures what one cached session costs (docs/benchmarks.md quotes it).
func TestCacheBytesPerSession(t *testing.T) {
	const n = 20000
	c := newTokenCache(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		id := strconv.Itoa(1000000 + i)
		// A proxy token is ~230 bytes; a session id 43.
		tok := "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZmdoIiwidHlwIjoiSldUIn0.eyJpc3MiOiJzdHJhcGktYWNjZXNzLXByb3h5Iiwic3ViIjoi" + id + "Iiwic2lkIjoi" + id + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		c.put(tok, cacheEntry("u"+id, "s"+id+"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / n
	t.Logf("%d bytes per cached session (token, entry, session record, indexes)", per)
	if per < 200 || per > 8192 {
		t.Fatalf("%d bytes per cached session: outside any plausible range", per)
	}
	if len(c.entries) != n {
		t.Fatal(len(c.entries))
	}
}

func TestForgetOlderKeepsACopyAsNew(t *testing.T) {
	c := newTokenCache(10)
	e := cacheEntry("u", "s")
	e.sess.UpstreamVersion, e.sess.RevalidatedAt = 2, 500
	c.put("t", e)
	c.forgetOlder([]string{"s"}, 2, 500) // the replica that made the change
	if c.get("t") == nil {
		t.Fatal("a copy as new as the change was dropped")
	}
	c.forgetOlder([]string{"s"}, 2, 600) // re-read since this copy
	if c.get("t") != nil {
		t.Fatal("a copy older than the change was kept")
	}
	c.put("t", e)
	c.forgetOlder([]string{"s"}, 0, 0) // a store that does not say: any copy goes
	if c.get("t") != nil {
		t.Fatal("a change without versions kept the copy")
	}
	checkIndexes(t, c)
}
