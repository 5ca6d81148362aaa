package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AnalystTables are the base tables of schema public an analyst may read
// besides the read models' views: where each read model stands. The other
// base tables there (notifications, their counters, the migration
// bookkeeping) are users' messages and Tradewind's own, not analytics.
var AnalystTables = []string{"projection_checkpoints", "projection_rejects"}

// GrantAnalyst makes role a read-only analyst of the database: it creates
// the role if it does not exist (NOLOGIN, or LOGIN with password when
// password is not empty; an existing role's password is set likewise),
// and grants it CONNECT, USAGE on schema public and SELECT on every view
// of schema public (the read models, which run with their owner's
// rights, so the role needs nothing in proj) and on AnalystTables —
// nothing in core (saga state), auth or proj, and no writes anywhere. It
// is idempotent; run it again after an upgrade that adds read models.
// Hazard: it needs a user allowed to create roles (CREATEROLE).
func GrantAnalyst(ctx context.Context, pool *pgxpool.Pool, role, password string) (views int, err error) {
	if role == "" {
		return 0, fmt.Errorf("analyst role: a name is required")
	}
	id := pgx.Identifier{role}.Sanitize()
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
			return err
		}
		login := "NOLOGIN"
		if password != "" {
			login = "LOGIN"
		}
		stmt := "CREATE ROLE " + id + " " + login
		if exists {
			stmt = "ALTER ROLE " + id + " " + login
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		if password != "" {
			// DDL takes no parameters: quote the password in the server.
			var set string
			if err := tx.QueryRow(ctx, `SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)`, role, password).Scan(&set); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, set); err != nil {
				return fmt.Errorf("set the password of role %s: %w", role, err)
			}
		}
		rows, err := tx.Query(ctx, `SELECT table_name FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		views = len(names)
		names = append(names, AnalystTables...)
		stmts := []string{
			"GRANT CONNECT ON DATABASE " + pgx.Identifier{tx.Conn().Config().Database}.Sanitize() + " TO " + id,
			"GRANT USAGE ON SCHEMA public TO " + id,
		}
		for _, n := range names {
			stmts = append(stmts, "GRANT SELECT ON "+pgx.Identifier{"public", n}.Sanitize()+" TO "+id)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("analyst role %s: %w", role, err)
	}
	return views, nil
}
