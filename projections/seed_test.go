package projections_test

import (
	"github.com/tradewind/tradewind/events"
)

// seed publishes a small, complete dataset: a category tree (a child
// before its parent), products, stock, customers with a change and a
// duplicate, and orders through every saga outcome. It returns the last
// position.
func (e *env) seed() uint64 {
	e.t.Helper()
	for _, c := range []events.Category{
		{CategoryID: "smartphones", ParentID: "phones", Name: "Smartphones"}, // before its parent
		{CategoryID: "electronics", Name: "Electronics"},
		{CategoryID: "phones", ParentID: "electronics", Name: "Phones"},
		{CategoryID: "books", Name: "Books"},
	} {
		e.publish(events.CategoryUpsertedV1, c.CategoryID, c)
	}
	for _, p := range []events.Product{
		{SKU: "PH-1", Name: "Aurora phone 12", Description: "A phone with a bright display", CategoryID: "smartphones", Price: 30000, Currency: "EUR"},
		{SKU: "CB-1", Name: "USB cable", Description: "Charges any phone", CategoryID: "electronics", Price: 1000, Currency: "EUR"},
		{SKU: "BK-1", Name: "Programming in Go", Description: "A book about concurrency", CategoryID: "books", Price: 4000, Currency: "EUR"},
	} {
		e.publish(events.ProductUpsertedV1, p.SKU, p)
	}
	e.publish(events.RestockedV1, "PH-1", events.Restocked{SKU: "PH-1", Quantity: 10, OnHand: 10})
	e.publish(events.RestockedV1, "CB-1", events.Restocked{SKU: "CB-1", Quantity: 100, OnHand: 100})
	e.publish(events.RestockedV1, "BK-1", events.Restocked{SKU: "BK-1", Quantity: 3, OnHand: 3})
	for _, c := range []events.Customer{
		{CustomerID: "c-1", Email: "ada@example.com", Name: "Ada Lovelace", Country: "GB"},
		{CustomerID: "c-2", Email: "alan@example.com", Name: "Alan Turing"},
		{CustomerID: "c-1", Email: "ada@example.com", Name: "Ada Lovelace", Country: "FR"}, // moved
		{CustomerID: "c-3", Email: "ADA@Example.com", Name: "ada  lovelace!"},              // a duplicate
		{CustomerID: "c-2", Email: "alan@example.com", Name: "Alan Turing"},                // no change
	} {
		e.publish(events.CustomerUpsertedV1, c.CustomerID, c)
	}
	e.confirmedOrder(uuidFor(1), "c-1", line("PH-1", 1, 30000), line("CB-1", 2, 1000))
	e.confirmedOrder(uuidFor(2), "c-2", line("BK-1", 2, 4000))
	e.rejectedOrder(uuidFor(3), "c-2", line("BK-1", 5, 4000))
	e.confirmedOrder(uuidFor(4), "c-1", line("CB-1", 1, 1000))
	// Order 4 is cancelled by the customer after confirmation: refund, return.
	e.cancelled(uuidFor(4), "c-1", []events.OrderLine{line("CB-1", 1, 1000)}, events.CancelCustomer, events.StatusConfirmed)
	e.publish(events.PaymentRefundedV1, uuidFor(4), events.PaymentSettled{OrderID: uuidFor(4), AuthorizationID: "auth-0004", OperationID: "ref-1", Amount: 1000, Currency: "EUR"})
	e.publish(events.StockReturnedV1, uuidFor(4), events.StockMovement{OrderID: uuidFor(4), Lines: []events.StockLine{{SKU: "CB-1", Quantity: 1}}})
	// Order 5 stays pending with stock reserved.
	e.placed(uuidFor(5), "c-3", line("PH-1", 2, 30000))
	return e.publish(events.StockReservedV1, uuidFor(5), events.StockReserved{OrderID: uuidFor(5), CustomerID: "c-3", Currency: "EUR", Total: 60000, Lines: []events.StockLine{{SKU: "PH-1", Quantity: 2}}})
}
