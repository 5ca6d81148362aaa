package events

// Orders context: commands and events of the order aggregate.
var (
	// PlaceOrderV1 is the command a storefront sends to place an order.
	PlaceOrderV1 = register("orders", "place", 1, Command)
	// OrderPlacedV1 records that an order was accepted as pending.
	OrderPlacedV1 = register("orders", "placed", 1, Event)
)

// OrderLine is one line of an order. Prices are integer minor units
// (cents) so that no amount is ever a float.
type OrderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// PlaceOrder is the data of PlaceOrderV1.
type PlaceOrder struct {
	OrderID    string      `json:"order_id,omitempty"`
	CustomerID string      `json:"customer_id"`
	Lines      []OrderLine `json:"lines"`
	Currency   string      `json:"currency"`
}

// OrderPlaced is the data of OrderPlacedV1. ShippingAddress and PromoCode
// are PlaceOrderV2's, carried so that read models keep them without
// reading the orders participant's tables (absent when the command had
// none, and in events emitted before they existed).
type OrderPlaced struct {
	OrderID         string           `json:"order_id"`
	CustomerID      string           `json:"customer_id"`
	Lines           []OrderLine      `json:"lines"`
	Currency        string           `json:"currency"`
	Total           int64            `json:"total"`
	PlacedAt        string           `json:"placed_at"`
	Deadline        string           `json:"deadline"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
	PromoCode       string           `json:"promo_code,omitempty"`
}

// Orders context: the saga's outcome. An order goes pending → confirmed, or
// pending → cancelled, or confirmed → cancelled (a customer cancelling after
// confirmation); cancelled is final. The aggregate id (subject) of every
// orders event is the order id.
var (
	// CancelOrderV1 is the command a storefront sends when the customer
	// cancels an order.
	CancelOrderV1 = register("orders", "cancel", 1, Command)
	// OrderConfirmedV1 records that the order's stock is reserved and its
	// payment authorized before its deadline.
	OrderConfirmedV1 = register("orders", "confirmed", 1, Event)
	// OrderCancelledV1 records that the order was cancelled; the
	// participants compensate what they did for it.
	OrderCancelledV1 = register("orders", "cancelled", 1, Event)
	// OrderRejectedV1 records that the orders participant refused a place
	// command it cannot place (its total is below 1 minor unit): the order
	// is never pending, the saga never starts, nothing is reserved or
	// charged, and the order id stays taken. The gateway answers 422 for
	// what it can see before publishing; this is what only the handler
	// sees (commands published on NATS by producers).
	OrderRejectedV1 = register("orders", "rejected", 1, Event)
)

// Order statuses (orders.orders.status).
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
	// StatusRejected is final: the command was refused (OrderRejectedV1).
	StatusRejected = "rejected"
)

// Rejection reasons of OrderRejectedV1.
const (
	// RejectInvalidTotal: the lines add up to less than 1 minor unit,
	// which no payment can authorize.
	RejectInvalidTotal = "invalid_total"
)

// Cancellation reasons of OrderCancelledV1. out_of_stock and unknown_sku
// are inventory's rejection reasons passed on.
const (
	CancelOutOfStock      = RejectOutOfStock
	CancelUnknownSKU      = RejectUnknownSKU
	CancelPaymentDeclined = "payment_declined"
	CancelCustomer        = "customer"
	CancelTimeout         = "timeout"
)

// CancelOrder is the data of CancelOrderV1.
type CancelOrder struct {
	OrderID string `json:"order_id"`
}

// OrderConfirmed is the data of OrderConfirmedV1.
type OrderConfirmed struct {
	OrderID         string `json:"order_id"`
	CustomerID      string `json:"customer_id"`
	Currency        string `json:"currency"`
	Total           int64  `json:"total"`
	AuthorizationID string `json:"authorization_id"`
	ConfirmedAt     string `json:"confirmed_at"`
	// PlacedAt is when the order was placed (optional: absent in events
	// emitted before it existed), so a consumer can time the saga.
	PlacedAt string `json:"placed_at,omitempty"`
}

// OrderCancelled is the data of OrderCancelledV1. PreviousStatus is
// pending or confirmed: a confirmed order's cancellation is compensated by
// a refund and a return, a pending one's by a void and a release.
type OrderCancelled struct {
	OrderID        string `json:"order_id"`
	CustomerID     string `json:"customer_id"`
	Currency       string `json:"currency"`
	Total          int64  `json:"total"`
	Reason         string `json:"reason"`
	PreviousStatus string `json:"previous_status"`
	CancelledAt    string `json:"cancelled_at"`
	// PlacedAt is when the order was placed (optional, see OrderConfirmed).
	PlacedAt string `json:"placed_at,omitempty"`
}

// OrderRejected is the data of OrderRejectedV1. Total is what the lines
// added up to.
type OrderRejected struct {
	OrderID    string      `json:"order_id"`
	CustomerID string      `json:"customer_id"`
	Lines      []OrderLine `json:"lines"`
	Currency   string      `json:"currency"`
	Total      int64       `json:"total"`
	Reason     string      `json:"reason"`
	Detail     string      `json:"detail"`
	RejectedAt string      `json:"rejected_at"`
}
