// Package sweep runs the background deletion of expired records.
package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Sweeper periodically removes expired records in bounded batches.
type Sweeper struct {
	Backend  store.Backend
	Interval time.Duration
	Batch    int              // records of each kind per transaction
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger
	// ChangeRetention and ChangeMax bound the change feed: every run trims the changes older than
	// ChangeRetention and all but the newest ChangeMax, Batch per call (0: no such bound; both 0:
	// no trimming).
	ChangeRetention time.Duration
	ChangeMax       int64
	// AuditRetention removes audit events older than it, Batch per call, on backends that keep
	// the trail (store.AuditLog); 0: kept for ever.
	AuditRetention time.Duration
	// OnSweep, if set, receives the totals of every run (metrics).
	OnSweep func(store.SweepResult, error)
}

// Run sweeps every Interval until ctx is cancelled.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Once(ctx) // Once logs its own errors; the next tick tries again
		}
	}
}

// Once sweeps until nothing expired is left (or ctx ends) and returns the totals. A panic is
// recovered and reported as an error so that one bad record cannot stop the sweeper.
func (s *Sweeper) Once(ctx context.Context) (total store.SweepResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sweep panicked: %v", p)
		}
		if err != nil && s.Logger != nil {
			s.Logger.Error("sweep failed", "err", err)
		}
		if s.OnSweep != nil {
			s.OnSweep(total, err)
		}
	}()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now().UnixMilli() // one cut-off per run, so a run always ends
	for ctx.Err() == nil {
		res, err := s.Backend.Sweep(ctx, at, s.Batch)
		if err != nil {
			return total, err
		}
		total.Sessions += res.Sessions
		total.Tokens += res.Tokens
		total.Families += res.Families
		total.Counters += res.Counters
		if !res.More {
			break
		}
	}
	if total.Changes, err = s.trimChanges(ctx, at); err != nil {
		return total, err
	}
	if total.Audit, err = s.sweepAudit(ctx, at); err != nil {
		return total, err
	}
	if s.Logger != nil && total != (store.SweepResult{}) {
		s.Logger.Info("swept expired records", "sessions", total.Sessions, "tokens", total.Tokens,
			"families", total.Families, "counters", total.Counters, "changes", total.Changes, "audit", total.Audit)
	}
	return total, nil
}

// trimChanges applies the change-feed retention at the run's cut-off, in batches.
func (s *Sweeper) trimChanges(ctx context.Context, at int64) (int, error) {
	if s.ChangeRetention <= 0 && s.ChangeMax <= 0 {
		return 0, nil
	}
	plan := store.TrimPlan{Before: math.MinInt64, Keep: s.ChangeMax, Limit: s.Batch}
	if s.ChangeRetention > 0 {
		plan.Before = at - s.ChangeRetention.Milliseconds()
	}
	n := 0
	for ctx.Err() == nil {
		removed, more, err := s.Backend.TrimChanges(ctx, plan)
		n += removed
		if err != nil || !more {
			return n, err
		}
	}
	return n, nil
}

// sweepAudit applies the audit retention at the run's cut-off, in batches.
func (s *Sweeper) sweepAudit(ctx context.Context, at int64) (int, error) {
	log, ok := s.Backend.(store.AuditLog)
	if !ok || s.AuditRetention <= 0 {
		return 0, nil
	}
	before := at - s.AuditRetention.Milliseconds()
	n := 0
	for ctx.Err() == nil {
		removed, more, err := log.SweepAudit(ctx, before, s.Batch)
		n += removed
		if err != nil || !more {
			return n, err
		}
	}
	return n, nil
}
