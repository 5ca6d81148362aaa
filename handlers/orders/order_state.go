package orders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// errUnknownOrder is returned (and retried by the runner) when a message
// names an order the orders participant has not recorded yet.
var errUnknownOrder = errors.New("unknown order")

// order is the orders participant's row of an order, locked for update.
type order struct {
	id, customerID, status, currency, correlationID string
	total                                           int64
	deadline, placedAt                              time.Time
}

// lockOrder reads an order FOR UPDATE: the orders participant's reactions
// to one order are serialised by this lock (and the deadline sweeper skips
// locked rows), so confirm, cancel and timeout never interleave.
func lockOrder(ctx context.Context, tx pgx.Tx, orderID string) (order, error) {
	o := order{id: orderID}
	var corr *string
	err := tx.QueryRow(ctx, `
		SELECT customer_id, status, currency, total, deadline, created_at, correlation_id
		FROM orders.orders WHERE order_id = $1 FOR UPDATE`, orderID).
		Scan(&o.customerID, &o.status, &o.currency, &o.total, &o.deadline, &o.placedAt, &corr)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("order %s: %w", orderID, errUnknownOrder)
	}
	if err != nil {
		return o, fmt.Errorf("lock order %s: %w", orderID, err)
	}
	if corr != nil {
		o.correlationID = *corr
	}
	return o, nil
}

// cancel marks a locked order cancelled with reason, logs the step and
// returns orders.cancelled. The caller checked the order is not cancelled.
func cancel(ctx context.Context, tx pgx.Tx, o order, reason, stepName string, cause *event.Event, now time.Time) (*event.Event, error) {
	_, err := tx.Exec(ctx, `
		UPDATE orders.orders SET status = 'cancelled', cancel_reason = $2, previous_status = status,
			cancelled_at = $3, updated_at = $3
		WHERE order_id = $1`, o.id, reason, now)
	if err != nil {
		return nil, fmt.Errorf("cancel order %s: %w", o.id, err)
	}
	return emitCancelled(ctx, tx, o, reason, stepName, cause, now)
}

// emitCancelled logs the cancellation step of an order whose row was just
// cancelled (o.status is its status before) and returns orders.cancelled.
// The sweeper's events (no cause) carry the order's correlation id.
func emitCancelled(ctx context.Context, tx pgx.Tx, o order, reason, stepName string, cause *event.Event, now time.Time) (*event.Event, error) {
	var opts []events.Option
	if cause == nil && o.correlationID != "" {
		opts = append(opts, events.WithCorrelation(o.correlationID))
	}
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: o.id, Step: stepName, Participant: handlers.Orders, Cause: cause,
		Outcome: "cancelled", Detail: reason},
		events.OrderCancelledV1, o.id, events.OrderCancelled{
			OrderID: o.id, CustomerID: o.customerID, Currency: o.currency, Total: o.total,
			Reason: reason, PreviousStatus: o.status, CancelledAt: now.Format(time.RFC3339Nano),
			PlacedAt: o.placedAt.UTC().Format(time.RFC3339Nano),
		}, opts...)
}

