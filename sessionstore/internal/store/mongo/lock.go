package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Lease locks serialise the read-modify-write of one record across goroutines and replicas.
//
// Acquiring is an insert of {_id: name, owner, until} into `locks`: the unique _id makes exactly
// one insert succeed, on MongoDB and on FerretDB (whose updates are not atomic, see package doc).
// Releasing deletes the document. A lock whose holder died is taken over once `until` (wall clock)
// has passed: the waiter deletes it (filtered on the dead owner) and inserts its own. The lease is
// far longer than any operation (every call has OpTimeout), so a live holder is never overtaken.
// Residual risk, documented: two waiters taking over the same dead lock at the same instant on
// FerretDB (whose delete is not conditional either) could both proceed once.

type lockDoc struct {
	Owner string        `bson:"owner"`
	Until bson.DateTime `bson:"until"`
}

// withLock runs fn while holding the lock name. Waiting is bounded by twice OpTimeout: a record
// held that long is reported as unavailable. Goroutines of this process queue in memory first
// (local), so that only one of them polls the database for a given name: the database lock is what
// serialises replicas, the local queue only saves round trips.
func (s *Store) withLock(ctx context.Context, name string, fn func() error) error {
	wait := time.Now().Add(2 * s.opTimeout)
	waitCtx, cancel := context.WithDeadline(ctx, wait)
	unlock, err := s.local.lock(waitCtx, name)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return wrap(ctx.Err())
		}
		return fmt.Errorf("%w: mongo: record %q stayed locked for %s", store.ErrUnavailable, name, 2*s.opTimeout)
	}
	defer unlock()
	owner := randomOwner()
	backoff := time.Millisecond
	nextStaleCheck := time.Now()
	for {
		c, cancel := s.call(ctx)
		_, err := s.locks.InsertOne(c, bson.D{
			{Key: "_id", Value: name}, {Key: "owner", Value: owner},
			{Key: "until", Value: bson.NewDateTimeFromTime(time.Now().Add(s.lease))},
		})
		cancel()
		if err == nil {
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			// The insert may have been applied without the answer reaching us (connection lost):
			// remove it in the background so the record is not blocked for a whole lease.
			s.releaseLater(name, owner)
			return wrap(err)
		}
		if time.Now().After(nextStaleCheck) {
			if err := s.breakStaleLock(ctx, name); err != nil {
				return err
			}
			nextStaleCheck = time.Now().Add(250 * time.Millisecond)
		}
		if time.Now().After(wait) {
			return fmt.Errorf("%w: mongo: record %q stayed locked for %s", store.ErrUnavailable, name, 2*s.opTimeout)
		}
		select {
		case <-ctx.Done():
			return wrap(ctx.Err())
		case <-time.After(backoff + rand.N(backoff)): //nolint:gosec // jitter, not a secret
		}
		backoff = min(backoff*2, 16*time.Millisecond)
	}
	defer func() {
		c, cancel := s.detached(ctx)
		defer cancel()
		if _, err := s.locks.DeleteOne(c, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: owner}}); err != nil {
			s.releaseLater(name, owner)
		}
	}()
	return fn()
}

// releaseLater retries deleting a lock of ours until it succeeds, the lease ends (then any waiter
// takes the lock over) or the store closes. It is what makes the store recover promptly after the
// database comes back: locks held while it went down would otherwise block their records for a lease.
func (s *Store) releaseLater(name, owner string) {
	end := time.Now().Add(s.lease)
	s.bg.Go(func() {
		for time.Now().Before(end) {
			c, cancel := context.WithTimeout(context.Background(), s.opTimeout)
			_, err := s.locks.DeleteOne(c, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: owner}})
			cancel()
			if err == nil {
				return
			}
			select {
			case <-s.closed:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// breakStaleLock removes the lock name if its lease has run out (its holder died).
func (s *Store) breakStaleLock(ctx context.Context, name string) error {
	c, cancel := s.call(ctx)
	defer cancel()
	var l lockDoc
	err := s.locks.FindOne(c, bson.D{{Key: "_id", Value: name}}).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return wrap(err)
	}
	if time.Now().Before(l.Until.Time()) {
		return nil
	}
	s.log.Warn("taking over an expired record lock (its holder died?)", "lock", name)
	_, err = s.locks.DeleteOne(c, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: l.Owner}})
	return wrap(err)
}

// localLocks is an in-process queue per lock name.
type localLocks struct {
	mu sync.Mutex
	m  map[string]*localLock
}

type localLock struct {
	ch   chan struct{}
	refs int
}

func (l *localLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*localLock{}
	}
	e := l.m[name]
	if e == nil {
		e = &localLock{ch: make(chan struct{}, 1)}
		l.m[name] = e
	}
	e.refs++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, name)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
