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
// than live ones where autovacuum is off or lagging (a busy queue table is
// where it lags first): the outbox's deleted rows, the updated versions of
// hot rows (stock, counters, checkpoints, read models). Without it every
// scan and hot-row update walks more dead versions the longer the system
// runs. VACUUM takes no lock that blocks reads or writes, and SKIP_LOCKED
// leaves a table that autovacuum is already vacuuming.
type Vacuumer struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Every is how often the statistics are read; 0: 10 s.
	Every time.Duration
	// MinDead is the fewest dead tuples worth a vacuum; 0: 2,000. A table
	// is vacuumed once it has at least MinDead dead tuples and at least as
	// many dead as live ones, so the work stays proportional to the churn.
	MinDead int64
}

// Run vacuums until ctx ends; a failed round is logged and retried on the
// next tick.
func (v Vacuumer) Run(ctx context.Context) error {
	every := v.Every
	if every <= 0 {
		every = 10 * time.Second
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
// payments, public and proj that has
// more dead tuples than MinDead and than live ones, and returns their
// names.
func (v Vacuumer) Once(ctx context.Context) ([]string, error) {
	minDead := v.MinDead
	if minDead <= 0 {
		minDead = 2000
	}
	rows, err := v.Pool.Query(ctx, `
		SELECT schemaname, relname, n_dead_tup FROM pg_stat_user_tables
		WHERE schemaname IN ('core', 'orders', 'inventory', 'payments', 'public', 'proj') AND n_dead_tup >= $1 AND n_dead_tup >= n_live_tup
		ORDER BY n_dead_tup DESC`, minDead)
	if err != nil {
		return nil, fmt.Errorf("dead tuples: %w", err)
	}
	type table struct {
		schema, name string
		dead         int64
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.schema, &t.name, &t.dead)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("dead tuples: %w", err)
	}
	var done []string
	for _, t := range tables {
		name := pgx.Identifier{t.schema, t.name}.Sanitize()
		start := time.Now()
		if _, err := v.Pool.Exec(ctx, "VACUUM (SKIP_LOCKED) "+name); err != nil {
			return done, fmt.Errorf("vacuum %s: %w", name, err)
		}
		if v.Log != nil {
			v.Log.Debug("vacuumed", "table", name, "dead_tuples", t.dead, "took", time.Since(start))
		}
		done = append(done, t.schema+"."+t.name)
	}
	return done, nil
}