// cancelPending is the orders participant's answer to a failed saga step:
// a pending order is cancelled with reason and emits orders.cancelled; an
// order already confirmed or cancelled ignores the (late) failure.
func cancelPending(ctx context.Context, tx pgx.Tx, orderID, reason, stepName string, cause *event.Event, now time.Time) ([]*event.Event, error) {
	o, err := lockOrder(ctx, tx, orderID)
	if err != nil {
		return nil, err
	}
	if o.status != events.StatusPending {
		return handlers.Ignore(ctx, tx, o.id, stepName, handlers.Orders, cause, "order is "+o.status)
	}
	out, err := cancel(ctx, tx, o, reason, stepName, cause, now)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// lockOrders is lockOrder for a batch: it reads the orders of keys
// (canonical ids, see handlers.OrderKey; repeats allowed) FOR UPDATE in one
// statement, locking them in order_id order, so that two batches sharing
// orders lock them in the same order and cannot deadlock. The map is keyed
// by canonical id; an order with no row is absent. Each order's id is its
// canonical one: a caller emitting events sets the id its message spelled.
func lockOrders(ctx context.Context, tx pgx.Tx, keys []string) (map[string]order, error) {
	rows, err := tx.Query(ctx, `
		SELECT order_id::text, customer_id, status, currency, total, deadline, created_at, coalesce(correlation_id, '')
		FROM orders.orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE`, keys)
	if err != nil {
		return nil, fmt.Errorf("lock %d orders: %w", len(keys), err)
	}
	locked, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (order, error) {
		var o order
		err := r.Scan(&o.id, &o.customerID, &o.status, &o.currency, &o.total, &o.deadline, &o.placedAt, &o.correlationID)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("lock %d orders: %w", len(keys), err)
	}
	out := make(map[string]order, len(locked))
	for _, o := range locked {
		out[o.id] = o
	}
	return out, nil
}

// cancelOrders is cancel's update for a batch: it marks the locked orders
// of keys cancelled with reason in one statement. The caller checked that
// none is cancelled, and emits each one's event with emitCancelled.
func cancelOrders(ctx context.Context, tx pgx.Tx, keys []string, reason string, now time.Time) error {
	_, err := tx.Exec(ctx, `
		UPDATE orders.orders SET status = 'cancelled', cancel_reason = $2, previous_status = status,
			cancelled_at = $3, updated_at = $3
		WHERE order_id = ANY($1::uuid[])`, keys, reason, now)
	if err != nil {
		return fmt.Errorf("cancel %d orders: %w", len(keys), err)
	}
	return nil
}

// cancelPendingStep is cancel_pending's decision for one message of a
// batch: whether its order is cancelled, and the status the order had
// when the message was decided (an ignored step's detail names it; a
// cancellation's event carries it as the previous status).
type cancelPendingStep struct {
	cancel bool
	status string
}

// decideCancelPending is cancelPending's transition: only a pending order
// is cancelled by a failed saga step; any other status ignores it.
func decideCancelPending(status string) bool { return status == events.StatusPending }

// planCancelPending decides a batch of failed saga steps: keys[i] is the
// order of message i (stream order), status each order's status before
// the batch. Messages of one order apply in stream order to its status
// in memory, so a failure after one that cancelled the order in this
// batch is ignored (order is cancelled), as cancelPending would decide
// message by message. status is not modified.
func planCancelPending(status map[string]string, keys []string) []cancelPendingStep {
	cur := maps.Clone(status)
	out := make([]cancelPendingStep, len(keys))
	for i, k := range keys {
		out[i] = cancelPendingStep{cancel: decideCancelPending(cur[k]), status: cur[k]}
		if out[i].cancel {
			cur[k] = events.StatusCancelled
		}
	}
	return out
}

// pendingFailure is one message of a batch handed to cancelPendingBatch:
// the order it names (as spelled), the cancel reason and the message.
type pendingFailure struct {
	orderID, reason string
	cause           *event.Event
}

// cancelPendingBatch is cancelPending for a batch, in three statements
// whatever its size (one here to lock every order, in order_id order; one
// to cancel those decided so; the Router's saga log): the decisions are
// planCancelPending's, the events and saga log steps cancelPending's,
// message by message in stream order (out[i] for in[i]). An order not
// recorded yet fails the whole batch with errUnknownOrder, as it fails
// that message in cancelPending (the runner redoes the batch one by one).
func cancelPendingBatch(ctx context.Context, tx pgx.Tx, in []pendingFailure, stepName string, now time.Time) ([][]*event.Event, error) {
	keys := make([]string, len(in))
	for i, f := range in {
		k, err := handlers.OrderKey(f.orderID)
		if err != nil {
			return nil, fmt.Errorf("%s: message %s: %w", stepName, f.cause.ID(), err)
		}
		keys[i] = k
	}
	orders, err := lockOrders(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	status := make(map[string]string, len(orders))
	for _, k := range keys {
		o, ok := orders[k]
		if !ok {
			return nil, fmt.Errorf("order %s: %w", k, errUnknownOrder)
		}
		status[k] = o.status
	}
	plan := planCancelPending(status, keys)
	var ids, reasons []string
	for i, s := range plan {
		if s.cancel { // at most once per order (planCancelPending)
			ids, reasons = append(ids, keys[i]), append(reasons, in[i].reason)
		}
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE orders.orders o SET status = 'cancelled', cancel_reason = u.reason, previous_status = o.status,
				cancelled_at = $3, updated_at = $3
			FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
			WHERE o.order_id = u.id`, ids, reasons, now); err != nil {
			return nil, fmt.Errorf("%s: cancel %d orders: %w", stepName, len(ids), err)
		}
	}
	out := make([][]*event.Event, len(in))
	for i, f := range in {
		o := orders[keys[i]]
		o.id, o.status = f.orderID, plan[i].status // as cancelPending sees it
		if !plan[i].cancel {
			if _, err := handlers.Ignore(ctx, tx, o.id, stepName, handlers.Orders, f.cause, "order is "+o.status); err != nil {
				return nil, err
			}
			continue
		}
		ev, err := emitCancelled(ctx, tx, o, f.reason, stepName, f.cause, now)
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{ev}
	}
	return out, nil
}
