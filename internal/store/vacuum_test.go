package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// A table whose rows were deleted (a queue) has more dead versions than
// live rows: the vacuumer vacuums it and leaves a quiet table alone.
func TestVacuumerVacuumsTablesWithMoreDeadThanLiveRows(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	// Tables of this run's own: the package database outlives it (go test
	// -count=N).
	hot, quiet := fmt.Sprintf("vacuum_hot_%d", time.Now().UnixNano()), fmt.Sprintf("vacuum_quiet_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS public."+hot+", public."+quiet) })
	err := func() error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		for _, q := range []string{
			`CREATE TABLE public.` + hot + ` (id int PRIMARY KEY, n bigint)`,
			`CREATE TABLE public.` + quiet + ` (id int PRIMARY KEY, n bigint)`,
			`INSERT INTO public.` + hot + ` SELECT g, 0 FROM generate_series(1, 500) g`,
			`DELETE FROM public.` + hot,
			`INSERT INTO public.` + quiet + ` SELECT g, 0 FROM generate_series(1, 100) g`,
			`UPDATE public.` + quiet + ` SET n = 1 WHERE id <= 10`,
			// The statistics reach pg_stat_user_tables when the session
			// flushes them.
			`SELECT pg_stat_force_next_flush()`,
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}()
	if err != nil {
		t.Fatal(err)
	}
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
