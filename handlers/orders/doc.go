// Package orders is the orders participant of the order saga: one file
// per message it handles (place, cancel, confirm, the cancellations on a
// failed step, customer upserts) and the deadline sweeper. It owns the
// tables orders.orders, orders.cancel_tombstones and orders.customers, and
// reads no other participant's tables: what it knows of stock and
// payments comes on the events it handles (inventory.rejected,
// payments.authorized, payments.declined).
//
// The decisions are pure functions with table tests (decideConfirm,
// planConfirms, decideCancelPending, planCancelPending, orderTotal); the
// SQL around them only locks, loads and stores (order_state.go).
//
// # Why place_order trusts the prices of its command
//
// The orders participant prices nothing itself and reads no catalog: the
// catalog is inventory's (inventory.products) and a participant reads only its
// own tables and the data carried on the message. The unit prices of an
// orders.place command are trusted because of who can put one on
// cmd.orders.place:
//
//   - the gateway (internal/api), which prices every line from the catalog
//     read model for any caller without the orders:price scope (every user
//     token; API keys without it) and answers 422 for an unknown SKU, a
//     currency other than the product's or a unit_price that differs from
//     the catalog's; only API keys granted orders:price send their own;
//   - producer services publishing on NATS directly, which are trusted
//     services with the same standing as orders:price (who may publish on
//     cmd.orders.place at all is NATS's permissions' business).
//
// So the prices on a command are the catalog's as the gateway read it when
// it accepted the order, or a trusted producer's; place_order records
// them on the order (orders.orders.lines, orders.placed), and a later change
// of the catalog does not change the order. What only the handler can see
// — a total below 1, which no payment can authorize — it refuses with
// orders.rejected (reason invalid_total): the order is recorded as
// rejected, the saga never starts, nothing reaches payments or the DLQ.
package orders
