package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

var _ store.Directory = (*Store)(nil)

// forLiveSessions calls fn for every live session, in id order (a full scan: the console's, not the plugin's).
func (s *Store) forLiveSessions(now int64, fn func(*store.Session)) error {
	return s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bSessions).ForEach(func(_, v []byte) error {
			sess, err := decodeSession(v)
			if err != nil {
				return err
			}
			if sess.Live(now) {
				fn(sess)
			}
			return nil
		})
	})
}

// SearchUsers scans the live sessions.
func (s *Store) SearchUsers(ctx context.Context, q string, now int64, limit int) ([]store.UserMatch, error) {
	users := map[string]*store.UserMatch{}
	newest := map[string]int64{}
	err := s.forLiveSessions(now, func(sess *store.Session) {
		if !store.MatchUser(q, sess.UserID, sess.Username) {
			return
		}
		u := users[sess.UserID]
		if u == nil {
			u = &store.UserMatch{UserID: sess.UserID}
			users[sess.UserID] = u
		}
		u.Sessions++
		if sess.Username != "" && sess.CreatedAt >= newest[sess.UserID] {
			u.Username, newest[sess.UserID] = sess.Username, sess.CreatedAt
		}
	})
	if err != nil {
		return nil, err
	}
	return store.SortMatches(users, limit), nil
}

// LiveSessions scans the live sessions.
func (s *Store) LiveSessions(ctx context.Context, now int64) (int, map[string]int, error) {
	total, per := 0, map[string]int{}
	err := s.forLiveSessions(now, func(sess *store.Session) {
		total++
		per[sess.Host]++
	})
	return total, per, err
}
