package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// CancelOnDecline reacts to payments.declined: the pending order is
// cancelled with reason payment_declined; inventory then releases the
// reservation it holds.
type CancelOnDecline struct{ now func() time.Time }

var _ handlers.BatchReactor = (*CancelOnDecline)(nil)

// NewCancelOnDecline builds the reaction.
func NewCancelOnDecline() *CancelOnDecline { return &CancelOnDecline{now: handlers.UTCNow} }

// Reaction implements Reactor.
func (h *CancelOnDecline) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "cancel_on_decline", Participant: handlers.Orders, Trigger: events.PaymentDeclinedV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOnDecline) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PaymentDeclined
	if err := handlers.Decode(ev, &in); err != nil {
		return nil, err
	}
	return cancelPending(ctx, tx, in.OrderID, events.CancelPaymentDeclined, "cancel_on_decline", ev, h.now())
}

// HandleBatch implements BatchReactor: cancelPendingBatch over the batch
// (one statement locks the orders, one cancels the pending ones). Any
// error fails the batch, which the runner redoes with Handle: an
// undecodable message (Handle dead-letters it) and an order not recorded
// yet (Handle retries it) included.
func (h *CancelOnDecline) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	in := make([]pendingFailure, len(msgs))
	for i, m := range msgs {
		var x events.PaymentDeclined
		if err := handlers.Decode(m.Event, &x); err != nil {
			return nil, fmt.Errorf("cancel_on_decline: message %s: %w", m.Event.ID(), err)
		}
		in[i] = pendingFailure{orderID: x.OrderID, reason: events.CancelPaymentDeclined, cause: m.Event}
	}
	return cancelPendingBatch(ctx, tx, in, "cancel_on_decline", h.now())
}
