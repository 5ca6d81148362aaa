package payments

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
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
func (h *AuthorizePayment) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "authorize_payment", Participant: handlers.Payments, Trigger: events.StockReservedV1,
		Emits: []string{events.PaymentAuthorizedV1, events.PaymentDeclinedV1, events.PaymentVoidedV1}}
}

// Handle implements runner.Handler.
func (h *AuthorizePayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var r events.StockReserved
	if err := handlers.Decode(ev, &r); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO payments.payments (order_id, customer_id, currency, amount) VALUES ($1, $2, $3, $4)
		ON CONFLICT (order_id) DO NOTHING`, r.OrderID, r.CustomerID, r.Currency, r.Total); err != nil {
		return nil, fmt.Errorf("authorize payment of order %s: %w", r.OrderID, err)
	}
	p, _, err := lockPayment(ctx, tx, r.OrderID)
	if err != nil {
		return nil, err
	}
	switch act, _ := decideAuthorize(p); act {
	case authorizeVoidLost:
		return h.voidLost(ctx, tx, p, ev)
	case authorizeIgnoreCancelled:
		return handlers.Ignore(ctx, tx, r.OrderID, "authorize_payment", handlers.Payments, ev, "order already cancelled; payment is "+p.status)
	case authorizeDecided:
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
		out, err := declinedEvent(ctx, tx, r, a.DeclineCode, ev)
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

// authorizeAction is what authorize_payment does with one reservation.
type authorizeAction int

const (
	// authorizeCall asks the authorizer (the provider) and records its answer.
	authorizeCall authorizeAction = iota
	// authorizeDecided does nothing: the payment was decided before.
	authorizeDecided
	// authorizeIgnoreCancelled logs the reservation ignored: the order
	// is cancelled and its payment decided.
	authorizeIgnoreCancelled
	// authorizeVoidLost finds and voids what an earlier, lost attempt
	// may have authorized: the order is cancelled with nothing recorded.
	authorizeVoidLost
)

// payDeciding is the in-memory status of a payment whose provider call
// a batch has planned (its answer, authorized or declined, is not known
// yet). It is never stored.
const payDeciding = "deciding"

// decideAuthorize is authorize_payment's transition: the action for a
// reservation of an order whose locked payment is p, and the payment
// after it as far as it is known before the provider answers (a call
// leaves it payDeciding: not new, so a later reservation of the order is
// authorizeDecided; voidLost's outcome is not modelled, a batch leaves
// that path to Handle).
func decideAuthorize(p payment) (authorizeAction, payment) {
	switch {
	case p.orderCancelled && p.status == payNew:
		return authorizeVoidLost, p
	case p.orderCancelled:
		return authorizeIgnoreCancelled, p
	case p.status != payNew:
		return authorizeDecided, p
	}
	p.status = payDeciding
	return authorizeCall, p
}

// planAuthorize runs decideAuthorize over a batch in stream order: acts[i]
// is the action for orderIDs[i] and before[i] the payment it saw, each
// order starting from its locked payment in ps. ok is false when an
// order has no payment row, or when an order that takes authorizeVoidLost
// has another reservation in the batch (voidLost's outcome is not
// modelled, so what the later one would see is left to Handle).
func planAuthorize(ps map[string]payment, orderIDs []string) (acts []authorizeAction, before []payment, ok bool) {
	acts, before, ok = planPayments(ps, orderIDs, decideAuthorize, noAuthorizeHandOff)
	if !ok {
		return nil, nil, false
	}
	n := make(map[string]int, len(orderIDs))
	for _, id := range orderIDs {
		n[id]++
	}
	for i, a := range acts {
		if a == authorizeVoidLost && n[orderIDs[i]] > 1 {
			return nil, nil, false
		}
	}
	return acts, before, true
}

// noAuthorizeHandOff is planPayments's hand-off action for
// planAuthorize: none (decideAuthorize never returns it).
const noAuthorizeHandOff authorizeAction = -1

// HandleBatch implements BatchReactor: Handle for a batch of reservations
// in a fixed number of statements (insert the payments, lock them, record
// the answers in payments.payments and payments.payment_ops; the saga log steps
// go to the Router's buffered log), with the provider calls made
// concurrently (at most providerCallLimit at once, key = order id as in
// Handle). An order cancelled with nothing recorded takes Handle's
// voidLost in the batch, on its locked row. The rare paths are left to
// Handle: a batch with two reservations of such an order, or in which a
// provider call fails, returns an error, and the runner redoes it
// message by message, where Handle classifies the failure (RetryAfter
// while the provider is down) and the idempotency keys replay the calls
// this attempt made.
func (h *AuthorizePayment) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	rs := make([]events.StockReserved, len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &rs[i]); err != nil {
			return nil, err
		}
		ids[i] = rs[i].OrderID
	}
	// The first reservation of an order inserts its row, as Handle would;
	// rows are inserted in order_id order (their index entries are locked
	// in that order).
	first := map[string]bool{}
	var order, customer, currency []string
	var amount []int64
	for _, r := range rs {
		if !first[r.OrderID] {
			first[r.OrderID] = true
			order, customer, currency, amount = append(order, r.OrderID), append(customer, r.CustomerID), append(currency, r.Currency), append(amount, r.Total)
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO payments.payments (order_id, customer_id, currency, amount)
		SELECT o::uuid, c, cur, a FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(o, c, cur, a)
		ORDER BY o::uuid
		ON CONFLICT (order_id) DO NOTHING`, order, customer, currency, amount); err != nil {
		return nil, fmt.Errorf("authorize payment of %d orders (first: %s): %w", len(order), order[0], err)
	}
	ps, err := lockPayments(ctx, tx, order)
	if err != nil {
		return nil, err
	}
	acts, before, ok := planAuthorize(ps, ids)
	if !ok {
		return nil, errors.New("authorize payment: the batch has two reservations of an order cancelled with nothing recorded; handled message by message")
	}
	calls, answers, err := callProvider(acts, authorizeCall, func(i int) (provider.Authorization, error) {
		r := rs[i]
		a, err := h.authorizer.Authorize(msgs[i].Ctx, r.OrderID, provider.AuthorizeRequest{
			OrderID: r.OrderID, CustomerID: r.CustomerID, Amount: r.Total, Currency: r.Currency,
		})
		if err != nil {
			return a, providerError("authorize payment of order "+r.OrderID, err)
		}
		return a, nil
	})
	if err != nil {
		return nil, err
	}
	changes := make([]paymentChange, 0, len(calls))
	var ops []paymentOp
	for _, i := range calls {
		a, id := answers[i], rs[i].OrderID
		if a.Status == provider.StatusDeclined {
			changes = append(changes, paymentChange{orderID: id, status: ptr("declined"), declineCode: ptr(a.DeclineCode)})
			continue
		}
		changes = append(changes, paymentChange{orderID: id, status: ptr(payAuthorized), authorizationID: ptr(a.ID)})
		ops = append(ops, paymentOp{orderID: id, op: "authorize", providerID: a.ID, key: id, amount: a.Amount, eventID: msgs[i].Event.ID()})
	}
	if err := updatePayments(ctx, tx, changes); err != nil {
		return nil, fmt.Errorf("authorize payment: %w", err)
	}
	if err := recordOps(ctx, tx, ops); err != nil {
		return nil, err
	}
	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		r, ev := rs[i], m.Event
		switch acts[i] {
		case authorizeDecided:
			continue
		case authorizeIgnoreCancelled:
			if _, err := handlers.Ignore(m.Ctx, tx, r.OrderID, "authorize_payment", handlers.Payments, ev,
				"order already cancelled; payment is "+before[i].status); err != nil {
				return nil, err
			}
			continue
		case authorizeVoidLost:
			// As Handle does, on the locked row: a customer cancel that
			// overtook its reservation is common enough (the cancel class
			// of the default load mix) that sending the whole batch to
			// the savepoint path for it cost more than this call.
			evs, err := h.voidLost(m.Ctx, tx, before[i], ev)
			if err != nil {
				return nil, err
			}
			out[i] = evs
			continue
		}
		a := answers[i]
		var e *event.Event
		var err error
		if a.Status == provider.StatusDeclined {
			e, err = declinedEvent(m.Ctx, tx, r, a.DeclineCode, ev)
		} else {
			e, err = authorizedEvent(m.Ctx, tx, r.OrderID, a, ev, "")
		}
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{e}
	}
	return out, nil
}

