package events

// dataOf maps every catalogued type to the Go struct that carries its
// data. It is the one place that pairs a type with its struct: the schemas
// package's tests check each struct against its JSON Schema (same fields
// both ways, required exactly when not omitempty, a value of either is
// valid for the other), so adding a type without a struct, or changing a
// schema without its struct, fails a test.
var dataOf = map[string]func() any{
	PlaceOrderV1:     func() any { return new(PlaceOrder) },
	PlaceOrderV2:     func() any { return new(PlaceOrderV2Data) },
	OrderPlacedV1:    func() any { return new(OrderPlaced) },
	CancelOrderV1:    func() any { return new(CancelOrder) },
	OrderConfirmedV1: func() any { return new(OrderConfirmed) },
	OrderCancelledV1: func() any { return new(OrderCancelled) },
	OrderRejectedV1:  func() any { return new(OrderRejected) },

	RestockV1:        func() any { return new(Restock) },
	RestockedV1:      func() any { return new(Restocked) },
	StockReservedV1:  func() any { return new(StockReserved) },
	StockRejectedV1:  func() any { return new(StockRejected) },
	StockReleasedV1:  func() any { return new(StockMovement) },
	StockCommittedV1: func() any { return new(StockMovement) },
	StockReturnedV1:  func() any { return new(StockMovement) },

	PaymentAuthorizedV1: func() any { return new(PaymentAuthorized) },
	PaymentDeclinedV1:   func() any { return new(PaymentDeclined) },
	PaymentCapturedV1:   func() any { return new(PaymentSettled) },
	PaymentVoidedV1:     func() any { return new(PaymentSettled) },
	PaymentRefundedV1:   func() any { return new(PaymentSettled) },

	UpsertProductV1:     func() any { return new(Product) },
	ProductUpsertedV1:   func() any { return new(Product) },
	UpsertCategoryV1:    func() any { return new(Category) },
	CategoryUpsertedV1:  func() any { return new(Category) },
	AddProductImageV1:   func() any { return new(ProductImage) },
	ProductImageAddedV1: func() any { return new(ProductImage) },

	UpsertCustomerV1:   func() any { return new(Customer) },
	CustomerUpsertedV1: func() any { return new(Customer) },

	NotificationV1: func() any { return new(NotificationData) },
}

// NewData returns a pointer to a new zero value of the struct that carries
// ceType's data, or false for a type the catalogue does not know.
func NewData(ceType string) (any, bool) {
	f, ok := dataOf[ceType]
	if !ok {
		return nil, false
	}
	return f(), true
}
