package events

// Inventory context: stock per SKU and reservations per order.
//
// Per SKU, inventory keeps on_hand (units in the warehouse) and reserved
// (units promised to pending orders), with 0 <= reserved <= on_hand. A
// reservation is all-or-nothing per order. The aggregate id (subject) of
// restocked is the SKU; of every other inventory event the order id.
var (
	// RestockV1 is the command that adds units of a SKU to on_hand.
	RestockV1 = register("inventory", "restock", 1, Command)
	// RestockedV1 records units added to a SKU's stock.
	RestockedV1 = register("inventory", "restocked", 1, Event)
	// StockReservedV1 records that every line of an order is reserved
	// (reserved increased; on_hand unchanged).
	StockReservedV1 = register("inventory", "reserved", 1, Event)
	// StockRejectedV1 records that an order could not be reserved; nothing
	// of it was reserved.
	StockRejectedV1 = register("inventory", "rejected", 1, Event)
	// StockReleasedV1 records that an order's reservation was given back
	// (reserved decreased; on_hand unchanged): the order was cancelled
	// before confirmation.
	StockReleasedV1 = register("inventory", "released", 1, Event)
	// StockCommittedV1 records that a confirmed order's reservation left
	// the warehouse (on_hand and reserved both decreased).
	StockCommittedV1 = register("inventory", "committed", 1, Event)
	// StockReturnedV1 records that a confirmed order cancelled afterwards
	// put its units back (on_hand increased).
	StockReturnedV1 = register("inventory", "returned", 1, Event)
)

// Rejection reasons of StockRejectedV1.
const (
	RejectOutOfStock = "out_of_stock"
	RejectUnknownSKU = "unknown_sku"
)

// Restock is the data of RestockV1.
type Restock struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Restocked is the data of RestockedV1.
type Restocked struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	OnHand   int64  `json:"on_hand"` // after the restock
}

// StockLine is one SKU of a reservation (an order's lines summed by SKU).
type StockLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// StockReserved is the data of StockReservedV1. It carries what the
// payment participant needs to authorize: the customer, currency and
// total of the order.
type StockReserved struct {
	OrderID    string      `json:"order_id"`
	CustomerID string      `json:"customer_id"`
	Currency   string      `json:"currency"`
	Total      int64       `json:"total"`
	Lines      []StockLine `json:"lines"`
}

// StockRejected is the data of StockRejectedV1: Reason is RejectOutOfStock
// or RejectUnknownSKU, SKU the first line at fault (in SKU order),
// Requested and Available its quantities (Available is on_hand minus
// reserved, 0 for an unknown SKU).
type StockRejected struct {
	OrderID   string `json:"order_id"`
	Reason    string `json:"reason"`
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// StockMovement is the data of StockReleasedV1, StockCommittedV1 and
// StockReturnedV1: the order and the quantities that moved.
type StockMovement struct {
	OrderID string      `json:"order_id"`
	Lines   []StockLine `json:"lines"`
}
