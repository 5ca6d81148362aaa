package readapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Order is an order as the API returns it.
type Order struct {
	OrderID         uuid.UUID       `json:"order_id"`
	CustomerID      string          `json:"customer_id"`
	Status          string          `json:"status"`
	Currency        string          `json:"currency"`
	Total           int64           `json:"total"`
	ItemCount       int64           `json:"item_count"`
	Lines           json.RawMessage `json:"lines"`
	StockStatus     *string         `json:"stock_status"`
	PaymentStatus   *string         `json:"payment_status"`
	AuthorizationID *string         `json:"authorization_id,omitempty"`
	CancelReason    *string         `json:"cancel_reason"`
	PlacedAt        time.Time       `json:"placed_at"`
	Deadline        time.Time       `json:"deadline"`
	ConfirmedAt     *time.Time      `json:"confirmed_at"`
	CancelledAt     *time.Time      `json:"cancelled_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	Position        int64           `json:"position"` // of the last event applied to it
	// ShippingAddress and PromoCode are orders.place v2's (absent when the
	// command had none).
	ShippingAddress json.RawMessage `json:"shipping_address,omitempty"`
	PromoCode       *string         `json:"promo_code,omitempty"`
	AsOf            *time.Time      `json:"as_of,omitempty"`
}

const orderCols = `order_id, customer_id, status, currency, total, item_count, lines, stock_status, payment_status,
	authorization_id, cancel_reason, placed_at, deadline, confirmed_at, cancelled_at, updated_at, last_seq,
	shipping_address, promo_code`

func scanOrder(row pgx.Row) (*Order, error) {
	var o Order
	err := row.Scan(&o.OrderID, &o.CustomerID, &o.Status, &o.Currency, &o.Total, &o.ItemCount, &o.Lines,
		&o.StockStatus, &o.PaymentStatus, &o.AuthorizationID, &o.CancelReason, &o.PlacedAt, &o.Deadline,
		&o.ConfirmedAt, &o.CancelledAt, &o.UpdatedAt, &o.Position, &o.ShippingAddress, &o.PromoCode)
	return &o, err
}

// getOrder: GET /v1/orders/{id}[?as_of=T][&as_of_position=P]. With as_of
// (valid time: what the order looked like at T) or as_of_position
// (transaction time: after the events up to stream position P), the
// order's state is replayed from its timeline.
func (a *API) getOrder(r *request) (any, error) {
	id, err := orderIDParam(r)
	if err != nil {
		return nil, err
	}
	o, err := scanOrder(r.tx.QueryRow(r.Context(), `SELECT `+orderCols+` FROM public.orders WHERE order_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("order " + id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("read order %s: %w", id, err)
	}
	if !r.mayRead(o.CustomerID) {
		return nil, errNotFound("order " + id.String()) // do not reveal that it exists
	}
	asOf, err := timeParam(r, "as_of")
	if err != nil {
		return nil, err
	}
	var asOfPos *int64
	if s := r.URL.Query().Get("as_of_position"); s != "" {
		var p int64
		if _, err := fmt.Sscan(s, &p); err != nil || p < 0 {
			return nil, errBadRequest("as_of_position", "must be a stream position")
		}
		asOfPos = &p
	}
	if asOf == nil && asOfPos == nil {
		return o, nil
	}
	return orderAsOf(r, o, asOf, asOfPos)
}

