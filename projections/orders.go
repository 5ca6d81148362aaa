package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// Orders maintains public.orders: the current state of each order, its
// lines and totals, its shipping address and promotion code (orders.place
// v2, carried on orders.placed), the state of its stock and payment, why it was
// cancelled, and when each thing happened. Every event of an order's saga
// (orders, inventory and payments events whose subject is the order id)
// updates the order's row; last_seq is the position of the last one.
type Orders struct{}

var _ projector.Projection = Orders{}

// Name implements projector.Projection.
func (Orders) Name() string { return "orders" }

// Tables implements projector.Projection.
func (Orders) Tables() []string { return []string{"orders"} }

// Subjects implements projector.Projection.
func (Orders) Subjects() []string { return filters(orderSagaTypes...) }

// orderSagaTypes are the events whose subject is an order id.
var orderSagaTypes = []string{
	events.OrderPlacedV1, events.OrderRejectedV1, events.OrderConfirmedV1, events.OrderCancelledV1,
	events.StockReservedV1, events.StockRejectedV1, events.StockReleasedV1,
	events.StockCommittedV1, events.StockReturnedV1,
	events.PaymentAuthorizedV1, events.PaymentDeclinedV1, events.PaymentCapturedV1,
	events.PaymentVoidedV1, events.PaymentRefundedV1,
}

type orderRow struct {
	ID                                         [16]byte
	CustomerID, Status, Currency               string
	Total, Items                               int64
	Lines                                      []byte
	StockStatus, PaymentStatus, AuthID, Reason *string
	PlacedAt, Deadline                         time.Time
	ConfirmedAt, CancelledAt                   *time.Time
	UpdatedAt                                  time.Time
	LastSeq                                    int64
	ShippingAddress                            []byte  // jsonb, nil without one
	PromoCode                                  *string // from orders.place v2
	stored                                     bool    // the row exists in the table
	changed                                    bool    // an event of the batch changed it
}

var orderCols = []string{"order_id", "customer_id", "status", "currency", "total", "item_count", "lines",
	"stock_status", "payment_status", "authorization_id", "cancel_reason",
	"placed_at", "deadline", "confirmed_at", "cancelled_at", "updated_at", "last_seq",
	"shipping_address", "promo_code"}

func (r *orderRow) values() []any {
	return []any{r.ID, r.CustomerID, r.Status, r.Currency, r.Total, r.Items, r.Lines,
		r.StockStatus, r.PaymentStatus, r.AuthID, r.Reason,
		r.PlacedAt, r.Deadline, r.ConfirmedAt, r.CancelledAt, r.UpdatedAt, r.LastSeq,
		r.ShippingAddress, r.PromoCode}
}

// Apply implements projector.Projection: it loads the rows of the orders
// the batch touches (one indexed query), folds every event into the rows in
// memory, then writes new orders with COPY and changed ones with one
// upsert.
//
// Fast path: an order whose first event in the batch is its placement is
// presumed new and not looked up; should it exist after all (a placement
// repeated), the COPY's unique violation sends the batch down the careful
// path, which looks up every order.
func (o Orders) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	err := b.Try(ctx, tx, func() error { return o.apply(ctx, tx, b, true) })
	if projector.IsUniqueViolation(err) {
		return o.apply(ctx, tx, b, false)
	}
	return err
}

