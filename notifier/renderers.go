package notifier

import (
	"context"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
)

// renderer words the notification of one type of order event, from the
// facts the event carries (completed from the orders read model, once per
// batch, when the event lacks the customer or currency: see HandleBatch).
type renderer struct {
	kind string
	text func(orderFacts) (title, body string)
}

// The event types rendered, by CloudEvent type. They are spelled out as
// strings rather than taken from the catalogue so that this table can
// name the saga's events before (and whether or not) a build registers
// them; Subjects keeps only those the catalogue knows.
const (
	typeOrderPlaced     = "com.tradewind.orders.placed.v1"
	typeOrderConfirmed  = "com.tradewind.orders.confirmed.v1"
	typeOrderCancelled  = "com.tradewind.orders.cancelled.v1"
	typePaymentRefunded = "com.tradewind.payments.refunded.v1"
)

func defaultRenderers() map[string]renderer {
	return map[string]renderer{
		typeOrderPlaced: {events.KindOrderPlaced, func(d orderFacts) (string, string) {
			return "We received your order", fmt.Sprintf("Order %s for %s is being processed.", short(d.OrderID), money(d.Total, d.Currency))
		}},
		typeOrderConfirmed: {events.KindOrderConfirmed, func(d orderFacts) (string, string) {
			return "Your order is confirmed", fmt.Sprintf("Order %s is confirmed and will be shipped.", short(d.OrderID))
		}},
		typeOrderCancelled: {events.KindOrderCancelled, func(d orderFacts) (string, string) {
			title := "Your order was cancelled"
			if r := reasonText(d.Reason); r != "" {
				title += ": " + r
			}
			return title, fmt.Sprintf("Order %s was cancelled. Nothing was charged, or the charge is refunded.", short(d.OrderID))
		}},
		typePaymentRefunded: {events.KindPaymentRefunded, func(d orderFacts) (string, string) {
			return "Refund issued", fmt.Sprintf("%s for order %s is on its way back to you.", money(firstNonZero(d.Amount, d.Total), d.Currency), short(d.OrderID))
		}},
	}
}

// orderFacts are the fields the saga's order events carry (each event has
// a subset; unknown fields are ignored).
type orderFacts struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
	Total      int64  `json:"total"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
}

// decodeFacts reads an order event's facts; the order id defaults to the
// event's subject and must be a UUID.
func decodeFacts(ev *event.Event) (orderFacts, error) {
	var d orderFacts
	if err := events.DecodeData(ev, &d); err != nil {
		return d, runner.Invalid(err)
	}
	if d.OrderID == "" {
		d.OrderID = ev.Subject()
	}
	id, err := uuid.Parse(d.OrderID)
	if err != nil {
		return d, runner.Invalid(fmt.Errorf("%s %s: order id %q: %w", ev.Type(), ev.ID(), d.OrderID, err))
	}
	d.OrderID = id.String()
	return d, nil
}

// complete fills in the customer, currency and total of the facts that
// lack them (payments.refunded carries no customer) from the orders read
// model (public.orders), in one query: the notifier reads no saga
// participant's tables. An order the read model does not hold yet is
// errNoOrder (transient: the projection trails the events, and events may
// overtake each other).
func complete(ctx context.Context, q pgx.Tx, facts []*orderFacts) error {
	var ids []string
	for _, d := range facts {
		if d.CustomerID == "" || d.Currency == "" {
			ids = append(ids, d.OrderID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT order_id::text, customer_id, currency, total FROM public.orders WHERE order_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return fmt.Errorf("look up %d orders: %w", len(ids), err)
	}
	type known struct {
		customer, currency string
		total              int64
	}
	found := make(map[string]known, len(ids))
	for rows.Next() {
		var id string
		var k known
		if err := rows.Scan(&id, &k.customer, &k.currency, &k.total); err != nil {
			rows.Close()
			return fmt.Errorf("look up orders: %w", err)
		}
		found[id] = k
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up orders: %w", err)
	}
	for _, d := range facts {
		if d.CustomerID != "" && d.Currency != "" {
			continue
		}
		k, ok := found[d.OrderID]
		if !ok {
			return fmt.Errorf("order %s: %w", d.OrderID, errNoOrder)
		}
		d.CustomerID = firstNonEmpty(d.CustomerID, k.customer)
		d.Currency = firstNonEmpty(d.Currency, k.currency)
		if d.Total == 0 {
			d.Total = k.total
		}
	}
	return nil
}

// reasonText words a cancellation reason code for a user.
func reasonText(code string) string {
	switch code {
	case "":
		return ""
	case "out_of_stock":
		return "out of stock"
	case "unknown_sku":
		return "an item is no longer sold"
	case "payment_declined", "declined":
		return "payment declined"
	case "timeout", "deadline":
		return "it could not be confirmed in time"
	case "customer", "customer_cancelled", "by_customer":
		return "at your request"
	}
	return strings.ReplaceAll(code, "_", " ")
}

// money prints minor units as "12.50 EUR".
func money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency)
}

// short is the first block of a UUID, enough for a person to recognise.
func short(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstNonZero(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}
