package store

import (
	"cmp"
	"slices"
)

// MaxSessionsCap bounds Limit.Max: a cap is for people, not for bulk clients.
const MaxSessionsCap = 10_000

// PlanEviction decides a capped create from the user's sessions as storage holds them: sessions
// may be in any order and include expired ones (only those live at now count). With lim.Max 0, or
// fewer live sessions than lim.Max, nothing goes. At the cap (count >= lim.Max) a Refuse limit
// answers ErrSessionLimit (nothing may be written); otherwise the count-lim.Max+1 least recently
// used go, so that with the new session the user has lim.Max: the smallest LastSeenAt first, ties
// broken by the oldest CreatedAt, then the id (every backend picks the same ones).
func PlanEviction(sessions []*Session, lim Limit, now int64) ([]*Session, error) {
	if lim.Max <= 0 {
		return nil, nil
	}
	live := make([]*Session, 0, len(sessions))
	for _, s := range sessions {
		if s.Live(now) {
			live = append(live, s)
		}
	}
	if len(live) < lim.Max {
		return nil, nil
	}
	if lim.Refuse {
		return nil, ErrSessionLimit
	}
	slices.SortFunc(live, func(a, b *Session) int {
		return cmp.Or(cmp.Compare(a.LastSeenAt, b.LastSeenAt), cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return live[:len(live)-lim.Max+1], nil
}
