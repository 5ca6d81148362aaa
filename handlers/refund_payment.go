package handlers

import (
	"context"
	"errors"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/provider"
)

// Refunder is what RefundPayment needs of the payment provider.
type Refunder interface {
	Refund(ctx context.Context, idempotencyKey, authorizationID string, amount int64) (provider.Operation, error)
}

// RefundPayment reacts to orders.cancelled of an order whose payment was
// captured (a customer cancelling after confirmation): the captured amount
// is refunded once (key refund:<order id>; payments.refunded). Runs after
// VoidPayment on the same message; for any other state it does nothing —
// a confirmed order whose capture is not recorded yet is refunded by
// capture_payment right after it captures.
type RefundPayment struct{ provider Refunder }

// NewRefundPayment validates the dependency.
func NewRefundPayment(p Refunder) (*RefundPayment, error) {
	if p == nil {
		return nil, errors.New("refund payment: provider is required")
	}
	return &RefundPayment{provider: p}, nil
}

// Reaction implements Reactor.
func (h *RefundPayment) Reaction() Reaction {
	return Reaction{Step: "refund_payment", Participant: Payments, Trigger: events.OrderCancelledV1,
		Emits: []string{events.PaymentRefundedV1}}
}

// Handle implements runner.Handler.
func (h *RefundPayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	p, ok, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil || !ok || p.status != payCaptured {
		return nil, err
	}
	out, err := refundCapture(ctx, h.provider, tx, p, ev, c.Reason)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// refundCapture refunds the locked payment's capture in full at the
// provider (key refund:<order id>, so a retry after a lost answer replays
// the first refund), records it and returns payments.refunded, logged as
// the refund_payment step caused by cause.
func refundCapture(ctx context.Context, r Refunder, tx pgx.Tx, p payment, cause *event.Event, detail string) (*event.Event, error) {
	key := "refund:" + p.orderID
	op, err := r.Refund(ctx, key, p.authorizationID, p.amount)
	if err != nil {
		return nil, providerError("refund payment of order "+p.orderID, err)
	}
	if err := recordOp(ctx, tx, p.orderID, "refund", op.ID, key, op.Amount, cause.ID(), payRefunded); err != nil {
		return nil, err
	}
	return emitAndLog(ctx, tx, step{orderID: p.orderID, step: "refund_payment", participant: Payments, cause: cause,
		outcome: "refunded", detail: detail},
		events.PaymentRefundedV1, p.orderID, events.PaymentSettled{
			OrderID: p.orderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
}
