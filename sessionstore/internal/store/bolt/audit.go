package bolt

import (
	"context"
	"encoding/json"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// The audit trail is the bucket `audit`: be64(id) → the event as JSON (it is read by operators,
// never on the plugin's hot path). The id is the bucket's sequence, taken in the transaction of the
// state change, so the event is committed with it or not at all, and ids grow with time.

var bAudit = []byte("audit")

var _ store.AuditLog = (*Store)(nil)

type auditRecord struct {
	At         int64    `json:"at"`
	Kind       string   `json:"kind"`
	UserID     string   `json:"userId,omitempty"`
	Username   string   `json:"username,omitempty"`
	SessionID  string   `json:"sessionId,omitempty"`
	SessionIDs []string `json:"sessionIds,omitempty"`
	Host       string   `json:"host,omitempty"`
	ClientAddr string   `json:"clientAddr,omitempty"`
	UserAgent  string   `json:"userAgent,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

// recordAudit returns a function that stores e under the next id (in the caller's write
// transaction) when ok: recordAudit(tx)(store.LoginEvent(note, s), true).
func recordAudit(tx *bbolt.Tx) func(e store.AuditEvent, ok bool) error {
	return func(e store.AuditEvent, ok bool) error {
		if !ok {
			return nil
		}
		return putAudit(tx, e)
	}
}

func putAudit(tx *bbolt.Tx, e store.AuditEvent) error {
	b := tx.Bucket(bAudit)
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(auditRecord{At: e.At, Kind: e.Kind, UserID: e.UserID, Username: e.Username,
		SessionID: e.SessionID, SessionIDs: e.SessionIDs, Host: e.Host, ClientAddr: e.ClientAddr,
		UserAgent: e.UserAgent, Reason: e.Reason})
	if err != nil {
		return err
	}
	return b.Put(seqKey(int64(id)), v) //nolint:gosec // a bucket sequence stays far below 2^63
}

func decodeAudit(id int64, v []byte) (store.AuditEvent, error) {
	var r auditRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return store.AuditEvent{}, errCorrupt
	}
	if r.SessionIDs == nil {
		r.SessionIDs = []string{}
	}
	return store.AuditEvent{ID: id, At: r.At, Kind: r.Kind, UserID: r.UserID, Username: r.Username,
		SessionID: r.SessionID, SessionIDs: r.SessionIDs, Host: r.Host, ClientAddr: r.ClientAddr,
		UserAgent: r.UserAgent, Reason: r.Reason}, nil
}

// ListAudit walks the trail from the newest (or the cursor) back, reading at most store.MaxAuditScan records.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error) {
	page := store.AuditPage{Events: []store.AuditEvent{}}
	limit := q.PageLimit()
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAudit)
		if b == nil { // a file opened read-only before the trail existed
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if q.Cursor > 0 {
			k, v = c.Seek(seqKey(q.Cursor))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && seqOf(k) >= q.Cursor {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for scanned := 0; k != nil; k, v = c.Prev() {
			if scanned++; scanned > store.MaxAuditScan {
				page.Next = seqOf(k) + 1
				return nil
			}
			e, err := decodeAudit(seqOf(k), v)
			if err != nil {
				return err
			}
			if q.Since > 0 && e.At < q.Since {
				return nil // older ones are older still
			}
			if !q.Match(e) {
				continue
			}
			if len(page.Events) == limit {
				page.Next = page.Events[len(page.Events)-1].ID
				return nil
			}
			page.Events = append(page.Events, e)
		}
		return nil
	})
	if err != nil {
		return store.AuditPage{}, err
	}
	return page, nil
}

// SweepAudit removes at most limit of the oldest events older than before in one short transaction.
func (s *Store) SweepAudit(ctx context.Context, before int64, limit int) (int, bool, error) {
	return s.trimFront(bAudit, limit, func(_ *bbolt.Bucket, k, v []byte) (bool, error) {
		e, err := decodeAudit(seqOf(k), v)
		return err == nil && e.At < before, err
	})
}

// trimFront removes, in one short write transaction, at most limit records from the front of a
// bucket keyed by sequence, as long as due says the record is to go; it says how many went and
// whether more are due.
func (s *Store) trimFront(bucket []byte, limit int, due func(b *bbolt.Bucket, k, v []byte) (bool, error)) (int, bool, error) {
	var n int
	var more bool
	err := s.w.update(func(tx *bbolt.Tx) error {
		n, more = 0, false
		b := tx.Bucket(bucket)
		var keys [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			ok, err := due(b, k, v)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if len(keys) == limit {
				more = true
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}
