package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
)

const t0 = int64(1_700_000_000_000)

func session(user string) *store.Session {
	return &store.Session{ID: storetest.NewID(), UserID: user, Host: "a.localhost", JWT: []byte("sealed"),
		UpstreamVersion: 1, CreatedAt: t0, LastSeenAt: t0, HostsLastSeen: map[string]int64{"a.localhost": t0},
		IdleTimeoutMs: 60_000, Sliding: true, ExpiresAt: t0 + 60_000, AbsoluteExpiresAt: t0 + 3_600_000}
}

func mustCreate(t *testing.T, b store.Backend, s *store.Session, f *store.Family, tok *store.RefreshToken) {
	t.Helper()
	if _, err := b.CreateSession(t.Context(), s, f, tok, store.Limit{}); err != nil {
		t.Fatal(err)
	}
}

// TestChangesOrderConcurrentWriters: 8 writers on two stores sharing one database record changes
// while a reader follows the feed. The reader must get every number exactly once and in order,
// with no gap: a number that commits after a higher one (what a plain sequence allows) would show
// here as a gap passed over, or as a number seen late.
func TestChangesOrderConcurrentWriters(t *testing.T) {
	db := freshDB(t)
	a, b := openTest(t, db), openTest(t, db)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*Store{a, b}[w%2]
			user := fmt.Sprintf("u%d", w)
			for i := range each {
				sess := session(user)
				if _, err := s.CreateSession(context.Background(), sess, nil, nil, store.Limit{}); err != nil {
					errs <- err
					return
				}
				// Alternate a change in place and a revocation: two kinds of writing transaction.
				var err error
				if i%2 == 0 {
					_, err = s.SetUser(context.Background(), sess.ID, store.UserUpdate{Audience: []string{"x"}, Now: t0 + 1})
				} else {
					_, err = s.DeleteSession(context.Background(), sess.ID, store.Deletion{Now: t0 + 1})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var since int64
	for since < writers*each {
		sig := b.ChangeSignal() // before the read: a commit after it closes it
		page, err := b.Changes(ctx, since, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Changes {
			if c.Seq != since+1 {
				t.Fatalf("after seq %d the feed gave %d (head %d)", since, c.Seq, page.Head)
			}
			since = c.Seq
		}
		if len(page.Changes) > 0 {
			continue
		}
		select {
		case <-sig:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("feed stuck at %d of %d", since, writers*each)
		}
	}
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page, err := a.Changes(ctx, 0, 1000)
	if err != nil || page.Head != writers*each || len(page.Changes) != writers*each {
		t.Fatalf("final page: head %d, %d changes, %v", page.Head, len(page.Changes), err)
	}
}

// TestChangeSignalAcrossStores: a store waiting on its ChangeSignal is woken by a change another
// store recorded (LISTEN/NOTIFY), and then reads it: the wait ends with the change, long before
// the deadline the API would give a long-poll.
func TestChangeSignalAcrossStores(t *testing.T) {
	db := freshDB(t)
	writer, waiter := openTest(t, db), openTest(t, db)
	<-waiter.listener.listening // from here on only a notification closes the signal
	sess := session("7")
	mustCreate(t, writer, sess, nil, nil)
	head, err := waiter.Changes(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sig := waiter.ChangeSignal()
	deadline := time.Now().Add(30 * time.Second) // GET /v1/changes' longest wait
	if _, err := writer.DeleteSession(t.Context(), sess.ID, store.Deletion{Now: t0 + 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sig:
	case <-time.After(time.Until(deadline)):
		t.Fatal("no notification within the long-poll's wait")
	}
	page, err := waiter.Changes(t.Context(), head.Head, 10)
	if err != nil || len(page.Changes) != 1 || page.Changes[0].SessionIDs[0] != sess.ID {
		t.Fatalf("after the wake-up: %+v, %v", page, err)
	}
	if time.Now().After(deadline) {
		t.Fatal("woken only at the deadline")
	}
}
