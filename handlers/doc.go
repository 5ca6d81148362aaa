// Package handlers holds the saga participants' reactions: one file per
// message a participant handles. Each handler is a pure reaction: given a
// message and the runner's transaction, it reads and writes its own tables
// and returns the events it emits. It never commits, publishes or acks; the
// runner (internal/runner) owns the transaction and the exactly-once
// protocol around it.
//
// # Why place_order trusts the prices of its command
//
// The orders participant prices nothing itself and reads no catalog: the
// catalog is inventory's (core.products) and a participant reads only its
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
// them on the order (core.orders.lines, orders.placed), and a later change
// of the catalog does not change the order. What only the handler can see
// — a total below 1, which no payment can authorize — it refuses with
// orders.rejected (reason invalid_total): the order is recorded as
// rejected, the saga never starts, nothing reaches payments or the DLQ.
package handlers
