package handlers

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// CancelOnRejection reacts to inventory.rejected: the pending order is
// cancelled with inventory's reason (out_of_stock or unknown_sku). Nothing
// was reserved or authorized, so there is nothing to compensate.
type CancelOnRejection struct{ now func() time.Time }

// NewCancelOnRejection builds the reaction.
func NewCancelOnRejection() *CancelOnRejection { return &CancelOnRejection{now: utcNow} }

// Reaction implements Reactor.
func (h *CancelOnRejection) Reaction() Reaction {
	return Reaction{Step: "cancel_on_rejection", Participant: Orders, Trigger: events.StockRejectedV1,
		Emits: []string{events.OrderCancelledV1}}
}

// Handle implements runner.Handler.
func (h *CancelOnRejection) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.StockRejected
	if err := decode(ev, &in); err != nil {
		return nil, err
	}
	return cancelPending(ctx, tx, in.OrderID, in.Reason, "cancel_on_rejection", ev, h.now())
}
