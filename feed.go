package accessproxy

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The change feed: instead of re-reading every cached session every cacheTTL, one goroutine per
// shared backend long-polls the store's `GET /v1/changes` and drops what the store says changed
// (revocations, rotations, user and upstream updates). While the feed is healthy, a session read
// after the feed began covering it stays valid in memory until its own expiry or a feed event;
// while it is not, cacheTTL applies as before. The store unreachable still fails closed: the
// feed only ever removes from the cache.

const (
	feedWaitMs = 2000 // long-poll wait; the store answers at once when something changed
	// feedSlackMs is how late the next answer may be before the feed counts as down: a feed that
	// stops answering stops vouching for the cache within feedWaitMs+feedSlackMs.
	feedSlackMs = 1500
	// feedIdle ends the consumer when no request used the backend for this long (its life is
	// bounded; the next request starts it again).
	feedIdle      = 2 * time.Minute
	feedMaxBackof = time.Second // a store back is followed again within a second
	feedMinPoll   = 250 * time.Millisecond
)

type changeRecord struct {
	Seq        int64    `json:"seq"`
	Kind       string   `json:"kind"`
	SessionIDs []string `json:"sessionIds"`
	UserID     string   `json:"userId"`
	At         int64    `json:"at"`
	// For "changed": the session's versions after the change (0 from an older store).
	UpstreamVersion int64 `json:"upstreamVersion,omitempty"`
	RevalidatedAt   int64 `json:"revalidatedAt,omitempty"`
}

type changesResponse struct {
	Seq     int64          `json:"seq"`
	Resync  bool           `json:"resync"`
	Changes []changeRecord `json:"changes"`
}

// feed is one backend's consumer state. Times are the backend clock's ms.
type feed struct {
	running int32 // 1 while the goroutine runs
	lastUse int64 // the latest request that asked for the feed (system ms)
	// coverFromMs: entries read from the store at or after it are covered by the feed (it began,
	// or resynced, before their read). healthyUntilMs: the feed vouches for the cache until then.
	coverFromMs    int64
	healthyUntilMs int64

	mu    sync.Mutex
	since int64 // the next position to ask from; -1: none yet
	store *storeClient
}

func newFeed(store *storeClient) *feed {
	return &feed{since: -1, store: store}
}

// covers reports whether the feed vouches for an entry read from the store at fetchedMs.
func (f *feed) covers(fetchedMs, nowMs int64) bool {
	from := atomic.LoadInt64(&f.coverFromMs)
	return from > 0 && fetchedMs >= from && nowMs < atomic.LoadInt64(&f.healthyUntilMs)
}

// feedVouches: this instance follows the feed (changeFeed, cacheTTL > 0) and the feed vouches
// for e now.
func (m *Middleware) feedVouches(e *tokenEntry, nowMs int64) bool {
	return m.useFeed && m.feed.covers(e.fetchedMs, nowMs)
}

// ensure starts the consumer if it is not running. Called from the slow path only.
func (b *backend) ensureFeed() {
	f := b.feed
	atomic.StoreInt64(&f.lastUse, time.Now().UnixMilli())
	if atomic.LoadInt32(&f.running) == 1 || !atomic.CompareAndSwapInt32(&f.running, 0, 1) {
		return
	}
	go b.runFeed()
}

// runFeed polls until the backend goes unused for feedIdle. Any panic ends it (the next request
// starts it again); the cache then falls back to cacheTTL.
func (b *backend) runFeed() {
	f := b.feed
	defer func() {
		_ = recover()
		b.feedDown()
		atomic.StoreInt32(&f.running, 0)
	}()
	backoff := 100 * time.Millisecond
	for time.Now().UnixMilli()-atomic.LoadInt64(&f.lastUse) < feedIdle.Milliseconds() {
		start := time.Now()
		changed, err := b.feedStepN(context.Background())
		if err == nil && changed == 0 && time.Since(start) < feedMinPoll {
			// An empty answer that did not wait (a store that does not long-poll): never spin.
			time.Sleep(feedMinPoll - time.Since(start))
		}
		if err != nil {
			b.feedDown()
			time.Sleep(backoff)
			if backoff *= 2; backoff > feedMaxBackof {
				backoff = feedMaxBackof
			}
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// feedDown withdraws the feed's word: cached entries fall back to cacheTTL, and fast-path
// entries remembered on the feed's word are dropped.
func (b *backend) feedDown() {
	f := b.feed
	if atomic.SwapInt64(&f.healthyUntilMs, 0) != 0 {
		b.cache.revoked(nil)
	}
}

// feedStep is one long-poll: it applies what changed and moves the feed on. The first step (and
// one after a resync) takes the store's head without history: entries read before then are not
// covered and keep cacheTTL.
func (b *backend) feedStep(ctx context.Context) error {
	_, err := b.feedStepN(ctx)
	return err
}

// feedStepN is feedStep that also says how many changes it applied.
func (b *backend) feedStepN(ctx context.Context) (int, error) {
	f := b.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	path := "/v1/changes"
	if f.since >= 0 {
		path += "?" + url.Values{"since": {strconv.FormatInt(f.since, 10)}, "waitMs": {strconv.Itoa(feedWaitMs)}}.Encode()
	}
	var out changesResponse
	if err := f.store.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return 0, err
	}
	nowMs := b.clock.nowMs()
	if f.since < 0 || out.Resync {
		if out.Resync {
			// Changes were missed: nothing cached can be vouched for. Reads in flight are of the
			// store as it is now, so they may still be kept.
			b.cache.forgetAll()
		}
		f.since = out.Seq
		atomic.StoreInt64(&f.coverFromMs, nowMs)
		atomic.StoreInt64(&f.healthyUntilMs, nowMs+feedWaitMs+feedSlackMs)
		return 0, nil
	}
	var ended []string
	for i := range out.Changes {
		c := &out.Changes[i]
		switch {
		case c.Kind == "changed":
			// Updated, not ended (user re-read, upstream renewed): a copy older than the change is
			// dropped (the next use reads it again), without a tombstone; the replica that made the
			// change holds one as new, and keeps it.
			b.cache.forgetOlder(c.SessionIDs, c.UpstreamVersion, c.RevalidatedAt)
		case c.Kind == "user" && c.UserID != "":
			b.cache.removeUser(c.UserID)
			ended = append(ended, c.SessionIDs...)
		default:
			ended = append(ended, c.SessionIDs...)
		}
	}
	b.cache.removeSessions(ended)
	f.since = out.Seq
	atomic.StoreInt64(&f.healthyUntilMs, nowMs+feedWaitMs+feedSlackMs)
	return len(out.Changes), nil
}
