package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// batchAgreesWithOneByOne runs evs through r twice on the same rows, each
// time in a transaction rolled back at the end: set-based (HandleBatch)
// and message by message (Handle). Both must emit the same events (type
// and data, per message) and leave the same rows (snapshot) and saga log
// steps for orders. It returns the set-based run's emissions.
func batchAgreesWithOneByOne(t *testing.T, pool *pgxpool.Pool, r *handlers.Router, evs []*event.Event, orders []string,
	snapshot func(context.Context, pgx.Tx) string) [][]*event.Event {
	t.Helper()
	ctx := context.Background()
	run := func(batch bool) (emitted string, out [][]*event.Event, rows string) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if batch {
			msgs := make([]runner.Msg, len(evs))
			for i, ev := range evs {
				msgs[i] = runner.Msg{Ctx: ctx, Event: ev}
			}
			if out, err = r.HandleBatch(ctx, tx, msgs); err != nil {
				t.Fatalf("HandleBatch: %v", err)
			}
		} else {
			for _, ev := range evs {
				o, err := r.Handle(ctx, tx, ev)
				if err != nil {
					t.Fatalf("Handle %s: %v", ev.ID(), err)
				}
				out = append(out, o)
			}
		}
		var b strings.Builder
		for i, o := range out {
			for _, e := range o {
				fmt.Fprintf(&b, "%d %s %s %s\n", i, e.Type(), e.Subject(), e.Data())
			}
		}
		return b.String(), out, snapshot(ctx, tx) + sagaSteps(t, ctx, tx, orders)
	}
	batchEmitted, out, batchRows := run(true)
	oneEmitted, _, oneRows := run(false)
	if batchEmitted != oneEmitted {
		t.Errorf("emitted set-based:\n%s\none by one:\n%s", batchEmitted, oneEmitted)
	}
	if batchRows != oneRows {
		t.Errorf("rows set-based:\n%s\none by one:\n%s", batchRows, oneRows)
	}
	return out
}

// sagaSteps lists the saga log steps of orders, in the order logged.
func sagaSteps(t *testing.T, ctx context.Context, tx pgx.Tx, orders []string) string {
	t.Helper()
	return rowsText(t, ctx, tx, `
		SELECT order_id, step, participant, event_type, outcome, coalesce(detail, ''), coalesce(emitted_type, '')
		FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY id`, orders)
}

// rowsText renders a query's rows, one line each.
func rowsText(t *testing.T, ctx context.Context, tx pgx.Tx, sql string, args ...any) string {
	t.Helper()
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

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
	if _, err := pool.Exec(ctx, `INSERT INTO core.inventory (sku, on_hand, reserved) VALUES ($1, 5, 1), ($2, 100, 0)`, scarce, plenty); err != nil {
		t.Fatal(err)
	}
	released := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO core.stock_orders (order_id, status) VALUES ($1, 'released')`, released); err != nil {
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
	r, err := handlers.NewRouter(handlers.ReserveStock{}, handlers.CommitStock{})
	if err != nil {
		t.Fatal(err)
	}
	orders := append(o, released)
	out := batchAgreesWithOneByOne(t, pool, r, evs, orders, func(ctx context.Context, tx pgx.Tx) string {
		return rowsText(t, ctx, tx, `SELECT sku, on_hand, reserved FROM core.inventory WHERE sku = ANY($1) ORDER BY sku`, []string{scarce, plenty}) +
			rowsText(t, ctx, tx, `SELECT order_id, status, coalesce(reason, '') FROM core.stock_orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, orders) +
			rowsText(t, ctx, tx, `SELECT order_id, sku, quantity, status FROM core.reservations WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, orders)
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

// TestPlaceOrderSetBasedAgreesWithOneByOne: a batch of place commands —
// one with a shipping address, one whose cancel came first (a tombstone),
// one totalling 0 (rejected), one repeating an order id — records and
// emits exactly what one command at a time would.
func TestPlaceOrderSetBasedAgreesWithOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t)
	place, err := handlers.NewPlaceOrder(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	handlers.SetPlaceOrderClock(place, func() time.Time { return at })
	r, err := handlers.NewRouter(place, handlers.NewCancelOrder())
	if err != nil {
		t.Fatal(err)
	}
	o := make([]string, 5)
	for i := range o {
		o[i] = uuid.NewString()
	}
	if _, err := pool.Exec(ctx, `INSERT INTO core.cancel_tombstones (order_id, command_id, requested_at, expires_at)
		VALUES ($1, 'early-cancel', $2, $3)`, o[1], at.Add(-time.Second), at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cmd := func(d events.PlaceOrderV2Data) *event.Event {
		ev, err := events.New(events.PlaceOrderV2, "", d)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	lines := []events.OrderLine{{SKU: "PB-1", Quantity: 2, UnitPrice: 250}}
	evs := []*event.Event{
		cmd(events.PlaceOrderV2Data{OrderID: o[0], CustomerID: "c-pb", Currency: "EUR", Lines: lines, PromoCode: "P1",
			ShippingAddress: &events.ShippingAddress{Name: "A", Line1: "1 Road", City: "Town", PostalCode: "1", Country: "DE"}}),
		cmd(events.PlaceOrderV2Data{OrderID: o[1], CustomerID: "c-pb", Currency: "EUR", Lines: lines}),
		cmd(events.PlaceOrderV2Data{OrderID: o[2], CustomerID: "c-pb", Currency: "EUR", Lines: []events.OrderLine{{SKU: "PB-1", Quantity: 1, UnitPrice: 0}}}),
		cmd(events.PlaceOrderV2Data{OrderID: o[0], CustomerID: "c-other", Currency: "EUR", Lines: lines}),
		cmd(events.PlaceOrderV2Data{OrderID: o[3], CustomerID: "c-pb", Currency: "USD", Lines: lines}),
	}
	out := batchAgreesWithOneByOne(t, pool, r, evs, o, func(ctx context.Context, tx pgx.Tx) string {
		return rowsText(t, ctx, tx, `
			SELECT order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, coalesce(cancel_reason, ''),
				coalesce(shipping_address::text, ''), coalesce(promo_code, '')
			FROM core.orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, o) +
			rowsText(t, ctx, tx, `SELECT order_id FROM core.cancel_tombstones WHERE order_id = ANY($1::uuid[])`, o)
	})
	want := [][]string{
		{events.OrderPlacedV1}, {events.OrderPlacedV1, events.OrderCancelledV1}, {events.OrderRejectedV1}, nil, {events.OrderPlacedV1},
	}
	for i, w := range want {
		var got []string
		for _, e := range out[i] {
			got = append(got, e.Type())
		}
		if !slices.Equal(got, w) {
			t.Errorf("command %d emitted %q, want %q", i, got, w)
		}
	}
}
