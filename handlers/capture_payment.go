package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/provider"
)

// Capturer is what CapturePayment needs of the payment provider to capture.
type Capturer interface {
	Capture(ctx context.Context, idempotencyKey, authorizationID string, amount int64) (provider.Operation, error)
}

// CaptureRefunder is what CapturePayment needs of the payment provider:
// it captures, and refunds what it captured for an order already cancelled.
type CaptureRefunder interface {
	Capturer
	Refunder
}

// CapturePayment reacts to orders.confirmed: the authorization is captured
// (key capture:<order id>; payments.captured). If the customer cancelled
// the confirmed order before this ran (payments saw orders.cancelled
// first), it captures and then refunds at once (payments.refunded): the
// refund follows the capture, so a capture that reached the provider in a
// lost attempt is never left unrefunded (void_payment does not void a
// confirmed order's authorization). An authorization voided before the
// order was confirmed (an older release voided there) is left alone.
type CapturePayment struct{ provider CaptureRefunder }

// NewCapturePayment validates the dependency.
func NewCapturePayment(p CaptureRefunder) (*CapturePayment, error) {
	if p == nil {
		return nil, errors.New("capture payment: provider is required")
	}
	return &CapturePayment{provider: p}, nil
}

// Reaction implements Reactor.
func (h *CapturePayment) Reaction() Reaction {
	return Reaction{Step: "capture_payment", Participant: Payments, Trigger: events.OrderConfirmedV1,
		Emits: []string{events.PaymentCapturedV1, events.PaymentRefundedV1}}
}

// Handle implements runner.Handler.
func (h *CapturePayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderConfirmed
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	p, ok, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("capture payment of order %s: no authorization yet", c.OrderID)
	}
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET order_confirmed = true WHERE order_id = $1`, c.OrderID); err != nil {
		return nil, fmt.Errorf("capture payment of order %s: %w", c.OrderID, err)
	}
	if p.status != payAuthorized {
		return ignore(ctx, tx, c.OrderID, "capture_payment", Payments, ev, "payment is "+p.status)
	}
	key := "capture:" + c.OrderID
	op, err := h.provider.Capture(ctx, key, p.authorizationID, p.amount)
	if err != nil {
		return nil, providerError("capture payment of order "+c.OrderID, err)
	}
	if err := recordOp(ctx, tx, c.OrderID, "capture", op.ID, key, op.Amount, ev.ID(), payCaptured); err != nil {
		return nil, err
	}
	captured, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "capture_payment", participant: Payments, cause: ev, outcome: "captured"},
		events.PaymentCapturedV1, c.OrderID, events.PaymentSettled{
			OrderID: c.OrderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
	if err != nil {
		return nil, err
	}
	if !p.orderCancelled {
		return []*event.Event{captured}, nil
	}
	p.status = payCaptured
	refunded, err := refundCapture(ctx, h.provider, tx, p, ev, "order cancelled after confirmation, before its capture")
	if err != nil {
		return nil, err
	}
	return []*event.Event{captured, refunded}, nil
}
