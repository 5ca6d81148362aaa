package acceptance

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/projections"
)

// RecomputeDiffers rebuilds every read model from the EVENTS stream from
// scratch (projector.Rebuild: a new version from sequence 1, switched in
// atomically) and compares each with the live version it replaces, on a
// system at rest. It returns one line per table whose rows differ.
func RecomputeDiffers(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream) ([]string, error) {
	var diffs []string
	for _, p := range projections.All() {
		before, err := snapshot(ctx, pool, p)
		if err != nil {
			return nil, err
		}
		if _, err := projector.Rebuild(ctx, pool, js, p, projector.RebuildOptions{}); err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		after, err := snapshot(ctx, pool, p)
		if err != nil {
			return nil, err
		}
		for tb, rows := range before {
			if !slices.Equal(rows, after[tb]) {
				diffs = append(diffs, fmt.Sprintf("%s: live has %d rows, the recomputation %d; first difference:\n  live:       %s\n  recomputed: %s",
					tb, len(rows), len(after[tb]), firstDiff(rows, after[tb]), firstDiff(after[tb], rows)))
			}
		}
	}
	return diffs, nil
}

// snapshot is every row of p's tables (through their public views),
// as JSON text, sorted.
func snapshot(ctx context.Context, pool *pgxpool.Pool, p projector.Projection) (map[string][]string, error) {
	out := map[string][]string{}
	for _, tb := range p.Tables() {
		rows, err := pool.Query(ctx, `SELECT to_jsonb(t)::text FROM public.`+pgx.Identifier{tb}.Sanitize()+` t ORDER BY 1`)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", tb, err)
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", tb, err)
		}
		out[tb] = all
	}
	return out, nil
}

// firstDiff is the first row of a that b lacks ("" when none).
func firstDiff(a, b []string) string {
	for _, r := range a {
		if _, found := slices.BinarySearch(b, r); !found {
			return r
		}
	}
	return ""
}
