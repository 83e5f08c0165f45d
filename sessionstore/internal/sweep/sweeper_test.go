package sweep

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// fakeBackend answers Sweep from a script; every other method is unused (nil embedded interface).
type fakeBackend struct {
	store.Backend
	calls atomic.Int32
	sweep func(n int32) (store.SweepResult, error)
}

func (f *fakeBackend) Sweep(ctx context.Context, now int64, limit int) (store.SweepResult, error) {
	return f.sweep(f.calls.Add(1))
}

func TestOnceLoopsUntilDone(t *testing.T) {
	f := &fakeBackend{sweep: func(n int32) (store.SweepResult, error) {
		return store.SweepResult{Sessions: 2, Tokens: 1, More: n < 3}, nil
	}}
	var reported store.SweepResult
	s := &Sweeper{Backend: f, Batch: 2, OnSweep: func(r store.SweepResult, err error) { reported = r }}
	res, err := s.Once(t.Context())
	if err != nil || res.Sessions != 6 || res.Tokens != 3 || f.calls.Load() != 3 || reported != res {
		t.Fatalf("Once = %+v, %v after %d calls (reported %+v)", res, err, f.calls.Load(), reported)
	}
}

func TestOnceRecoversAndReports(t *testing.T) {
	f := &fakeBackend{sweep: func(n int32) (store.SweepResult, error) { panic("boom") }}
	var gotErr error
	s := &Sweeper{Backend: f, Batch: 1, OnSweep: func(_ store.SweepResult, err error) { gotErr = err }}
	if _, err := s.Once(t.Context()); err == nil || gotErr == nil {
		t.Fatalf("panic not turned into an error: %v / %v", err, gotErr)
	}
	f.sweep = func(int32) (store.SweepResult, error) { return store.SweepResult{}, errors.New("disk") }
	if _, err := s.Once(t.Context()); err == nil {
		t.Fatal("error not returned")
	}
}

func TestRunTicksAndStops(t *testing.T) {
	f := &fakeBackend{sweep: func(n int32) (store.SweepResult, error) {
		if n == 1 {
			panic("first run panics; the sweeper must survive")
		}
		return store.SweepResult{}, nil
	}}
	s := &Sweeper{Backend: f, Interval: 10 * time.Millisecond, Batch: 1}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if f.calls.Load() < 3 {
		t.Fatalf("sweeps = %d, want ≥ 3", f.calls.Load())
	}
}

// trimBackend answers Sweep with nothing and records the TrimChanges plans, reporting more
// until the third call.
type trimBackend struct {
	store.Backend
	plans []store.TrimPlan
}

func (f *trimBackend) Sweep(context.Context, int64, int) (store.SweepResult, error) {
	return store.SweepResult{}, nil
}

func (f *trimBackend) TrimChanges(_ context.Context, p store.TrimPlan) (int, bool, error) {
	f.plans = append(f.plans, p)
	return p.Limit, len(f.plans) < 3, nil
}

func TestOnceTrimsChangesInBatches(t *testing.T) {
	f := &trimBackend{}
	now := time.UnixMilli(1_700_000_000_000)
	s := &Sweeper{Backend: f, Batch: 5, Now: func() time.Time { return now }, ChangeRetention: 10 * time.Minute, ChangeMax: 7}
	res, err := s.Once(t.Context())
	if err != nil || res.Changes != 15 || len(f.plans) != 3 {
		t.Fatalf("Once = %+v, %v after %d trims", res, err, len(f.plans))
	}
	want := store.TrimPlan{Before: now.UnixMilli() - 600_000, Keep: 7, Limit: 5}
	for _, p := range f.plans {
		if p != want {
			t.Fatalf("plan %+v, want %+v", p, want)
		}
	}
	// Without retention settings nothing is trimmed.
	f.plans = nil
	if res, err := (&Sweeper{Backend: f, Batch: 5}).Once(t.Context()); err != nil || res.Changes != 0 || len(f.plans) != 0 {
		t.Fatalf("no retention: %+v, %v, %d trims", res, err, len(f.plans))
	}
}

// auditBackend keeps a trail of n events and answers SweepAudit in batches.
type auditBackend struct {
	fakeBackend
	left   int
	before []int64
}

func (a *auditBackend) ListAudit(context.Context, store.AuditQuery) (store.AuditPage, error) {
	return store.AuditPage{}, nil
}

func (a *auditBackend) SweepAudit(ctx context.Context, before int64, limit int) (int, bool, error) {
	a.before = append(a.before, before)
	n := min(a.left, limit)
	a.left -= n
	return n, a.left > 0, nil
}

func TestOnceSweepsAuditInBatches(t *testing.T) {
	a := &auditBackend{fakeBackend: fakeBackend{sweep: func(int32) (store.SweepResult, error) { return store.SweepResult{}, nil }}, left: 5}
	now := time.UnixMilli(1_700_000_000_000)
	s := &Sweeper{Backend: a, Batch: 2, AuditRetention: time.Hour, Now: func() time.Time { return now }}
	res, err := s.Once(t.Context())
	if err != nil || res.Audit != 5 || len(a.before) != 3 || a.before[0] != now.Add(-time.Hour).UnixMilli() {
		t.Fatalf("Once = %+v, %v; calls %v", res, err, a.before)
	}
	// Without a retention nothing is swept.
	a.left, a.before = 5, nil
	s.AuditRetention = 0
	if res, _ := s.Once(t.Context()); res.Audit != 0 || a.before != nil {
		t.Fatalf("no retention: %+v %v", res, a.before)
	}
}
