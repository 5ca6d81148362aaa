package projections_test

import (
	"time"

	"github.com/tradewind/tradewind/events"
)

// Helpers that publish the saga's events as the handlers would.

func (e *env) placed(order, customer string, lines ...events.OrderLine) uint64 {
	var total int64
	for _, l := range lines {
		total += l.Quantity * l.UnitPrice
	}
	at := e.at.Add(time.Minute)
	return e.publish(events.OrderPlacedV1, order, events.OrderPlaced{
		OrderID: order, CustomerID: customer, Lines: lines, Currency: "EUR", Total: total,
		PlacedAt: at.Format(time.RFC3339Nano), Deadline: at.Add(15 * time.Minute).Format(time.RFC3339Nano),
	})
}

func stockLines(lines []events.OrderLine) []events.StockLine {
	out := make([]events.StockLine, len(lines))
	for i, l := range lines {
		out[i] = events.StockLine{SKU: l.SKU, Quantity: l.Quantity}
	}
	return out
}

func total(lines []events.OrderLine) int64 {
	var t int64
	for _, l := range lines {
		t += l.Quantity * l.UnitPrice
	}
	return t
}

// confirmedOrder runs a happy saga: placed, reserved, authorized,
// confirmed, committed, captured. It returns the last position.
func (e *env) confirmedOrder(order, customer string, lines ...events.OrderLine) uint64 {
	e.placed(order, customer, lines...)
	e.publish(events.StockReservedV1, order, events.StockReserved{OrderID: order, CustomerID: customer, Currency: "EUR", Total: total(lines), Lines: stockLines(lines)})
	e.publish(events.PaymentAuthorizedV1, order, events.PaymentAuthorized{OrderID: order, AuthorizationID: "auth-" + order[len(order)-4:], Amount: total(lines), Currency: "EUR"})
	at := e.at.Add(time.Minute)
	e.publish(events.OrderConfirmedV1, order, events.OrderConfirmed{OrderID: order, CustomerID: customer, Currency: "EUR", Total: total(lines), AuthorizationID: "auth-" + order[len(order)-4:], ConfirmedAt: at.Format(time.RFC3339Nano)})
	e.publish(events.StockCommittedV1, order, events.StockMovement{OrderID: order, Lines: stockLines(lines)})
	return e.publish(events.PaymentCapturedV1, order, events.PaymentSettled{OrderID: order, AuthorizationID: "auth-" + order[len(order)-4:], OperationID: "cap-1", Amount: total(lines), Currency: "EUR"})
}

// rejectedOrder: placed, stock rejected, cancelled (out of stock).
func (e *env) rejectedOrder(order, customer string, lines ...events.OrderLine) uint64 {
	e.placed(order, customer, lines...)
	e.publish(events.StockRejectedV1, order, events.StockRejected{OrderID: order, Reason: events.RejectOutOfStock, SKU: lines[0].SKU, Requested: lines[0].Quantity})
	return e.cancelled(order, customer, lines, events.CancelOutOfStock, events.StatusPending)
}

func (e *env) cancelled(order, customer string, lines []events.OrderLine, reason, prev string) uint64 {
	at := e.at.Add(time.Minute)
	return e.publish(events.OrderCancelledV1, order, events.OrderCancelled{OrderID: order, CustomerID: customer, Currency: "EUR",
		Total: total(lines), Reason: reason, PreviousStatus: prev, CancelledAt: at.Format(time.RFC3339Nano)})
}

func line(sku string, qty, price int64) events.OrderLine {
	return events.OrderLine{SKU: sku, Quantity: qty, UnitPrice: price}
}
