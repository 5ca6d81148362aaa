package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// ConfirmOrder reacts to payments.authorized: a pending order within its
// deadline is confirmed (orders.confirmed; payments then captures and
// inventory commits). A pending order past its deadline is cancelled with
// reason timeout instead, as the sweeper would have. An order already
// cancelled stays cancelled: payments voids the late authorization when it
// sees orders.cancelled, so nothing is emitted here.
type ConfirmOrder struct{ now func() time.Time }

var _ handlers.BatchReactor = (*ConfirmOrder)(nil)

// NewConfirmOrder builds the reaction.
func NewConfirmOrder() *ConfirmOrder { return &ConfirmOrder{now: handlers.UTCNow} }

// Reaction implements Reactor.
func (h *ConfirmOrder) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "confirm_order", Participant: handlers.Orders, Trigger: events.PaymentAuthorizedV1,
		Emits: []string{events.OrderConfirmedV1, events.OrderCancelledV1}}
}

// confirmOutcome is confirm_order's decision for one payments.authorized.
type confirmOutcome int

const (
	confirmIgnore  confirmOutcome = iota // the order is not pending: nothing changes
	confirmConfirm                       // pending within its deadline: confirmed
	confirmTimeout                       // pending past its deadline: cancelled, reason timeout
)

// decideConfirm is confirm_order's transition for an order in status
// with deadline, at now.
func decideConfirm(status string, deadline, now time.Time) confirmOutcome {
	switch {
	case status != events.StatusPending:
		return confirmIgnore
	case now.After(deadline):
		return confirmTimeout
	default:
		return confirmConfirm
	}
}

// confirmStep is the decision for one message of a batch and the status
// its order had when it was decided (an ignored step's detail names it).
type confirmStep struct {
	outcome confirmOutcome
	status  string
}

// planConfirms decides a batch of payments.authorized: keys[i] is the
// order of message i (stream order), orders their states before the
// batch (every key must be present). Messages of one order apply in
// stream order to its state in memory, so an authorization after one that
// confirmed or timed the order out in this batch is ignored: the result
// is what Handle, run message by message, would decide. orders is not
// modified.
func planConfirms(orders map[string]order, keys []string, now time.Time) []confirmStep {
	status := make(map[string]string, len(orders))
	for k, o := range orders {
		status[k] = o.status
	}
	out := make([]confirmStep, len(keys))
	for i, k := range keys {
		s := confirmStep{outcome: decideConfirm(status[k], orders[k].deadline, now), status: status[k]}
		switch s.outcome {
		case confirmConfirm:
			status[k] = events.StatusConfirmed
		case confirmTimeout:
			status[k] = events.StatusCancelled
		}
		out[i] = s
	}
	return out
}

// Handle implements runner.Handler. It is also the fallback of
// HandleBatch: a failed batch is redone message by message here.
func (h *ConfirmOrder) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PaymentAuthorized
	if err := handlers.Decode(ev, &in); err != nil {
		return nil, err
	}
	o, err := lockOrder(ctx, tx, in.OrderID)
	if err != nil {
		return nil, err
	}
	now := h.now()
	switch decideConfirm(o.status, o.deadline, now) {
	case confirmIgnore:
		return handlers.Ignore(ctx, tx, o.id, "confirm_order", handlers.Orders, ev, "order is "+o.status)
	case confirmTimeout:
		out, err := cancel(ctx, tx, o, events.CancelTimeout, "confirm_order", ev, now)
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE orders.orders SET status = 'confirmed', confirmed_at = $2, authorization_id = $3, updated_at = $2
		WHERE order_id = $1`, o.id, now, in.AuthorizationID); err != nil {
		return nil, fmt.Errorf("confirm order %s: %w", o.id, err)
	}
	out, err := emitConfirmed(ctx, tx, o, in.AuthorizationID, ev, now)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// HandleBatch implements BatchReactor: every message of the batch in a
// fixed number of statements — one to lock all the orders (in order_id
// order), one to confirm all the confirmed ones, one to cancel all the
// timed out ones (when any) — whatever the batch's size. The decisions
// are planConfirms'; the events and saga log steps are Handle's, message
// by message, in stream order, logged under ctx (the Router's step log,
// which the Router writes in one statement).
//
// Any error fails the batch, which the runner redoes with Handle: an
// undecodable message (Handle dead-letters it) and an order not recorded
// yet (Handle retries it, errUnknownOrder) included.
func (h *ConfirmOrder) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	ins := make([]events.PaymentAuthorized, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &ins[i]); err != nil {
			return nil, fmt.Errorf("confirm orders: message %s: %w", m.Event.ID(), err)
		}
		k, err := handlers.OrderKey(ins[i].OrderID)
		if err != nil {
			return nil, fmt.Errorf("confirm orders: message %s: %w", m.Event.ID(), err)
		}
		keys[i] = k
	}
	orders, err := lockOrders(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, ok := orders[k]; !ok {
			return nil, fmt.Errorf("order %s: %w", k, errUnknownOrder)
		}
	}
	now := h.now()
	plan := planConfirms(orders, keys, now)

	var confirmed, auths, timedOut []string
	for i, s := range plan {
		switch s.outcome {
		case confirmConfirm:
			confirmed, auths = append(confirmed, keys[i]), append(auths, ins[i].AuthorizationID)
		case confirmTimeout:
			timedOut = append(timedOut, keys[i])
		}
	}
	if len(confirmed) > 0 {
		// One order is confirmed at most once in a batch (planConfirms),
		// so every row appears once in the unnest.
		if _, err := tx.Exec(ctx, `
			UPDATE orders.orders o SET status = 'confirmed', confirmed_at = $1, authorization_id = u.auth, updated_at = $1
			FROM unnest($2::uuid[], $3::text[]) AS u(id, auth)
			WHERE o.order_id = u.id`, now, confirmed, auths); err != nil {
			return nil, fmt.Errorf("confirm %d orders: %w", len(confirmed), err)
		}
	}
	if len(timedOut) > 0 {
		if err := cancelOrders(ctx, tx, timedOut, events.CancelTimeout, now); err != nil {
			return nil, err
		}
	}

	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		o := orders[keys[i]]
		o.id, o.status = ins[i].OrderID, plan[i].status // as Handle sees it
		var ev *event.Event
		var err error
		switch plan[i].outcome {
		case confirmIgnore:
			_, err = handlers.Ignore(ctx, tx, o.id, "confirm_order", handlers.Orders, m.Event, "order is "+o.status)
		case confirmTimeout:
			ev, err = emitCancelled(ctx, tx, o, events.CancelTimeout, "confirm_order", m.Event, now)
		case confirmConfirm:
			ev, err = emitConfirmed(ctx, tx, o, ins[i].AuthorizationID, m.Event, now)
		}
		if err != nil {
			return nil, err
		}
		if ev != nil {
			out[i] = []*event.Event{ev}
		}
	}
	return out, nil
}

// emitConfirmed logs the confirmation of o (just confirmed, caused by the
// authorization cause) and returns orders.confirmed.
func emitConfirmed(ctx context.Context, tx pgx.Tx, o order, authorizationID string, cause *event.Event, now time.Time) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: o.id, Step: "confirm_order", Participant: handlers.Orders, Cause: cause, Outcome: "confirmed"},
		events.OrderConfirmedV1, o.id, events.OrderConfirmed{
			OrderID: o.id, CustomerID: o.customerID, Currency: o.currency, Total: o.total,
			AuthorizationID: authorizationID, ConfirmedAt: now.Format(time.RFC3339Nano),
			PlacedAt: o.placedAt.UTC().Format(time.RFC3339Nano),
		})
}
