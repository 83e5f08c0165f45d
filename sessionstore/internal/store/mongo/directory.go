package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

var _ store.Directory = (*Store)(nil)

// liveSessionSummaries reads the fields the console needs of every live session (a full scan).
func (s *Store) liveSessionSummaries(ctx context.Context, now int64) ([]sessionDoc, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.sessions.Find(c, liveFilter(bson.D{}, now), options.Find().SetProjection(bson.D{
		{Key: "_id", Value: 1}, {Key: "userId", Value: 1}, {Key: "username", Value: 1}, {Key: "host", Value: 1},
		{Key: "createdAt", Value: 1}, {Key: "expiresAt", Value: 1}, {Key: "absoluteExpiresAt", Value: 1}}))
	if err != nil {
		return nil, wrap(err)
	}
	var docs []sessionDoc
	if err := cur.All(c, &docs); err != nil {
		return nil, wrap(err)
	}
	return docs, nil
}

// SearchUsers scans the live sessions.
func (s *Store) SearchUsers(ctx context.Context, q string, now int64, limit int) ([]store.UserMatch, error) {
	docs, err := s.liveSessionSummaries(ctx, now)
	if err != nil {
		return nil, err
	}
	users := map[string]*store.UserMatch{}
	newest := map[string]int64{}
	for i := range docs {
		d := &docs[i]
		if !d.session().Live(now) || !store.MatchUser(q, d.UserID, d.Username) {
			continue
		}
		u := users[d.UserID]
		if u == nil {
			u = &store.UserMatch{UserID: d.UserID}
			users[d.UserID] = u
		}
		u.Sessions++
		if d.Username != "" && d.CreatedAt >= newest[d.UserID] {
			u.Username, newest[d.UserID] = d.Username, d.CreatedAt
		}
	}
	return store.SortMatches(users, limit), nil
}

// LiveSessions scans the live sessions.
func (s *Store) LiveSessions(ctx context.Context, now int64) (int, map[string]int, error) {
	docs, err := s.liveSessionSummaries(ctx, now)
	if err != nil {
		return 0, nil, err
	}
	total, per := 0, map[string]int{}
	for i := range docs {
		if docs[i].session().Live(now) {
			total++
			per[docs[i].Host]++
		}
	}
	return total, per, nil
}
