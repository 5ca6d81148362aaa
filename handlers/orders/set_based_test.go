package orders_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/handlertest"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestPlaceOrderSetBasedAgreesWithOneByOne: a batch of place commands —
// one with a shipping address, one whose cancel came first (a tombstone),
// one totalling 0 (rejected), one repeating an order id — records and
// emits exactly what one command at a time would.
func TestPlaceOrderSetBasedAgreesWithOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t)
	place, err := orders.NewPlaceOrder(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	orders.SetPlaceOrderClock(place, func() time.Time { return at })
	r, err := handlers.NewRouter(place, orders.NewCancelOrder())
	if err != nil {
		t.Fatal(err)
	}
	o := make([]string, 5)
	for i := range o {
		o[i] = uuid.NewString()
	}
	if _, err := pool.Exec(ctx, `INSERT INTO orders.cancel_tombstones (order_id, command_id, requested_at, expires_at)
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
	out := handlertest.BatchAgreesWithOneByOne(t, pool, r, evs, o, func(ctx context.Context, tx pgx.Tx) string {
		return handlertest.RowsText(t, ctx, tx, `
			SELECT order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, coalesce(cancel_reason, ''),
				coalesce(shipping_address::text, ''), coalesce(promo_code, '')
			FROM orders.orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, o) +
			handlertest.RowsText(t, ctx, tx, `SELECT order_id FROM orders.cancel_tombstones WHERE order_id = ANY($1::uuid[])`, o)
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
