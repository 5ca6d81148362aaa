package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// Sales maintains public.sales_daily: per UTC day, category and currency,
// the orders, units and revenue of confirmed orders. Each line counts in
// the category its product had when the order was placed (products
// without a category count under ”); an order counts once per category
// it touches. A cancellation after confirmation subtracts the order on
// the day of the cancellation, so past days never change.
//
// It keeps its own state: public.sales_products (each SKU's category) and
// public.sales_order_lines (the lines of orders not yet settled, deleted
// when the order is cancelled). The views sales_daily_running,
// sales_category_pivot and category_revenue are defined over sales_daily.
type Sales struct{}

var _ projector.Projection = Sales{}

// Name implements projector.Projection.
func (Sales) Name() string { return "sales" }

// Tables implements projector.Projection.
func (Sales) Tables() []string {
	return []string{"sales_daily", "sales_products", "sales_order_lines"}
}

// Subjects implements projector.Projection.
func (Sales) Subjects() []string {
	return filters(events.ProductUpsertedV1, events.OrderPlacedV1, events.OrderConfirmedV1, events.OrderCancelledV1)
}

type salesLine struct {
	sku, category, currency string
	qty, price              int64
}

type salesOrder struct {
	lines     []salesLine
	confirmed bool
	stored    bool // lines are in the table
	deleted   bool
	confirm   bool // confirmed in this batch (stored rows to flag)
}

type dayKey struct {
	day                time.Time
	category, currency string
}

type dayDelta struct{ orders, units, revenue int64 }

