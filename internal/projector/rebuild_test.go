package projector_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRebuildSwitchesToLoggedFullyIndexedTables: whatever a rebuild does
// to fill its tables fast (unlogged tables, indexes built at the end were
// tried), it must hand readers tables exactly like the template: logged
// (else a crash recovery would empty the live read model) and with every
// index (else reads slow down). Each projection is rebuilt; the orders
// one over a few events.
func TestRebuildSwitchesToLoggedFullyIndexedTables(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const order = "01900000-0000-7000-8000-000000000001"
	at := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		typ  string
		data any
	}{
		{events.OrderPlacedV1, events.OrderPlaced{OrderID: order, CustomerID: "c-1", Currency: "EUR", Total: 500,
			Lines:    []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 500}},
			PlacedAt: at.Format(time.RFC3339Nano), Deadline: at.Add(15 * time.Minute).Format(time.RFC3339Nano)}},
		{events.StockReservedV1, events.StockReserved{OrderID: order, CustomerID: "c-1", Currency: "EUR", Total: 500,
			Lines: []events.StockLine{{SKU: "SKU-1", Quantity: 1}}}},
	} {
		ev, err := events.New(e.typ, order, e.data, events.WithTime(at))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := broker.Publish(ctx, js, ev); err != nil {
			t.Fatal(err)
		}
	}

	for _, p := range projections.All() {
		t.Run(p.Name(), func(t *testing.T) {
			res, err := projector.Rebuild(ctx, pool, js, p, projector.RebuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range p.Tables() {
				physical := projector.PhysicalTable(table, res.NewVersion)
				var persistence string
				if err := pool.QueryRow(ctx, `SELECT relpersistence::text FROM pg_class WHERE oid = $1::regclass`, physical).Scan(&persistence); err != nil {
					t.Fatal(err)
				}
				if persistence != "p" {
					t.Errorf("%s: relpersistence %q, want p (logged)", physical, persistence)
				}
				template := pgx.Identifier{"proj", table + "_tmpl"}.Sanitize()
				want := indexShapes(ctx, t, pool, template, table+"_tmpl")
				got := indexShapes(ctx, t, pool, physical, table+"_v"+strconv.Itoa(res.NewVersion))
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s indexes:\n%s\nwant (as the template):\n%s", physical, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			if p.Name() == "orders" {
				var n int
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.orders WHERE stock_status = 'reserved'`).Scan(&n); err != nil || n != 1 {
					t.Fatalf("rebuilt orders: %d reserved orders (%v), want 1", n, err)
				}
			}
		})
	}
}

// indexShapes lists table's index definitions with its name (and the
// names it gives its indexes) replaced by "T", sorted.
func indexShapes(ctx context.Context, t *testing.T, pool *pgxpool.Pool, table, bare string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range defs {
		// "CREATE INDEX <name> ON proj.<bare> USING ...": the name differs
		// per table; what is indexed, and how, must not.
		on := strings.Index(d, " ON ")
		head := d[:on]
		head = head[:strings.LastIndex(head, " ")]
		defs[i] = head + strings.ReplaceAll(d[on:], bare, "T")
	}
	slices.Sort(defs)
	return defs
}
