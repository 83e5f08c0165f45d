package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func (s *Store) loadCounter(ctx context.Context, key string) (store.Counter, bool, error) {
	var d counterDoc
	found, err := s.findOne(ctx, s.counters, key, &d)
	if err != nil || !found {
		return store.Counter{}, false, err
	}
	return store.Counter{Count: d.Count, ResetAt: int64(d.ResetAt)}, true, nil
}

// IncrCounter: a read for by == 0; otherwise read, apply the fixed-window rule and write, under the
// key's lock. ($inc would be atomic on MongoDB, but FerretDB v1 applies it as read-modify-write and
// loses concurrent increments; and restarting an ended window needs the old resetAt, which without
// pipeline updates means a read first anyway.)
func (s *Store) IncrCounter(ctx context.Context, key string, windowMs, by, now int64) (store.Counter, error) {
	apply := func(c store.Counter, found bool) store.Counter {
		if !found || now >= c.ResetAt {
			return store.Counter{Count: by, ResetAt: now + windowMs}
		}
		c.Count += by
		return c
	}
	if by == 0 {
		c, found, err := s.loadCounter(ctx, key)
		if err != nil {
			return store.Counter{}, err
		}
		return apply(c, found), nil
	}
	var out store.Counter
	err := s.withLock(ctx, "c:"+key, func() (err error) {
		c, found, err := s.loadCounter(ctx, key)
		if err != nil {
			return err
		}
		out = apply(c, found)
		defer func() { // after the write, under the key's lock
			if err == nil {
				s.recordAudit(ctx)(store.CounterEvent(store.AuditFrom(ctx), by, now))
			}
		}()
		if !found {
			return s.insert(ctx, s.counters, &counterDoc{Key: key, Count: out.Count, ResetAt: bson.DateTime(out.ResetAt)})
		}
		matched, err := s.set(ctx, s.counters, key, bson.D{{Key: "count", Value: out.Count}, {Key: "resetAt", Value: bson.DateTime(out.ResetAt)}})
		if err == nil && !matched { // swept or deleted between read and write: start over as new
			out = apply(store.Counter{}, false)
			return s.insert(ctx, s.counters, &counterDoc{Key: key, Count: out.Count, ResetAt: bson.DateTime(out.ResetAt)})
		}
		return err
	})
	return out, err
}

// DeleteCounter removes the counter of key.
func (s *Store) DeleteCounter(ctx context.Context, key string) (bool, error) {
	var deleted bool
	err := s.withLock(ctx, "c:"+key, func() error {
		n, err := s.deleteMany(ctx, s.counters, byID(key))
		deleted = n > 0
		return err
	})
	return deleted, err
}