// declinedEvent returns payments.declined of reservation r (the provider
// declined with code), logged as the authorize_payment step caused by cause.
func declinedEvent(ctx context.Context, tx pgx.Tx, r events.StockReserved, code string, cause *event.Event) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: r.OrderID, Step: "authorize_payment", Participant: handlers.Payments, Cause: cause,
		Outcome: "declined", Detail: code},
		events.PaymentDeclinedV1, r.OrderID, events.PaymentDeclined{OrderID: r.OrderID, Amount: r.Total, Currency: r.Currency, Code: code})
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

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
		return handlers.Ignore(ctx, tx, p.orderID, "authorize_payment", handlers.Payments, ev,
			"order already cancelled; an earlier attempt was declined ("+declined.DeclineCode+")")
	default:
		return handlers.Ignore(ctx, tx, p.orderID, "authorize_payment", handlers.Payments, ev, "order already cancelled; the provider holds nothing for it")
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
	if _, err := tx.Exec(ctx, `UPDATE payments.payments SET status = 'declined', decline_code = $2, updated_at = now() WHERE order_id = $1`,
		orderID, code); err != nil {
		return fmt.Errorf("decline payment of order %s: %w", orderID, err)
	}
	return nil
}

// recordAuthorization records the provider's authorization of the locked
// payment and returns payments.authorized, logged as the
// authorize_payment step caused by cause.
func recordAuthorization(ctx context.Context, tx pgx.Tx, orderID string, a provider.Authorization, cause *event.Event, detail string) (*event.Event, error) {
	if _, err := tx.Exec(ctx, `UPDATE payments.payments SET authorization_id = $2 WHERE order_id = $1`, orderID, a.ID); err != nil {
		return nil, fmt.Errorf("authorize payment of order %s: %w", orderID, err)
	}
	if err := recordOp(ctx, tx, orderID, "authorize", a.ID, orderID, a.Amount, cause.ID(), payAuthorized); err != nil {
		return nil, err
	}
	return authorizedEvent(ctx, tx, orderID, a, cause, detail)
}

// authorizedEvent returns payments.authorized of a recorded
// authorization, logged as the authorize_payment step caused by cause.
func authorizedEvent(ctx context.Context, tx pgx.Tx, orderID string, a provider.Authorization, cause *event.Event, detail string) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: orderID, Step: "authorize_payment", Participant: handlers.Payments, Cause: cause,
		Outcome: "authorized", Detail: detail},
		events.PaymentAuthorizedV1, orderID, events.PaymentAuthorized{OrderID: orderID, AuthorizationID: a.ID, Amount: a.Amount, Currency: a.Currency})
}
