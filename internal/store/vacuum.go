package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Vacuumer keeps Tradewind's tables from carrying more dead row versions
// than live ones, and their planner statistics from going stale, where
// autovacuum is off or lagging (a busy queue table is where it lags
// first): the outbox's deleted rows, the updated versions of hot rows
// (stock, counters, checkpoints, read models), tables that grew from
// empty. Without it every scan and hot-row update walks more dead
// versions the longer the system runs, and the plans that connections
// cached while a table was small (a sequential scan of a few pages)
// stay in use after it has grown: measured on a database without
// autovacuum, the default mix after 15,000 happy orders cost 3.74 ms of
// PostgreSQL CPU per order at 364 orders/s, and 1.16 ms at 666 orders/s
// once the tables had been analyzed (an ANALYZE invalidates the cached
// plans of the tables it analyzes). VACUUM and ANALYZE take no lock that
// blocks reads or writes, and SKIP_LOCKED leaves a table that autovacuum
// is already working on.
type Vacuumer struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Every is how often the statistics are read; 0: 2 s (one cheap
	// query: a table that grows from empty is analyzed before the plans
	// cached on its first pages have served thousands of statements).
	Every time.Duration
	// MinDead is the fewest dead tuples worth a vacuum; 0: 2,000. A table
	// is vacuumed once it has at least MinDead dead tuples and at least as
	// many dead as live ones, so the work stays proportional to the churn.
	MinDead int64
	// MinChanged is the fewest rows changed since the last analyze worth
	// a new one; 0: 1,000. A table is analyzed once at least MinChanged
	// rows changed and it grew by a tenth (autovacuum's default scale
	// factor) or changed as many rows as it holds.
	MinChanged int64
}

// sampleTarget is the statistics target of the analyses the vacuumer runs
// where autovacuum is off (a sample of 300 × 10 rows instead of PostgreSQL's
// default 30,000). Their purpose is the planner's view of a table's size
// and keys, which a small sample gives; at the default target the analyses
// of the growing log tables (saga log, timeline, notifications, inbox)
// took a quarter of PostgreSQL's CPU in an 8,000-order run (3.9 s of
// ANALYZE). Columns with their own target keep it; where autovacuum runs,
// its analyses use the server's default and the vacuumer's rarely come
// first.
const sampleTarget = 10

// Run vacuums until ctx ends; a failed round is logged and retried on the
// next tick.
func (v Vacuumer) Run(ctx context.Context) error {
	every := v.Every
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := v.Once(ctx); err != nil && ctx.Err() == nil {
			v.Log.Warn("cannot vacuum Tradewind's tables; retrying", "err", err)
		}
	}
}

// Once vacuums every table of the schemas core, orders, inventory,
// payments, public and proj that has more dead tuples than MinDead and
// than live ones, analyzes every one whose changed rows pass MinChanged
// and that grew by a tenth since its last statistics (or changed as many
// rows as it holds), and returns the names of the tables it worked on.
func (v Vacuumer) Once(ctx context.Context) ([]string, error) {
	minDead, minChanged := v.MinDead, v.MinChanged
	if minDead <= 0 {
		minDead = 2000
	}
	if minChanged <= 0 {
		minChanged = 1000
	}
	// A table is due an analyze once MinChanged rows changed and it grew
	// by a tenth since its statistics were last taken (pg_class.reltuples,
	// -1 before the first), or as many rows changed as it holds: updates
	// in place (a read model's row, updated at every step of its order)
	// leave the sizes and keys the plans depend on as they were, and
	// counting them like inserts analyzed proj.orders_v1 every few
	// seconds in a soak.
	rows, err := v.Pool.Query(ctx, `
		SELECT schemaname, relname, n_dead_tup, autovacuum_off, do_vacuum, do_analyze
		FROM (
			SELECT s.schemaname, s.relname, s.n_dead_tup, current_setting('autovacuum') = 'off' AS autovacuum_off,
				s.n_dead_tup >= $1 AND s.n_dead_tup >= s.n_live_tup AS do_vacuum,
				s.n_mod_since_analyze >= $2 AND (c.reltuples < 0 OR s.n_live_tup >= 1.1 * c.reltuples OR s.n_mod_since_analyze >= s.n_live_tup) AS do_analyze
			FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
			WHERE s.schemaname IN ('core', 'orders', 'inventory', 'payments', 'public', 'proj')
		) t
		WHERE do_vacuum OR do_analyze
		ORDER BY n_dead_tup DESC`, minDead, minChanged)
	if err != nil {
		return nil, fmt.Errorf("table statistics: %w", err)
	}
	type table struct {
		schema, name    string
		dead            int64
		autovacuumOff   bool
		vacuum, analyze bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.schema, &t.name, &t.dead, &t.autovacuumOff, &t.vacuum, &t.analyze)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("table statistics: %w", err)
	}
	if len(tables) == 0 {
		return nil, nil
	}
	conn, err := v.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	defer conn.Release()
	if tables[0].autovacuumOff {
		// See sampleTarget. The setting is reset before the connection
		// goes back to the pool.
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET default_statistics_target = %d", sampleTarget)); err != nil {
			return nil, fmt.Errorf("vacuum: %w", err)
		}
		defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET default_statistics_target") }()
	}
	var done []string
	for _, t := range tables {
		name := pgx.Identifier{t.schema, t.name}.Sanitize()
		stmt := "VACUUM (SKIP_LOCKED) "
		switch {
		case t.vacuum && t.analyze:
			stmt = "VACUUM (SKIP_LOCKED, ANALYZE) "
		case t.analyze:
			stmt = "ANALYZE (SKIP_LOCKED) "
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, stmt+name); err != nil {
			return done, fmt.Errorf("%s%s: %w", stmt, name, err)
		}
		if v.Log != nil {
			v.Log.Debug("vacuumed or analyzed", "table", name, "vacuum", t.vacuum, "analyze", t.analyze, "dead_tuples", t.dead, "took", time.Since(start))
		}
		done = append(done, t.schema+"."+t.name)
	}
	return done, nil
}
