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

// CancelOnRejection reacts to inventory.rejected: the pending order is
// cancelled with inventory's reason (out_of_stock or unknown_sku). Nothing
// was reserved or authorized, so there is nothing to compensate.
type CancelOnRejection struct{ now func() time.Time }

var _ handlers.BatchReactor = (*CancelOnRejection)(nil)

// NewCancelOnRejection builds the reaction.
func NewCancelOnRejection() *CancelOnRejection { return &CancelOnRejection{now: handlers.UTCNow} }

// Reaction implements Reactor.
func (h *CancelOnRejection) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "cancel_on_rejection", Participant: handlers.Orders, Trigger: events.StockRejectedV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOnRejection) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.StockRejected
	if err := handlers.Decode(ev, &in); err != nil {
		return nil, err
	}
	return cancelPending(ctx, tx, in.OrderID, in.Reason, "cancel_on_rejection", ev, h.now())
}

// HandleBatch implements BatchReactor: cancelPendingBatch over the batch
// (one statement locks the orders, one cancels the pending ones). Any
// error fails the batch, which the runner redoes with Handle: an
// undecodable message (Handle dead-letters it) and an order not recorded
// yet (Handle retries it) included.
func (h *CancelOnRejection) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	in := make([]pendingFailure, len(msgs))
	for i, m := range msgs {
		var x events.StockRejected
		if err := handlers.Decode(m.Event, &x); err != nil {
			return nil, fmt.Errorf("cancel_on_rejection: message %s: %w", m.Event.ID(), err)
		}
		in[i] = pendingFailure{orderID: x.OrderID, reason: x.Reason, cause: m.Event}
	}
	return cancelPendingBatch(ctx, tx, in, "cancel_on_rejection", h.now())
}
