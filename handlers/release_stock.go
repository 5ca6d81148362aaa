package handlers

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// ReleaseStock reacts to orders.cancelled: a reservation still held is
// given back (reserved decreases; inventory.released). This compensates a
// decline, a timeout and a customer cancel before confirmation, and
// releases a reservation made after the order was already cancelled (a
// late reservation). If inventory has not seen the order yet, it leaves a
// tombstone so that a late orders.placed reserves nothing.
type ReleaseStock struct{}

// Reaction implements Reactor.
func (ReleaseStock) Reaction() Reaction {
	return Reaction{Step: "release_stock", Participant: Inventory, Trigger: events.OrderCancelledV1,
		Emits: []string{events.StockReleasedV1}}
}

// Handle implements runner.Handler.
func (ReleaseStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO core.stock_orders (order_id, status) VALUES ($1, 'cancelled') ON CONFLICT DO NOTHING`, c.OrderID)
	if err != nil {
		return nil, fmt.Errorf("release stock of order %s: %w", c.OrderID, err)
	}
	if tag.RowsAffected() == 1 {
		return ignore(ctx, tx, c.OrderID, "release_stock", Inventory, ev, "nothing reserved yet; a late orders.placed will reserve nothing")
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil || status != stockReserved {
		return nil, err // nothing held (rejected, released) or committed (return_stock's case)
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, 0, -1, stockReleased); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "release_stock", participant: Inventory, cause: ev,
		outcome: "released", detail: c.Reason},
		events.StockReleasedV1, c.OrderID, events.StockMovement{OrderID: c.OrderID, Lines: lines})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
