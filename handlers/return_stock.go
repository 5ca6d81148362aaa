package handlers

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// ReturnStock reacts to orders.cancelled of an order whose stock was
// committed (a customer cancelling after confirmation): the units go back
// on hand (inventory.returned). Runs after ReleaseStock on the same
// message; for any other state it does nothing.
type ReturnStock struct{}

// Reaction implements Reactor.
func (ReturnStock) Reaction() Reaction {
	return Reaction{Step: "return_stock", Participant: Inventory, Trigger: events.OrderCancelledV1,
		Emits: []string{events.StockReturnedV1}}
}

// Handle implements runner.Handler.
func (ReturnStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil || status != stockCommitted {
		return nil, err
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, +1, 0, stockReturned); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "return_stock", participant: Inventory, cause: ev,
		outcome: "returned", detail: c.Reason},
		events.StockReturnedV1, c.OrderID, events.StockMovement{OrderID: c.OrderID, Lines: lines})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
