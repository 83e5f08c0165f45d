package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order, each once, in one transaction under an advisory lock, so that
// replicas starting together do not race; schema_version records the last one applied. Add new
// ones at the end; never edit one that has shipped.
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE sessions (
		id text COLLATE "C" PRIMARY KEY,
		user_id text COLLATE "C" NOT NULL,
		family_id text COLLATE "C" NOT NULL DEFAULT '',
		host text COLLATE "C" NOT NULL,
		audience text[] NOT NULL DEFAULT '{}',
		device_id text COLLATE "C" NOT NULL DEFAULT '',
		device_name text COLLATE "C" NOT NULL DEFAULT '',
		jwt bytea,
		refresh bytea,
		upstream_version bigint NOT NULL,
		created_at bigint NOT NULL,
		last_seen_at bigint NOT NULL,
		hosts_last_seen jsonb NOT NULL DEFAULT '{}',
		idle_timeout_ms bigint NOT NULL,
		sliding boolean NOT NULL,
		expires_at bigint NOT NULL,
		absolute_expires_at bigint NOT NULL,
		revalidated_at bigint NOT NULL DEFAULT 0,
		login_addr text COLLATE "C" NOT NULL DEFAULT '',
		last_addr text COLLATE "C" NOT NULL DEFAULT '',
		remember_me boolean NOT NULL DEFAULT false
	);
	CREATE INDEX sessions_user ON sessions (user_id);
	CREATE INDEX sessions_family ON sessions (family_id) WHERE family_id <> '';
	CREATE INDEX sessions_expires ON sessions (expires_at);

	CREATE TABLE families (
		id text COLLATE "C" PRIMARY KEY,
		user_id text COLLATE "C" NOT NULL,
		host text COLLATE "C" NOT NULL,
		audience text[] NOT NULL DEFAULT '{}',
		device_id text COLLATE "C" NOT NULL DEFAULT '',
		device_name text COLLATE "C" NOT NULL DEFAULT '',
		login_addr text COLLATE "C" NOT NULL DEFAULT '',
		remember_me boolean NOT NULL DEFAULT false,
		jwt bytea,
		refresh bytea,
		created_at bigint NOT NULL,
		expires_at bigint NOT NULL,
		revalidated_at bigint NOT NULL DEFAULT 0
	);
	CREATE INDEX families_user ON families (user_id);
	CREATE INDEX families_expires ON families (expires_at);

	CREATE TABLE tokens (
		hash text COLLATE "C" PRIMARY KEY,
		family_id text COLLATE "C" NOT NULL,
		user_id text COLLATE "C" NOT NULL DEFAULT '',
		session_id text COLLATE "C" NOT NULL,
		expires_at bigint NOT NULL,
		spent boolean NOT NULL DEFAULT false,
		spent_at bigint NOT NULL DEFAULT 0
	);
	CREATE INDEX tokens_family ON tokens (family_id);
	CREATE INDEX tokens_session ON tokens (session_id);
	CREATE INDEX tokens_expires ON tokens (expires_at);

	CREATE TABLE counters (
		key text COLLATE "C" PRIMARY KEY,
		count bigint NOT NULL,
		reset_at bigint NOT NULL
	);
	CREATE INDEX counters_reset ON counters (reset_at);

	-- The change feed: changes.go says why head is one row.
	CREATE TABLE feed (id int PRIMARY KEY CHECK (id = 1), head bigint NOT NULL);
	INSERT INTO feed VALUES (1, 0);
	CREATE TABLE changes (
		seq bigint PRIMARY KEY,
		kind text COLLATE "C" NOT NULL,
		session_ids text[] NOT NULL,
		user_id text COLLATE "C" NOT NULL,
		at bigint NOT NULL,
		upstream_version bigint NOT NULL DEFAULT 0,
		revalidated_at bigint NOT NULL DEFAULT 0
	);

	-- SessionCount must be cheap and exact: statement triggers add each statement's inserted and
	-- deleted rows to one of 16 slots (by backend, so concurrent writers rarely share a row lock).
	CREATE TABLE session_count (slot int PRIMARY KEY, n bigint NOT NULL);
	INSERT INTO session_count SELECT g, 0 FROM generate_series(0, 15) g;
	CREATE FUNCTION session_count_ins() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE session_count SET n = n + (SELECT count(*) FROM new_rows) WHERE slot = pg_backend_pid() % 16;
		RETURN NULL;
	END $$;
	CREATE FUNCTION session_count_del() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE session_count SET n = n - (SELECT count(*) FROM old_rows) WHERE slot = pg_backend_pid() % 16;
		RETURN NULL;
	END $$;
	CREATE TRIGGER sessions_count_ins AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION session_count_ins();
	CREATE TRIGGER sessions_count_del AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
		FOR EACH STATEMENT EXECUTE FUNCTION session_count_del();`,

	// 2: the login's username on sessions and families, and the audit trail (audit.go).
	`ALTER TABLE sessions ADD COLUMN username text COLLATE "C" NOT NULL DEFAULT '';
	ALTER TABLE families ADD COLUMN username text COLLATE "C" NOT NULL DEFAULT '';
	CREATE TABLE audit (
		id bigserial PRIMARY KEY,
		at bigint NOT NULL,
		kind text COLLATE "C" NOT NULL,
		user_id text COLLATE "C" NOT NULL DEFAULT '',
		username text NOT NULL DEFAULT '',
		session_id text COLLATE "C" NOT NULL DEFAULT '',
		session_ids text[] NOT NULL DEFAULT '{}',
		host text NOT NULL DEFAULT '',
		client_addr text NOT NULL DEFAULT '',
		user_agent text NOT NULL DEFAULT '',
		reason text NOT NULL DEFAULT ''
	);
	CREATE INDEX audit_at ON audit (at);
	CREATE INDEX audit_user ON audit (user_id, id);`,
}

// SchemaVersion is the schema this code writes.
var SchemaVersion = len(migrations)

// newerSchemaError: the database was migrated by a newer store; this one refuses to start.
type newerSchemaError struct{ found, known int }

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this sessionstore knows (%d): run the newer version", e.found, e.known)
}

// migrate brings the schema to SchemaVersion in one transaction.
func (s *Store) migrate(ctx context.Context) error {
	return s.txOpts(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version int NOT NULL)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return err
		}
		if v > SchemaVersion {
			return &callerError{&newerSchemaError{found: v, known: SchemaVersion}} // final: no retry
		}
		for i := v; i < SchemaVersion; i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if v < SchemaVersion {
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, SchemaVersion)
			return err
		}
		return nil
	})
}
