package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// Inventory's per-order states (inventory.stock_orders.status) the handlers
// branch on; the migration documents all of them.
const (
	stockReserved  = "reserved"
	stockReleased  = "released"
	stockCommitted = "committed"
	stockReturned  = "returned"
)

// stockByOrder sums an order's lines by SKU, sorted by SKU: the order in
// which inventory rows are locked, so that two transactions touching the
// same SKUs always lock them in the same order and cannot deadlock.
func stockByOrder(lines []events.OrderLine) []events.StockLine {
	sum := map[string]int64{}
	for _, l := range lines {
		sum[l.SKU] += l.Quantity
	}
	out := make([]events.StockLine, 0, len(sum))
	for sku, q := range sum {
		out = append(out, events.StockLine{SKU: sku, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

func skusAndQuantities(lines []events.StockLine) ([]string, []int64) {
	skus := make([]string, len(lines))
	qs := make([]int64, len(lines))
	for i, l := range lines {
		skus[i], qs[i] = l.SKU, l.Quantity
	}
	return skus, qs
}

// stockRow is one locked inventory.inventory row.
type stockRow struct{ onHand, reserved int64 }

// lockStock locks the inventory rows of skus in SKU order and returns
// those that exist.
func lockStock(ctx context.Context, tx pgx.Tx, skus []string) (map[string]stockRow, error) {
	rows, err := tx.Query(ctx, `
		SELECT sku, on_hand, reserved FROM inventory.inventory
		WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	defer rows.Close()
	out := map[string]stockRow{}
	for rows.Next() {
		var sku string
		var r stockRow
		if err := rows.Scan(&sku, &r.onHand, &r.reserved); err != nil {
			return nil, fmt.Errorf("lock stock: %w", err)
		}
		out[sku] = r
	}
	return out, rows.Err()
}

// stockOrderStatus locks inventory's row of an order; "" when there is none.
func stockOrderStatus(ctx context.Context, tx pgx.Tx, orderID string) (string, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM inventory.stock_orders WHERE order_id = $1 FOR UPDATE`, orderID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("stock of order %s: %w", orderID, err)
	}
	return status, nil
}

// reservedLines returns an order's reservation lines, sorted by SKU.
func reservedLines(ctx context.Context, tx pgx.Tx, orderID string) ([]events.StockLine, error) {
	rows, err := tx.Query(ctx, `SELECT sku, quantity FROM inventory.reservations WHERE order_id = $1 ORDER BY sku`, orderID)
	if err != nil {
		return nil, fmt.Errorf("reservation of order %s: %w", orderID, err)
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (events.StockLine, error) {
		var l events.StockLine
		err := r.Scan(&l.SKU, &l.Quantity)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("reservation of order %s: %w", orderID, err)
	}
	return lines, nil
}

// moveStock applies one movement of an order's reservation: it locks the
// SKUs in order, adds onHandSign×q to on_hand and reservedSign×q to
// reserved for every line, and sets the order's and its lines' status.
// The table's CHECKs turn any would-be negative stock into an error.
func moveStock(ctx context.Context, tx pgx.Tx, orderID string, lines []events.StockLine, onHandSign, reservedSign int64, status string) error {
	return moveStocks(ctx, tx, []string{orderID}, map[string][]events.StockLine{orderID: lines}, onHandSign, reservedSign, status)
}

// stockOrderStatuses locks inventory's rows of orderIDs (canonical, in
// that order) and records their statuses in status.
func stockOrderStatuses(ctx context.Context, tx pgx.Tx, orderIDs []string, status map[string]string) error {
	if len(orderIDs) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT order_id::text, status FROM inventory.stock_orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE`, orderIDs)
	if err != nil {
		return fmt.Errorf("stock of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return fmt.Errorf("stock of %d orders: %w", len(orderIDs), err)
		}
		status[id] = st
	}
	return rows.Err()
}

// reservedLinesOf is reservedLines for a batch: the reservation lines of
// the orders of keys (canonical ids) in one query, by canonical id, each
// order's sorted by SKU as reservedLines sorts them (the database's
// collation). Every key has an entry, empty when the order has no lines.
func reservedLinesOf(ctx context.Context, tx pgx.Tx, keys []string) (map[string][]events.StockLine, error) {
	out := make(map[string][]events.StockLine, len(keys))
	for _, k := range keys {
		out[k] = []events.StockLine{}
	}
	rows, err := tx.Query(ctx, `
		SELECT order_id::text, sku, quantity FROM inventory.reservations
		WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, keys)
	if err != nil {
		return nil, fmt.Errorf("reservations of %d orders: %w", len(keys), err)
	}
	var id string
	var l events.StockLine
	if _, err := pgx.ForEachRow(rows, []any{&id, &l.SKU, &l.Quantity}, func() error {
		out[id] = append(out[id], l)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reservations of %d orders: %w", len(keys), err)
	}
	return out, nil
}

// moveStocks is moveStock for a batch of distinct orders
// whose reservation lines are lines[order]: it locks the inventory rows of
// every SKU involved in one statement (SKU order), applies one aggregated
// change per SKU (the sum over the orders, times each sign), and sets the
// orders' and their lines' status, in four statements whatever the number
// of orders. Every order moves a SKU the same way (the signs), so the
// states after each order in turn lie between the start and the sum: the
// CHECKs hold for the sum exactly when they hold order by order, and a
// violation fails the batch (the fallback then finds the order).
func moveStocks(ctx context.Context, tx pgx.Tx, orders []string, lines map[string][]events.StockLine, onHandSign, reservedSign int64, status string) error {
	sum := map[string]int64{}
	for _, o := range orders {
		for _, l := range lines[o] {
			sum[l.SKU] += l.Quantity
		}
	}
	skus := make([]string, 0, len(sum))
	for sku := range sum {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	qs := make([]int64, len(skus))
	for i, sku := range skus {
		qs[i] = sum[sku]
	}
	if len(skus) > 0 {
		if _, err := lockStock(ctx, tx, skus); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE inventory.inventory i SET on_hand = i.on_hand + $2 * t.q, reserved = i.reserved + $3 * t.q, updated_at = now()
			FROM unnest($1::text[], $4::bigint[]) AS t(sku, q)
			WHERE i.sku = t.sku`, skus, onHandSign, reservedSign, qs); err != nil {
			return fmt.Errorf("move stock of %d orders to %s: %w", len(orders), status, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE inventory.reservations SET status = $2, updated_at = now() WHERE order_id = ANY($1::uuid[])`, orders, status); err != nil {
		return fmt.Errorf("move stock of %d orders to %s: %w", len(orders), status, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE inventory.stock_orders SET status = $2, updated_at = now() WHERE order_id = ANY($1::uuid[])`, orders, status); err != nil {
		return fmt.Errorf("move stock of %d orders to %s: %w", len(orders), status, err)
	}
	return nil
}

// tombstoneStockOrders is release_stock's claim for a batch: it inserts a
// 'cancelled' row for each order of keys (distinct canonical ids, sorted
// so that the new rows' locks are taken in a stable order) that inventory
// has no row of, in one statement, and returns the set of those it
// inserted. The others' rows existed and are not locked by it.
func tombstoneStockOrders(ctx context.Context, tx pgx.Tx, keys []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `
		INSERT INTO inventory.stock_orders (order_id, status) SELECT o::uuid, 'cancelled' FROM unnest($1::text[]) AS u(o)
		ON CONFLICT DO NOTHING RETURNING order_id::text`, keys)
	if err != nil {
		return nil, fmt.Errorf("tombstone %d orders: %w", len(keys), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("tombstone %d orders: %w", len(keys), err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// stockOrderKeys decodes a batch of orders.cancelled: the events as
// spelled and each one's canonical order id (see handlers.OrderKey).
func stockOrderKeys(step string, msgs []runner.Msg) ([]events.OrderCancelled, []string, error) {
	cs := make([]events.OrderCancelled, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &cs[i]); err != nil {
			return nil, nil, fmt.Errorf("%s: message %s: %w", step, m.Event.ID(), err)
		}
		k, err := handlers.OrderKey(cs[i].OrderID)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: message %s: %w", step, m.Event.ID(), err)
		}
		keys[i] = k
	}
	return cs, keys, nil
}
