package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func loadCounter(tx *bbolt.Tx, key string) (store.Counter, bool, error) {
	v := tx.Bucket(bCounters).Get([]byte(key))
	if v == nil {
		return store.Counter{}, false, nil
	}
	c, err := decodeCounter(v)
	return c, err == nil, err
}

// IncrCounter adds by to the open window of key, or opens a new one.
func (s *Store) IncrCounter(ctx context.Context, key string, windowMs, by, now int64) (store.Counter, error) {
	var out store.Counter
	apply := func(c store.Counter, found bool) store.Counter {
		if !found || now >= c.ResetAt {
			return store.Counter{Count: by, ResetAt: now + windowMs}
		}
		c.Count += by
		return c
	}
	if by == 0 {
		// A read: no write transaction, nothing stored.
		err := s.view(func(tx *bbolt.Tx) error {
			c, found, err := loadCounter(tx, key)
			out = apply(c, found)
			return err
		})
		return out, err
	}
	err := s.w.update(func(tx *bbolt.Tx) error {
		c, found, err := loadCounter(tx, key)
		if err != nil {
			return err
		}
		out = apply(c, found)
		if out.ResetAt != c.ResetAt {
			if found {
				if err := tx.Bucket(bCtrExp).Delete(expKey(c.ResetAt, key)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bCtrExp).Put(expKey(out.ResetAt, key), nil); err != nil {
				return err
			}
		}
		if err := recordAudit(tx)(store.CounterEvent(store.AuditFrom(ctx), by, now)); err != nil {
			return err
		}
		return tx.Bucket(bCounters).Put([]byte(key), encodeCounter(out))
	})
	return out, err
}

// DeleteCounter removes the counter of key.
func (s *Store) DeleteCounter(ctx context.Context, key string) (bool, error) {
	var deleted bool
	err := s.w.update(func(tx *bbolt.Tx) error {
		c, found, err := loadCounter(tx, key)
		if err != nil || !found {
			deleted = false
			return err
		}
		deleted = true
		if err := tx.Bucket(bCtrExp).Delete(expKey(c.ResetAt, key)); err != nil {
			return err
		}
		return tx.Bucket(bCounters).Delete([]byte(key))
	})
	return deleted, err
}
