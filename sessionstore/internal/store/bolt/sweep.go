package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// expiredKeys returns up to limit expiry index keys whose time is <= now, oldest first.
func expiredKeys(b *bbolt.Bucket, now int64, limit int) (keys [][]byte, more bool) {
	c := b.Cursor()
	for k, _ := c.First(); k != nil && expOf(k) <= now; k, _ = c.Next() {
		if len(keys) == limit {
			return keys, true
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys, false
}

// sweepIndex removes up to limit expired entries of one expiry index. remove deletes the record an
// entry points to and reports whether there was one; the entry itself always goes, so a stale entry
// can never make the sweeper spin.
func sweepIndex(tx *bbolt.Tx, index []byte, now int64, limit int, remove func(id string) (bool, error)) (n int, more bool, err error) {
	keys, more := expiredKeys(tx.Bucket(index), now, limit)
	for _, k := range keys {
		removed, err := remove(string(k[8:]))
		if err != nil {
			return 0, false, err
		}
		if removed {
			n++
		}
		if err := tx.Bucket(index).Delete(k); err != nil {
			return 0, false, err
		}
	}
	return n, more, nil
}

// Sweep deletes expired records, at most limit of each kind, in one write transaction so that a
// large backlog is cleared in short steps that let other writes in between.
func (s *Store) Sweep(ctx context.Context, now int64, limit int) (store.SweepResult, error) {
	var res store.SweepResult
	err := s.w.update(func(tx *bbolt.Tx) error {
		res = store.SweepResult{}
		var more [4]bool
		var err error
		res.Sessions, more[0], err = sweepIndex(tx, bSessExp, now, limit, func(id string) (bool, error) {
			sess, err := loadSession(tx, id)
			if err != nil || sess == nil || sess.Live(now) {
				return false, err
			}
			return true, removeSession(tx, sess)
		})
		if err != nil {
			return err
		}
		res.Tokens, more[1], err = sweepIndex(tx, bTokExp, now, limit, func(hash string) (bool, error) {
			t, err := loadToken(tx, hash)
			if err != nil || t == nil || t.Live(now) {
				return false, err
			}
			return true, removeToken(tx, t)
		})
		if err != nil {
			return err
		}
		res.Families, more[2], err = sweepIndex(tx, bFamExp, now, limit, func(id string) (bool, error) {
			f, err := loadFamily(tx, id)
			if err != nil || f == nil || f.Live(now) {
				return false, err
			}
			// The family's sessions keep their own expiry; only its membership entries go.
			for _, bucket := range [][]byte{bFamSess, bFamTok} {
				for _, member := range ownedIDs(tx.Bucket(bucket), id) {
					if err := tx.Bucket(bucket).Delete(pairKey(id, member)); err != nil {
						return false, err
					}
				}
			}
			return true, removeFamilyRecord(tx, f)
		})
		if err != nil {
			return err
		}
		res.Counters, more[3], err = sweepIndex(tx, bCtrExp, now, limit, func(key string) (bool, error) {
			c, found, err := loadCounter(tx, key)
			if err != nil || !found || now < c.ResetAt {
				return false, err
			}
			return true, tx.Bucket(bCounters).Delete([]byte(key))
		})
		res.More = more[0] || more[1] || more[2] || more[3]
		return err
	})
	return res, err
}