func (Orders) apply(ctx context.Context, tx pgx.Tx, b *projector.Batch, presumeNew bool) error {
	ids := make([][16]byte, len(b.Events))
	seenID := map[[16]byte]bool{}
	var load [][16]byte
	for i := range b.Events {
		ev := &b.Events[i]
		id, err := orderID(ev.Subject)
		if err != nil {
			b.Reject(ev, err)
			continue
		}
		ids[i] = id
		if !seenID[id] {
			seenID[id] = true
			if !presumeNew || !opensOrder(ev.Type) {
				load = append(load, id)
			}
		}
	}
	rows := map[[16]byte]*orderRow{}
	if err := loadOrders(ctx, tx, b, load, rows); err != nil {
		return err
	}
	var order [][16]byte
	seen := map[[16]byte]bool{}
	for i := range b.Events {
		ev := &b.Events[i]
		if ids[i] == ([16]byte{}) {
			continue
		}
		r := rows[ids[i]]
		if opensOrder(ev.Type) {
			if r != nil {
				continue // placed twice (a producer retried with a new event id): the first wins
			}
			nr, err := placedRow(ev, ids[i])
			if err != nil {
				b.Reject(ev, err)
				continue
			}
			rows[ids[i]], r = nr, nr
		} else if r == nil {
			b.Reject(ev, errors.New("event for an order never placed"))
			continue
		}
		if err := foldOrder(r, ev); err != nil {
			b.Reject(ev, err)
			continue
		}
		r.LastSeq, r.UpdatedAt, r.changed = int64(ev.Seq), ev.Time, true
		if !seen[ids[i]] {
			seen[ids[i]] = true
			order = append(order, ids[i])
		}
	}
	var fresh [][]any
	var upd []*orderRow
	for _, id := range order {
		r := rows[id]
		if r.stored {
			upd = append(upd, r)
		} else {
			fresh = append(fresh, r.values())
		}
	}
	if err := b.Copy(ctx, tx, "orders", orderCols, fresh); err != nil {
		return err
	}
	return upsertOrders(ctx, tx, b, upd)
}

// Prepare implements projector.Preparer: a placement's row is built
// (JSON decoded) outside the transaction.
func (Orders) Prepare(ev *projector.Event) {
	if !opensOrder(ev.Type) {
		return
	}
	id, err := orderID(ev.Subject)
	if err != nil {
		return // Apply rejects it
	}
	r, err := newPlacedRow(ev, id)
	if err != nil {
		ev.Prepared = err
		return
	}
	ev.Prepared = r
}

// placedRow returns a fresh row for a placement (the prepared one, when
// Prepare ran).
func placedRow(ev *projector.Event, id [16]byte) (*orderRow, error) {
	switch p := ev.Prepared.(type) {
	case *orderRow:
		c := *p // the batch may be applied twice (the careful path)
		return &c, nil
	case error:
		return nil, p
	}
	return newPlacedRow(ev, id)
}

// opensOrder tells the events that create an order's row: its placement,
// or the rejection of a command that was never placed.
func opensOrder(ceType string) bool {
	return ceType == events.OrderPlacedV1 || ceType == events.OrderRejectedV1
}

// newRejectedRow is the final row of an order whose command was rejected.
func newRejectedRow(ev *projector.Event, id [16]byte) (*orderRow, error) {
	p := &events.OrderRejected{}
	if err := decode(ev, p); err != nil {
		return nil, err
	}
	at, err := parseTime(p.RejectedAt, ev.Time)
	if err != nil {
		return nil, err
	}
	lines, err := json.Marshal(p.Lines)
	if err != nil {
		return nil, err
	}
	var items int64
	for _, l := range p.Lines {
		items += l.Quantity
	}
	return &orderRow{ID: id, CustomerID: p.CustomerID, Status: events.StatusRejected, Currency: p.Currency,
		Total: p.Total, Items: items, Lines: lines, Reason: str(p.Reason), PlacedAt: at, Deadline: at}, nil
}

func newPlacedRow(ev *projector.Event, id [16]byte) (*orderRow, error) {
	if ev.Type == events.OrderRejectedV1 {
		return newRejectedRow(ev, id)
	}
	p := &events.OrderPlaced{}
	if err := decode(ev, p); err != nil {
		return nil, err
	}
	placed, err := parseTime(p.PlacedAt, ev.Time)
	if err != nil {
		return nil, err
	}
	deadline, err := parseTime(p.Deadline, placed)
	if err != nil {
		return nil, err
	}
	lines, err := json.Marshal(p.Lines)
	if err != nil {
		return nil, err
	}
	var items int64
	for _, l := range p.Lines {
		items += l.Quantity
	}
	r := &orderRow{ID: id, CustomerID: p.CustomerID, Status: events.StatusPending, Currency: p.Currency,
		Total: p.Total, Items: items, Lines: lines, PlacedAt: placed, Deadline: deadline}
	if p.ShippingAddress != nil {
		if r.ShippingAddress, err = json.Marshal(p.ShippingAddress); err != nil {
			return nil, err
		}
	}
	if p.PromoCode != "" {
		r.PromoCode = str(p.PromoCode)
	}
	return r, nil
}

