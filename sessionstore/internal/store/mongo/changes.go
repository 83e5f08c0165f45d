package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The change feed (store.Change) without transactions:
//
//	sequences  _id="changes"; seq: the last number handed out ($inc through findOneAndUpdate)
//	changes    _id=seq (int64), seq (indexed), kind, sessionIds, userId, at, written (server clock)
//
// A change is written right after its state change, under the lock the operation holds (if any),
// so there is a short window in which the state has changed and the record is not there yet, and
// a crash in it loses the record (plugins then hold the session until it expires). What holds:
//
//   - No two records share a number, on MongoDB and on FerretDB: the number is the record's _id,
//     and an insert is atomic on both. FerretDB's $inc is not atomic (package doc): two replicas
//     may be handed the same number, and the second insert fails as a duplicate and takes the
//     next one. Within one process numbers are taken and inserted under one mutex (feedMu), so one
//     replica's records appear in number order (the feed is not held back by its own writes) and
//     never collide; uniqueness itself does not depend on it (the _id does that).
//   - Across replicas a lower number can become visible after a higher one (taken first, inserted
//     later). Changes therefore stops in front of a missing number while the record after it is
//     younger than gapSettle (twice OpTimeout, by the servers' wall clocks): a number taken but
//     not yet inserted is then waited for, and a number lost for good (a crash, a failed insert)
//     is passed after gapSettle.
//   - Head is the counter (or a higher stored number: a FerretDB $inc that lost an increment).
//
// Writers and readers of other replicas sharing the database see the records as soon as they are
// inserted; the API polls Changes to notice them.

const (
	seqDocID = "changes"
	// maxSeqAttempts bounds the retries of a number taken twice (FerretDB, concurrent replicas).
	maxSeqAttempts = 64
)

type changeDoc struct {
	ID         int64         `bson:"_id"`
	Seq        int64         `bson:"seq"`
	Kind       string        `bson:"kind"`
	SessionIDs []string      `bson:"sessionIds"`
	UserID     string        `bson:"userId"`
	At         int64         `bson:"at"`
	Written    bson.DateTime `bson:"written"`
	// The session's versions after a "changed" (absent otherwise).
	UpstreamVersion int64 `bson:"upstreamVersion,omitempty"`
	RevalidatedAt   int64 `bson:"revalidatedAt,omitempty"`
}

func (d *changeDoc) change() store.Change {
	ids := d.SessionIDs
	if ids == nil {
		ids = []string{}
	}
	return store.Change{Seq: d.Seq, Kind: d.Kind, SessionIDs: ids, UserID: d.UserID, At: d.At,
		UpstreamVersion: d.UpstreamVersion, RevalidatedAt: d.RevalidatedAt}
}

// recordChange stores c under the next free number. It runs even when the request's context has
// ended: the state change it belongs to is done.
func (s *Store) recordChange(ctx context.Context, c store.Change) error {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	for range maxSeqAttempts {
		seq, err := s.nextSeq(ctx)
		if errors.Is(err, store.ErrConflict) { // the counter's first upsert raced another replica's
			continue
		}
		if err != nil {
			return err
		}
		dc, cancel := s.detached(ctx)
		_, err = s.changes.InsertOne(dc, changeDoc{ID: seq, Seq: seq, Kind: c.Kind, SessionIDs: c.SessionIDs,
			UserID: c.UserID, At: c.At, Written: bson.NewDateTimeFromTime(time.Now()),
			UpstreamVersion: c.UpstreamVersion, RevalidatedAt: c.RevalidatedAt})
		cancel()
		if mongo.IsDuplicateKeyError(err) {
			continue // another replica took this number (FerretDB's $inc): take the next
		}
		if err != nil {
			s.log.Error("change feed: recording a change failed; plugins keep the sessions until they expire",
				"kind", c.Kind, "sessions", len(c.SessionIDs), "err", err)
			return wrap(err)
		}
		return nil
	}
	return fmt.Errorf("%w: mongo: no free change sequence number after %d attempts", store.ErrUnavailable, maxSeqAttempts)
}

// recordIf returns a function that records c when ok: recordIf(ctx)(store.RevokedChange(rev, now)).
func (s *Store) recordIf(ctx context.Context) func(store.Change, bool) error {
	return func(c store.Change, ok bool) error {
		if !ok {
			return nil
		}
		return s.recordChange(ctx, c)
	}
}

