package projections_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/projections"
)

// snapshot returns every row of every table of p's live version, sorted.
func (e *env) snapshot(p projector.Projection) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, tb := range p.Tables() {
		out[tb] = e.rows(fmt.Sprintf(`SELECT * FROM public.%s t ORDER BY to_jsonb(t)::text`, tb))
	}
	return out
}

func (e *env) seeded() uint64 {
	e.t.Helper()
	e.run(projections.All()...)
	last := e.seed()
	for _, p := range projections.All() {
		e.waitFor(p, last)
	}
	return last
}

func TestReadModelsOfTheSeededDataset(t *testing.T) {
	e := newEnv(t)
	e.seeded()
	cases := []struct {
		name, sql string
		want      []string
	}{
		{"inventory counts reservations, commits and returns", `SELECT sku, on_hand, reserved, available, low_stock FROM public.inventory ORDER BY sku`, []string{
			`{"sku": "BK-1", "on_hand": 1, "reserved": 0, "available": 1, "low_stock": true}`,
			`{"sku": "CB-1", "on_hand": 98, "reserved": 0, "available": 98, "low_stock": false}`,
			`{"sku": "PH-1", "on_hand": 9, "reserved": 2, "available": 7, "low_stock": false}`,
		}},
		{"a change opens a version, a repeat does not", `SELECT customer_id, version, country, is_current, valid_to = 'infinity' AS open FROM public.customers_history ORDER BY customer_id, version`, []string{
			`{"open": false, "country": "GB", "version": 1, "is_current": false, "customer_id": "c-1"}`,
			`{"open": true, "country": "FR", "version": 2, "is_current": true, "customer_id": "c-1"}`,
			`{"open": true, "country": "", "version": 1, "is_current": true, "customer_id": "c-2"}`,
			`{"open": true, "country": "", "version": 1, "is_current": true, "customer_id": "c-3"}`,
		}},
		{"the tree has paths and depths", `SELECT category_id, depth, path FROM public.category_tree ORDER BY path`, []string{
			`{"path": "Books", "depth": 0, "category_id": "books"}`,
			`{"path": "Electronics", "depth": 0, "category_id": "electronics"}`,
			`{"path": "Electronics > Phones", "depth": 1, "category_id": "phones"}`,
			`{"path": "Electronics > Phones > Smartphones", "depth": 2, "category_id": "smartphones"}`,
		}},
		{"revenue rolls up the tree, net of the cancellation", `SELECT category_id, revenue, own_revenue FROM public.category_revenue ORDER BY category_id`, []string{
			`{"revenue": 8000, "category_id": "books", "own_revenue": 8000}`,
			`{"revenue": 32000, "category_id": "electronics", "own_revenue": 2000}`,
			`{"revenue": 30000, "category_id": "phones", "own_revenue": null}`,
			`{"revenue": 30000, "category_id": "smartphones", "own_revenue": 30000}`,
		}},
		{"search ranks name over description", `SELECT sku FROM public.product_search WHERE document @@ websearch_to_tsquery('english', 'phone') ORDER BY ts_rank(document, websearch_to_tsquery('english', 'phone')) DESC, sku`, []string{
			`{"sku": "PH-1"}`, `{"sku": "CB-1"}`,
		}},
		{"products carry their category name", `SELECT sku, category_name FROM public.product_search ORDER BY sku`, []string{
			`{"sku": "BK-1", "category_name": "Books"}`, `{"sku": "CB-1", "category_name": "Electronics"}`, `{"sku": "PH-1", "category_name": "Smartphones"}`,
		}},
		{"duplicates by email and by normalised name", `SELECT matched_on, customer_id, keep_id FROM public.dq_duplicate_customers ORDER BY matched_on`, []string{
			`{"keep_id": "c-1", "matched_on": "email", "customer_id": "c-3"}`,
			`{"keep_id": "c-1", "matched_on": "name", "customer_id": "c-3"}`,
		}},
		{"the timeline has every step with durations", `SELECT step, since_prev_ms, since_placed_ms FROM public.order_timeline WHERE order_id = $1 ORDER BY seq`, []string{
			`{"step": "orders.placed", "since_prev_ms": 0, "since_placed_ms": 0}`,
			`{"step": "inventory.reserved", "since_prev_ms": 60000, "since_placed_ms": 60000}`,
			`{"step": "payments.authorized", "since_prev_ms": 60000, "since_placed_ms": 120000}`,
			`{"step": "orders.confirmed", "since_prev_ms": 60000, "since_placed_ms": 180000}`,
			`{"step": "inventory.committed", "since_prev_ms": 60000, "since_placed_ms": 240000}`,
			`{"step": "payments.captured", "since_prev_ms": 60000, "since_placed_ms": 300000}`,
		}},
		{"no event was rejected", `SELECT name, seq, reason FROM public.projection_rejects`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []any
			if tc.name == "the timeline has every step with durations" {
				args = append(args, uuidFor(1))
			}
			got := e.rows(tc.sql, args...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

// TestRebuildEqualsLive: every read model rebuilt from the stream from
// scratch is identical to the live one, and becomes the live one.
func TestRebuildEqualsLive(t *testing.T) {
	e := newEnv(t)
	last := e.seeded()
	for _, p := range projections.All() {
		t.Run(p.Name(), func(t *testing.T) {
			before := e.snapshot(p)
			old, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
			if err != nil {
				t.Fatal(err)
			}
			res, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			if res.OldVersion != old.Version || res.NewVersion != old.Version+1 || res.Position < last {
				t.Errorf("rebuild = %+v, want v%d -> v%d at >= %d", res, old.Version, old.Version+1, last)
			}
			after := e.snapshot(p)
			for tb := range before {
				if !slices.Equal(before[tb], after[tb]) {
					t.Errorf("%s differs after rebuild:\nlive    %v\nrebuilt %v", tb, before[tb], after[tb])
				}
			}
			var n int
			if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'proj' AND tablename = $1`,
				fmt.Sprintf("%s_v%d", p.Tables()[0], old.Version)).Scan(&n); err != nil || n != 0 {
				t.Errorf("old version's table still there (%d, %v)", n, err)
			}
		})
	}
}
