package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
)

// orderIDNamespace derives an order id from the command id when the
// producer did not choose one: the same command always names the same order.
var orderIDNamespace = uuid.MustParse("6f1c2a53-8d0e-4c8e-9a54-6a3f0f6b1c11")

// PlaceOrder records a new order as pending and emits orders.placed. It
// reads the newest version of the command (the consumer upcasts v1) into
// its own struct, so v2's shipping address and promotion code are kept on
// the order and carried on orders.placed. The deadline it sets is what the
// deadline sweeper enforces. If the customer's cancel arrived first
// (cancel_order left a tombstone that has not expired), the order is
// cancelled at once with reason customer: orders.placed then
// orders.cancelled, and the participants compensate as for any cancel
// before confirmation.
//
// A command it cannot place (its lines total less than 1 minor unit) is
// recorded as rejected and answered with orders.rejected only: the saga
// never starts, so nothing is reserved, authorized or dead-lettered
// downstream. The prices are the command's: the package doc says why they
// can be trusted.
type PlaceOrder struct {
	// Deadline is how long the saga has to confirm the order.
	Deadline time.Duration
	now      func() time.Time
}

// NewPlaceOrder validates the configuration.
func NewPlaceOrder(deadline time.Duration) (*PlaceOrder, error) {
	if deadline <= 0 {
		return nil, errors.New("place order: deadline must be positive")
	}
	return &PlaceOrder{Deadline: deadline, now: utcNow}, nil
}

// Reaction implements Reactor.
func (h *PlaceOrder) Reaction() Reaction {
	return Reaction{Step: "place_order", Participant: Orders, Trigger: events.PlaceOrderV2,
		Emits: []string{events.OrderPlacedV1, events.OrderCancelledV1, events.OrderRejectedV1}}
}

// Handle implements runner.Handler.
func (h *PlaceOrder) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.PlaceOrderV2Data
	if err := decode(cmd, &in); err != nil {
		return nil, err
	}
	orderID := in.OrderID
	if orderID == "" {
		orderID = uuid.NewSHA1(orderIDNamespace, []byte(cmd.ID())).String()
	}
	placedAt := h.now()
	total, reason, detail := orderTotal(in.Lines)
	if reason != "" {
		return h.reject(ctx, tx, cmd, in, orderID, total, reason, detail, placedAt)
	}
	deadline := placedAt.Add(h.Deadline)
	lines, err := json.Marshal(in.Lines)
	if err != nil {
		return nil, fmt.Errorf("place order %s: %w", orderID, err)
	}
	var address []byte // NULL without one
	if in.ShippingAddress != nil {
		if address, err = json.Marshal(in.ShippingAddress); err != nil {
			return nil, fmt.Errorf("place order %s: %w", orderID, err)
		}
	}
	ev, err := events.New(events.OrderPlacedV1, orderID, events.OrderPlaced{
		OrderID:         orderID,
		CustomerID:      in.CustomerID,
		Lines:           in.Lines,
		Currency:        in.Currency,
		Total:           total,
		PlacedAt:        placedAt.Format(time.RFC3339Nano),
		Deadline:        deadline.Format(time.RFC3339Nano),
		ShippingAddress: in.ShippingAddress,
		PromoCode:       in.PromoCode,
	}, events.CausedBy(cmd))
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO core.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, updated_at,
			correlation_id, shipping_address, promo_code)
		VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $8, $9, $10, NULLIF($11, ''))
		ON CONFLICT (order_id) DO NOTHING`,
		orderID, in.CustomerID, in.Currency, total, lines, deadline, cmd.ID(), placedAt,
		events.StringExt(ev, events.ExtCorrelationID), address, in.PromoCode)
	if err != nil {
		return nil, fmt.Errorf("place order %s: %w", orderID, err)
	}
	if tag.RowsAffected() == 0 {
		// Another command already placed this order id: the order exists
		// once; this command has no further effect.
		return nil, nil
	}
	err = logStep(ctx, tx, step{orderID: orderID, step: "place_order", participant: Orders, cause: cmd,
		outcome: "placed", emitted: ev})
	if err != nil {
		return nil, err
	}
	early, err := takeCancel(ctx, tx, orderID, placedAt)
	if err != nil || early == "" {
		return []*event.Event{ev}, err
	}
	o := order{id: orderID, customerID: in.CustomerID, status: events.StatusPending, currency: in.Currency,
		total: total, deadline: deadline, placedAt: placedAt}
	cancelled, err := cancel(ctx, tx, o, events.CancelCustomer, "cancel_order", cmd, placedAt)
	if err != nil {
		return nil, fmt.Errorf("place order %s: apply the cancel %s that came first: %w", orderID, early, err)
	}
	return []*event.Event{ev, cancelled}, nil
}

// orderTotal is the pure decision of place_order: the order's total, or
// why the command cannot be placed (a reason of OrderRejectedV1 and a
// detail for people). The schema bounds every line (quantity ≤ 10⁴,
// unit_price ≤ 10⁸, ≤ 100 lines), so the sum cannot overflow.
func orderTotal(lines []events.OrderLine) (total int64, reason, detail string) {
	for _, l := range lines {
		total += l.Quantity * l.UnitPrice
	}
	if total < 1 {
		return total, events.RejectInvalidTotal,
			fmt.Sprintf("the lines total %d minor units; an order must total at least 1", total)
	}
	return total, "", ""
}

// reject records the order as rejected (so its id stays taken and a
// redelivered or repeated command changes nothing) and emits
// orders.rejected.
func (h *PlaceOrder) reject(ctx context.Context, tx pgx.Tx, cmd *event.Event, in events.PlaceOrderV2Data,
	orderID string, total int64, reason, detail string, now time.Time) ([]*event.Event, error) {
	lines, err := json.Marshal(in.Lines)
	if err != nil {
		return nil, fmt.Errorf("reject order %s: %w", orderID, err)
	}
	corr := events.StringExt(cmd, events.ExtCorrelationID) // as CausedBy names it
	if corr == "" {
		corr = cmd.ID()
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO core.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, updated_at,
			correlation_id, cancel_reason, promo_code)
		VALUES ($1, $2, 'rejected', $3, $4, $5, $6, $7, $6, $6, $8, $9, NULLIF($10, ''))
		ON CONFLICT (order_id) DO NOTHING`,
		orderID, in.CustomerID, in.Currency, total, lines, now, cmd.ID(), corr, reason, in.PromoCode)
	if err != nil {
		return nil, fmt.Errorf("reject order %s: %w", orderID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil // the id is taken: this command has no effect
	}
	ev, err := emitAndLog(ctx, tx, step{orderID: orderID, step: "place_order", participant: Orders, cause: cmd,
		outcome: "rejected", detail: reason},
		events.OrderRejectedV1, orderID, events.OrderRejected{
			OrderID: orderID, CustomerID: in.CustomerID, Lines: in.Lines, Currency: in.Currency, Total: total,
			Reason: reason, Detail: detail, RejectedAt: now.Format(time.RFC3339Nano),
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
