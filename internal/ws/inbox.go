package ws

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// inbox is the durable history the server backfills from (PGInbox).
type inbox interface {
	// After returns up to limit entries of ch with seq > since, in seq
	// order, each with its CloudEvent as structured JSON.
	After(ctx context.Context, ch channel, since int64, limit int) ([]Entry, error)
	// OrderOwner returns the customer who owns an order; ok is false when
	// no such order is known.
	OrderOwner(ctx context.Context, orderID string) (owner string, ok bool, err error)
}

// Entry is one notification of the inbox.
type Entry struct {
	Seq   int64
	Event []byte // structured CloudEvent JSON
}

// PGInbox reads public.notifications (filled by the notifier) and the
// orders read model.
type PGInbox struct{ pool *pgxpool.Pool }

var _ inbox = (*PGInbox)(nil)

// NewPGInbox wires the inbox reader.
func NewPGInbox(pool *pgxpool.Pool) (*PGInbox, error) {
	if pool == nil {
		return nil, errors.New("ws inbox: pool is required")
	}
	return &PGInbox{pool: pool}, nil
}

// After implements inbox.
func (i *PGInbox) After(ctx context.Context, ch channel, since int64, limit int) ([]Entry, error) {
	var rows pgx.Rows
	var err error
	switch ch.kind {
	case kindUser:
		rows, err = i.pool.Query(ctx, `
			SELECT seq, payload::text FROM public.notifications
			WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, ch.userID, since, limit)
	case kindOrder:
		rows, err = i.pool.Query(ctx, `
			SELECT seq, payload::text FROM public.notifications
			WHERE order_id = $1 AND user_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`, ch.orderID, ch.userID, since, limit)
	default:
		return nil, nil // live only
	}
	if err != nil {
		return nil, fmt.Errorf("backfill %s after %d: %w", ch.name, since, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var s string
		err := r.Scan(&e.Seq, &s)
		e.Event = []byte(s)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("backfill %s after %d: %w", ch.name, since, err)
	}
	return out, nil
}

// OrderOwner implements inbox: the orders read model, else the owner's
// notifications about the order (the read model may trail the notifier).
func (i *PGInbox) OrderOwner(ctx context.Context, orderID string) (string, bool, error) {
	var owner string
	err := i.pool.QueryRow(ctx, `
		SELECT customer_id FROM public.orders WHERE order_id = $1::uuid
		UNION ALL
		(SELECT user_id FROM public.notifications WHERE order_id = $2 LIMIT 1)
		LIMIT 1`, orderID, orderID).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("owner of order %s: %w", orderID, err)
	}
	return owner, true, nil
}
