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

// Voider is what VoidPayment needs of the payment provider.
type Voider interface {
	Void(ctx context.Context, idempotencyKey, authorizationID string) (provider.Operation, error)
}

// VoidPayment reacts to orders.cancelled: an authorization not captured is
// voided (key void:<order id>; payments.voided) — the compensation of a
// cancel before confirmation, and the answer to a late authorization (one
// made after the order was cancelled). Payments records that the order is
// cancelled, so an inventory.reserved arriving later authorizes nothing.
type VoidPayment struct{ provider Voider }

// NewVoidPayment validates the dependency.
func NewVoidPayment(p Voider) (*VoidPayment, error) {
	if p == nil {
		return nil, errors.New("void payment: provider is required")
	}
	return &VoidPayment{provider: p}, nil
}

// Reaction implements Reactor.
func (h *VoidPayment) Reaction() Reaction {
	return Reaction{Step: "void_payment", Participant: Payments, Trigger: events.OrderCancelledV1,
		Emits: []string{events.PaymentVoidedV1}}
}

// Handle implements runner.Handler.
func (h *VoidPayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := decode(ev, &c); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO core.payments (order_id, customer_id, currency, amount, order_cancelled) VALUES ($1, $2, $3, $4, true)
		ON CONFLICT (order_id) DO NOTHING`, c.OrderID, c.CustomerID, c.Currency, c.Total)
	if err != nil {
		return nil, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
	}
	if tag.RowsAffected() == 1 {
		return ignore(ctx, tx, c.OrderID, "void_payment", Payments, ev, "nothing authorized; a late inventory.reserved will not be authorized")
	}
	p, _, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET order_cancelled = true WHERE order_id = $1`, c.OrderID); err != nil {
		return nil, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
	}
	if p.status != payAuthorized {
		return nil, nil // nothing held (new, declined) or captured (refund_payment's case)
	}
	key := "void:" + c.OrderID
	op, err := h.provider.Void(ctx, key, p.authorizationID)
	if err != nil {
		return nil, providerError("void payment of order "+c.OrderID, err)
	}
	if err := recordOp(ctx, tx, c.OrderID, "void", op.ID, key, op.Amount, ev.ID(), payVoided); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: c.OrderID, step: "void_payment", participant: Payments, cause: ev,
		outcome: "voided", detail: c.Reason},
		events.PaymentVoidedV1, c.OrderID, events.PaymentSettled{
			OrderID: c.OrderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
