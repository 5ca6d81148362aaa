package projections_test

import (
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/projections"
)

func TestOrdersFollowTheSaga(t *testing.T) {
	e := newEnv(t)
	e.run(projections.Orders{})
	o1, o2, o3 := uuidFor(1), uuidFor(2), uuidFor(3)
	e.confirmedOrder(o1, "c-1", line("SKU-A", 2, 1250), line("SKU-B", 1, 500))
	e.rejectedOrder(o2, "c-2", line("SKU-C", 9, 100))
	e.placed(o3, "c-1", line("SKU-A", 1, 1250))
	e.publish(events.StockReservedV1, o3, events.StockReserved{OrderID: o3, CustomerID: "c-1", Currency: "EUR", Total: 1250, Lines: stockLines([]events.OrderLine{line("SKU-A", 1, 1250)})})
	e.cancelled(o3, "c-1", []events.OrderLine{line("SKU-A", 1, 1250)}, events.CancelCustomer, events.StatusPending)
	last := e.publish(events.StockReleasedV1, o3, events.StockMovement{OrderID: o3, Lines: stockLines([]events.OrderLine{line("SKU-A", 1, 1250)})})
	e.waitFor(projections.Orders{}, last)

	cases := []struct {
		order                          string
		status, stock, payment, reason string
		total, items                   float64
		confirmed, cancelled           bool
	}{
		{o1, "confirmed", "committed", "captured", "", 3000, 3, true, false},
		{o2, "cancelled", "rejected", "", "out_of_stock", 900, 9, false, true},
		{o3, "cancelled", "released", "", "customer", 1250, 1, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.order, func(t *testing.T) {
			r := e.one(`SELECT status, coalesce(stock_status, '') AS stock, coalesce(payment_status, '') AS payment,
				coalesce(cancel_reason, '') AS reason, total, item_count, confirmed_at IS NOT NULL AS confirmed,
				cancelled_at IS NOT NULL AS cancelled FROM public.orders WHERE order_id = $1`, tc.order)
			want := map[string]any{"status": tc.status, "stock": tc.stock, "payment": tc.payment, "reason": tc.reason,
				"total": tc.total, "item_count": tc.items, "confirmed": tc.confirmed, "cancelled": tc.cancelled}
			for k, v := range want {
				if r[k] != v {
					t.Errorf("%s = %v, want %v", k, r[k], v)
				}
			}
		})
	}
	if r := e.one(`SELECT last_seq FROM public.orders WHERE order_id = $1`, o3); r["last_seq"] != float64(last) {
		t.Errorf("last_seq = %v, want %d", r["last_seq"], last)
	}
}
