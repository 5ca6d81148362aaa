package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
)

// Authorizer is what AuthorizePayment needs of the payment provider to
// authorize.
type Authorizer interface {
	Authorize(ctx context.Context, idempotencyKey string, req provider.AuthorizeRequest) (provider.Authorization, error)
}

// AuthorizationFinder finds what the payment provider holds for an order:
// every authorization made for it, oldest first, any status.
type AuthorizationFinder interface {
	Authorizations(ctx context.Context, orderID string) ([]provider.Authorization, error)
}

// LostAuthorizationVoider is what AuthorizePayment needs to clean up after
// an attempt whose answer was lost: find the authorization, void it.
type LostAuthorizationVoider interface {
	AuthorizationFinder
	Voider
}

// AuthorizePayment reacts to inventory.reserved: it authorizes the order's
// total with the provider, idempotency key = order id, so a redelivery
// after a crash gets the provider's first answer instead of a second
// authorization. An authorization → payments.authorized; a decline →
// payments.declined. While the provider is down the message waits
// (runner.RetryAfter), holding this order's payment row locked.
//
// If payments already saw the order cancelled, it authorizes nothing — but
// an earlier attempt may have: the call reached the provider and its
// answer was lost (the process died, the client timed out, or the runner
// rolled the batch back and ran it again), then the cancel found nothing
// recorded. So it asks the provider what it holds for the order
// (GET /v1/authorizations?order_id=) and voids a held authorization:
// payments.authorized then payments.voided, the late-authorization path.
// The lookup cannot miss an attempt still in flight: a lost attempt's
// client gave up before this delivery began, and the provider does not
// execute a request whose client has gone before it ran.
type AuthorizePayment struct {
	authorizer Authorizer
	provider   LostAuthorizationVoider
}

// NewAuthorizePayment validates the dependencies: a is the authorization
// path (the fraud check in front of the provider), p the provider itself.
func NewAuthorizePayment(a Authorizer, p LostAuthorizationVoider) (*AuthorizePayment, error) {
	var errs []error
	if a == nil {
		errs = append(errs, errors.New("authorizer is required"))
	}
	if p == nil {
		errs = append(errs, errors.New("provider is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("authorize payment: %w", err)
	}
	return &AuthorizePayment{authorizer: a, provider: p}, nil
}

// Reaction implements Reactor.
func (h *AuthorizePayment) Reaction() Reaction {
	return Reaction{Step: "authorize_payment", Participant: Payments, Trigger: events.StockReservedV1,
		Emits: []string{events.PaymentAuthorizedV1, events.PaymentDeclinedV1, events.PaymentVoidedV1}}
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
	case p.orderCancelled && p.status == payNew:
		return h.voidLost(ctx, tx, p, ev)
	case p.orderCancelled:
		return ignore(ctx, tx, r.OrderID, "authorize_payment", Payments, ev, "order already cancelled; payment is "+p.status)
	case p.status != payNew:
		return nil, nil // decided before (a second reservation event cannot happen)
	}
	key := r.OrderID
	a, err := h.authorizer.Authorize(ctx, key, provider.AuthorizeRequest{
		OrderID: r.OrderID, CustomerID: r.CustomerID, Amount: r.Total, Currency: r.Currency,
	})
	if err != nil {
		return nil, providerError("authorize payment of order "+r.OrderID, err)
	}
	if a.Status == provider.StatusDeclined {
		if err := recordDecline(ctx, tx, r.OrderID, a.DeclineCode); err != nil {
			return nil, err
		}
		out, err := emitAndLog(ctx, tx, step{orderID: r.OrderID, step: "authorize_payment", participant: Payments, cause: ev,
			outcome: "declined", detail: a.DeclineCode},
			events.PaymentDeclinedV1, r.OrderID, events.PaymentDeclined{OrderID: r.OrderID, Amount: r.Total, Currency: r.Currency, Code: a.DeclineCode})
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	out, err := recordAuthorization(ctx, tx, r.OrderID, a, ev, "")
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// voidLost handles a reservation of an order payments already saw
// cancelled with nothing recorded: whatever the provider holds for the
// order (an earlier attempt's lost answer) is recorded and voided.
func (h *AuthorizePayment) voidLost(ctx context.Context, tx pgx.Tx, p payment, ev *event.Event) ([]*event.Event, error) {
	auths, err := h.provider.Authorizations(ctx, p.orderID)
	if err != nil {
		return nil, providerError("find authorizations of cancelled order "+p.orderID, err)
	}
	var held, declined *provider.Authorization
	for i := range auths {
		switch a := &auths[i]; a.Status {
		case provider.StatusDeclined:
			declined = a
		case provider.StatusAuthorized, provider.StatusVoided: // voided: by a lost void of this same step
			if held != nil {
				return nil, runner.Permanent(fmt.Errorf("authorize payment of order %s: the provider holds authorizations %s and %s",
					p.orderID, held.ID, a.ID))
			}
			held = a
		default:
			return nil, runner.Permanent(fmt.Errorf("authorize payment of order %s: the provider's authorization %s of a cancelled order is %s",
				p.orderID, a.ID, a.Status))
		}
	}
	switch {
	case held != nil:
	case declined != nil:
		if err := recordDecline(ctx, tx, p.orderID, declined.DeclineCode); err != nil {
			return nil, err
		}
		return ignore(ctx, tx, p.orderID, "authorize_payment", Payments, ev,
			"order already cancelled; an earlier attempt was declined ("+declined.DeclineCode+")")
	default:
		return ignore(ctx, tx, p.orderID, "authorize_payment", Payments, ev, "order already cancelled; the provider holds nothing for it")
	}
	authorized, err := recordAuthorization(ctx, tx, p.orderID, *held, ev, "an earlier attempt's answer was lost; the order is cancelled")
	if err != nil {
		return nil, err
	}
	p.status, p.authorizationID = payAuthorized, held.ID
	if p.currency == "" {
		p.currency = held.Currency
	}
	voided, err := voidAuthorization(ctx, h.provider, tx, p, ev, "authorization found after the order was cancelled")
	if err != nil {
		return nil, err
	}
	return []*event.Event{authorized, voided}, nil
}

// recordDecline moves the locked payment to declined with the provider's code.
func recordDecline(ctx context.Context, tx pgx.Tx, orderID, code string) error {
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET status = 'declined', decline_code = $2, updated_at = now() WHERE order_id = $1`,
		orderID, code); err != nil {
		return fmt.Errorf("decline payment of order %s: %w", orderID, err)
	}
	return nil
}

// recordAuthorization records the provider's authorization of the locked
// payment and returns payments.authorized, logged as the
// authorize_payment step caused by cause.
func recordAuthorization(ctx context.Context, tx pgx.Tx, orderID string, a provider.Authorization, cause *event.Event, detail string) (*event.Event, error) {
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET authorization_id = $2 WHERE order_id = $1`, orderID, a.ID); err != nil {
		return nil, fmt.Errorf("authorize payment of order %s: %w", orderID, err)
	}
	if err := recordOp(ctx, tx, orderID, "authorize", a.ID, orderID, a.Amount, cause.ID(), payAuthorized); err != nil {
		return nil, err
	}
	return emitAndLog(ctx, tx, step{orderID: orderID, step: "authorize_payment", participant: Payments, cause: cause,
		outcome: "authorized", detail: detail},
		events.PaymentAuthorizedV1, orderID, events.PaymentAuthorized{OrderID: orderID, AuthorizationID: a.ID, Amount: a.Amount, Currency: a.Currency})
}
