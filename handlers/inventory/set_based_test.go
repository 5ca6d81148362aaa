package inventory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/handlertest"
	"github.com/tradewind/tradewind/handlers/inventory"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestReserveStockSetBasedAgreesWithOneByOne: a batch of orders.placed
// competing for scarce stock, with an unknown SKU, a duplicate and an
// order inventory already saw cancelled, reserves and rejects exactly as
// one message at a time would, in stream order.
func TestReserveStockSetBasedAgreesWithOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t)
	tag := strings.ToUpper(uuid.NewString()[:8])
	scarce, plenty, unknown := "RB-"+tag+"-SCARCE", "RB-"+tag+"-PLENTY", "RB-"+tag+"-UNKNOWN"
	if _, err := pool.Exec(ctx, `INSERT INTO inventory.inventory (sku, on_hand, reserved) VALUES ($1, 5, 1), ($2, 100, 0)`, scarce, plenty); err != nil {
		t.Fatal(err)
	}
	released := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO inventory.stock_orders (order_id, status) VALUES ($1, 'released')`, released); err != nil {
		t.Fatal(err)
	}
	placed := func(orderID string, lines ...events.OrderLine) *event.Event {
		ev, err := events.New(events.OrderPlacedV1, orderID, events.OrderPlaced{OrderID: orderID, CustomerID: "c-rb", Currency: "EUR",
			Total: 100, Lines: lines, PlacedAt: "2026-12-07T10:00:00Z", Deadline: "2026-12-07T10:00:30Z"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	line := func(sku string, q int64) events.OrderLine {
		return events.OrderLine{SKU: sku, Quantity: q, UnitPrice: 10}
	}
	o := make([]string, 6)
	for i := range o {
		o[i] = uuid.NewString()
	}
	evs := []*event.Event{
		placed(o[0], line(scarce, 2), line(plenty, 3), line(scarce, 1)), // takes 3 of the 4 scarce left
		placed(o[1], line(scarce, 2)),                                   // 1 left: out of stock
		placed(o[2], line(plenty, 1), line(unknown, 1)),                 // unknown SKU
		placed(released), // inventory saw it cancelled
		placed(o[3], line(scarce, 1), line(plenty, 97)), // the last scarce one, the rest of plenty
		placed(o[0], line(scarce, 1)),                   // a second orders.placed of o[0]
		placed(o[4], line(plenty, 1)),                   // plenty is gone
	}
	r, err := handlers.NewRouter(inventory.ReserveStock{}, inventory.CommitStock{})
	if err != nil {
		t.Fatal(err)
	}
	orders := append(o, released)
	out := handlertest.BatchAgreesWithOneByOne(t, pool, r, evs, orders, func(ctx context.Context, tx pgx.Tx) string {
		return handlertest.RowsText(t, ctx, tx, `SELECT sku, on_hand, reserved FROM inventory.inventory WHERE sku = ANY($1) ORDER BY sku`, []string{scarce, plenty}) +
			handlertest.RowsText(t, ctx, tx, `SELECT order_id, status, coalesce(reason, '') FROM inventory.stock_orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, orders) +
			handlertest.RowsText(t, ctx, tx, `SELECT order_id, sku, quantity, status FROM inventory.reservations WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, orders)
	})
	want := []string{events.StockReservedV1, events.StockRejectedV1, events.StockRejectedV1, "", events.StockReservedV1, "", events.StockRejectedV1}
	for i, w := range want {
		got := ""
		if len(out[i]) == 1 {
			got = out[i][0].Type()
		}
		if got != w || len(out[i]) > 1 {
			t.Errorf("message %d emitted %d events (%q), want %q", i, len(out[i]), got, w)
		}
	}
}
