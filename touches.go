package accessproxy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Batched touches: extending a sliding session is not a store call per request. The request
// extends its cached copy by the store's own rule (applyTouch) and queues the touch; one
// goroutine per backend sends what is queued as one `POST /v1/touches` every touchFlushEvery. A
// session the store no longer has ends here when the answer says so. The store's expiry lags
// the real last use by at most touchFlushEvery, which the idle window (touched every tenth of it)
// absorbs.

const (
	touchFlushEvery = time.Second
	maxTouchBatch   = 1000 // the store's limit per call
	touchIdleRounds = 30   // the flusher ends after this many empty rounds
	touchRetries    = 3
)

type touchOne struct {
	ID            string `json:"id"`
	Host          string `json:"host"`
	IdleTimeoutMs int64  `json:"idleTimeoutMs"`
	Sliding       bool   `json:"sliding"`
	ClientAddr    string `json:"clientAddr,omitempty"`
}

// queuedTouch is a touch and how often sending it failed (kept out of touchOne: Yaegi's struct
// types may expose unexported fields to encoding/json).
type queuedTouch struct {
	one   touchOne
	tries int
	// xff and remote are the request's X-Forwarded-For and RemoteAddr when one.ClientAddr is
	// still to be worked out (queueRawTouch).
	xff, remote string
}

type touchesRequest struct {
	Touches []touchOne `json:"touches"`
}

type touchesResponse struct {
	Sessions []storeSession `json:"sessions"`
	Missing  []string       `json:"missing"`
}

type toucher struct {
	mu      sync.Mutex
	pending map[string]queuedTouch // by session id and host: "sid host"
	running int32
	store   *storeClient
}

func newToucher(store *storeClient) *toucher {
	return &toucher{pending: map[string]queuedTouch{}, store: store}
}

// applyTouch is the store's Session.ApplyTouch on a copy: the host's and the session's last use
// now, and a sliding expiry one idle window from now, never past the cap.
func applyTouch(s *storeSession, host string, idleMs int64, sliding bool, nowMs int64) *storeSession {
	c := *s
	c.HostsLastSeen = make(map[string]int64, len(s.HostsLastSeen)+1)
	for h, at := range s.HostsLastSeen {
		c.HostsLastSeen[h] = at
	}
	c.HostsLastSeen[host] = nowMs
	c.LastSeenAt = nowMs
	if sliding {
		if exp := earlier(nowMs+idleMs, c.AbsoluteExpiresAt); exp > c.ExpiresAt {
			c.ExpiresAt = exp
		}
	}
	return &c
}

// touch extends e on host in memory and queues the store's touch. It returns the entry to use.
func (m *Middleware) touch(token string, e *tokenEntry, host, addr string, nowMs int64) (*tokenEntry, bool) {
	ne := *e
	idleMs := m.windowOf(e.sess).idleMs
	ne.sess = applyTouch(e.sess, host, idleMs, m.s.sliding, nowMs)
	if !m.cache.putUnlessRevoked(token, &ne, nowMs) {
		return nil, false
	}
	m.queueTouch(e.claims.Sid, host, idleMs, addr)
	return &ne, true
}

// queueTouch queues this instance's touch of session sid on host (from client address addr) for
// the next flush.
func (m *Middleware) queueTouch(sid, host string, idleMs int64, addr string) {
	m.enqueueTouch(sid+" "+host, queuedTouch{one: touchOne{ID: sid, Host: host, IdleTimeoutMs: idleMs, Sliding: m.s.sliding, ClientAddr: addr}})
}

// queueRawTouch is queueTouch with the client's address left for the flusher to work out from the
// request's X-Forwarded-For and RemoteAddr (serveDue: fewer interpreted calls on a request).
func (m *Middleware) queueRawTouch(sid, host string, idleMs int64, xff, remote string) {
	m.enqueueTouch(sid+" "+host, queuedTouch{one: touchOne{ID: sid, Host: host, IdleTimeoutMs: idleMs, Sliding: m.s.sliding}, xff: xff, remote: remote})
}

func (m *Middleware) enqueueTouch(key string, q queuedTouch) {
	t := m.b.touches
	t.mu.Lock()
	t.pending[key] = q
	t.mu.Unlock()
	if atomic.LoadInt32(&t.running) == 0 && atomic.CompareAndSwapInt32(&t.running, 0, 1) {
		go m.b.runToucher()
	}
}

// runToucher flushes every touchFlushEvery until nothing was queued for touchIdleRounds.
func (b *backend) runToucher() {
	t := b.touches
	defer func() {
		_ = recover()
		atomic.StoreInt32(&t.running, 0)
	}()
	for idle := 0; idle < touchIdleRounds; {
		time.Sleep(touchFlushEvery)
		if b.flushTouches(context.Background()) == 0 {
			idle++
		} else {
			idle = 0
		}
	}
}

// flushTouches sends what is queued, at most maxTouchBatch per call, and returns how many it
// sent. A failed call puts its touches back (unless newer ones took their place) for the next
// round, at most touchRetries times.
func (b *backend) flushTouches(ctx context.Context) int {
	t := b.touches
	t.mu.Lock()
	batch := make([]queuedTouch, 0, len(t.pending))
	for k, q := range t.pending {
		batch = append(batch, q)
		delete(t.pending, k)
	}
	t.mu.Unlock()
	for from := 0; from < len(batch); from += maxTouchBatch {
		to := from + maxTouchBatch
		if to > len(batch) {
			to = len(batch)
		}
		b.sendTouches(ctx, batch[from:to])
	}
	return len(batch)
}

func (b *backend) sendTouches(ctx context.Context, batch []queuedTouch) {
	t := b.touches
	in := touchesRequest{Touches: make([]touchOne, len(batch))}
	for i := range batch {
		if batch[i].remote != "" || batch[i].xff != "" {
			batch[i].one.ClientAddr = clientAddrFrom(batch[i].xff, batch[i].remote)
			batch[i].xff, batch[i].remote = "", ""
		}
		in.Touches[i] = batch[i].one
	}
	var out touchesResponse
	err := t.store.do(ctx, http.MethodPost, "/v1/touches", &in, &out)
	if errors.Is(err, errStoreNotFound) {
		// A store from before batched touches: one call per session, as it used to be.
		out, err = b.touchOneByOne(ctx, in.Touches)
	}
	if err != nil {
		t.mu.Lock()
		for _, q := range batch {
			k := q.one.ID + " " + q.one.Host
			if _, newer := t.pending[k]; !newer && q.tries < touchRetries {
				q.tries++
				t.pending[k] = q
			}
		}
		t.mu.Unlock()
		return
	}
	for i := range out.Sessions {
		b.cache.mergeTouched(&out.Sessions[i])
	}
	// Gone from the store (revoked, expired): gone here too.
	b.cache.removeSessions(out.Missing)
}

// touchOneByOne sends a batch to a store without POST /v1/touches.
func (b *backend) touchOneByOne(ctx context.Context, batch []touchOne) (touchesResponse, error) {
	out := touchesResponse{}
	for _, one := range batch {
		s, err := b.touches.store.touchSession(ctx, one.ID, &touchRequest{Host: one.Host, IdleTimeoutMs: one.IdleTimeoutMs, Sliding: one.Sliding})
		switch {
		case errors.Is(err, errStoreNotFound):
			out.Missing = append(out.Missing, one.ID)
		case err != nil:
			return out, err
		default:
			out.Sessions = append(out.Sessions, *s)
		}
	}
	return out, nil
}
