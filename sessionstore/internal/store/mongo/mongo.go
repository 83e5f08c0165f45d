// Package mongo is the MongoDB backend (official driver go.mongodb.org/mongo-driver/v2). It is
// written for the subset of MongoDB that FerretDB v1 (SQLite backend) implements, so that the same
// code runs on MongoDB and on FerretDB, and any number of sessionstore replicas can share one
// database (no in-process state that matters).
//
// Collections (ids are the natural keys, so the always-unique _id index enforces uniqueness):
//
//	sessions  _id=session id; userId, familyId, expiresAt (indexed; expiry fields are BSON dates)
//	families  _id=family id;  userId, expiresAt (indexed)
//	tokens    _id=token hash; familyId, sessionId, expiresAt (indexed), userId, spent
//	counters  _id=counter key; resetAt (indexed)
//	locks     _id=lock name;   owner, until (short leases, see lock.go)
//	changes, sequences         the change feed (see changes.go)
//
// What FerretDB v1.24 supports, and the design that follows (checked in its source):
//
//   - No transactions: multi-record operations are ordered so that a crash between two steps
//     leaves nothing a client can exploit (see the comments on each operation).
//   - No aggregation-pipeline updates (findAndModify/update with an array answer 238 NotImplemented).
//   - findAndModify and update are NOT atomic on FerretDB v1: the handler reads the matching
//     document, applies the operators in Go and writes the whole document back by _id
//     (internal/handler/msg_findandmodify.go, backends/sqlite UpdateAll: "UPDATE … WHERE _id = ?").
//     Two concurrent findAndModify({_id, spent:false}) can both "win", and concurrent $inc lose
//     increments. Only inserts are atomic (SQLite unique constraint on _id). So every
//     read-modify-write of one record runs under a lease lock taken by inserting a document into
//     `locks` (lock.go): exactly one holder per name, on MongoDB and on FerretDB alike.
//   - TTL indexes: `expireAfterSeconds` answers 238 NotImplemented. Open tries a TTL index and falls
//     back to plain indexes (logged once); the sweeper deletes expired records either way.
//   - Only a filter that is exactly {_id: <string>} is pushed down to SQLite; any other filter scans
//     the collection. The hot paths (get, touch) therefore look records up by _id only.
//   - `maxTimeMS` is rejected on distinct (not used here). No client-side timeout option is set;
//     every call runs under its own context deadline instead.
//
// Filters are always bson.D built here with fixed keys and typed values (strings, dates, ints);
// client JSON is never decoded into a filter or an update, so no client value can become an
// operator. Host names used as keys of hostsLastSeen are escaped (see doc.go).
package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Options configure Open.
type Options struct {
	URI      string // mongodb://…
	Database string // default "accessproxy"
	// OpTimeout bounds every single database call (default 3s). While the server is unreachable,
	// calls fail with store.ErrUnavailable after at most this long.
	OpTimeout time.Duration
	// StartupTimeout bounds how long Open waits for the server to answer and the indexes to be
	// created (default 30s); then Open fails.
	StartupTimeout time.Duration
	// LockLease is how long a lock held by a crashed process blocks its record (default 10s).
	LockLease time.Duration
	// NoTTL creates plain expiry indexes instead of TTL indexes (tests: their clock is in the past).
	NoTTL  bool
	Logger *slog.Logger
}

// Store is the MongoDB Backend.
type Store struct {
	client                                      *mongo.Client
	db                                          *mongo.Database
	sessions, families, tokens, counters, locks *mongo.Collection
	changes, sequences                          *mongo.Collection
	audit                                       *mongo.Collection // the audit trail (audit.go)
	opTimeout, lease, gapSettle                 time.Duration
	log                                         *slog.Logger
	// TTL reports whether TTL indexes are in place (false on FerretDB).
	TTL bool

	closeOnce sync.Once
	closed    chan struct{}  // closed by Close: background lock releases stop
	bg        sync.WaitGroup // background lock releases
	local     localLocks     // in-process queue in front of the database locks
	feedMu    sync.Mutex     // one change numbered and inserted at a time (changes.go)
}

var _ store.Backend = (*Store)(nil)

