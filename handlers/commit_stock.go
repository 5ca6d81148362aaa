package handlers

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// CommitStock reacts to orders.confirmed: the reservation leaves the
// warehouse (on_hand and reserved both decrease; inventory.committed). If
// the reservation was already released (the order was cancelled and
// inventory saw that first), nothing happens.
type CommitStock struct{}

// Reaction implements Reactor.
func (CommitStock) Reaction() Reaction {
	return Reaction{Step: "commit_stock", Participant: Inventory, Trigger: events.OrderConfirmedV1,
		Emits: []string{events.StockCommittedV1}}
}

// Handle implements runner.Handler.
func (CommitStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderConfirmed
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	switch status {
	case stockReserved:
	case "":
		// A confirmation implies a reservation this participant made; it
		// is not visible yet, so try again later.
		return nil, fmt.Errorf("commit stock of order %s: no reservation yet", c.OrderID)
	default:
		return ignore(ctx, tx, c.OrderID, "commit_stock", Inventory, ev, "reservation is "+status)
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, -1, -1, stockCommitted); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "commit_stock", participant: Inventory, cause: ev, outcome: "committed"},
		events.StockCommittedV1, c.OrderID, events.StockMovement{OrderID: c.OrderID, Lines: lines})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
