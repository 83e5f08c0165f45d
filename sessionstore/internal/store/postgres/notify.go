package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// listener holds one connection (outside the pool) that LISTENs on the feed's channel and wakes
// whoever waits on ChangeSignal at every notification, whichever replica wrote the change. While
// it cannot connect it retries with backoff up to 1 s, and wakes the waiters on every reconnect
// (a notification sent while it was away is lost: the waiters re-read the table instead).
type listener struct {
	cfg  *pgx.ConnConfig
	log  *slog.Logger
	mu   sync.Mutex
	wake chan struct{} // closed and replaced at each notification
	// listening is closed once the first LISTEN is in place (tests wait for it).
	listening  chan struct{}
	listenOnce sync.Once

	cancel context.CancelFunc
	done   chan struct{}
}

func startListener(cfg *pgx.ConnConfig, log *slog.Logger) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cfg: cfg, log: log, wake: make(chan struct{}), listening: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go l.run(ctx)
	return l
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// signal returns a channel closed at the next notification.
func (l *listener) signal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

func (l *listener) notify() {
	l.mu.Lock()
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("postgres: change-feed listener lost its connection; reconnecting", "err", redact(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// listen connects, LISTENs and wakes the waiters at each notification until the connection fails.
func (l *listener) listen(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.ConnectConfig(cctx, l.cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return err
	}
	l.listenOnce.Do(func() { close(l.listening) })
	l.notify() // anything written while no one listened is in the table
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.notify()
	}
}

// ChangeSignal returns a channel that is closed at the next change recorded in the database by
// any store sharing it (LISTEN/NOTIFY), or when the listener reconnects. A long-poll takes it
// before reading the feed and re-reads when it closes (store.ChangeNotifier).
func (s *Store) ChangeSignal() <-chan struct{} { return s.listener.signal() }
