package api

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/crypto"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
)

// notifying is a backend that is told of other replicas' changes (as postgres is by
// LISTEN/NOTIFY); the test closes its signal by hand.
type notifying struct {
	store.Backend
	mu  sync.Mutex
	sig chan struct{}
}

func (n *notifying) ChangeSignal() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sig
}

func (n *notifying) fire() {
	n.mu.Lock()
	close(n.sig)
	n.sig = make(chan struct{})
	n.mu.Unlock()
}

// A long-poll on a store.ChangeNotifier backend answers another replica's change when the backend
// signals it, without waiting for the API's own poll (an hour here) or the end of its wait.
func TestChangesLongPollNotifiedBackend(t *testing.T) {
	b, err := bolt.Open(filepath.Join(t.TempDir(), "sessions.db"), bolt.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	backend := &notifying{Backend: b, sig: make(chan struct{})}
	sealer, _ := crypto.New(bytes.Repeat([]byte{7}, 32))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, backend)
	handler := New(Config{Backend: backend, Sealer: sealer, Token: testToken, Registry: reg, Metrics: m, FeedPoll: time.Hour})
	srv := httptest.NewServer(handler)
	t.Cleanup(func() { srv.Close(); _ = b.Close() })
	e := &env{t: t, url: srv.URL, backend: b, server: handler, metrics: m, client: srv.Client(), skew: new(atomic.Int64)}

	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	since := e.changes("").Seq
	wait := e.timedChanges(fmt.Sprintf("?since=%d&waitMs=30000", since))
	waitFor(t, func() bool { return e.metric("sessionstore_change_feed_waiters") == "1" })
	// Another replica's write: straight into the storage, no wake-up of this server's feed.
	if _, err := b.DeleteSession(t.Context(), a.ID, store.Deletion{Now: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	backend.fire()
	if r := <-wait; len(r.body.Changes) != 1 || r.body.Changes[0].SessionIDs[0] != a.ID || r.took >= 30*time.Second {
		t.Fatalf("after the backend's signal: %+v after %s (the wait was 30 s)", r.body, r.took)
	}
}
