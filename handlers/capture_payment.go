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

// Capturer is what CapturePayment needs of the payment provider.
type Capturer interface {
	Capture(ctx context.Context, idempotencyKey, authorizationID string, amount int64) (provider.Operation, error)
}

// CapturePayment reacts to orders.confirmed: the authorization is captured
// (key capture:<order id>; payments.captured). If payments already voided
// it (the order was cancelled and payments saw that first), nothing
// happens.
type CapturePayment struct{ provider Capturer }

// NewCapturePayment validates the dependency.
func NewCapturePayment(p Capturer) (*CapturePayment, error) {
	if p == nil {
		return nil, errors.New("capture payment: provider is required")
	}
	return &CapturePayment{provider: p}, nil
}

// Reaction implements Reactor.
func (h *CapturePayment) Reaction() Reaction {
	return Reaction{Step: "capture_payment", Participant: Payments, Trigger: events.OrderConfirmedV1,
		Emits: []string{events.PaymentCapturedV1}}
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
	if p.status != payAuthorized || p.orderCancelled {
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
	out, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "capture_payment", participant: Payments, cause: ev, outcome: "captured"},
		events.PaymentCapturedV1, c.OrderID, events.PaymentSettled{
			OrderID: c.OrderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
