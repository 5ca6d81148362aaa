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

// VoidPayment reacts to orders.cancelled of an order cancelled before
// confirmation: an authorization not captured is voided (key
// void:<order id>; payments.voided) — the compensation of a cancel before
// confirmation, and the answer to a late authorization (one made after the
// order was cancelled). Payments records that the order is cancelled, so
// an inventory.reserved arriving later authorizes nothing (and
// authorize_payment voids what an earlier, lost attempt authorized).
//
// A confirmed order's authorization is never voided, even when its capture
// is not recorded yet: the capture may have reached the provider in an
// attempt whose result was lost (a crash, a timeout, a rolled-back batch),
// and a void would then be refused while the redelivered capture went
// through. capture_payment captures and then refunds instead.
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
		return ignore(ctx, tx, c.OrderID, "void_payment", Payments, ev,
			"nothing recorded; a later inventory.reserved voids what the provider may hold")
	}
	p, _, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET order_cancelled = true WHERE order_id = $1`, c.OrderID); err != nil {
		return nil, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
	}
	switch {
	case p.status != payAuthorized:
		return nil, nil // nothing held (new, declined) or captured (refund_payment's case)
	case c.PreviousStatus == events.StatusConfirmed:
		return ignore(ctx, tx, c.OrderID, "void_payment", Payments, ev,
			"order was confirmed: capture_payment captures, then refunds")
	}
	out, err := voidAuthorization(ctx, h.provider, tx, p, ev, c.Reason)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// voidAuthorization voids the locked payment's authorization at the
// provider (key void:<order id>, so a retry after a lost answer replays
// the first void), records it and returns payments.voided, logged as the
// void_payment step caused by cause.
func voidAuthorization(ctx context.Context, v Voider, tx pgx.Tx, p payment, cause *event.Event, detail string) (*event.Event, error) {
	key := "void:" + p.orderID
	op, err := v.Void(ctx, key, p.authorizationID)
	if err != nil {
		return nil, providerError("void payment of order "+p.orderID, err)
	}
	if err := recordOp(ctx, tx, p.orderID, "void", op.ID, key, op.Amount, cause.ID(), payVoided); err != nil {
		return nil, err
	}
	return emitAndLog(ctx, tx, step{orderID: p.orderID, step: "void_payment", participant: Payments, cause: cause,
		outcome: "voided", detail: detail},
		events.PaymentVoidedV1, p.orderID, events.PaymentSettled{
			OrderID: p.orderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
}
