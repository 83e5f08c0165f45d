// Package bolt is the embedded bbolt backend: one file, nothing to install.
//
// Layout: one bucket per record kind keyed by id, plus index buckets whose keys carry all the
// information (values are empty) so lookups by user, family and expiry are prefix/range scans:
//
//	sessions          id → session            sessions_by_exp   be64(expiresAt)|id
//	sessions_by_user  userId 0x00 id          families          id → family
//	families_by_exp   be64(expiresAt)|id      families_by_user  userId 0x00 id
//	family_sessions   familyId 0x00 sessionId family_tokens     familyId 0x00 hash
//	tokens            hash → token            tokens_by_exp     be64(expiresAt)|hash
//	tokens_by_session sessionId 0x00 hash     (the token issued with a session: finds its family
//	                                           after the session is gone, for as long as the family lives)
//	counters          key → counter           counters_by_exp   be64(resetAt)|key
//	meta              "sessions" → be64 count of stored sessions
//	changes           be64(seq) → change (the change feed, see changes.go)
//	audit             be64(id) → audit event (the audit trail, see audit.go)
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

var (
	bSessions  = []byte("sessions")
	bSessExp   = []byte("sessions_by_exp")
	bSessUser  = []byte("sessions_by_user")
	bFamilies  = []byte("families")
	bFamExp    = []byte("families_by_exp")
	bFamUser   = []byte("families_by_user")
	bFamSess   = []byte("family_sessions")
	bFamTok    = []byte("family_tokens")
	bTokens    = []byte("tokens")
	bTokExp    = []byte("tokens_by_exp")
	bTokSess   = []byte("tokens_by_session")
	bCounters  = []byte("counters")
	bCtrExp    = []byte("counters_by_exp")
	bMeta      = []byte("meta")
	bChanges   = []byte("changes")
	allBuckets = [][]byte{bSessions, bSessExp, bSessUser, bFamilies, bFamExp, bFamUser, bFamSess, bFamTok,
		bTokens, bTokExp, bCounters, bCtrExp, bMeta}
	// addedBuckets came with later versions: Open creates and fills them in a file written before.
	// A read-only open (sessions list) does not need them.
	addedBuckets = []struct {
		name     []byte
		backfill func(*bbolt.Tx) error
	}{{bTokSess, backfillTokensBySession}, {bChanges, func(*bbolt.Tx) error { return nil }},
		{bAudit, func(*bbolt.Tx) error { return nil }}}

	keySessionCount = []byte("sessions")
)

// ErrLocked: another process (usually the running server) holds the file.
var ErrLocked = errors.New("bolt: database file is locked by another process")

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for bbolt's exclusive file lock; 0 waits forever.
	LockTimeout time.Duration
	// ReadOnly opens without creating buckets (the file must exist).
	ReadOnly bool
}

// Store is the bbolt Backend.
type Store struct {
	db *bbolt.DB
	w  *writer
}

var _ store.Backend = (*Store)(nil)

// Open opens or creates the database file at path.
func Open(path string, opts Options) (*Store, error) {
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("bolt: %w", err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		// The map freelist stays fast on large files; not syncing it trades a freelist rebuild at
		// open for less I/O per commit. Records themselves are fsynced on every commit.
		FreelistType:   bbolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if !opts.ReadOnly {
		err = db.Update(func(tx *bbolt.Tx) error {
			fresh := tx.Bucket(bMeta) == nil
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			for _, b := range addedBuckets {
				if tx.Bucket(b.name) != nil {
					continue
				}
				if _, err := tx.CreateBucket(b.name); err != nil {
					return err
				}
				if !fresh {
					if err := b.backfill(tx); err != nil {
						return fmt.Errorf("upgrading: filling %s: %w", b.name, err)
					}
				}
			}
			return nil
		})
	} else {
		err = db.View(func(tx *bbolt.Tx) error {
			for _, name := range allBuckets {
				if tx.Bucket(name) == nil {
					return fmt.Errorf("bucket %s missing: not a sessionstore database", name)
				}
			}
			return nil
		})
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &Store{db: db, w: newWriter(db)}, nil
}

// Close finishes queued writes and closes the file.
func (s *Store) Close() error {
	s.w.close()
	return s.db.Close()
}

// Ping reads the meta bucket.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(func(tx *bbolt.Tx) error {
		if tx.Bucket(bMeta) == nil {
			return errors.New("bolt: meta bucket missing")
		}
		return nil
	})
}

// SessionCount reads the counter every session insert and delete maintains.
func (s *Store) SessionCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		n = readCount(tx)
		return nil
	})
	return n, err
}

func readCount(tx *bbolt.Tx) int64 {
	v := tx.Bucket(bMeta).Get(keySessionCount)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v)) //nolint:gosec // written from an int64 by this file
}

func addCount(tx *bbolt.Tx, delta int64) error {
	n := max(readCount(tx)+delta, 0)
	return tx.Bucket(bMeta).Put(keySessionCount, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// expKey orders index entries by time, then id.
func expKey(at int64, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(at, 0)))
	return append(k, id...)
}

// expOf reads the time of an expKey.
func expOf(k []byte) int64 {
	if len(k) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k)) //nolint:gosec // written from an int64 by this file
}

// pairKey joins an owner and an id; owners (user ids, family ids) never contain 0x00.
func pairKey(owner, id string) []byte {
	k := make([]byte, 0, len(owner)+1+len(id))
	k = append(k, owner...)
	k = append(k, 0)
	return append(k, id...)
}

// ownedIDs lists the ids indexed under owner in bucket b.
func ownedIDs(b *bbolt.Bucket, owner string) []string {
	prefix := pairKey(owner, "")
	var ids []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// view runs a read transaction; a closed database reads as unavailable.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return store.ErrUnavailable
	}
	return err
}

// Import stores sessions in one transaction, replacing none (ErrConflict if an id exists). It is
// for bulk loads (benchmarks, migrations): normal creates go through CreateSession.
func (s *Store) Import(sessions []*store.Session) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, sess := range sessions {
			if tx.Bucket(bSessions).Get([]byte(sess.ID)) != nil {
				return store.ErrConflict
			}
			if err := insertSession(tx, sess); err != nil {
				return err
			}
		}
		return nil
	})
}
