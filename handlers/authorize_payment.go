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

// Authorizer is what AuthorizePayment needs of the payment provider.
type Authorizer interface {
	Authorize(ctx context.Context, idempotencyKey string, req provider.AuthorizeRequest) (provider.Authorization, error)
}

// AuthorizePayment reacts to inventory.reserved: it authorizes the order's
// total with the provider, idempotency key = order id, so a redelivery
// after a crash gets the provider's first answer instead of a second
// authorization. An authorization → payments.authorized; a decline →
// payments.declined. If payments already saw the order cancelled, it
// authorizes nothing. While the provider is down the message waits
// (runner.RetryAfter), holding this order's payment row locked.
type AuthorizePayment struct{ provider Authorizer }

// NewAuthorizePayment validates the dependency.
func NewAuthorizePayment(p Authorizer) (*AuthorizePayment, error) {
	if p == nil {
		return nil, errors.New("authorize payment: provider is required")
	}
	return &AuthorizePayment{provider: p}, nil
}

// Reaction implements Reactor.
func (h *AuthorizePayment) Reaction() Reaction {
	return Reaction{Step: "authorize_payment", Participant: Payments, Trigger: events.StockReservedV1,
		Emits: []string{events.PaymentAuthorizedV1, events.PaymentDeclinedV1}}
}

// Handle implements runner.Handler.
func (h *AuthorizePayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var r events.StockReserved
	if err := decode(ev, &r); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO core.payments (order_id, customer_id, currency, amount) VALUES ($1, $2, $3, $4)
		ON CONFLICT (order_id) DO NOTHING`, r.OrderID, r.CustomerID, r.Currency, r.Total); err != nil {
		return nil, fmt.Errorf("authorize payment of order %s: %w", r.OrderID, err)
	}
	p, _, err := lockPayment(ctx, tx, r.OrderID)
	if err != nil {
		return nil, err
	}
	switch {
	case p.orderCancelled:
		return ignore(ctx, tx, r.OrderID, "authorize_payment", Payments, ev, "order already cancelled")
	case p.status != payNew:
		return nil, nil // decided before (a second reservation event cannot happen)
	}
	key := r.OrderID
	a, err := h.provider.Authorize(ctx, key, provider.AuthorizeRequest{
		OrderID: r.OrderID, CustomerID: r.CustomerID, Amount: r.Total, Currency: r.Currency,
	})
	if err != nil {
		return nil, providerError("authorize payment of order "+r.OrderID, err)
	}
	if a.Status == provider.StatusDeclined {
		if _, err := tx.Exec(ctx, `UPDATE core.payments SET status = 'declined', decline_code = $2, updated_at = now() WHERE order_id = $1`,
			r.OrderID, a.DeclineCode); err != nil {
			return nil, fmt.Errorf("decline payment of order %s: %w", r.OrderID, err)
		}
		out, err := emitAndLog(ctx, tx, step{orderID: r.OrderID, step: "authorize_payment", participant: Payments, cause: ev,
			outcome: "declined", detail: a.DeclineCode},
			events.PaymentDeclinedV1, r.OrderID, events.PaymentDeclined{OrderID: r.OrderID, Amount: r.Total, Currency: r.Currency, Code: a.DeclineCode})
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET authorization_id = $2 WHERE order_id = $1`, r.OrderID, a.ID); err != nil {
		return nil, fmt.Errorf("authorize payment of order %s: %w", r.OrderID, err)
	}
	if err := recordOp(ctx, tx, r.OrderID, "authorize", a.ID, key, a.Amount, ev.ID(), payAuthorized); err != nil {
		return nil, err
	}
	out, err := emitAndLog(ctx, tx, step{orderID: r.OrderID, step: "authorize_payment", participant: Payments, cause: ev, outcome: "authorized"},
		events.PaymentAuthorizedV1, r.OrderID, events.PaymentAuthorized{OrderID: r.OrderID, AuthorizationID: a.ID, Amount: a.Amount, Currency: a.Currency})
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}
