package events

// Payments context: the order's payment at the external provider. The
// aggregate id (subject) of every payment event is the order id; amounts
// are integer minor units of Currency. An order has at most one
// authorization (the provider's idempotency key is the order id).
var (
	// PaymentAuthorizedV1 records that the provider authorized the order's total.
	PaymentAuthorizedV1 = register("payments", "authorized", 1, Event)
	// PaymentDeclinedV1 records that the provider declined the authorization.
	PaymentDeclinedV1 = register("payments", "declined", 1, Event)
	// PaymentCapturedV1 records that a confirmed order's authorization was captured.
	PaymentCapturedV1 = register("payments", "captured", 1, Event)
	// PaymentVoidedV1 records that an authorization was released without
	// charging (the order was cancelled before capture).
	PaymentVoidedV1 = register("payments", "voided", 1, Event)
	// PaymentRefundedV1 records that a captured amount was paid back (the
	// order was cancelled after confirmation).
	PaymentRefundedV1 = register("payments", "refunded", 1, Event)
)

// PaymentAuthorized is the data of PaymentAuthorizedV1.
type PaymentAuthorized struct {
	OrderID         string `json:"order_id"`
	AuthorizationID string `json:"authorization_id"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}

// PaymentDeclined is the data of PaymentDeclinedV1; Code is the
// provider's decline code (e.g. insufficient_funds, card_declined).
type PaymentDeclined struct {
	OrderID  string `json:"order_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Code     string `json:"code"`
}

// PaymentSettled is the data of PaymentCapturedV1, PaymentVoidedV1 and
// PaymentRefundedV1: OperationID is the provider's id of the capture,
// void or refund.
type PaymentSettled struct {
	OrderID         string `json:"order_id"`
	AuthorizationID string `json:"authorization_id"`
	OperationID     string `json:"operation_id"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}
