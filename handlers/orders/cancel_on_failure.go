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

// CancelOnFailure cancels the pending order a participant's failure
// names, with the failure's reason. Two reactions are built from it:
//   - NewCancelOnRejection, on inventory.rejected: the reason is
//     inventory's (out_of_stock or unknown_sku); nothing was reserved or
//     authorized, so there is nothing to compensate;
//   - NewCancelOnDecline, on payments.declined: the reason is
//     payment_declined; inventory then releases the reservation it holds.
type CancelOnFailure struct {
	step    string
	trigger string
	// failure decodes the trigger: the order it names and the reason to
	// cancel it with.
	failure func(*event.Event) (orderID, reason string, err error)
	now     func() time.Time
}

var _ handlers.BatchReactor = (*CancelOnFailure)(nil)

// NewCancelOnRejection builds the reaction to inventory.rejected.
func NewCancelOnRejection() *CancelOnFailure {
	return &CancelOnFailure{step: "cancel_on_rejection", trigger: events.StockRejectedV1, now: handlers.UTCNow,
		failure: func(ev *event.Event) (string, string, error) {
			var in events.StockRejected
			err := handlers.Decode(ev, &in)
			return in.OrderID, in.Reason, err
		}}
}

// NewCancelOnDecline builds the reaction to payments.declined.
func NewCancelOnDecline() *CancelOnFailure {
	return &CancelOnFailure{step: "cancel_on_decline", trigger: events.PaymentDeclinedV1, now: handlers.UTCNow,
		failure: func(ev *event.Event) (string, string, error) {
			var in events.PaymentDeclined
			err := handlers.Decode(ev, &in)
			return in.OrderID, events.CancelPaymentDeclined, err
		}}
}

// Reaction implements Reactor.
func (h *CancelOnFailure) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: h.step, Participant: handlers.Orders, Trigger: h.trigger,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOnFailure) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	orderID, reason, err := h.failure(ev)
	if err != nil {
		return nil, err
	}
	return cancelPending(ctx, tx, orderID, reason, h.step, ev, h.now())
}

// HandleBatch implements BatchReactor: cancelPendingBatch over the batch
// (one statement locks the orders, one cancels the pending ones). Any
// error fails the batch, which the runner redoes with Handle: an
// undecodable message (Handle dead-letters it) and an order not recorded
// yet (Handle retries it) included.
func (h *CancelOnFailure) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	in := make([]pendingFailure, len(msgs))
	for i, m := range msgs {
		orderID, reason, err := h.failure(m.Event)
		if err != nil {
			return nil, fmt.Errorf("%s: message %s: %w", h.step, m.Event.ID(), err)
		}
		in[i] = pendingFailure{orderID: orderID, reason: reason, cause: m.Event}
	}
	return cancelPendingBatch(ctx, tx, in, h.step, h.now())
}
