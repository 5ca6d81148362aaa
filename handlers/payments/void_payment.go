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
func (h *VoidPayment) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "void_payment", Participant: handlers.Payments, Trigger: events.OrderCancelledV1,
		Emits: []string{events.PaymentVoidedV1}}
}

// Handle implements runner.Handler.
func (h *VoidPayment) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := handlers.Decode(ev, &c); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO payments.payments (order_id, customer_id, currency, amount, order_cancelled) VALUES ($1, $2, $3, $4, true)
		ON CONFLICT (order_id) DO NOTHING`, c.OrderID, c.CustomerID, c.Currency, c.Total)
	if err != nil {
		return nil, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
	}
	if tag.RowsAffected() == 1 {
		return handlers.Ignore(ctx, tx, c.OrderID, "void_payment", handlers.Payments, ev, voidNoRowDetail)
	}
	p, _, err := lockPayment(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE payments.payments SET order_cancelled = true WHERE order_id = $1`, c.OrderID); err != nil {
		return nil, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
	}
	switch {
	case p.status != payAuthorized:
		return nil, nil // nothing held (new, declined) or captured (refund_payment's case)
	case c.PreviousStatus == events.StatusConfirmed:
		return handlers.Ignore(ctx, tx, c.OrderID, "void_payment", handlers.Payments, ev, voidConfirmedDetail)
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
	key := voidKey(p.orderID)
	op, err := v.Void(ctx, key, p.authorizationID)
	if err != nil {
		return nil, providerError("void payment of order "+p.orderID, err)
	}
	if err := recordOp(ctx, tx, p.orderID, "void", op.ID, key, op.Amount, cause.ID(), payVoided); err != nil {
		return nil, err
	}
	return voidedEvent(ctx, tx, p, op, cause, detail)
}

// voidKey is the idempotency key of an order's void.
func voidKey(orderID string) string { return "void:" + orderID }

// voidedEvent returns payments.voided of the locked payment p voided by
// op, logged as the void_payment step caused by cause.
func voidedEvent(ctx context.Context, tx pgx.Tx, p payment, op provider.Operation, cause *event.Event, detail string) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: p.orderID, Step: "void_payment", Participant: handlers.Payments, Cause: cause,
		Outcome: "voided", Detail: detail},
		events.PaymentVoidedV1, p.orderID, events.PaymentSettled{
			OrderID: p.orderID, AuthorizationID: p.authorizationID, OperationID: op.ID, Amount: op.Amount, Currency: p.currency,
		})
}

// payNoRow is the status planVoid gives an order payments had no row for
// when the batch began (its first cancellation inserts the row).
const payNoRow = ""

// Messages of Handle's ignored steps, shared with HandleBatch.
const (
	voidNoRowDetail     = "nothing recorded; a later inventory.reserved voids what the provider may hold"
	voidConfirmedDetail = "order was confirmed: capture_payment captures, then refunds"
)

// voidAction is what void_payment does with one cancellation.
type voidAction int

const (
	// voidNone does nothing but mark the order cancelled: nothing is held
	// (new, declined, voided) or the payment was captured (refund_payment's
	// case).
	voidNone voidAction = iota
	// voidIgnoreNoRow logs the cancellation ignored: payments had no row,
	// the message inserts it cancelled.
	voidIgnoreNoRow
	// voidIgnoreConfirmed logs the cancellation ignored: the order was
	// confirmed, capture_payment captures, then refunds.
	voidIgnoreConfirmed
	// voidCall voids the authorization.
	voidCall
	// voidHandOff is never decided: decideVoid leaves no path to Handle.
	voidHandOff voidAction = -1
)

// decideVoid is void_payment's transition: the action for a cancellation
// (whose order's status before it was previousStatus) of an order whose
// payment is p (status payNoRow: none), and the payment after it, which
// is always marked cancelled.
func decideVoid(p payment, previousStatus string) (voidAction, payment) {
	act := voidNone
	switch {
	case p.status == payNoRow:
		p.status, act = payNew, voidIgnoreNoRow
	case p.status != payAuthorized:
	case previousStatus == events.StatusConfirmed:
		act = voidIgnoreConfirmed
	default:
		p.status, act = payVoided, voidCall
	}
	p.orderCancelled = true
	return act, p
}

// planVoid runs decideVoid over a batch in stream order: acts[i] is the
// action for orderIDs[i] (whose order was previousStatus[i] before it was
// cancelled) and before[i] the payment it saw, each order starting from
// ps (which holds every order, payNoRow for one without a row) and going
// on from what the earlier messages made of it.
func planVoid(ps map[string]payment, orderIDs, previousStatus []string) (acts []voidAction, before []payment, ok bool) {
	i := 0 // planPayments decides once per message, in order
	return planPayments(ps, orderIDs, func(p payment) (voidAction, payment) {
		a, q := decideVoid(p, previousStatus[i])
		i++
		return a, q
	}, voidHandOff)
}

