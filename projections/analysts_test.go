package projections_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/internal/projector"
)

// analystExamples extracts the SQL examples of docs/analysts.md: every
// ```sql block, named by its first line "-- example: NAME".
func analystExamples(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/analysts.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		first, _, _ := strings.Cut(m[1], "\n")
		name, ok := strings.CutPrefix(first, "-- example: ")
		if !ok {
			t.Errorf("a SQL block of docs/analysts.md does not start with -- example: NAME:\n%s", m[1])
			continue
		}
		out[name] = strings.TrimSuffix(strings.TrimSpace(m[1]), ";")
	}
	return out
}

// TestAnalystExamplesReturnTheDocumentedRows runs every example of
// docs/analysts.md on the seeded dataset.
func TestAnalystExamplesReturnTheDocumentedRows(t *testing.T) {
	want := map[string][]string{
		"running totals": {`{"day": "2026-03-01", "avg_7d": 5714.29, "revenue": 40000, "running_total": 40000}`},
		// The seed is in March 2026, more than 7 days before any clock
		// this runs on.
		"pivot": {
			`{"units": 2, "category": "Books", "revenue_before": 8000, "revenue_last_7_days": null}`,
			`{"units": 2, "category": "Electronics", "revenue_before": 2000, "revenue_last_7_days": null}`,
			`{"units": 1, "category": "Smartphones", "revenue_before": 30000, "revenue_last_7_days": null}`,
		},
		// c-1 moved from GB to FR before placing the first order.
		"customer as of": {`{"country": "FR", "version": 2, "customer_id": "c-1"}`},
		"country at order time": {
			`{"country": "FR", "order_id": "00000000-0000-7000-8000-000000000001", "customer_id": "c-1"}`,
			`{"country": "", "order_id": "00000000-0000-7000-8000-000000000002", "customer_id": "c-2"}`,
			`{"country": "", "order_id": "00000000-0000-7000-8000-000000000003", "customer_id": "c-2"}`,
			`{"country": "FR", "order_id": "00000000-0000-7000-8000-000000000004", "customer_id": "c-1"}`,
			`{"country": "", "order_id": "00000000-0000-7000-8000-000000000005", "customer_id": "c-3"}`,
		},
		// Order 1 two minutes after it was placed: confirmed a minute later.
		"order as of": {
			`{"at": "2026-03-01T09:17:00+00:00", "step": "inventory.reserved", "context": "inventory"}`,
			`{"at": "2026-03-01T09:16:00+00:00", "step": "orders.placed", "context": "orders"}`,
			`{"at": "2026-03-01T09:18:00+00:00", "step": "payments.authorized", "context": "payments"}`,
		},
		"category roll-up": {
			`{"name": "Books", "depth": 0, "revenue_with_descendants": 8000}`,
			`{"name": "Electronics", "depth": 0, "revenue_with_descendants": 32000}`,
			`{"name": "Phones", "depth": 1, "revenue_with_descendants": 30000}`,
			`{"name": "Smartphones", "depth": 2, "revenue_with_descendants": 30000}`,
		},
		"duplicates": {`{"keep_id": "c-1", "customer_id": "c-3"}`},
		"ranked search": {
			`{"sku": "PH-1", "name": "Aurora phone 12", "rank": 0.3192}`,
			`{"sku": "CB-1", "name": "USB cable", "rank": 0.0608}`,
		},
		"autocomplete": {`{"sku": "BK-1", "name": "Programming in Go"}`},
		// The page after the newest order, 5.
		"keyset page": {
			`{"order_id": "00000000-0000-7000-8000-000000000004", "placed_at": "2026-03-01T09:31:00+00:00"}`,
			`{"order_id": "00000000-0000-7000-8000-000000000003", "placed_at": "2026-03-01T09:28:00+00:00"}`,
			`{"order_id": "00000000-0000-7000-8000-000000000002", "placed_at": "2026-03-01T09:22:00+00:00"}`,
			`{"order_id": "00000000-0000-7000-8000-000000000001", "placed_at": "2026-03-01T09:16:00+00:00"}`,
		},
		"late orders": {`{"status": "pending", "order_id": "00000000-0000-7000-8000-000000000005", "settled_after_deadline": null}`},
		"low stock":   {`{"sku": "BK-1", "on_hand": 1, "reserved": 0, "available": 1}`},
	}
	e := newEnv(t)
	e.seeded()
	// The live versions are 1 on a fresh database and higher after a
	// rebuild (another test, or an earlier -count run, may have rebuilt).
	for _, name := range []string{"orders", "sales"} {
		cp, err := projector.LiveCheckpoint(e.ctx, e.pool, name)
		if err != nil {
			t.Fatal(err)
		}
		want["checkpoints"] = append(want["checkpoints"], fmt.Sprintf(`{"live": true, "name": %q, "version": %d}`, name, cp.Version))
	}
	examples := analystExamples(t)
	for name := range want {
		if _, ok := examples[name]; !ok {
			t.Errorf("docs/analysts.md has no example %q", name)
		}
	}
	for name, sql := range examples {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("example %q has no expected rows in this test", name)
			}
			got := e.rows(sql)
			if name == "checkpoints" { // versions left by earlier rebuilds are not live
				got = slices.DeleteFunc(got, func(r string) bool { return !strings.Contains(r, `"live": true`) })
			}
			if !slices.Equal(got, w) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
			}
		})
	}
}
