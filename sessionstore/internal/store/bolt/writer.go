package bolt

import (
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// maxGroup bounds how many writes share one transaction (and one fsync).
const maxGroup = 512

// writeCall is one queued write. fn reports domain outcomes (not found, conflict, …) through
// variables it captured and returns an error only for storage failures, because an error rolls
// back every write in its group; fn must therefore reset its outputs on entry, as it can run again.
type writeCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// writer is a group committer: one goroutine takes every queued write and commits them in one
// transaction. Idle, a write commits at once (no timer as in bbolt's Batch); under load, writes that
// queue during one fsync share the next one. Durability is untouched: a call returns after its commit.
type writer struct {
	db    *bbolt.DB
	queue chan writeCall
	quit  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // held shared while sending, so close knows no send is in flight
	closed bool
}

func newWriter(db *bbolt.DB) *writer {
	w := &writer{db: db, queue: make(chan writeCall, maxGroup), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// update runs fn in a write transaction shared with other queued writes.
func (w *writer) update(fn func(*bbolt.Tx) error) error {
	c := writeCall{fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return store.ErrUnavailable
	}
	w.queue <- c
	w.mu.RUnlock()
	return <-c.done
}

func (w *writer) loop() {
	defer close(w.done)
	group := make([]writeCall, 0, maxGroup)
	for {
		select {
		case c := <-w.queue:
			group = append(group[:0], c)
		case <-w.quit:
			// close holds mu, so every send has landed in the queue: run what is left.
			for {
				select {
				case c := <-w.queue:
					c.done <- w.run([]writeCall{c})
				default:
					return
				}
			}
		}
	drain:
		for len(group) < maxGroup {
			select {
			case c := <-w.queue:
				group = append(group, c)
			default:
				break drain
			}
		}
		err := w.run(group)
		if err != nil && len(group) > 1 {
			// One call failed and took the group down: redo each alone so only it sees the error.
			for _, c := range group {
				c.done <- w.run([]writeCall{c})
			}
			continue
		}
		for _, c := range group {
			c.done <- err
		}
	}
}

func (w *writer) run(group []writeCall) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: write panicked: %v", p)
		}
	}()
	return w.db.Update(func(tx *bbolt.Tx) error {
		for _, c := range group {
			if err := c.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

// close stops the loop after the queued writes ran.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.quit)
	}
	w.mu.Unlock()
	<-w.done
}
