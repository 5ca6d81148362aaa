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
// the order and carried on orders.placed; the
// deadline it sets is what the deadline sweeper enforces. If the customer's
// cancel arrived first (cancel_order left a tombstone that has not
// expired), the order is cancelled at once with reason customer:
// orders.placed then orders.cancelled, and the participants compensate as
// for any cancel before confirmation.
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
		Emits: []string{events.OrderPlacedV1, events.OrderCancelledV1}}
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
	var total int64
	for _, l := range in.Lines {
		total += l.Quantity * l.UnitPrice
	}
	placedAt := h.now()
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
