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

// OrderPlaced is the data of OrderPlacedV1.
type OrderPlaced struct {
	OrderID    string      `json:"order_id"`
	CustomerID string      `json:"customer_id"`
	Lines      []OrderLine `json:"lines"`
	Currency   string      `json:"currency"`
	Total      int64       `json:"total"`
	PlacedAt   string      `json:"placed_at"`
	Deadline   string      `json:"deadline"`
}
