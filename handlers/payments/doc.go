// Package payments is the payments participant of the order saga: one
// file per message it handles (authorize on inventory.reserved, capture
// on orders.confirmed, void or refund on orders.cancelled) and the fraud
// check in front of the provider's authorization. It owns the tables
// payments.payments and payments.payment_ops, and reads no other participant's
// tables: the amount, currency and customer of a payment come on
// inventory.reserved, and what it knows of the order's fate
// (order_confirmed, order_cancelled) it records from the orders events.
//
// The decisions are pure functions with table tests (decideAuthorize,
// decideCapture, decideVoid, decideRefund and their batch plans); the
// SQL around them only locks, loads and stores (payment_state.go).
package payments
