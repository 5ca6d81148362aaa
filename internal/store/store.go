// Package store opens PostgreSQL and applies Tradewind's migrations.
//
// Migrations are embedded SQL files run by goose. Each has a down step and
// is written expand/contract: a migration only adds (tables, nullable
// columns, indexes built concurrently where large); dropping what an older
// release still reads happens in a later migration, one release after the
// code stopped reading it. That keeps a rolling upgrade safe.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for goose
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// randomPageCost is the planner's cost of a page read out of order on
// Tradewind's connections, unless DATABASE_URL sets one. PostgreSQL's
// default, 4, assumes a disk under the reads; the saga's working set (the
// rows of orders in flight) is in shared buffers, where an index probe
// costs about what a sequential read does. At 4, the set-based statements
// that lock a batch's rows by key (JOIN unnest($1) … FOR UPDATE) were
// planned as a hash join over a sequential scan of the whole table once a
// batch held a few dozen keys: 756 sequential scans reading 831,036 rows
// of payments.payments in an 8,000-order run.
const randomPageCost = "1.1"

// Open connects a pool and checks the server answers.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["random_page_cost"]; !set {
		cfg.ConnConfig.RuntimeParams["random_page_cost"] = randomPageCost
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return pool, nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	// Out of order: each issue numbers its migrations in its own range
	// (00100s saga, 00200s read side, …), so a database may already hold a
	// higher range when a lower one gains a file; migrations are
	// expand-only, so applying the late one is safe.
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithLogger(goose.NopLogger()), goose.WithAllowOutofOrder(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration. Concurrent callers are
// serialised by goose's session lock.
func Migrate(ctx context.Context, databaseURL string) error {
	return withProvider(ctx, databaseURL, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		return nil
	})
}

// MigrateDown rolls back the newest migration.
func MigrateDown(ctx context.Context, databaseURL string) error {
	return withProvider(ctx, databaseURL, func(p *goose.Provider) error {
		if _, err := p.Down(ctx); err != nil {
			return fmt.Errorf("roll back migration: %w", err)
		}
		return nil
	})
}

// Status lists every migration with whether it is applied.
func Status(ctx context.Context, databaseURL string) ([]*goose.MigrationStatus, error) {
	var out []*goose.MigrationStatus
	err := withProvider(ctx, databaseURL, func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migration status: %w", err)
		}
		out = st
		return nil
	})
	return out, err
}

// LatestVersion is the newest embedded migration's version; readiness
// compares it with the database's.
func LatestVersion() (int64, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	entries, err := fs.ReadDir(sub, ".")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		v, err := goose.NumericComponent(e.Name())
		if err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// AppliedVersion reads the database's current migration version from
// goose's table with an existing pool (cheap enough for /readyz).
func AppliedVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read migration version: %w", err)
	}
	return v, nil
}

func withProvider(ctx context.Context, databaseURL string, fn func(*goose.Provider) error) (err error) {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	p, err := provider(db)
	if err != nil {
		return err
	}
	return fn(p)
}

// WarnIfAutovacuumOff logs a warning when the server runs without
// autovacuum: Tradewind's queue-like tables (core.outbox, core.inbox) and
// hot rows (stock, counters) then keep every dead row version, and scans
// of them slow down until someone vacuums, and no table is analyzed. The
// relay role's Vacuumer vacuums a table once it holds more dead row
// versions than live ones, and analyzes it once a tenth of it changed.
func WarnIfAutovacuumOff(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	var on string
	if err := pool.QueryRow(ctx, `SHOW autovacuum`).Scan(&on); err != nil {
		log.Warn("cannot read the autovacuum setting", "err", err)
		return
	}
	if on != "on" {
		log.Warn("PostgreSQL runs with autovacuum off: Tradewind's relay role vacuums its own tables once they hold more dead rows than live ones (see tradewind_table_dead_tuples); turn autovacuum on for the rest of the database",
			"autovacuum", on)
	}
}
