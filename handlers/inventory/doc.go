// Package inventory is the inventory participant of the order saga: one
// file per message it handles — the stock (reserve on orders.placed,
// commit on orders.confirmed, release or return on orders.cancelled,
// restock) and the catalog it is the source of (product and category
// upserts, product images). It owns the tables core.inventory,
// core.stock_orders, core.reservations, core.restocks, core.products and
// core.categories, and reads no other participant's tables: an order's
// lines and status come on the orders events it handles.
//
// The decisions are pure functions with table tests (decideCommit,
// planCommits, decideRelease, planReleases, decideReturn, planReturns,
// shortage); the SQL around them (stock.go) only locks, loads and stores.
package inventory
