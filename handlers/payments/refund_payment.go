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
func (h *RefundPayment) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "refund_payment", Participant: handlers.Payments, Trigger: events.OrderCancelledV1,
		Emits: []string{events.PaymentRefundedV1}}
}

// Handle implements runner.Handler.
func (h *RefundPayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := handlers.Decode(ev, &c); err != nil {
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
	key := refundKey(p.orderID)
	op, err := r.Refund(ctx, key, p.authorizationID, p.amount)
	if err != nil {
		return nil, providerError("refund payment of order "+p.orderID, err)
	}
	if err := recordOp(ctx, tx, p.orderID, "refund", op.ID, key, op.Amount, cause.ID(), payRefunded); err != nil {
		return nil, err
	}
	return refundedEvent(ctx, tx, p, op, cause, detail)
}

// refundKey is the idempotency key of an order's refund.
func refundKey(orderID string) string { return "refund:" + orderID }

// refundedEvent returns payments.refunded of the locked payment p
// refunded by op, logged as the refund_payment step caused by cause.
func refundedEvent(ctx context.Context, tx pgx.Tx, p payment, op provider.Operation, cause *event.Event, detail string) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: p.orderID, Step: "refund_payment", Participant: handlers.Payments, Cause: cause,
		Outcome: "refunded", Detail: detail},
		events.PaymentRefundedV1, p.orderID, events.PaymentSettled{
			OrderID: p.orderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
}

// refundAction is what refund_payment does with one cancellation.
type refundAction int

const (
	// refundNone does nothing: the payment is not captured (no row, new,
	// authorized, declined, voided, or refunded before).
	refundNone refundAction = iota
	// refundCall refunds the capture in full.
	refundCall
	// refundHandOff is never decided: decideRefund leaves no path to Handle.
	refundHandOff refundAction = -1
)

// decideRefund is refund_payment's transition: the action for a
// cancellation of an order whose payment is p (status payNoRow: none),
// and the payment after it.
func decideRefund(p payment) (refundAction, payment) {
	if p.status != payCaptured {
		return refundNone, p
	}
	p.status = payRefunded
	return refundCall, p
}

// planRefund runs decideRefund over a batch in stream order: acts[i] is
// the action for orderIDs[i] and before[i] the payment it saw, each order
// starting from ps (which holds every order, payNoRow for one without a
// row) and going on from what the earlier messages made of it.
func planRefund(ps map[string]payment, orderIDs []string) (acts []refundAction, before []payment, ok bool) {
	return planPayments(ps, orderIDs, decideRefund, refundHandOff)
}

// HandleBatch implements BatchReactor: Handle for a batch of
// cancellations in at most three statements (lock the payments; note the
// refunds in payments.payment_ops; move the refunded ones to refunded in
// payments.payments; the saga log steps go to the Router's buffered log),
// with the refunds made concurrently (at most providerCallLimit at once,
// key refund:<order id> as in Handle). It runs after VoidPayment's
// HandleBatch over the same messages, which is Handle's order per
// message as long as the two commute: a void moves authorized to voided
// and a refund captured to refunded, and neither acts on what the other
// leaves, so each message sees the effects of the earlier ones of its
// order either way. Left to Handle: a batch in which a refund fails (it
// returns an error before writing anything; message by message Handle
// classifies the failure and the keys replay the refunds this attempt
// made).
func (h *RefundPayment) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	cs := make([]events.OrderCancelled, len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &cs[i]); err != nil {
			return nil, err
		}
		ids[i] = cs[i].OrderID
	}
	orders := distinct(ids)
	ps, err := lockPayments(ctx, tx, orders)
	if err != nil {
		return nil, err
	}
	for _, id := range orders {
		if _, ok := ps[id]; !ok {
			ps[id] = payment{orderID: id, status: payNoRow}
		}
	}
	acts, before, ok := planRefund(ps, ids)
	if !ok {
		return nil, errors.New("refund payment: unplanned order in the batch; handled message by message")
	}
	calls, refunds, err := callProvider(acts, refundCall, func(i int) (provider.Operation, error) {
		p := before[i]
		op, err := h.provider.Refund(msgs[i].Ctx, refundKey(p.orderID), p.authorizationID, p.amount)
		if err != nil {
			return op, providerError("refund payment of order "+p.orderID, err)
		}
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	if len(calls) == 0 {
		return make([][]*event.Event, len(msgs)), nil
	}
	ops := make([]paymentOp, 0, len(calls))
	changes := make([]paymentChange, 0, len(calls))
	for _, i := range calls {
		id, op := ids[i], refunds[i]
		ops = append(ops, paymentOp{orderID: id, op: "refund", providerID: op.ID, key: refundKey(id), amount: op.Amount, eventID: msgs[i].Event.ID()})
		changes = append(changes, paymentChange{orderID: id, status: ptr(payRefunded)})
	}
	if err := recordOps(ctx, tx, ops); err != nil {
		return nil, err
	}
	if err := updatePayments(ctx, tx, changes); err != nil {
		return nil, fmt.Errorf("refund payment: %w", err)
	}
	out := make([][]*event.Event, len(msgs))
	for _, i := range calls {
		m := msgs[i]
		e, err := refundedEvent(m.Ctx, tx, before[i], refunds[i], m.Event, cs[i].Reason)
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{e}
	}
	return out, nil
}