func str(s string) *string { return &s }

// foldOrder applies one non-placed event to r.
func foldOrder(r *orderRow, ev *projector.Event) error {
	switch ev.Type {
	case events.OrderPlacedV1, events.OrderRejectedV1:
	case events.OrderConfirmedV1:
		var d events.OrderConfirmed
		if err := decode(ev, &d); err != nil {
			return err
		}
		at, err := parseTime(d.ConfirmedAt, ev.Time)
		if err != nil {
			return err
		}
		if r.Status == events.StatusCancelled {
			return nil // cancelled is final
		}
		r.Status, r.ConfirmedAt = events.StatusConfirmed, &at
		if d.AuthorizationID != "" {
			r.AuthID = str(d.AuthorizationID)
		}
	case events.OrderCancelledV1:
		var d events.OrderCancelled
		if err := decode(ev, &d); err != nil {
			return err
		}
		at, err := parseTime(d.CancelledAt, ev.Time)
		if err != nil {
			return err
		}
		r.Status, r.CancelledAt, r.Reason = events.StatusCancelled, &at, str(d.Reason)
	case events.StockReservedV1:
		r.StockStatus = str("reserved")
	case events.StockRejectedV1:
		r.StockStatus = str("rejected")
	case events.StockReleasedV1:
		r.StockStatus = str("released")
	case events.StockCommittedV1:
		r.StockStatus = str("committed")
	case events.StockReturnedV1:
		r.StockStatus = str("returned")
	case events.PaymentAuthorizedV1:
		var d events.PaymentAuthorized
		if err := decode(ev, &d); err != nil {
			return err
		}
		r.PaymentStatus, r.AuthID = str("authorized"), str(d.AuthorizationID)
	case events.PaymentDeclinedV1:
		r.PaymentStatus = str("declined")
	case events.PaymentCapturedV1:
		r.PaymentStatus = str("captured")
	case events.PaymentVoidedV1:
		r.PaymentStatus = str("voided")
	case events.PaymentRefundedV1:
		r.PaymentStatus = str("refunded")
	default:
		return fmt.Errorf("orders projection: unexpected type %s", ev.Type)
	}
	return nil
}

func loadOrders(ctx context.Context, tx pgx.Tx, b *projector.Batch, ids [][16]byte, into map[[16]byte]*orderRow) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE order_id = ANY($1::uuid[])`,
		strings.Join(orderCols, ", "), b.Table("orders")), ids)
	if err != nil {
		return fmt.Errorf("load orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &orderRow{stored: true}
		if err := rows.Scan(&r.ID, &r.CustomerID, &r.Status, &r.Currency, &r.Total, &r.Items, &r.Lines,
			&r.StockStatus, &r.PaymentStatus, &r.AuthID, &r.Reason,
			&r.PlacedAt, &r.Deadline, &r.ConfirmedAt, &r.CancelledAt, &r.UpdatedAt, &r.LastSeq,
			&r.ShippingAddress, &r.PromoCode); err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		into[r.ID] = r
	}
	return rows.Err()
}

var orderUpsertCols = []string{
	"order_id uuid", "customer_id text", "status text", "currency text",
	"total bigint", "item_count bigint", "lines jsonb",
	"stock_status text", "payment_status text", "authorization_id text", "cancel_reason text",
	"placed_at timestamptz", "deadline timestamptz", "confirmed_at timestamptz",
	"cancelled_at timestamptz", "updated_at timestamptz", "last_seq bigint",
	"shipping_address jsonb", "promo_code text",
}

// upsertOrders writes changed rows that already existed, column-wise.
func upsertOrders(ctx context.Context, tx pgx.Tx, b *projector.Batch, rs []*orderRow) error {
	if len(rs) == 0 {
		return nil
	}
	cols := make([][]any, len(orderCols))
	for i := range cols {
		cols[i] = make([]any, len(rs))
	}
	for j, r := range rs {
		for i, v := range r.values() {
			cols[i][j] = v
		}
	}
	args := make([]any, len(cols))
	for i := range cols {
		args[i] = cols[i]
	}
	return b.Upsert(ctx, tx, "orders", orderUpsertCols, []string{"order_id"}, "", args...)
}