// HandleBatch implements BatchReactor: Handle for a batch of
// cancellations in at most four statements (insert the rows of orders
// payments has none for, cancelled; lock the others; note the voids in
// payments.payment_ops; mark the others cancelled and the voided ones voided
// in payments.payments; the saga log steps go to the Router's buffered log),
// with the voids made concurrently (at most providerCallLimit at once,
// key void:<order id> as in Handle). Left to Handle: a batch in which a
// void fails (it returns an error before writing anything but the
// inserted rows, which the rollback undoes; message by message Handle
// classifies the failure and the keys replay the voids this attempt
// made), and one naming an order in two spellings of its id.
func (h *VoidPayment) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	cs := make([]events.OrderCancelled, len(msgs))
	ids, prev := make([]string, len(msgs)), make([]string, len(msgs))
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &cs[i]); err != nil {
			return nil, err
		}
		ids[i], prev[i] = cs[i].OrderID, cs[i].PreviousStatus
	}
	// The first cancellation of an order inserts its row if there is none,
	// as Handle would; rows are inserted in order_id order.
	spelling := map[string]string{} // canonical id -> the id as the messages spell it
	var order, customer, currency []string
	var amount []int64
	for _, c := range cs {
		k, err := handlers.OrderKey(c.OrderID)
		if err != nil {
			return nil, fmt.Errorf("void payment: %w", err)
		}
		if s, seen := spelling[k]; seen {
			if s != c.OrderID {
				return nil, fmt.Errorf("void payment: order %s spelled %q and %q in one batch; handled message by message", k, s, c.OrderID)
			}
			continue
		}
		spelling[k] = c.OrderID
		order, customer, currency, amount = append(order, c.OrderID), append(customer, c.CustomerID), append(currency, c.Currency), append(amount, c.Total)
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO payments.payments (order_id, customer_id, currency, amount, order_cancelled)
		SELECT o::uuid, c, cur, a, true FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(o, c, cur, a)
		ORDER BY o::uuid
		ON CONFLICT (order_id) DO NOTHING
		RETURNING order_id::text`, order, customer, currency, amount)
	if err != nil {
		return nil, fmt.Errorf("void payment of %d orders (first: %s): %w", len(order), order[0], err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("void payment of %d orders (first: %s): %w", len(order), order[0], err)
	}
	ps := make(map[string]payment, len(order))
	for _, k := range inserted {
		id := spelling[k]
		ps[id] = payment{orderID: id, status: payNoRow}
	}
	var existing []string
	for _, id := range order {
		if _, ok := ps[id]; !ok {
			existing = append(existing, id)
		}
	}
	if len(existing) > 0 {
		locked, err := lockPayments(ctx, tx, existing)
		if err != nil {
			return nil, err
		}
		for id, p := range locked {
			ps[id] = p
		}
	}
	acts, before, ok := planVoid(ps, ids, prev)
	if !ok {
		// Every order was inserted or has a row it conflicted with.
		return nil, errors.New("void payment: an order has no payment row after its insert; handled message by message")
	}
	calls, voids, err := callProvider(acts, voidCall, func(i int) (provider.Operation, error) {
		p := before[i]
		op, err := h.provider.Void(msgs[i].Ctx, voidKey(p.orderID), p.authorizationID)
		if err != nil {
			return op, providerError("void payment of order "+p.orderID, err)
		}
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	voided := make(map[string]bool, len(calls))
	for _, i := range calls {
		voided[ids[i]] = true
	}
	ops := make([]paymentOp, 0, len(calls))
	for _, i := range calls {
		id, op := ids[i], voids[i]
		ops = append(ops, paymentOp{orderID: id, op: "void", providerID: op.ID, key: voidKey(id), amount: op.Amount, eventID: msgs[i].Event.ID()})
	}
	if err := recordOps(ctx, tx, ops); err != nil {
		return nil, err
	}
	var changes []cancelChange
	for _, id := range existing {
		switch {
		case voided[id]:
			changes = append(changes, cancelChange{orderID: id, status: ptr(payVoided)})
		case !ps[id].orderCancelled:
			changes = append(changes, cancelChange{orderID: id})
		}
	}
	if err := cancelPayments(ctx, tx, changes); err != nil {
		return nil, fmt.Errorf("void payment: %w", err)
	}
	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		p, ev := before[i], m.Event
		var err error
		switch acts[i] {
		case voidIgnoreNoRow:
			_, err = handlers.Ignore(m.Ctx, tx, p.orderID, "void_payment", handlers.Payments, ev, voidNoRowDetail)
		case voidIgnoreConfirmed:
			_, err = handlers.Ignore(m.Ctx, tx, p.orderID, "void_payment", handlers.Payments, ev, voidConfirmedDetail)
		case voidCall:
			var e *event.Event
			if e, err = voidedEvent(m.Ctx, tx, p, voids[i], ev, cs[i].Reason); err == nil {
				out[i] = []*event.Event{e}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
