package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// Deadlines cancels pending orders whose deadline has passed (reason
// timeout). It is the saga's durable timer: the deadline is a column of
// the order row, so it commits with the order and survives any crash, and
// a sweep (see CancelOverdue) is one transaction that claims overdue rows
// with FOR UPDATE SKIP LOCKED — several sweepers never cancel one order
// twice, and a row a reaction holds (being confirmed right now) is left
// for the next sweep, which sees it confirmed.
type Deadlines struct {
	// Batch bounds the orders one sweep cancels.
	Batch int
	now   func() time.Time
}

// NewDeadlines validates the configuration.
func NewDeadlines(batch int) (*Deadlines, error) {
	if batch <= 0 {
		return nil, errors.New("deadlines: batch must be positive")
	}
	return &Deadlines{Batch: batch, now: handlers.UTCNow}, nil
}

// Reaction declares the sweeper's place in the saga.
func (h *Deadlines) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "timeout", Participant: handlers.Orders, Trigger: handlers.Deadline, Emits: []string{events.OrderCancelledV1}}
}

// CancelOverdue cancels up to Batch overdue pending orders in tx and
// returns their orders.cancelled events, which the caller adds to the
// outbox in the same transaction.
func (h *Deadlines) CancelOverdue(ctx context.Context, tx pgx.Tx) ([]*event.Event, error) {
	now := h.now()
	rows, err := tx.Query(ctx, `
		SELECT order_id::text, customer_id, status, currency, total, deadline, created_at, coalesce(correlation_id, '')
		FROM orders.orders
		WHERE status = 'pending' AND deadline < $1
		ORDER BY deadline
		LIMIT $2
		FOR UPDATE SKIP LOCKED`, now, h.Batch)
	if err != nil {
		return nil, fmt.Errorf("find overdue orders: %w", err)
	}
	overdue, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (order, error) {
		var o order
		err := r.Scan(&o.id, &o.customerID, &o.status, &o.currency, &o.total, &o.deadline, &o.placedAt, &o.correlationID)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("read overdue orders: %w", err)
	}
	out := make([]*event.Event, 0, len(overdue))
	for _, o := range overdue {
		ev, err := cancel(ctx, tx, o, events.CancelTimeout, "timeout", nil, now)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
