package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// sweepColl deletes up to limit documents whose field is <= now; the delete re-checks the expiry,
// so a record extended in between stays.
func (s *Store) sweepColl(ctx context.Context, coll *mongo.Collection, field string, now int64, limit int) (int, bool, error) {
	due := bson.D{{Key: field, Value: bson.D{{Key: "$lte", Value: bson.DateTime(now)}}}}
	return s.deleteBatch(ctx, coll, due, nil, limit, true)
}

// deleteBatch deletes up to limit documents matching due, in sort's order when given: their ids
// first (limit+1 of them, to know whether more remain), then a delete of those ids, with due
// again when recheck. It says how many went and whether more remain.
func (s *Store) deleteBatch(ctx context.Context, coll *mongo.Collection, due, sort bson.D, limit int, recheck bool) (int, bool, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	find := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit) + 1)
	if sort != nil {
		find.SetSort(sort)
	}
	cur, err := coll.Find(c, due, find)
	if err != nil {
		return 0, false, wrap(err)
	}
	var ids []struct {
		ID bson.RawValue `bson:"_id"`
	}
	if err := cur.All(c, &ids); err != nil {
		return 0, false, wrap(err)
	}
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	list := make([]bson.RawValue, len(ids))
	for i, d := range ids {
		list[i] = d.ID
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: list}}}}
	if recheck {
		filter = append(filter, due...)
	}
	n, err := s.deleteMany(ctx, coll, filter)
	return n, more, err
}

// Sweep deletes expired sessions, tokens, families and counters, at most limit of each. A family's
// sessions and tokens keep their own expiry. Lock documents left by a crashed process are removed
// too (by the wall clock: they are never older than their lease while in use).
func (s *Store) Sweep(ctx context.Context, now int64, limit int) (store.SweepResult, error) {
	var res store.SweepResult
	var more [4]bool
	var err error
	if res.Sessions, more[0], err = s.sweepColl(ctx, s.sessions, "expiresAt", now, limit); err != nil {
		return res, err
	}
	if res.Tokens, more[1], err = s.sweepColl(ctx, s.tokens, "expiresAt", now, limit); err != nil {
		return res, err
	}
	if res.Families, more[2], err = s.sweepColl(ctx, s.families, "expiresAt", now, limit); err != nil {
		return res, err
	}
	if res.Counters, more[3], err = s.sweepColl(ctx, s.counters, "resetAt", now, limit); err != nil {
		return res, err
	}
	if _, _, err := s.sweepColl(ctx, s.locks, "until", time.Now().Add(-time.Minute).UnixMilli(), limit); err != nil {
		return res, err
	}
	res.More = more[0] || more[1] || more[2] || more[3]
	return res, nil
}
