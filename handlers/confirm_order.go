package handlers

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// ConfirmOrder reacts to payments.authorized: a pending order within its
// deadline is confirmed (orders.confirmed; payments then captures and
// inventory commits). A pending order past its deadline is cancelled with
// reason timeout instead, as the sweeper would have. An order already
// cancelled stays cancelled: payments voids the late authorization when it
// sees orders.cancelled, so nothing is emitted here.
type ConfirmOrder struct{ now func() time.Time }

// NewConfirmOrder builds the reaction.
func NewConfirmOrder() *ConfirmOrder { return &ConfirmOrder{now: utcNow} }

// Reaction implements Reactor.
func (h *ConfirmOrder) Reaction() Reaction {
	return Reaction{Step: "confirm_order", Participant: Orders, Trigger: events.PaymentAuthorizedV1,
		Emits: []string{events.OrderConfirmedV1, events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *ConfirmOrder) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PaymentAuthorized
	if err := decode(ev, &in); err != nil {
		return nil, err
	}
	o, err := lockOrder(ctx, tx, in.OrderID)
	if err != nil {
		return nil, err
	}
	if o.status != events.StatusPending {
		return ignore(ctx, tx, o.id, "confirm_order", Orders, ev, "order is "+o.status)
	}
	now := h.now()
	if now.After(o.deadline) {
		out, err := cancel(ctx, tx, o, events.CancelTimeout, "confirm_order", ev, now)
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE core.orders SET status = 'confirmed', confirmed_at = $2, authorization_id = $3, updated_at = $2
		WHERE order_id = $1`, o.id, now, in.AuthorizationID); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: o.id, step: "confirm_order", participant: Orders, cause: ev, outcome: "confirmed"},
		events.OrderConfirmedV1, o.id, events.OrderConfirmed{
			OrderID: o.id, CustomerID: o.customerID, Currency: o.currency, Total: o.total,
			AuthorizationID: in.AuthorizationID, ConfirmedAt: now.Format(time.RFC3339Nano),
			PlacedAt: o.placedAt.UTC().Format(time.RFC3339Nano),
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
