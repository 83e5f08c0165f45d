package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The per-user session cap of CreateSession (store.PlanEviction).

func createCapped(b store.Backend, s *store.Session, f *store.Family, tok *store.RefreshToken, lim store.Limit) (store.Revocation, error) {
	return b.CreateSession(ctx, s, f, tok, lim)
}

// liveIDs lists the user's live sessions at now, sorted.
func liveIDs(t *testing.T, b store.Backend, user string, now int64) []string {
	t.Helper()
	list, err := b.ListUserSessions(ctx, user, now)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// testLimitEvict: at the cap, a create evicts the least recently used of the user's live sessions
// (ties: the oldest) with its refresh family, names them and records the revocation; expired
// sessions, other users and creates under the cap are left alone.
func testLimitEvict(t *testing.T, b store.Backend) {
	evict := store.Limit{Max: 2}
	s1 := newSession("12", t0, 60_000, t0+600_000)
	f1, tok1 := withFamily(s1, t0+600_000)
	s2 := newSession("12", t0+1, 60_000, t0+600_000)
	for _, c := range []struct {
		s   *store.Session
		f   *store.Family
		tok *store.RefreshToken
	}{{s1, f1, tok1}, {s2, nil, nil}} {
		if rev, err := createCapped(b, c.s, c.f, c.tok, evict); err != nil || !revoked(rev, "12", "", 0) {
			t.Fatalf("create under the cap = %+v, %v; want nothing evicted", rev, err)
		}
	}
	dead := newSession("12", t0, 5, t0+600_000) // idled out from t0+5: neither counted nor evicted
	mustCreate(t, b, dead, nil, nil)
	other := newSession("13", t0, 60_000, t0+600_000)
	mustCreate(t, b, other, nil, nil)
	// s2 is the least recently used once s1 is used again.
	noErr(t)(b.TouchSession(ctx, s1.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 10}))

	s3 := newSession("12", t0+20, 60_000, t0+600_000)
	rev, err := createCapped(b, s3, nil, nil, evict)
	if err != nil || !revoked(rev, "12", "", 1, s2.ID) {
		t.Fatalf("third create at cap 2 = %+v, %v; want %s evicted", rev, err, s2.ID)
	}
	if got, want := liveIDs(t, b, "12", t0+20), sortedIDs(s1.ID, s3.ID); !slices.Equal(got, want) {
		t.Fatalf("alive after the eviction: %v, want %v", got, want)
	}

	// Now s1 (with a family) is the least recently used: it goes with its family.
	noErr(t)(b.TouchSession(ctx, s3.ID, store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 30}))
	s4 := newSession("12", t0+40, 60_000, t0+600_000)
	f4, tok4 := withFamily(s4, t0+600_000)
	rev, err = createCapped(b, s4, f4, tok4, evict)
	if err != nil || !revoked(rev, "12", "", 1, s1.ID) {
		t.Fatalf("create evicting a session with a family = %+v, %v; want %s", rev, err, s1.ID)
	}
	_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: tok1.Hash, NewTokenHash: NewHash(), Now: t0 + 41, NewSession: rebuild(NewID(), t0+41, 60_000)})
	wantErr(t, "refresh of an evicted session's family", err, store.ErrNotFound)
	_, err = b.DeleteSession(ctx, s1.ID, store.Deletion{WithFamily: true, Now: t0 + 41})
	wantErr(t, "revoke the evicted session's family again", err, store.ErrNotFound)
	if got, want := liveIDs(t, b, "12", t0+41), sortedIDs(s3.ID, s4.ID); !slices.Equal(got, want) {
		t.Fatalf("alive after the second eviction: %v, want %v", got, want)
	}
	// The new login's family works; the other user and the idled-out record are untouched.
	next := NewHash()
	r4, err := b.RotateRefresh(ctx, store.Rotation{TokenHash: tok4.Hash, NewTokenHash: next, Now: t0 + 42, NewSession: rebuild(NewID(), t0+42, 60_000)})
	if err != nil {
		t.Fatalf("refresh of the new login: %v", err)
	}
	mustGet(t, b, other.ID, t0+42)

	// A rotation replaces a session of the same login: the user still has 2, no cap applies to it.
	if got, want := liveIDs(t, b, "12", t0+42), sortedIDs(s3.ID, r4.Session.ID); !slices.Equal(got, want) {
		t.Fatalf("alive after the rotation: %v, want %v", got, want)
	}

	// Equal last use: the oldest created goes. A lower cap evicts down to cap-1 before the create.
	noErr(t)(b.TouchMany(ctx, []store.TouchOne{
		{ID: s3.ID, Touch: store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 50}},
		{ID: r4.Session.ID, Touch: store.Touch{Host: "a.localhost", IdleTimeoutMs: 60_000, Sliding: true, Now: t0 + 50}},
	}))
	s5 := newSession("12", t0+60, 60_000, t0+600_000)
	if rev, err = createCapped(b, s5, nil, nil, evict); err != nil || !revoked(rev, "12", "", 1, s3.ID) {
		t.Fatalf("tie on last use = %+v, %v; want the older %s evicted", rev, err, s3.ID)
	}
	s6 := newSession("12", t0+70, 60_000, t0+600_000)
	if rev, err = createCapped(b, s6, nil, nil, store.Limit{Max: 1}); err != nil || !revoked(rev, "12", "", 2, r4.Session.ID, s5.ID) {
		t.Fatalf("create at cap 1 with 2 alive = %+v, %v; want both evicted", rev, err)
	}
	if got := liveIDs(t, b, "12", t0+70); !slices.Equal(got, []string{s6.ID}) {
		t.Fatalf("alive at cap 1: %v, want only %s", got, s6.ID)
	}
	// No cap: nothing is evicted, whatever the count.
	if rev, err = createCapped(b, newSession("12", t0+80, 60_000, t0+600_000), nil, nil, store.Limit{}); err != nil || !revoked(rev, "12", "", 0) {
		t.Fatalf("uncapped create = %+v, %v", rev, err)
	}
	wantCount(t, b, 4) // s6, the uncapped one, other, dead (not swept)

	// The feed names every eviction (the family revocation with it), and nothing else here: the
	// rotation's replaced session is the only other record.
	wantChanges(t, b,
		want{store.ChangeRevoked, "12", t0 + 20, []string{s2.ID}},
		want{store.ChangeRevoked, "12", t0 + 40, []string{s1.ID}},
		want{store.ChangeRevoked, "12", t0 + 42, []string{s4.ID}},
		want{store.ChangeRevoked, "12", t0 + 60, []string{s3.ID}},
		want{store.ChangeRevoked, "12", t0 + 70, []string{r4.Session.ID, s5.ID}},
	)
}