func (s *Store) nextSeq(ctx context.Context) (int64, error) {
	dc, cancel := s.detached(ctx)
	defer cancel()
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := s.sequences.FindOneAndUpdate(dc, byID(seqDocID), bson.D{{Key: "$inc", Value: bson.D{{Key: "seq", Value: int64(1)}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&d)
	if mongo.IsDuplicateKeyError(err) {
		return 0, store.ErrConflict
	}
	if err != nil {
		return 0, wrap(err)
	}
	return d.Seq, nil
}

// counter reads the last number handed out (0: none).
func (s *Store) counter(ctx context.Context) (int64, error) {
	var d struct {
		Seq int64 `bson:"seq"`
	}
	_, err := s.findOne(ctx, s.sequences, seqDocID, &d)
	return d.Seq, err
}

// findChanges returns the changes filter matches, ordered by seq (asc or desc), at most limit.
func (s *Store) findChanges(ctx context.Context, filter bson.D, asc bool, limit int) ([]changeDoc, error) {
	order := 1
	if !asc {
		order = -1
	}
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.changes.Find(c, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: order}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap(err)
	}
	var docs []changeDoc
	if err := cur.All(c, &docs); err != nil {
		return nil, wrap(err)
	}
	return docs, nil
}

// Changes reads the counter, the oldest record and the page (three reads: the page may hold a
// change newer than the counter read, and Head covers it).
func (s *Store) Changes(ctx context.Context, since int64, limit int) (store.ChangePage, error) {
	page := store.ChangePage{Changes: []store.Change{}}
	var err error
	if page.Head, err = s.counter(ctx); err != nil {
		return store.ChangePage{}, err
	}
	oldest, err := s.findChanges(ctx, bson.D{}, true, 1)
	if err != nil {
		return store.ChangePage{}, err
	}
	if len(oldest) > 0 {
		page.Oldest = oldest[0].Seq
	}
	if since > page.Head {
		// A FerretDB $inc that lost an increment leaves the counter below a stored number.
		newest, err := s.findChanges(ctx, bson.D{}, false, 1)
		if err != nil {
			return store.ChangePage{}, err
		}
		if len(newest) > 0 {
			page.Head = max(page.Head, newest[0].Seq)
		}
	}
	if limit <= 0 {
		return page, nil
	}
	docs, err := s.findChanges(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: since}}}}, true, limit)
	if err != nil {
		return store.ChangePage{}, err
	}
	// Below Oldest everything is trimmed (a consumer that far behind resyncs): no gap to wait for.
	next := max(since+1, page.Oldest)
	for i := range docs {
		d := &docs[i]
		if d.Seq != next && time.Since(d.Written.Time()) < s.gapSettle {
			break // a lower number may still be being inserted by another replica
		}
		page.Changes = append(page.Changes, d.change())
		page.Head = max(page.Head, d.Seq)
		next = d.Seq + 1
	}
	return page, nil
}

// TrimChanges deletes the oldest changes TrimPlan.Trimmed selects, at most p.Limit.
func (s *Store) TrimChanges(ctx context.Context, p store.TrimPlan) (int, bool, error) {
	head, err := s.counter(ctx)
	if err != nil {
		return 0, false, err
	}
	docs, err := s.findChanges(ctx, bson.D{}, true, p.Limit+1)
	if err != nil {
		return 0, false, err
	}
	var ids []int64
	more := false
	for i := range docs {
		if !p.Trimmed(docs[i].change(), head) {
			break
		}
		if len(ids) == p.Limit {
			more = true
			break
		}
		ids = append(ids, docs[i].ID)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	n, err := s.deleteMany(ctx, s.changes, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	return n, more, err
}

// TouchMany touches one session after the other (each under its lock, as TouchSession): the
// backend has no transaction to share.
func (s *Store) TouchMany(ctx context.Context, touches []store.TouchOne) ([]*store.Session, error) {
	out := make([]*store.Session, len(touches))
	for i, one := range touches {
		sess, err := s.TouchSession(ctx, one.ID, one.Touch)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = sess
	}
	return out, nil
}
