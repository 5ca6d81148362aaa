// Package sagas holds the order saga's definition as data: each step says
// which participant reacts to what, what it does, what it emits and how it
// is compensated. The table is the documentation (rendered into
// sagas/README.md) and is checked by a test against the reactions the
// roles actually wire (internal/app.Reactions), so it cannot drift from
// the code.
package sagas

import (
	"fmt"
	"strings"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// Step is one reaction of the saga.
type Step struct {
	Name         string   // the reaction's step name (handlers.Reaction.Step)
	Participant  string   // handlers.Orders, Inventory or Payments
	Trigger      string   // CloudEvent type, or handlers.Deadline
	Effect       string   // what the participant does, in its own tables
	Emits        []string // CloudEvent types it may emit
	Compensation string   // how the effect is undone when the order is cancelled ("" if nothing to undo)
}

// Order is the order saga, in the order a happy order meets the steps,
// then the failure paths and compensations.
var Order = []Step{
	{"place_order", handlers.Orders, events.PlaceOrderV2,
		"records the order as pending with deadline = now + TRADEWIND_ORDER_DEADLINE; if the customer's cancel came first (a tombstone), cancels it at once (reason customer); a command whose lines total less than 1 is recorded as rejected (orders.rejected, reason invalid_total) and the saga never starts",
		[]string{events.OrderPlacedV1, events.OrderCancelledV1, events.OrderRejectedV1}, "timeout (or cancel_order, cancel_on_rejection, cancel_on_decline)"},
	{"reserve_stock", handlers.Inventory, events.OrderPlacedV1,
		"reserves every line or none (SKUs locked in order; stock never negative); rejects out_of_stock / unknown_sku; a tombstone (cancel seen first) reserves nothing",
		[]string{events.StockReservedV1, events.StockRejectedV1}, "release_stock"},
	{"authorize_payment", handlers.Payments, events.StockReservedV1,
		"authorizes the total at the provider (idempotency key = order id; breaker open → message waits); if the order is already cancelled, authorizes nothing and voids what an earlier attempt whose answer was lost left at the provider (`GET /v1/authorizations?order_id=`)",
		[]string{events.PaymentAuthorizedV1, events.PaymentDeclinedV1, events.PaymentVoidedV1}, "void_payment"},
	{"confirm_order", handlers.Orders, events.PaymentAuthorizedV1,
		"confirms a pending order within its deadline; past it, cancels with reason timeout; an order already cancelled stays so (payments voids)",
		[]string{events.OrderConfirmedV1, events.OrderCancelledV1}, "cancel_order after confirmation"},
	{"capture_payment", handlers.Payments, events.OrderConfirmedV1,
		"captures the authorization (key `capture:<order id>`); if the customer already cancelled the confirmed order, refunds right after",
		[]string{events.PaymentCapturedV1, events.PaymentRefundedV1}, "refund_payment"},
	{"commit_stock", handlers.Inventory, events.OrderConfirmedV1,
		"on_hand and reserved decrease by the reservation, unless it was released",
		[]string{events.StockCommittedV1}, "return_stock"},
	{"cancel_on_rejection", handlers.Orders, events.StockRejectedV1,
		"cancels the pending order with inventory's reason",
		[]string{events.OrderCancelledV1}, ""},
	{"cancel_on_decline", handlers.Orders, events.PaymentDeclinedV1,
		"cancels the pending order with reason payment_declined",
		[]string{events.OrderCancelledV1}, ""},
	{"cancel_order", handlers.Orders, events.CancelOrderV1,
		"the customer cancels a pending or confirmed order (reason customer); for an order not placed yet, leaves a tombstone (expires after 8 days) instead of failing",
		[]string{events.OrderCancelledV1}, ""},
	{"timeout", handlers.Orders, handlers.Deadline,
		"the deadline sweeper cancels pending orders past their deadline (reason timeout), FOR UPDATE SKIP LOCKED",
		[]string{events.OrderCancelledV1}, ""},
	{"release_stock", handlers.Inventory, events.OrderCancelledV1,
		"gives back a held reservation (also one made after the cancel: a late reservation); leaves a tombstone if the order is unknown yet",
		[]string{events.StockReleasedV1}, ""},
	{"return_stock", handlers.Inventory, events.OrderCancelledV1,
		"puts committed units back on hand (cancel after confirmation)",
		[]string{events.StockReturnedV1}, ""},
	{"void_payment", handlers.Payments, events.OrderCancelledV1,
		"voids the authorization of an order cancelled before confirmation (key `void:<order id>`), also a late one; marks the order cancelled so a late reservation is not authorized; never voids a confirmed order's (capture_payment refunds it)",
		[]string{events.PaymentVoidedV1}, ""},
	{"refund_payment", handlers.Payments, events.OrderCancelledV1,
		"refunds a captured payment once (key `refund:<order id>`); a capture not recorded yet is refunded by capture_payment",
		[]string{events.PaymentRefundedV1}, ""},
}

// Feeders are the reactions that feed the saga from producer services:
// not steps of an order, but what the steps depend on.
var Feeders = []Step{
	{"restock", handlers.Inventory, events.RestockV1,
		"adds to on_hand (creates the SKU); recorded in inventory.restocks", []string{events.RestockedV1}, ""},
	{"upsert_product", handlers.Inventory, events.UpsertProductV1,
		"records the product; makes its SKU known with no stock", []string{events.ProductUpsertedV1}, ""},
	{"upsert_category", handlers.Inventory, events.UpsertCategoryV1,
		"records the category (tree by parent_id)", []string{events.CategoryUpsertedV1}, ""},
	{"add_product_image", handlers.Inventory, events.AddProductImageV1,
		"an image the gateway stored for a known product", []string{events.ProductImageAddedV1}, ""},
	{"upsert_customer", handlers.Orders, events.UpsertCustomerV1,
		"records the customer's current attributes", []string{events.CustomerUpsertedV1}, ""},
}

// Short names a type without prefix and version: orders.placed.
func Short(ceType string) string {
	if ceType == handlers.Deadline {
		return "(deadline passed)"
	}
	s, ok := events.Lookup(ceType)
	if !ok {
		return ceType
	}
	return s.Context + "." + s.Name
}

// Markdown renders steps as a table.
func Markdown(steps []Step) string {
	var b strings.Builder
	b.WriteString("| step | participant | trigger | effect | emits | compensation |\n|---|---|---|---|---|---|\n")
	for _, s := range steps {
		emits := make([]string, len(s.Emits))
		for i, e := range s.Emits {
			emits[i] = "`" + Short(e) + "`"
		}
		comp := s.Compensation
		if comp == "" {
			comp = "–"
		}
		trigger := "`" + Short(s.Trigger) + "`"
		if s.Trigger == handlers.Deadline {
			trigger = Short(s.Trigger)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name, s.Participant, trigger, s.Effect, strings.Join(emits, ", "), comp)
	}
	return b.String()
}
