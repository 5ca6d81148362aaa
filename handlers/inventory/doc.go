// Package inventory is the inventory participant of the order saga: one
// file per message it handles — the stock (reserve on orders.placed,
// commit on orders.confirmed, release or return on orders.cancelled,
// restock) and the catalog it is the source of (product and category
// upserts, product images). It owns the tables inventory.inventory,
// inventory.stock_orders, inventory.reservations, inventory.restocks, inventory.products and
// inventory.categories, and reads no other participant's tables: an order's
// lines and status come on the orders events it handles.
//
// The decisions are pure functions with table tests (decideCommit,
// planCommits, decideRelease, planReleases, decideReturn, planReturns,
// shortage); the SQL around them (stock.go) only locks, loads and stores.
package inventory
