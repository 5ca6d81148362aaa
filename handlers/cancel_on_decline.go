package handlers

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// CancelOnDecline reacts to payments.declined: the pending order is
// cancelled with reason payment_declined; inventory then releases the
// reservation it holds.
type CancelOnDecline struct{ now func() time.Time }

// NewCancelOnDecline builds the reaction.
func NewCancelOnDecline() *CancelOnDecline { return &CancelOnDecline{now: utcNow} }

// Reaction implements Reactor.
func (h *CancelOnDecline) Reaction() Reaction {
	return Reaction{Step: "cancel_on_decline", Participant: Orders, Trigger: events.PaymentDeclinedV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOnDecline) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PaymentDeclined
	if err := decode(ev, &in); err != nil {
		return nil, err
	}
	return cancelPending(ctx, tx, in.OrderID, events.CancelPaymentDeclined, "cancel_on_decline", ev, h.now())
}