// testLimitRefuse: at the cap a Refuse create answers ErrSessionLimit and writes nothing: no
// session, no family, no token, no change; under the cap (expired sessions do not count) it creates.
func testLimitRefuse(t *testing.T, b store.Backend) {
	refuse := store.Limit{Max: 2, Refuse: true}
	dead := newSession("12", t0, 5, t0+600_000)
	mustCreate(t, b, dead, nil, nil)
	a := newSession("12", t0, 60_000, t0+600_000)
	af, atok := withFamily(a, t0+600_000)
	if _, err := createCapped(b, a, af, atok, refuse); err != nil {
		t.Fatalf("first create: %v", err)
	}
	c := newSession("12", t0+10, 60_000, t0+600_000)
	if _, err := createCapped(b, c, nil, nil, refuse); err != nil {
		t.Fatalf("second create (the expired session does not count): %v", err)
	}
	x := newSession("12", t0+20, 60_000, t0+600_000)
	xf, xtok := withFamily(x, t0+600_000)
	rev, err := createCapped(b, x, xf, xtok, refuse)
	wantErr(t, "third create at cap 2, refuse", err, store.ErrSessionLimit)
	if len(rev.SessionIDs) != 0 || rev.Live != 0 {
		t.Fatalf("a refused create revoked %+v", rev)
	}
	_, err = b.GetSession(ctx, x.ID, t0+20)
	wantErr(t, "the refused session", err, store.ErrNotFound)
	_, err = b.RotateRefresh(ctx, store.Rotation{TokenHash: xtok.Hash, NewTokenHash: NewHash(), Now: t0 + 21, NewSession: rebuild(NewID(), t0+21, 60_000)})
	wantErr(t, "the refused login's refresh token", err, store.ErrNotFound)
	// The same ids and hash are free: nothing of the refused create was kept.
	mustCreate(t, b, x, xf, xtok)
	noErr(t)(b.DeleteSession(ctx, x.ID, store.Deletion{WithFamily: true, Now: t0 + 22}))
	if got, want := liveIDs(t, b, "12", t0+22), sortedIDs(a.ID, c.ID); !slices.Equal(got, want) {
		t.Fatalf("alive after the refusal: %v, want %v", got, want)
	}
	// A higher cap, another user: room again.
	if _, err := createCapped(b, newSession("12", t0+30, 60_000, t0+600_000), nil, nil, store.Limit{Max: 3, Refuse: true}); err != nil {
		t.Fatalf("create at cap 3: %v", err)
	}
	if _, err := createCapped(b, newSession("13", t0+30, 60_000, t0+600_000), nil, nil, refuse); err != nil {
		t.Fatalf("another user's create: %v", err)
	}
	// Only the delete above is in the feed.
	wantChanges(t, b, want{store.ChangeRevoked, "12", t0 + 22, []string{x.ID}})
}

