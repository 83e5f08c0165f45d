package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
)

// What the feed guarantees without transactions (changes.go): a number handed out twice (FerretDB's
// $inc is not atomic across replicas) is skipped, not stored twice; a missing number is waited for
// while the record after it is young, then passed; Head covers a counter left behind.
func TestChangesWithoutTransactions(t *testing.T) {
	s := openTest(t, ferret.SharedURI(t), Options{OpTimeout: 150 * time.Millisecond}) // gapSettle 300ms
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	const now = int64(1_700_000_000_000)
	sess := &store.Session{ID: storetest.NewID(), UserID: "12", Host: "a.localhost", JWT: []byte("j"),
		HostsLastSeen: map[string]int64{"a.localhost": now}, IdleTimeoutMs: 600_000, Sliding: true,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now + 600_000, AbsoluteExpiresAt: now + 600_000}
	if _, err := s.CreateSession(ctx, sess, nil, nil, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	setUser := func() {
		t.Helper()
		if _, err := s.SetUser(ctx, sess.ID, store.UserUpdate{Audience: []string{}, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	setUser()
	setUser() // numbers 1, 2

	// Another replica's $inc overwrote ours: the counter says 1 though 2 is stored. The next
	// change finds 2 taken and takes 3; Head is never below a stored number.
	if _, err := s.sequences.UpdateOne(ctx, byID(seqDocID), bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: int64(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if page, err := s.Changes(ctx, 2, 10); err != nil || page.Head != 2 || len(page.Changes) != 0 {
		t.Fatalf("counter behind a stored number: %+v, %v", page, err)
	}
	setUser()
	page, err := s.Changes(ctx, 0, 10)
	if err != nil || len(page.Changes) != 3 || page.Changes[2].Seq != 3 || page.Head != 3 {
		t.Fatalf("after a number taken twice: %+v, %v", page, err)
	}

	// Number 4 is taken by another replica that has not inserted it yet; 5 is stored.
	if _, err := s.sequences.UpdateOne(ctx, byID(seqDocID), bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: int64(4)}}}}); err != nil {
		t.Fatal(err)
	}
	setUser()
	if page, err := s.Changes(ctx, 3, 10); err != nil || len(page.Changes) != 0 || page.Head != 5 {
		t.Fatalf("a young gap must hold the page back: %+v, %v", page, err)
	}
	if page, err := s.Changes(ctx, 0, 10); err != nil || len(page.Changes) != 3 {
		t.Fatalf("the changes before the gap: %+v, %v", page, err)
	}
	// The other replica inserts 4: both appear, in order.
	if _, err := s.changes.InsertOne(ctx, changeDoc{ID: 4, Seq: 4, Kind: store.ChangeRevoked, SessionIDs: []string{"x"},
		At: now, Written: bson.NewDateTimeFromTime(time.Now())}); err != nil {
		t.Fatal(err)
	}
	if page, err := s.Changes(ctx, 3, 10); err != nil || len(page.Changes) != 2 || page.Changes[0].Seq != 4 || page.Changes[1].Seq != 5 {
		t.Fatalf("after the gap filled: %+v, %v", page, err)
	}
	// A number lost for good (7, its writer died) is passed once the record after it is older
	// than gapSettle.
	if _, err := s.sequences.UpdateOne(ctx, byID(seqDocID), bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: int64(7)}}}}); err != nil {
		t.Fatal(err)
	}
	setUser() // 8
	if page, err := s.Changes(ctx, 5, 10); err != nil || len(page.Changes) != 0 {
		t.Fatalf("young gap: %+v, %v", page, err)
	}
	time.Sleep(2*s.gapSettle + 50*time.Millisecond)
	page, err = s.Changes(ctx, 5, 10)
	if err != nil || len(page.Changes) != 1 || page.Changes[0].Seq != 8 {
		t.Fatalf("a settled gap must be passed: %+v, %v", page, err)
	}
}
