package handlers

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// ReserveStock reacts to orders.placed: it reserves every line of the
// order or none. The SKUs are locked in SKU order; the first line (in SKU
// order) that is unknown or short rejects the whole order
// (inventory.rejected, nothing reserved); otherwise reserved grows by each
// line and inventory.reserved carries what payments needs to authorize.
// If inventory already saw the order cancelled (a tombstone left by
// release_stock), it reserves nothing.
type ReserveStock struct{}

// Reaction implements Reactor.
func (ReserveStock) Reaction() Reaction {
	return Reaction{Step: "reserve_stock", Participant: Inventory, Trigger: events.OrderPlacedV1,
		Emits: []string{events.StockReservedV1, events.StockRejectedV1}}
}

// Handle implements runner.Handler.
func (ReserveStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var p events.OrderPlaced
	if err := decode(ev, &p); err != nil {
		return nil, err
	}
	// Claim the order: the insert serialises concurrent reactions to it.
	tag, err := tx.Exec(ctx, `INSERT INTO core.stock_orders (order_id, status) VALUES ($1, 'reserved') ON CONFLICT DO NOTHING`, p.OrderID)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	if tag.RowsAffected() == 0 {
		status, err := stockOrderStatus(ctx, tx, p.OrderID)
		if err != nil {
			return nil, err
		}
		return ignore(ctx, tx, p.OrderID, "reserve_stock", Inventory, ev, "order is already "+status)
	}
	lines := stockByOrder(p.Lines)
	skus, qs := skusAndQuantities(lines)
	stock, err := lockStock(ctx, tx, skus)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	for _, l := range lines {
		row, known := stock[l.SKU]
		reason, available := "", row.onHand-row.reserved
		switch {
		case !known:
			reason, available = events.RejectUnknownSKU, 0
		case available < l.Quantity:
			reason = events.RejectOutOfStock
		}
		if reason == "" {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE core.stock_orders SET status = 'rejected', reason = $2 WHERE order_id = $1`, p.OrderID, reason); err != nil {
			return nil, fmt.Errorf("reject order %s: %w", p.OrderID, err)
		}
		out, err := emitAndLog(ctx, tx, step{orderID: p.OrderID, step: "reserve_stock", participant: Inventory, cause: ev,
			outcome: "rejected", detail: reason + ": " + l.SKU},
			events.StockRejectedV1, p.OrderID, events.StockRejected{
				OrderID: p.OrderID, Reason: reason, SKU: l.SKU, Requested: l.Quantity, Available: max(available, 0),
			})
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE core.inventory i SET reserved = i.reserved + t.q, updated_at = now()
		FROM unnest($1::text[], $2::bigint[]) AS t(sku, q) WHERE i.sku = t.sku`, skus, qs); err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO core.reservations (order_id, sku, quantity, status)
		SELECT $1, t.sku, t.q, 'reserved' FROM unnest($2::text[], $3::bigint[]) AS t(sku, q)`, p.OrderID, skus, qs); err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	out, err := emitAndLog(ctx, tx, step{orderID: p.OrderID, step: "reserve_stock", participant: Inventory, cause: ev, outcome: "reserved"},
		events.StockReservedV1, p.OrderID, events.StockReserved{
			OrderID: p.OrderID, CustomerID: p.CustomerID, Currency: p.Currency, Total: p.Total, Lines: lines,
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
