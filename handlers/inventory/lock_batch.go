package inventory

import (
	"context"
	"fmt"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// LockStock is inventory's runner.BatchLocker (handlers.Router.LockWith):
// at the start of a batch's transaction it locks, in one statement and in
// SKU order, the inventory rows of every SKU the batch's reactions will
// lock — an order's lines (orders.placed), a restocked SKU (restock), the
// reserved SKUs of an order (every other order event: commit, release,
// return). The reactions' own lockStock then finds them held.
//
// Why: each reaction locks its SKUs in order, but a batch runs several
// (one group per type, then messages one by one; every message on the
// savepoint path), so a batch's locks as a whole came in arrival order,
// and two inventory instances (or inventory-commands beside
// inventory-events) deadlocked now and then: 16 PostgreSQL deadlocks in a
// 3,000-order default-mix run with two serve processes.
//
// Hazard: a reservation another transaction commits after this lookup
// (the same order's orders.placed in another instance's batch) is locked
// later, by its reaction; only partitioned consumers rule that out. A
// message that does not decode locks nothing here: its reaction rejects it.
func LockStock(ctx context.Context, tx pgx.Tx, evs []*event.Event) error {
	var skus, orders []string
	for _, ev := range evs {
		switch ev.Type() {
		case events.OrderPlacedV1:
			var p events.OrderPlaced
			if handlers.Decode(ev, &p) != nil {
				continue
			}
			for _, l := range p.Lines {
				skus = append(skus, l.SKU)
			}
		case events.RestockV1:
			var r events.Restock
			if handlers.Decode(ev, &r) == nil {
				skus = append(skus, r.SKU)
			}
		default:
			var o struct {
				OrderID string `json:"order_id"`
			}
			if ev.DataAs(&o) != nil || o.OrderID == "" {
				continue
			}
			if k, err := handlers.OrderKey(o.OrderID); err == nil {
				orders = append(orders, k)
			}
		}
	}
	if len(skus) == 0 && len(orders) == 0 {
		return nil
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)
	if _, err := tx.Exec(ctx, `
		SELECT sku FROM inventory.inventory
		WHERE sku IN (SELECT unnest($1::text[]) UNION SELECT sku FROM inventory.reservations WHERE order_id = ANY($2::uuid[]))
		ORDER BY sku FOR UPDATE`, skus, orders); err != nil {
		return fmt.Errorf("lock stock of %d SKUs and %d orders: %w", len(skus), len(orders), err)
	}
	return nil
}
