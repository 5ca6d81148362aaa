package notifier

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
)

// Renderer makes the notification of one domain event. ok=false means the
// event concerns no user. It may read the write model through q.
type Renderer func(ctx context.Context, q Querier, ev *event.Event) (msg Message, ok bool, err error)

// Querier is the part of a transaction a renderer may use.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
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

func defaultRenderers() map[string]Renderer {
	return map[string]Renderer{
		typeOrderPlaced: orderMessage("order.placed", func(d orderFacts) (string, string) {
			return "We received your order", fmt.Sprintf("Order %s for %s is being processed.", short(d.OrderID), money(d.Total, d.Currency))
		}),
		typeOrderConfirmed: orderMessage("order.confirmed", func(d orderFacts) (string, string) {
			return "Your order is confirmed", fmt.Sprintf("Order %s is confirmed and will be shipped.", short(d.OrderID))
		}),
		typeOrderCancelled: orderMessage("order.cancelled", func(d orderFacts) (string, string) {
			title := "Your order was cancelled"
			if r := reasonText(d.Reason); r != "" {
				title += ": " + r
			}
			return title, fmt.Sprintf("Order %s was cancelled. Nothing was charged, or the charge is refunded.", short(d.OrderID))
		}),
		typePaymentRefunded: orderMessage("payment.refunded", func(d orderFacts) (string, string) {
			return "Refund issued", fmt.Sprintf("%s for order %s is on its way back to you.", money(firstNonZero(d.Amount, d.Total), d.Currency), short(d.OrderID))
		}),
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

// orderMessage renders an event about an order for the order's customer,
// looking the customer (and currency) up in the write model when the event
// does not carry them.
func orderMessage(kind string, text func(orderFacts) (title, body string)) Renderer {
	return func(ctx context.Context, q Querier, ev *event.Event) (Message, bool, error) {
		var d orderFacts
		if err := events.DecodeData(ev, &d); err != nil {
			return Message{}, false, runner.Invalid(err)
		}
		if d.OrderID == "" {
			d.OrderID = ev.Subject()
		}
		if d.OrderID == "" {
			return Message{}, false, runner.Invalid(fmt.Errorf("%s %s: no order id", ev.Type(), ev.ID()))
		}
		if d.CustomerID == "" || d.Currency == "" {
			var customer, currency string
			var total int64
			err := q.QueryRow(ctx, `SELECT customer_id, currency, total FROM core.orders WHERE order_id::text = $1`, d.OrderID).
				Scan(&customer, &currency, &total)
			if errors.Is(err, pgx.ErrNoRows) {
				return Message{}, false, fmt.Errorf("%s %s: order %s: %w", ev.Type(), ev.ID(), d.OrderID, errNoOrder)
			}
			if err != nil {
				return Message{}, false, fmt.Errorf("%s %s: look up order %s: %w", ev.Type(), ev.ID(), d.OrderID, err)
			}
			d.CustomerID = firstNonEmpty(d.CustomerID, customer)
			d.Currency = firstNonEmpty(d.Currency, currency)
			if d.Total == 0 {
				d.Total = total
			}
		}
		title, body := text(d)
		return Message{UserID: d.CustomerID, OrderID: d.OrderID, Kind: kind, Title: title, Body: body}, true, nil
	}
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