// Open connects and creates the indexes, retrying until StartupTimeout: a database that is still
// starting is waited for; one that does not come up is an error (the caller exits).
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URI == "" {
		return nil, errors.New("mongo: --mongo-uri is required with --backend mongo")
	}
	if o.Database == "" {
		o.Database = "accessproxy"
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 3 * time.Second
	}
	if o.StartupTimeout <= 0 {
		o.StartupTimeout = 30 * time.Second
	}
	if o.LockLease <= 0 {
		o.LockLease = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	copts := options.Client().ApplyURI(o.URI).
		SetAppName("sessionstore").
		SetServerSelectionTimeout(o.OpTimeout).
		SetConnectTimeout(min(o.OpTimeout, 2*time.Second))
	if err := copts.Validate(); err != nil {
		return nil, fmt.Errorf("mongo: bad --mongo-uri: %w", err)
	}
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	db := client.Database(o.Database)
	s := &Store{
		client: client, db: db,
		sessions: db.Collection("sessions"), families: db.Collection("families"), tokens: db.Collection("tokens"),
		counters: db.Collection("counters"), locks: db.Collection("locks"),
		changes: db.Collection("changes"), sequences: db.Collection("sequences"), audit: db.Collection("audit"),
		opTimeout: o.OpTimeout, lease: o.LockLease, gapSettle: 2 * o.OpTimeout, log: o.Logger, closed: make(chan struct{}),
	}
	deadline := time.Now().Add(o.StartupTimeout)
	for attempt := 1; ; attempt++ {
		err = s.ensureIndexes(ctx, o.NoTTL)
		if err == nil {
			return s, nil
		}
		if time.Now().Add(time.Second).After(deadline) || ctx.Err() != nil {
			_ = s.Close()
			return nil, fmt.Errorf("mongo: %s not ready after %s: %w", redact(o.URI), o.StartupTimeout, err)
		}
		o.Logger.Warn("waiting for MongoDB", "uri", redact(o.URI), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// redact drops the password of a connection string for messages.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

const codeNotImplemented = 238

// ensureIndexes creates the secondary indexes (idempotent). Expiry indexes are TTL indexes when the
// server supports them; FerretDB answers 238 NotImplemented and gets plain ones.
func (s *Store) ensureIndexes(ctx context.Context, noTTL bool) error {
	c, cancel := s.call(ctx)
	defer cancel()
	if err := s.client.Ping(c, nil); err != nil {
		return err
	}
	plain := []struct {
		coll *mongo.Collection
		key  string
	}{{s.sessions, "userId"}, {s.sessions, "familyId"}, {s.families, "userId"}, {s.tokens, "familyId"}, {s.tokens, "sessionId"}, {s.changes, "seq"},
		{s.audit, "at"}, {s.audit, "userId"}}
	for _, ix := range plain {
		if err := s.createIndex(ctx, ix.coll, ix.key, false); err != nil {
			return err
		}
	}
	expiry := []struct {
		coll *mongo.Collection
		key  string
	}{{s.sessions, "expiresAt"}, {s.families, "expiresAt"}, {s.tokens, "expiresAt"}, {s.counters, "resetAt"}, {s.locks, "until"}}
	ttl := !noTTL
	for _, ix := range expiry {
		if ttl {
			err := s.createIndex(ctx, ix.coll, ix.key, true)
			var ce mongo.CommandError
			if errors.As(err, &ce) && ce.Code == codeNotImplemented {
				ttl = false
				s.log.Info("the MongoDB server does not support TTL indexes (FerretDB v1): expired records are deleted by the sweeper only")
			} else if err != nil {
				return err
			} else {
				continue
			}
		}
		if err := s.createIndex(ctx, ix.coll, ix.key, false); err != nil {
			return err
		}
	}
	s.TTL = ttl
	return nil
}

func (s *Store) createIndex(ctx context.Context, coll *mongo.Collection, key string, ttl bool) error {
	c, cancel := s.call(ctx)
	defer cancel()
	opts := options.Index()
	name := key + "_1"
	if ttl {
		// Documents go once the date passes (the store checks expiry on every read anyway).
		opts.SetExpireAfterSeconds(0)
		name = key + "_ttl"
	}
	opts.SetName(name)
	_, err := coll.Indexes().CreateOne(c, mongo.IndexModel{Keys: bson.D{{Key: key, Value: 1}}, Options: opts})
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.Code == 85 || ce.Code == 86) { // IndexOptionsConflict / IndexKeySpecsConflict
		s.log.Warn("an index on this key exists with other options; keeping it", "collection", coll.Name(), "key", key, "err", err)
		return nil
	}
	return err
}

// call gives one database call its own deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

// detached is for clean-up calls that must run even when the request's context has ended.
func (s *Store) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout)
}

// wrap turns driver errors into store errors: an unreachable server, a timed-out call and a
// cancelled request are store.ErrUnavailable (503, retry later); anything else is internal.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrReused) {
		return err
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, mongo.ErrClientDisconnected) ||
		strings.Contains(err.Error(), "server selection") {
		return fmt.Errorf("%w: mongo: %v", store.ErrUnavailable, err)
	}
	// e.g. the driver's "connection pool … was cleared because another operation failed".
	var retryable interface{ Retryable() bool }
	if errors.As(err, &retryable) && retryable.Retryable() {
		return fmt.Errorf("%w: mongo: %v", store.ErrUnavailable, err)
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.HasErrorLabel("RetryableWriteError") || ce.HasErrorLabel("TransientTransactionError")) {
		return fmt.Errorf("%w: mongo: %v", store.ErrUnavailable, err)
	}
	return fmt.Errorf("mongo: %w", err)
}

// Ping asks the server.
func (s *Store) Ping(ctx context.Context) error {
	c, cancel := s.call(ctx)
	defer cancel()
	return wrap(s.client.Ping(c, nil))
}

// SessionCount is the collection's estimated count (collection metadata on MongoDB, so O(1) and the
// same on every replica; FerretDB counts the rows). Expired sessions count until deleted.
func (s *Store) SessionCount(ctx context.Context) (int64, error) {
	c, cancel := s.call(ctx)
	defer cancel()
	n, err := s.sessions.EstimatedDocumentCount(c)
	return n, wrap(err)
}

// Close disconnects.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.bg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.client.Disconnect(ctx)
	})
	return err
}

func randomOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Drop deletes the whole database (tests and benchmarks) and closes the store.
func (s *Store) Drop(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.db.Drop(c)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}
