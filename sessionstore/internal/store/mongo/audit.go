package mongo

import (
	"context"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The audit trail is the collection `audit`: _id = at×1000 + n (an int64 that grows with time and
// pages the trail; n counts within the millisecond, and a number another replica took is a
// duplicate _id, so the insert moves on to the next), indexed on at and userId. An event is
// inserted right after its state change, under the lock the operation holds (if any), like the
// change-feed record: a crash in between loses the event, never the state change's safety. A
// failed insert is logged, not answered: the state change is done.

var _ store.AuditLog = (*Store)(nil)

type auditDoc struct {
	ID         int64    `bson:"_id"`
	At         int64    `bson:"at"`
	Kind       string   `bson:"kind"`
	UserID     string   `bson:"userId,omitempty"`
	Username   string   `bson:"username,omitempty"`
	SessionID  string   `bson:"sessionId,omitempty"`
	SessionIDs []string `bson:"sessionIds,omitempty"`
	Host       string   `bson:"host,omitempty"`
	ClientAddr string   `bson:"clientAddr,omitempty"`
	UserAgent  string   `bson:"userAgent,omitempty"`
	Reason     string   `bson:"reason,omitempty"`
}

var auditN atomic.Int64

// recordAudit returns a function that inserts e when ok (after the state change; see above):
// s.recordAudit(ctx)(store.LoginEvent(note, sess), true).
func (s *Store) recordAudit(ctx context.Context) func(store.AuditEvent, bool) {
	return func(e store.AuditEvent, ok bool) {
		if ok {
			s.insertAudit(ctx, e)
		}
	}
}

func (s *Store) insertAudit(ctx context.Context, e store.AuditEvent) {
	d := auditDoc{At: e.At, Kind: e.Kind, UserID: e.UserID, Username: e.Username, SessionID: e.SessionID,
		SessionIDs: e.SessionIDs, Host: e.Host, ClientAddr: e.ClientAddr, UserAgent: e.UserAgent, Reason: e.Reason}
	c, cancel := s.detached(ctx)
	defer cancel()
	var err error
	for range maxSeqAttempts {
		d.ID = e.At*1000 + auditN.Add(1)%1000
		if err = s.insert(c, s.audit, &d); err != store.ErrConflict { //nolint:errorlint // insert returns it bare
			break
		}
	}
	if err != nil {
		s.log.Warn("audit: recording an event failed", "kind", e.Kind, "err", err)
	}
}

func (d *auditDoc) event() store.AuditEvent {
	ids := d.SessionIDs
	if ids == nil {
		ids = []string{}
	}
	return store.AuditEvent{ID: d.ID, At: d.At, Kind: d.Kind, UserID: d.UserID, Username: d.Username,
		SessionID: d.SessionID, SessionIDs: ids, Host: d.Host, ClientAddr: d.ClientAddr, UserAgent: d.UserAgent, Reason: d.Reason}
}

// ListAudit is one query, newest first (filters are plain typed values: nothing from a client becomes an operator).
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error) {
	filter := bson.D{}
	if q.UserID != "" {
		filter = append(filter, bson.E{Key: "userId", Value: q.UserID})
	}
	if q.Kind != "" {
		filter = append(filter, bson.E{Key: "kind", Value: q.Kind})
	}
	at := bson.D{}
	if q.Since > 0 {
		at = append(at, bson.E{Key: "$gte", Value: q.Since})
	}
	if q.Until > 0 {
		at = append(at, bson.E{Key: "$lt", Value: q.Until})
	}
	if len(at) > 0 {
		filter = append(filter, bson.E{Key: "at", Value: at})
	}
	if q.Cursor > 0 {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Cursor}}})
	}
	limit := q.PageLimit()
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.audit.Find(c, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)+1))
	if err != nil {
		return store.AuditPage{}, wrap(err)
	}
	var docs []auditDoc
	if err := cur.All(c, &docs); err != nil {
		return store.AuditPage{}, wrap(err)
	}
	page := store.AuditPage{Events: make([]store.AuditEvent, 0, len(docs))}
	for i := range docs {
		if len(page.Events) == limit {
			page.Next = page.Events[limit-1].ID
			break
		}
		page.Events = append(page.Events, docs[i].event())
	}
	return page, nil
}

// SweepAudit deletes the oldest events older than before, at most limit of them.
func (s *Store) SweepAudit(ctx context.Context, before int64, limit int) (int, bool, error) {
	due := bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}}
	return s.deleteBatch(ctx, s.audit, due, bson.D{{Key: "_id", Value: 1}}, limit, false)
}
