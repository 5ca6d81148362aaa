package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
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
		FROM core.orders WHERE order_id = $1 FOR UPDATE`, orderID).
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
		UPDATE core.orders SET status = 'cancelled', cancel_reason = $2, previous_status = status,
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
	return emitAndLog(ctx, tx, step{orderID: o.id, step: stepName, participant: Orders, cause: cause,
		outcome: "cancelled", detail: reason},
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
		return ignore(ctx, tx, o.id, stepName, Orders, cause, "order is "+o.status)
	}
	out, err := cancel(ctx, tx, o, reason, stepName, cause, now)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// ignore logs that a reaction deliberately did nothing for an order (a
// late or superseded event) and emits nothing.
func ignore(ctx context.Context, tx pgx.Tx, orderID, stepName, participant string, cause *event.Event, why string) ([]*event.Event, error) {
	err := logStep(ctx, tx, step{orderID: orderID, step: stepName, participant: participant, cause: cause,
		outcome: "ignored", detail: why})
	return nil, err
}

// utcNow is the clock of handlers that have no injected one.
func utcNow() time.Time { return time.Now().UTC() }

// orderKey is the canonical text of an order id: the key of lockOrders'
// map, so that two spellings of one UUID name one order.
func orderKey(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", fmt.Errorf("order id %q: %w", id, err)
	}
	return u.String(), nil
}

// lockOrders is lockOrder for a batch: it reads the orders of keys
// (canonical ids, see orderKey; repeats allowed) FOR UPDATE in one
// statement, locking them in order_id order, so that two batches sharing
// orders lock them in the same order and cannot deadlock. The map is keyed
// by canonical id; an order with no row is absent. Each order's id is its
// canonical one: a caller emitting events sets the id its message spelled.
func lockOrders(ctx context.Context, tx pgx.Tx, keys []string) (map[string]order, error) {
	rows, err := tx.Query(ctx, `
		SELECT order_id::text, customer_id, status, currency, total, deadline, created_at, coalesce(correlation_id, '')
		FROM core.orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE`, keys)
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
		UPDATE core.orders SET status = 'cancelled', cancel_reason = $2, previous_status = status,
			cancelled_at = $3, updated_at = $3
		WHERE order_id = ANY($1::uuid[])`, keys, reason, now)
	if err != nil {
		return fmt.Errorf("cancel %d orders: %w", len(keys), err)
	}
	return nil
}
