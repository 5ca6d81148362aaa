package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// execOnOneSession runs stmts in order on one session, so that a
// pg_stat_force_next_flush among them flushes the statistics of the
// statements before it.
func execOnOneSession(t *testing.T, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A table whose rows were deleted (a queue) has more dead versions than
// live rows: the vacuumer vacuums it and leaves a quiet table alone.
func TestVacuumerVacuumsTablesWithMoreDeadThanLiveRows(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	// Tables of this run's own: the package database outlives it (go test
	// -count=N).
	hot, quiet := fmt.Sprintf("vacuum_hot_%d", time.Now().UnixNano()), fmt.Sprintf("vacuum_quiet_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS public."+hot+", public."+quiet) })
	execOnOneSession(t, pool,
		`CREATE TABLE public.`+hot+` (id int PRIMARY KEY, n bigint)`,
		`CREATE TABLE public.`+quiet+` (id int PRIMARY KEY, n bigint)`,
		`INSERT INTO public.`+hot+` SELECT g, 0 FROM generate_series(1, 500) g`,
		`DELETE FROM public.`+hot,
		`INSERT INTO public.`+quiet+` SELECT g, 0 FROM generate_series(1, 100) g`,
		`UPDATE public.`+quiet+` SET n = 1 WHERE id <= 10`,
		// The statistics reach pg_stat_user_tables when the session
		// flushes them.
		`SELECT pg_stat_force_next_flush()`,
	)
	testenv.Eventually(t, 10*time.Second, "the deletes in the statistics", func() bool {
		var dead int64
		_ = pool.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1`, hot).Scan(&dead)
		return dead >= 500
	})

	done, err := store.Vacuumer{Pool: pool, Log: slog.Default(), MinDead: 200}.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(done, "public."+hot) || slices.Contains(done, "public."+quiet) {
		t.Fatalf("vacuumed %v, want public.%s and not public.%s", done, hot, quiet)
	}
	var vacuumed bool
	if err := pool.QueryRow(ctx, `SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = $1`, hot).Scan(&vacuumed); err != nil || !vacuumed {
		t.Fatalf("%s has no last_vacuum (%v)", hot, err)
	}
}

// A table that grew since it was last analyzed (here: never) is analyzed,
// so that plans cached while it was small are made again; one with few
// changes is left alone.
func TestVacuumerAnalyzesTablesThatChangedSinceTheirLastAnalyze(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	grown, quiet := fmt.Sprintf("analyze_grown_%d", time.Now().UnixNano()), fmt.Sprintf("analyze_quiet_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS public."+grown+", public."+quiet) })
	execOnOneSession(t, pool,
		`CREATE TABLE public.`+grown+` (id int PRIMARY KEY, n bigint)`,
		`CREATE TABLE public.`+quiet+` (id int PRIMARY KEY, n bigint)`,
		`INSERT INTO public.`+grown+` SELECT g, 0 FROM generate_series(1, 3000) g`,
		`INSERT INTO public.`+quiet+` SELECT g, 0 FROM generate_series(1, 100) g`,
		`SELECT pg_stat_force_next_flush()`,
	)
	testenv.Eventually(t, 10*time.Second, "the inserts in the statistics", func() bool {
		var mods int64
		_ = pool.QueryRow(ctx, `SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = $1`, grown).Scan(&mods)
		return mods >= 3000
	})
	done, err := store.Vacuumer{Pool: pool, Log: slog.Default(), MinChanged: 1000}.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(done, "public."+grown) || slices.Contains(done, "public."+quiet) {
		t.Fatalf("worked on %v, want public.%s and not public.%s", done, grown, quiet)
	}
	var analyzed, vacuumed bool
	if err := pool.QueryRow(ctx, `SELECT last_analyze IS NOT NULL, last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = $1`, grown).Scan(&analyzed, &vacuumed); err != nil || !analyzed || vacuumed {
		t.Fatalf("%s: analyzed %v, vacuumed %v (%v); want analyzed only (it has no dead rows)", grown, analyzed, vacuumed, err)
	}
	// Where autovacuum is off (this suite's server, and any the vacuumer
	// matters on), the analysis is the small one: a histogram of at most
	// 11 bounds (statistics target 10) for the 3,000 distinct ids, not 101.
	var autovacuum string
	var bounds int
	if err := pool.QueryRow(ctx, `SELECT current_setting('autovacuum'), coalesce(array_length(histogram_bounds::text::int[], 1), 0)
		FROM pg_stats WHERE schemaname = 'public' AND tablename = $1 AND attname = 'id'`, grown).Scan(&autovacuum, &bounds); err != nil {
		t.Fatal(err)
	}
	if autovacuum == "off" && (bounds == 0 || bounds > 11) {
		t.Errorf("histogram of %s.id has %d bounds, want 2..11 (the vacuumer's statistics target)", grown, bounds)
	}
}

// Rows updated in place leave a table's size as it was: a table whose
// changes since its last analyze are updates of a fraction of its rows is
// left alone, and analyzed once it has grown by a tenth.
func TestVacuumerAnalyzesAfterGrowthNotAfterUpdatesInPlace(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	name := fmt.Sprintf("analyze_updated_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS public."+name) })
	mods := func(want int64) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "the changes in the statistics", func() bool {
			var n int64
			_ = pool.QueryRow(ctx, `SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = $1`, name).Scan(&n)
			return n >= want
		})
	}
	worked := func() bool {
		t.Helper()
		done, err := store.Vacuumer{Pool: pool, Log: slog.Default(), MinChanged: 1000, MinDead: 1 << 30}.Once(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(done, "public."+name)
	}
	execOnOneSession(t, pool,
		`CREATE TABLE public.`+name+` (id int PRIMARY KEY, n bigint)`,
		`INSERT INTO public.`+name+` SELECT g, 0 FROM generate_series(1, 10000) g`,
		`SELECT pg_stat_force_next_flush()`,
	)
	// The inserts must be in the statistics before the analyze resets
	// them, or they count as changes after it.
	mods(10000)
	execOnOneSession(t, pool,
		`ANALYZE public.`+name,
		`UPDATE public.`+name+` SET n = n + 1 WHERE id <= 3000`,
		`SELECT pg_stat_force_next_flush()`,
	)
	mods(3000)
	if worked() {
		t.Fatalf("analyzed public.%s after 3,000 updates in place of its 10,000 rows", name)
	}
	execOnOneSession(t, pool,
		`INSERT INTO public.`+name+` SELECT g, 0 FROM generate_series(10001, 11500) g`,
		`SELECT pg_stat_force_next_flush()`,
	)
	mods(4500)
	if !worked() {
		t.Fatalf("did not analyze public.%s after it grew from 10,000 to 11,500 rows", name)
	}
}