// Apply implements projector.Projection: it loads the product categories
// and order lines the batch needs, folds in memory, then writes each
// table with one statement.
func (Sales) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	var skus []string
	var orderIDs [][16]byte
	for i := range b.Events {
		ev := &b.Events[i]
		switch ev.Type {
		case events.OrderPlacedV1:
			var p events.OrderPlaced
			if decode(ev, &p) == nil {
				for _, l := range p.Lines {
					skus = append(skus, l.SKU)
				}
			}
		}
		if id, err := orderID(ev.Subject); err == nil && ev.Type != events.ProductUpsertedV1 {
			orderIDs = append(orderIDs, id)
		}
	}
	category := map[string]string{}
	if err := loadPairs(ctx, tx, `SELECT sku, category_id FROM `+b.Table("sales_products")+` WHERE sku = ANY($1)`, skus, category); err != nil {
		return fmt.Errorf("load product categories: %w", err)
	}
	orders := map[[16]byte]*salesOrder{}
	if len(orderIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT order_id, sku, category_id, currency, quantity, unit_price, confirmed
			FROM `+b.Table("sales_order_lines")+` WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_no`, orderIDs)
		if err != nil {
			return fmt.Errorf("load order lines: %w", err)
		}
		for rows.Next() {
			var id [16]byte
			var l salesLine
			var confirmed bool
			if err := rows.Scan(&id, &l.sku, &l.category, &l.currency, &l.qty, &l.price, &confirmed); err != nil {
				rows.Close()
				return fmt.Errorf("load order lines: %w", err)
			}
			o := orders[id]
			if o == nil {
				o = &salesOrder{stored: true, confirmed: confirmed}
				orders[id] = o
			}
			o.lines = append(o.lines, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load order lines: %w", err)
		}
	}
	products := map[string]string{}
	var productOrder []string
	deltas := map[dayKey]*dayDelta{}
	var dayOrder []dayKey
	add := func(o *salesOrder, at time.Time, sign int64) {
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		seen := map[string]bool{}
		for _, l := range o.lines {
			k := dayKey{day, l.category, l.currency}
			d := deltas[k]
			if d == nil {
				d = &dayDelta{}
				deltas[k] = d
				dayOrder = append(dayOrder, k)
			}
			if !seen[l.category] {
				seen[l.category] = true
				d.orders += sign
			}
			d.units += sign * l.qty
			d.revenue += sign * l.qty * l.price
		}
	}
	var placedOrder [][16]byte
	for i := range b.Events {
		ev := &b.Events[i]
		switch ev.Type {
		case events.ProductUpsertedV1:
			var p events.Product
			if err := decode(ev, &p); err != nil {
				b.Reject(ev, err)
				continue
			}
			if _, ok := products[p.SKU]; !ok {
				productOrder = append(productOrder, p.SKU)
			}
			products[p.SKU], category[p.SKU] = p.CategoryID, p.CategoryID
		case events.OrderPlacedV1:
			var p events.OrderPlaced
			id, ok := orderData(b, ev, &p)
			if !ok {
				continue
			}
			if orders[id] != nil {
				continue // placed twice: the first wins
			}
			o := &salesOrder{}
			for _, l := range p.Lines {
				o.lines = append(o.lines, salesLine{sku: l.SKU, category: category[l.SKU], currency: p.Currency, qty: l.Quantity, price: l.UnitPrice})
			}
			orders[id] = o
			placedOrder = append(placedOrder, id)
		case events.OrderConfirmedV1:
			var c events.OrderConfirmed
			id, ok := orderData(b, ev, &c)
			if !ok {
				continue
			}
			o := orders[id]
			if o == nil || o.deleted || o.confirmed {
				continue // unknown, cancelled or confirmed already
			}
			at, err := parseTime(c.ConfirmedAt, ev.Time)
			if err != nil {
				b.Reject(ev, err)
				continue
			}
			o.confirmed, o.confirm = true, true
			add(o, at, 1)
		case events.OrderCancelledV1:
			var c events.OrderCancelled
			id, ok := orderData(b, ev, &c)
			if !ok {
				continue
			}
			o := orders[id]
			if o == nil || o.deleted {
				continue
			}
			if o.confirmed {
				at, err := parseTime(c.CancelledAt, ev.Time)
				if err != nil {
					b.Reject(ev, err)
					continue
				}
				add(o, at, -1)
			}
			o.deleted = true
		}
	}
	return writeSales(ctx, tx, b, products, productOrder, orders, placedOrder, deltas, dayOrder)
}

func writeSales(ctx context.Context, tx pgx.Tx, b *projector.Batch, products map[string]string, productOrder []string,
	orders map[[16]byte]*salesOrder, placedOrder [][16]byte, deltas map[dayKey]*dayDelta, dayOrder []dayKey) error {
	if len(productOrder) > 0 {
		cats := make([]string, len(productOrder))
		for i, s := range productOrder {
			cats[i] = products[s]
		}
		if err := b.Upsert(ctx, tx, "sales_products", []string{"sku text", "category_id text"}, []string{"sku"}, "", productOrder, cats); err != nil {
			return err
		}
	}
	var del, confirm [][16]byte
	for id, o := range orders {
		switch {
		case o.stored && o.deleted:
			del = append(del, id)
		case o.stored && o.confirm:
			confirm = append(confirm, id)
		}
	}
	if len(del) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM `+b.Table("sales_order_lines")+` WHERE order_id = ANY($1::uuid[])`, del); err != nil {
			return fmt.Errorf("delete settled order lines: %w", err)
		}
	}
	if len(confirm) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE `+b.Table("sales_order_lines")+` SET confirmed = true WHERE order_id = ANY($1::uuid[])`, confirm); err != nil {
			return fmt.Errorf("flag confirmed order lines: %w", err)
		}
	}
	var lines [][]any
	for _, id := range placedOrder {
		o := orders[id]
		if o.deleted {
			continue
		}
		for i, l := range o.lines {
			lines = append(lines, []any{id, int32(i + 1), l.sku, l.category, l.currency, l.qty, l.price, o.confirmed})
		}
	}
	if err := b.Copy(ctx, tx, "sales_order_lines", []string{"order_id", "line_no", "sku", "category_id", "currency",
		"quantity", "unit_price", "confirmed"}, lines); err != nil {
		return err
	}
	if n := len(dayOrder); n > 0 {
		days, cats, curs := make([]time.Time, n), make([]string, n), make([]string, n)
		ords, units, revs := make([]int64, n), make([]int64, n), make([]int64, n)
		for i, k := range dayOrder {
			d := deltas[k]
			days[i], cats[i], curs[i], ords[i], units[i], revs[i] = k.day, k.category, k.currency, d.orders, d.units, d.revenue
		}
		if err := b.Upsert(ctx, tx, "sales_daily",
			[]string{"day date", "category_id text", "currency text", "orders bigint", "units bigint", "revenue bigint"},
			[]string{"day", "category_id", "currency"},
			`orders = t.orders + EXCLUDED.orders, units = t.units + EXCLUDED.units, revenue = t.revenue + EXCLUDED.revenue`,
			days, cats, curs, ords, units, revs); err != nil {
			return err
		}
	}
	return nil
}

// loadPairs reads (key, value) text pairs into m.
func loadPairs(ctx context.Context, tx pgx.Tx, sql string, keys []string, m map[string]string) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, sql, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		m[k] = v
	}
	return rows.Err()
}

// orderData reads an order event's id (its subject) and data; a malformed
// one is rejected on the batch and ok is false.
func orderData(b *projector.Batch, ev *projector.Event, v any) (id [16]byte, ok bool) {
	id, err := orderID(ev.Subject)
	if err == nil {
		err = decode(ev, v)
	}
	if err != nil {
		b.Reject(ev, err)
		return id, false
	}
	return id, true
}
