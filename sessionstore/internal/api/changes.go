package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Limits of GET /v1/changes (docs/store-api.md).
const (
	maxChangesLimit = 1000
	maxWaitMs       = 30_000
	// MaxFeedWaiters bounds the long-polls waiting at once; one more answers 503.
	MaxFeedWaiters = 1024
	// feedPoll is how often the store is read while someone waits, so that changes written by
	// other store replicas sharing a mongo database are seen within about this long.
	feedPoll = 100 * time.Millisecond
	// feedRecheck: every this many polls the waiters re-read even when the head did not move (a
	// change held back by the mongo backend in front of a missing number appears without one).
	feedRecheck = 10
)

// ChangesBody is the answer of GET /v1/changes.
type ChangesBody struct {
	Seq     int64    `json:"seq"`
	Resync  bool     `json:"resync"`
	Changes []Change `json:"changes"`
}

// Change is the wire form of a store.Change.
type Change struct {
	Seq        int64    `json:"seq"`
	Kind       string   `json:"kind"`
	SessionIDs []string `json:"sessionIds"`
	UserID     string   `json:"userId"`
	At         int64    `json:"at"`
	// For "changed": the session's upstreamVersion and revalidatedAt after the change.
	UpstreamVersion int64 `json:"upstreamVersion,omitempty"`
	RevalidatedAt   int64 `json:"revalidatedAt,omitempty"`
}

// feed wakes long-polls: at once after a write of this process (notify), and through one shared
// poller that reads the store's head every feedPoll while anyone waits (writes of other replicas).
type feed struct {
	mu      sync.Mutex
	wake    chan struct{} // closed and replaced by notify
	waiters int
	polling bool
	quit    chan struct{} // closed by Server.Shutdown: every wait ends
	stop    sync.Once
}

func newFeed() *feed { return &feed{wake: make(chan struct{}), quit: make(chan struct{})} }

func (f *feed) notify() {
	f.mu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (f *feed) current() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}

// join registers a waiter (false: too many) and starts the poller if none runs.
func (s *Server) joinFeed() bool {
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiters >= s.maxWaiters {
		return false
	}
	f.waiters++
	s.metrics.FeedWaiters.Inc()
	if !f.polling {
		f.polling = true
		go s.pollFeed()
	}
	return true
}

func (s *Server) leaveFeed() {
	s.feed.mu.Lock()
	s.feed.waiters--
	s.feed.mu.Unlock()
	s.metrics.FeedWaiters.Dec()
}

