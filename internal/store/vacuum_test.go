package store_test

import (
	"context"
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
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE public.vacuum_hot (id int PRIMARY KEY, n bigint)`,
		`CREATE TABLE public.vacuum_quiet (id int PRIMARY KEY, n bigint)`,
		`INSERT INTO public.vacuum_hot SELECT g, 0 FROM generate_series(1, 500) g`,
		`DELETE FROM public.vacuum_hot`,
		`INSERT INTO public.vacuum_quiet SELECT g, 0 FROM generate_series(1, 100) g`,
		`UPDATE public.vacuum_quiet SET n = 1 WHERE id <= 10`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The statistics reach pg_stat_user_tables when the session flushes them.
	if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	testenv.Eventually(t, 10*time.Second, "the deletes in the statistics", func() bool {
		var dead int64
		_ = pool.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'vacuum_hot'`).Scan(&dead)
		return dead >= 500
	})

	done, err := store.Vacuumer{Pool: pool, Log: slog.Default(), MinDead: 200}.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(done, "public.vacuum_hot") || slices.Contains(done, "public.vacuum_quiet") {
		t.Fatalf("vacuumed %v, want public.vacuum_hot and not public.vacuum_quiet", done)
	}
	var vacuumed bool
	if err := pool.QueryRow(ctx, `SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'vacuum_hot'`).Scan(&vacuumed); err != nil || !vacuumed {
		t.Fatalf("vacuum_hot has no last_vacuum (%v)", err)
	}
}