// orderAsOf replays the order's timeline up to a time or position onto
// the current row's fixed facts (lines, totals).
func orderAsOf(r *request, o *Order, at *time.Time, pos *int64) (any, error) {
	rows, err := r.tx.Query(r.Context(), `SELECT step, at, seq, detail FROM public.order_timeline
		WHERE order_id = $1 AND ($2::timestamptz IS NULL OR at <= $2) AND ($3::bigint IS NULL OR seq <= $3)
		ORDER BY seq`, o.OrderID, at, pos)
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	defer rows.Close()
	out := *o
	out.StockStatus, out.PaymentStatus, out.CancelReason, out.ConfirmedAt, out.CancelledAt = nil, nil, nil, nil, nil
	n := 0
	for rows.Next() {
		var step string
		var ts time.Time
		var seq int64
		var detail json.RawMessage
		if err := rows.Scan(&step, &ts, &seq, &detail); err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		n++
		out.UpdatedAt, out.Position = ts, seq
		ctx, name, _ := strings.Cut(step, ".")
		switch {
		case step == "orders.placed":
			out.Status = "pending"
		case step == "orders.rejected":
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(detail, &d)
			out.Status, out.CancelReason = "rejected", &d.Reason
		case step == "orders.confirmed":
			out.Status, out.ConfirmedAt = "confirmed", &ts
		case step == "orders.cancelled":
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(detail, &d)
			out.Status, out.CancelledAt, out.CancelReason = "cancelled", &ts, &d.Reason
		case ctx == "inventory":
			out.StockStatus = &name
		case ctx == "payments":
			out.PaymentStatus = &name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	if n == 0 {
		return nil, errNotFound("order " + o.OrderID.String() + " at that time")
	}
	out.AsOf = at
	return &out, nil
}

// OrderPage is a page of orders, newest first.
type OrderPage struct {
	Orders     []*Order `json:"orders"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// listOrders: GET /v1/orders?customer_id=&status=&limit=&cursor= with
// keyset pagination on (placed_at, order_id) descending: the cursor is the
// last row's key, so every page costs one index range scan whatever its
// depth (no OFFSET).
func (a *API) listOrders(r *request) (any, error) {
	limit, err := limitParam(r, 20, 100)
	if err != nil {
		return nil, err
	}
	customer, err := textParam(r, "customer_id", false, 100)
	if err != nil {
		return nil, err
	}
	status, err := textParam(r, "status", false, 20)
	if err != nil {
		return nil, err
	}
	if status != "" && status != "pending" && status != "confirmed" && status != "cancelled" && status != "rejected" {
		return nil, errBadRequest("status", "must be pending, confirmed, cancelled or rejected")
	}
	cur, err := decodeCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		return nil, err
	}
	if r.caller != nil && !r.caller.IsOps() {
		if customer != "" && customer != r.caller.CustomerID() {
			return nil, errForbidden()
		}
		customer = r.caller.CustomerID()
	}
	var afterT *time.Time
	var afterID *uuid.UUID
	if cur != nil {
		afterT, afterID = &cur.PlacedAt, &cur.OrderID
	}
	rows, err := r.tx.Query(r.Context(), `SELECT `+orderCols+` FROM public.orders
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR status = $2)
		  AND ($3::timestamptz IS NULL OR (placed_at, order_id) < ($3, $4::uuid))
		ORDER BY placed_at DESC, order_id DESC LIMIT $5`, customer, status, afterT, afterID, limit+1)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	page := OrderPage{Orders: []*Order{}}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("list orders: %w", err)
		}
		page.Orders = append(page.Orders, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	if len(page.Orders) > limit {
		page.Orders = page.Orders[:limit]
		last := page.Orders[limit-1]
		page.NextCursor = cursor{PlacedAt: last.PlacedAt, OrderID: last.OrderID}.encode()
	}
	return page, nil
}

// TimelineStep is a step of an order's saga.
type TimelineStep struct {
	Step          string          `json:"step"`
	Type          string          `json:"type"`
	EventID       string          `json:"event_id"`
	At            time.Time       `json:"at"`
	SincePrevMs   int64           `json:"since_prev_ms"`
	SincePlacedMs int64           `json:"since_placed_ms"`
	Position      int64           `json:"position"`
	Detail        json.RawMessage `json:"detail"`
}

// orderTimeline: GET /v1/orders/{id}/timeline.
func (a *API) orderTimeline(r *request) (any, error) {
	id, err := orderIDParam(r)
	if err != nil {
		return nil, err
	}
	rows, err := r.tx.Query(r.Context(), `SELECT step, event_type, event_id, at, since_prev_ms, since_placed_ms, seq, detail
		FROM public.order_timeline WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read timeline %s: %w", id, err)
	}
	defer rows.Close()
	steps := []TimelineStep{}
	for rows.Next() {
		var s TimelineStep
		if err := rows.Scan(&s.Step, &s.Type, &s.EventID, &s.At, &s.SincePrevMs, &s.SincePlacedMs, &s.Position, &s.Detail); err != nil {
			return nil, fmt.Errorf("read timeline %s: %w", id, err)
		}
		steps = append(steps, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read timeline %s: %w", id, err)
	}
	if len(steps) == 0 {
		return nil, errNotFound("order " + id.String())
	}
	if r.caller != nil && !r.caller.IsOps() {
		var placed struct {
			CustomerID string `json:"customer_id"`
		}
		_ = json.Unmarshal(steps[0].Detail, &placed)
		if placed.CustomerID != r.caller.CustomerID() {
			return nil, errNotFound("order " + id.String())
		}
	}
	return map[string]any{"order_id": id, "steps": steps}, nil
}