// pollFeed reads the head and the oldest number every feedPoll until nobody waits, and wakes the
// waiters when either moved (or every feedRecheck polls).
func (s *Server) pollFeed() {
	t := time.NewTicker(s.feedPoll)
	defer t.Stop()
	var head, oldest int64 = -1, -1
	for tick := 1; ; tick++ {
		select {
		case <-s.feed.quit:
		case <-t.C:
		}
		s.feed.mu.Lock()
		if s.feed.waiters == 0 || isClosed(s.feed.quit) {
			s.feed.polling = false
			s.feed.mu.Unlock()
			return
		}
		s.feed.mu.Unlock()
		page, err := s.backend.Changes(s.feedCtx, 0, 0)
		if err != nil {
			// Wake the waiters: their own reads fail and answer 503 now, so plugins stop trusting
			// their caches within a poll, not at the end of their wait.
			s.feed.notify()
			continue
		}
		if page.Head != head || page.Oldest != oldest || tick%feedRecheck == 0 {
			head, oldest = page.Head, page.Oldest
			s.feed.notify()
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Shutdown ends every change-feed wait at once (each answers what it has), so that a graceful
// stop does not wait out the long-polls. Register it with http.Server.RegisterOnShutdown.
func (s *Server) Shutdown() {
	s.feed.stop.Do(func() { close(s.feed.quit); s.stopFeedCtx() })
}

// recorded counts a change the backend recorded (by the same rule it applied) and wakes the
// waiting long-polls.
func (s *Server) recorded(_ store.Change, ok bool) {
	if !ok {
		return
	}
	s.metrics.ChangesRecorded.Inc()
	s.feed.notify()
}

// intParam reads an optional integer query parameter in [lo, hi].
func intParam(r *http.Request, name string, lo, hi, def int64) (int64, bool) {
	v, ok := r.URL.Query()[name]
	if !ok {
		return def, true
	}
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	return n, err == nil && n >= lo && n <= hi
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) (int, any) {
	limit, ok := intParam(r, "limit", 1, maxChangesLimit, maxChangesLimit)
	if !ok {
		return 0, badRequest("limit: 1-1000")
	}
	waitMs, ok := intParam(r, "waitMs", 0, maxWaitMs, 0)
	if !ok {
		return 0, badRequest("waitMs: 0-30000")
	}
	if _, given := r.URL.Query()["since"]; !given {
		// A consumer starting fresh needs no history: where the feed stands.
		page, err := s.backend.Changes(r.Context(), 0, 0)
		if err != nil {
			return 0, s.storeError(r, err)
		}
		return http.StatusOK, ChangesBody{Seq: page.Head, Changes: []Change{}}
	}
	since, ok := intParam(r, "since", 0, 1<<62, 0)
	if !ok {
		return 0, badRequest("since: a sequence number >= 0")
	}
	deadline := time.Now().Add(time.Duration(waitMs) * time.Millisecond)
	var timer *time.Timer
	for joined := false; ; {
		wake := s.feed.current()   // before the read: a write after it wakes this wait
		var remote <-chan struct{} // another replica's write (a backend that is told of them), else never
		if n, ok := s.backend.(store.ChangeNotifier); ok {
			remote = n.ChangeSignal()
		}
		page, err := s.backend.Changes(r.Context(), since, int(limit))
		if err != nil {
			return 0, s.storeError(r, err)
		}
		if needsResync(page, since) {
			return http.StatusOK, ChangesBody{Seq: page.Head, Resync: true, Changes: []Change{}}
		}
		if len(page.Changes) > 0 {
			out := make([]Change, len(page.Changes))
			for i, c := range page.Changes {
				out[i] = Change{Seq: c.Seq, Kind: c.Kind, SessionIDs: c.SessionIDs, UserID: c.UserID, At: c.At,
					UpstreamVersion: c.UpstreamVersion, RevalidatedAt: c.RevalidatedAt}
				if out[i].SessionIDs == nil {
					out[i].SessionIDs = []string{}
				}
			}
			return http.StatusOK, ChangesBody{Seq: out[len(out)-1].Seq, Changes: out}
		}
		left := time.Until(deadline)
		if left <= 0 || isClosed(s.feed.quit) {
			return http.StatusOK, ChangesBody{Seq: since, Changes: []Change{}}
		}
		if !joined {
			if !s.joinFeed() {
				return 0, &apiError{http.StatusServiceUnavailable, "too_many_waiters",
					"too many change-feed waiters (" + strconv.Itoa(s.maxWaiters) + "): retry later or with waitMs=0"}
			}
			joined = true
			defer s.leaveFeed()
			// The server's write timeout is shorter than the longest wait (its read timeout does
			// not end a running handler: TestChangesLongPollOutlivesServerTimeouts).
			_ = http.NewResponseController(w).SetWriteDeadline(deadline.Add(15 * time.Second))
			timer = time.NewTimer(left)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-remote:
		case <-timer.C: // the next round answers (left <= 0)
		case <-s.feed.quit:
		case <-r.Context().Done():
			return http.StatusOK, ChangesBody{Seq: since, Changes: []Change{}} // nobody reads it
		}
	}
}

// needsResync: the consumer missed changes that are trimmed (since < Oldest-1, or everything up
// to Head trimmed), or since is past Head (another database, or its sequence restarted).
func needsResync(p store.ChangePage, since int64) bool {
	oldest := p.Oldest
	if oldest == 0 {
		oldest = p.Head + 1
	}
	return since > p.Head || since < oldest-1
}
