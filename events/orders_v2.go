package events

// PlaceOrderV2 is version 2 of the place-order command: v1's fields plus a
// shipping address and a promotion code, both optional so that every v1
// command upcasts to a valid v2 one (see Upcast). Handlers read only this
// shape; v1 stays accepted on HTTP and NATS and stays readable in the
// stream forever.
var PlaceOrderV2 = register("orders", "place", 2, Command)

// ShippingAddress is where an order is delivered.
type ShippingAddress struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"` // ISO 3166-1 alpha-2
}

// PlaceOrderV2Data is the data of PlaceOrderV2. Its first four fields are
// PlaceOrder's, with the same JSON names. Handlers decode this struct, never
// PlaceOrder: decoding v2 into the v1 struct silently drops the address and
// the promotion code.
type PlaceOrderV2Data struct {
	OrderID         string           `json:"order_id,omitempty"`
	CustomerID      string           `json:"customer_id"`
	Lines           []OrderLine      `json:"lines"`
	Currency        string           `json:"currency"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
	PromoCode       string           `json:"promo_code,omitempty"`
}
