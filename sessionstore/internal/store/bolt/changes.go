package bolt

import (
	"context"
	"encoding/binary"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The change feed is the bucket `changes`: be64(seq) → change. Its sequence (bbolt's
// NextSequence, kept in the bucket header) numbers the records; it is written in the transaction
// of the state change, so a reader sees both or neither, and because bbolt commits one write
// transaction at a time the records become visible in sequence order. A rolled-back transaction
// (a failed group of the writer, run again) rolls the sequence back with it: numbers are never
// skipped nor reused.

func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) } //nolint:gosec // seq > 0

func seqOf(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) } //nolint:gosec // written by seqKey

// recordChange stores c under the next sequence number (in the caller's write transaction).
func recordChange(tx *bbolt.Tx, c store.Change) error {
	b := tx.Bucket(bChanges)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(seqKey(int64(seq)), encodeChange(c)) //nolint:gosec // a bucket sequence stays far below 2^63
}

// recordIf returns a function that records c when ok (called with a rule of changes.go:
// recordIf(tx)(store.RevokedChange(rev, now))).
func recordIf(tx *bbolt.Tx) func(c store.Change, ok bool) error {
	return func(c store.Change, ok bool) error {
		if !ok {
			return nil
		}
		return recordChange(tx, c)
	}
}

// Changes reads the page in one read transaction.
func (s *Store) Changes(ctx context.Context, since int64, limit int) (store.ChangePage, error) {
	page := store.ChangePage{Changes: []store.Change{}}
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bChanges)
		if b == nil { // a file opened read-only before the feed existed
			return nil
		}
		page.Head = int64(b.Sequence()) //nolint:gosec // far below 2^63
		c := b.Cursor()
		if k, _ := c.First(); k != nil {
			page.Oldest = seqOf(k)
		}
		if limit <= 0 {
			return nil
		}
		for k, v := c.Seek(seqKey(max(since, 0) + 1)); k != nil && len(page.Changes) < limit; k, v = c.Next() {
			ch, err := decodeChange(seqOf(k), v)
			if err != nil {
				return err
			}
			page.Changes = append(page.Changes, ch)
		}
		return nil
	})
	if err != nil {
		return store.ChangePage{}, err
	}
	return page, nil
}

// TrimChanges removes at most p.Limit of the oldest changes in one short write transaction.
func (s *Store) TrimChanges(ctx context.Context, p store.TrimPlan) (int, bool, error) {
	return s.trimFront(bChanges, p.Limit, func(b *bbolt.Bucket, k, v []byte) (bool, error) {
		ch, err := decodeChange(seqOf(k), v)
		head := int64(b.Sequence()) //nolint:gosec // far below 2^63
		return err == nil && p.Trimmed(ch, head), err
	})
}
