package orders

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// CancelOrder handles the customer's orders.cancel command. A pending or
// confirmed order is cancelled with reason customer; the participants
// compensate from orders.cancelled (before confirmation: release and void;
// after: return and refund). Cancelling a cancelled order does nothing.
//
// A cancel may arrive before its order (a producer may publish the two
// commands in either order, and redeliveries reorder them): it is then
// remembered as a tombstone (orders.cancel_tombstones), never retried into
// the dead-letter queue, and place_order cancels the order the moment it
// is placed. A tombstone expires after TTL (CancelTombstoneTTL by
// default), so a cancel whose order never comes does not live forever.
type CancelOrder struct {
	// TTL is how long a cancel for an order not placed yet is remembered.
	TTL time.Duration
	now func() time.Time
}

// NewCancelOrder builds the reaction with the default tombstone TTL.
func NewCancelOrder() *CancelOrder {
	return &CancelOrder{TTL: CancelTombstoneTTL, now: handlers.UTCNow}
}

// Reaction implements Reactor.
func (h *CancelOrder) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "cancel_order", Participant: handlers.Orders, Trigger: events.CancelOrderV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOrder) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.CancelOrder
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	o, err := lockOrder(ctx, tx, in.OrderID)
	if errors.Is(err, errUnknownOrder) {
		// Serialise with a placement of this id in flight, then look again:
		// once the lock is ours, an order placed meanwhile is visible.
		if err := lockOrderID(ctx, tx, in.OrderID); err != nil {
			return nil, err
		}
		o, err = lockOrder(ctx, tx, in.OrderID)
		if errors.Is(err, errUnknownOrder) {
			if err := rememberCancel(ctx, tx, in.OrderID, cmd.ID(), h.now(), h.TTL); err != nil {
				return nil, err
			}
			return nil, handlers.LogStep(ctx, tx, handlers.Step{OrderID: in.OrderID, Step: "cancel_order", Participant: handlers.Orders, Cause: cmd,
				Outcome: "remembered", Detail: "order not placed yet: place_order cancels it on arrival"})
		}
	}
	if err != nil {
		return nil, err
	}
	switch o.status {
	case events.StatusCancelled:
		return handlers.Ignore(ctx, tx, o.id, "cancel_order", handlers.Orders, cmd, "order is already cancelled")
	case events.StatusRejected:
		// Never placed: nothing to cancel or compensate.
		return handlers.Ignore(ctx, tx, o.id, "cancel_order", handlers.Orders, cmd, "order was rejected")
	}
	out, err := cancel(ctx, tx, o, events.CancelCustomer, "cancel_order", cmd, h.now())
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
