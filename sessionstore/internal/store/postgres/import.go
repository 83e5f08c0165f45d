package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// Import bulk-loads sessions with COPY in one transaction (benchmark seeding, migrations from
// another backend): no cap, no change feed, ids must be new. The session count triggers run.
func (s *Store) Import(ctx context.Context, sessions []*store.Session) error {
	cols := strings.Split(strings.Join(strings.Fields(sessionCols), ""), ",")
	return s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"}, cols, pgx.CopyFromSlice(len(sessions), func(i int) ([]any, error) {
			return sessionArgs(sessions[i]), nil
		}))
		return err
	})
}
