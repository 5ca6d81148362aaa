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
func (h *CapturePayment) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "capture_payment", Participant: handlers.Payments, Trigger: events.OrderConfirmedV1,
		Emits: []string{events.PaymentCapturedV1, events.PaymentRefundedV1}}
}

// Handle implements runner.Handler.
func (h *CapturePayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderConfirmed
	if err := handlers.Decode(ev, &c); err != nil {
		return nil, err
	}
	p, ok, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("capture payment of order %s: no authorization yet", c.OrderID)
	}
	if _, err := tx.Exec(ctx, `UPDATE payments.payments SET order_confirmed = true WHERE order_id = $1`, c.OrderID); err != nil {
		return nil, fmt.Errorf("capture payment of order %s: %w", c.OrderID, err)
	}
	if act, _ := decideCapture(p); act == captureIgnore {
		return handlers.Ignore(ctx, tx, c.OrderID, "capture_payment", handlers.Payments, ev, "payment is "+p.status)
	}
	key := captureKey(c.OrderID)
	op, err := h.provider.Capture(ctx, key, p.authorizationID, p.amount)
	if err != nil {
		return nil, providerError("capture payment of order "+c.OrderID, err)
	}
	if err := recordOp(ctx, tx, c.OrderID, "capture", op.ID, key, op.Amount, ev.ID(), payCaptured); err != nil {
		return nil, err
	}
	captured, err := capturedEvent(ctx, tx, p, op, ev)
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

// captureKey is the idempotency key of an order's capture.
func captureKey(orderID string) string { return "capture:" + orderID }

// capturedEvent returns payments.captured of the locked payment p captured
// by op, logged as the capture_payment step caused by cause.
func capturedEvent(ctx context.Context, tx pgx.Tx, p payment, op provider.Operation, cause *event.Event) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: p.orderID, Step: "capture_payment", Participant: handlers.Payments, Cause: cause, Outcome: "captured"},
		events.PaymentCapturedV1, p.orderID, events.PaymentSettled{
			OrderID: p.orderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
}

// captureAction is what capture_payment does with one confirmation.
type captureAction int

const (
	// captureIgnore logs the confirmation ignored: the payment is not
	// authorized (declined, voided, or already captured or refunded).
	captureIgnore captureAction = iota
	// captureCall captures the authorization.
	captureCall
	// captureThenRefund captures and refunds at once: the order was
	// cancelled before its capture.
	captureThenRefund
)

// decideCapture is capture_payment's transition: the action for a
// confirmation of an order whose locked payment is p, and the payment
// after it (captured, or refunded after a capture-then-refund).
func decideCapture(p payment) (captureAction, payment) {
	switch {
	case p.status != payAuthorized:
		return captureIgnore, p
	case p.orderCancelled:
		p.status = payRefunded
		return captureThenRefund, p
	}
	p.status = payCaptured
	return captureCall, p
}

// planCapture runs decideCapture over a batch in stream order: acts[i]
// is the action for orderIDs[i] and before[i] the payment it saw, each
// order starting from its locked payment in ps. ok is false when a
// message needs a path the batch leaves to Handle (captureThenRefund);
// every order must have a payment row (HandleBatch checks).
func planCapture(ps map[string]payment, orderIDs []string) (acts []captureAction, before []payment, ok bool) {
	return planPayments(ps, orderIDs, decideCapture, captureThenRefund)
}

// HandleBatch implements BatchReactor: Handle for a batch of
// confirmations in three statements (lock the payments; note the
// captures in payments.payment_ops; mark every order confirmed and the
// captured ones captured in payments.payments; the saga log steps go to the
// Router's buffered log), with the captures made concurrently (at most
// providerCallLimit at once, key capture:<order id> as in Handle). An
// order without a payment row fails the batch as it fails Handle. The
// rare capture-then-refund path (an order cancelled before its capture)
// is left to Handle: such a batch, or one in which a capture fails,
// returns an error before writing anything, and the runner redoes it
// message by message, where Handle classifies the failure (RetryAfter
// while the provider is down) and the keys replay the captures this
// attempt made.
func (h *CapturePayment) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		var c events.OrderConfirmed
		if err := handlers.Decode(m.Event, &c); err != nil {
			return nil, err
		}
		ids[i] = c.OrderID
	}
	orders := distinct(ids)
	ps, err := lockPayments(ctx, tx, orders)
	if err != nil {
		return nil, err
	}
	for _, id := range orders {
		if _, ok := ps[id]; !ok {
			return nil, fmt.Errorf("capture payment of order %s: no authorization yet", id)
		}
	}
	acts, before, ok := planCapture(ps, ids)
	if !ok {
		return nil, errors.New("capture payment: the batch has an order cancelled before its capture; handled message by message")
	}
	calls, captures, err := callProvider(acts, captureCall, func(i int) (provider.Operation, error) {
		p := before[i]
		op, err := h.provider.Capture(msgs[i].Ctx, captureKey(p.orderID), p.authorizationID, p.amount)
		if err != nil {
			return op, providerError("capture payment of order "+p.orderID, err)
		}
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	ops := make([]paymentOp, 0, len(calls))
	captured := make(map[string]bool, len(calls))
	for _, i := range calls {
		id, op := ids[i], captures[i]
		captured[id] = true
		ops = append(ops, paymentOp{orderID: id, op: "capture", providerID: op.ID, key: captureKey(id), amount: op.Amount, eventID: msgs[i].Event.ID()})
	}
	if err := recordOps(ctx, tx, ops); err != nil {
		return nil, err
	}
	changes := make([]paymentChange, len(orders))
	for j, id := range orders {
		changes[j] = paymentChange{orderID: id, confirm: true}
		if captured[id] {
			changes[j].status = ptr(payCaptured)
		}
	}
	if err := updatePayments(ctx, tx, changes); err != nil {
		return nil, fmt.Errorf("capture payment: %w", err)
	}
	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		p := before[i]
		if acts[i] == captureIgnore {
			if _, err := handlers.Ignore(m.Ctx, tx, p.orderID, "capture_payment", handlers.Payments, m.Event, "payment is "+p.status); err != nil {
				return nil, err
			}
			continue
		}
		e, err := capturedEvent(m.Ctx, tx, p, captures[i], m.Event)
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{e}
	}
	return out, nil
}
