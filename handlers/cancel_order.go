package handlers

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// CancelOrder handles the customer's orders.cancel command. A pending or
// confirmed order is cancelled with reason customer; the participants
// compensate from orders.cancelled (before confirmation: release and void;
// after: return and refund). Cancelling a cancelled order does nothing. A
// command for an order not recorded yet is retried (the place command may
// be behind it) and dead-lettered after MaxDeliver attempts.
type CancelOrder struct{ now func() time.Time }

// NewCancelOrder builds the reaction.
func NewCancelOrder() *CancelOrder { return &CancelOrder{now: utcNow} }

// Reaction implements Reactor.
func (h *CancelOrder) Reaction() Reaction {
	return Reaction{Step: "cancel_order", Participant: Orders, Trigger: events.CancelOrderV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOrder) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.CancelOrder
	if err := decode(cmd, &in); err != nil {
		return nil, err
	}
	o, err := lockOrder(ctx, tx, in.OrderID)
	if err != nil {
		return nil, err
	}
	if o.status == events.StatusCancelled {
		return ignore(ctx, tx, o.id, "cancel_order", Orders, cmd, "order is already cancelled")
	}
	out, err := cancel(ctx, tx, o, events.CancelCustomer, "cancel_order", cmd, h.now())
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