// testLimitConcurrent: 20 simultaneous logins of one user at cap 2 never leave more than 2 alive:
// with evictOldest all succeed and 18 sessions are evicted, each once; with refuse exactly 2 succeed.
func testLimitConcurrent(t *testing.T, b store.Backend) {
	raceLimit(t, []store.Backend{b}, 20)
}

// raceLimit runs n creates of one user at cap 2 spread over the backends (instances sharing one
// database), once evicting and once refusing, and checks what the cap promises.
func raceLimit(t *testing.T, backends []store.Backend, n int) {
	t.Helper()
	for _, refuse := range []bool{false, true} {
		user := fmt.Sprint("race-", refuse)
		lim := store.Limit{Max: 2, Refuse: refuse}
		created := make([]*store.Session, n)
		revs := make([]store.Revocation, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			s := newSession(user, t0+int64(i%3), 60_000, t0+600_000)
			var f *store.Family
			var tok *store.RefreshToken
			if i%2 == 0 { // half of them with a refresh family, revoked with the session
				f, tok = withFamily(s, t0+600_000)
			}
			created[i] = s
			b := backends[i%len(backends)]
			wg.Go(func() { revs[i], errs[i] = createCapped(b, s, f, tok, lim) })
		}
		wg.Wait()
		ok, evicted := 0, map[string]int{}
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case refuse && errors.Is(err, store.ErrSessionLimit):
			default:
				t.Fatalf("create %d (refuse=%v): %v", i, refuse, err)
			}
			for _, id := range revs[i].SessionIDs {
				evicted[id]++
			}
		}
		alive := liveIDs(t, backends[0], user, t0+10)
		if len(alive) != 2 {
			t.Fatalf("refuse=%v: %d alive after %d concurrent creates at cap 2: %v", refuse, len(alive), n, alive)
		}
		if refuse && (ok != 2 || len(evicted) != 0) {
			t.Fatalf("refuse: %d creates succeeded (want 2), %d sessions evicted (want 0)", ok, len(evicted))
		}
		if !refuse {
			for id, times := range evicted {
				if times != 1 || slices.Contains(alive, id) {
					t.Fatalf("evictOldest: session %s evicted %d times (alive: %v)", id, times, alive)
				}
			}
			if ok != n || len(evicted) != n-2 {
				t.Fatalf("evictOldest: %d creates succeeded (want %d), %d evicted (want %d)", ok, n, len(evicted), n-2)
			}
		}
	}
}

// RunReplicas runs the cases where several instances of a backend share one database (replicas
// behind a load balancer): newPair returns two of them on a fresh database; the suite closes both.
// A backend one process owns (bolt) has none.
func RunReplicas(t *testing.T, newPair func(t *testing.T) (store.Backend, store.Backend)) {
	t.Run("LimitConcurrentReplicas", func(t *testing.T) {
		a, b := newPair(t)
		t.Cleanup(func() {
			for _, s := range []store.Backend{a, b} {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
		raceLimit(t, []store.Backend{a, b}, 20)
	})
}
