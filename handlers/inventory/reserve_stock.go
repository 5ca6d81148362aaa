package inventory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// ReserveStock reacts to orders.placed: it reserves every line of the
// order or none. The SKUs are locked in SKU order; the first line (in SKU
// order) that is unknown or short rejects the whole order
// (inventory.rejected, nothing reserved); otherwise reserved grows by each
// line and inventory.reserved carries what payments needs to authorize.
// If inventory already saw the order cancelled (a tombstone left by
// release_stock), it reserves nothing.
type ReserveStock struct{}

// Reaction implements Reactor.
func (ReserveStock) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "reserve_stock", Participant: handlers.Inventory, Trigger: events.OrderPlacedV1,
		Emits: []string{events.StockReservedV1, events.StockRejectedV1}}
}

// Handle implements runner.Handler.
func (ReserveStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var p events.OrderPlaced
	if err := handlers.Decode(ev, &p); err != nil {
		return nil, err
	}
	// Claim the order: the insert serialises concurrent reactions to it.
	tag, err := tx.Exec(ctx, `INSERT INTO inventory.stock_orders (order_id, status) VALUES ($1, 'reserved') ON CONFLICT DO NOTHING`, p.OrderID)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	if tag.RowsAffected() == 0 {
		status, err := stockOrderStatus(ctx, tx, p.OrderID)
		if err != nil {
			return nil, err
		}
		return handlers.Ignore(ctx, tx, p.OrderID, "reserve_stock", handlers.Inventory, ev, "order is already "+status)
	}
	lines := stockByOrder(p.Lines)
	skus, qs := skusAndQuantities(lines)
	stock, err := lockStock(ctx, tx, skus)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	if rej, short := shortage(stock, lines); short {
		rej.OrderID = p.OrderID
		if _, err := tx.Exec(ctx, `UPDATE inventory.stock_orders SET status = 'rejected', reason = $2 WHERE order_id = $1`, p.OrderID, rej.Reason); err != nil {
			return nil, fmt.Errorf("reject order %s: %w", p.OrderID, err)
		}
		out, err := rejectStock(ctx, tx, ev, rej)
		if err != nil {
			return nil, err
		}
		return []*event.Event{out}, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE inventory.inventory i SET reserved = i.reserved + t.q, updated_at = now()
		FROM unnest($1::text[], $2::bigint[]) AS t(sku, q) WHERE i.sku = t.sku`, skus, qs); err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO inventory.reservations (order_id, sku, quantity, status)
		SELECT $1, t.sku, t.q, 'reserved' FROM unnest($2::text[], $3::bigint[]) AS t(sku, q)`, p.OrderID, skus, qs); err != nil {
		return nil, fmt.Errorf("reserve stock for order %s: %w", p.OrderID, err)
	}
	out, err := reserved(ctx, tx, ev, p, lines)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// shortage is the pure decision of reserve_stock: the first line (in SKU
// order) whose SKU is unknown or short of stock rejects the order, with
// what inventory.rejected says (but the order id); short is false when every line can be
// reserved.
func shortage(stock map[string]stockRow, lines []events.StockLine) (rej events.StockRejected, short bool) {
	for _, l := range lines {
		row, known := stock[l.SKU]
		reason, available := "", row.onHand-row.reserved
		switch {
		case !known:
			reason, available = events.RejectUnknownSKU, 0
		case available < l.Quantity:
			reason = events.RejectOutOfStock
		}
		if reason != "" {
			return events.StockRejected{Reason: reason, SKU: l.SKU, Requested: l.Quantity, Available: max(available, 0)}, true
		}
	}
	return events.StockRejected{}, false
}

// rejectStock logs the rejection of rej.OrderID and returns inventory.rejected.
func rejectStock(ctx context.Context, tx pgx.Tx, cause *event.Event, rej events.StockRejected) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: rej.OrderID, Step: "reserve_stock", Participant: handlers.Inventory, Cause: cause,
		Outcome: "rejected", Detail: rej.Reason + ": " + rej.SKU},
		events.StockRejectedV1, rej.OrderID, rej)
}

// reserved logs the reservation of p's lines and returns inventory.reserved.
func reserved(ctx context.Context, tx pgx.Tx, cause *event.Event, p events.OrderPlaced, lines []events.StockLine) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: p.OrderID, Step: "reserve_stock", Participant: handlers.Inventory, Cause: cause, Outcome: "reserved"},
		events.StockReservedV1, p.OrderID, events.StockReserved{
			OrderID: p.OrderID, CustomerID: p.CustomerID, Currency: p.Currency, Total: p.Total, Lines: lines,
		})
}

// HandleBatch implements BatchReactor. The batch's orders are claimed in
// one statement, the SKUs of all of them locked in one (in SKU order), the
// reservations decided in memory in stream order — each order sees the
// stock the earlier ones left, as it would one by one — and written with
// one statement per table: one update per SKU whatever the number of
// orders. A second orders.placed of one order is ignored, as when the
// order was claimed before.
func (ReserveStock) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	n := len(msgs)
	placed := make([]events.OrderPlaced, n)
	keys := make([]string, n) // canonical order ids
	first := map[string]int{}
	var claim []string
	for i, m := range msgs {
		if err := handlers.Decode(m.Event, &placed[i]); err != nil {
			return nil, err
		}
		u, err := uuid.Parse(placed[i].OrderID)
		if err != nil {
			return nil, runner.Invalid(fmt.Errorf("order id %q: %w", placed[i].OrderID, err))
		}
		keys[i] = u.String()
		if _, dup := first[keys[i]]; !dup {
			first[keys[i]] = i
			claim = append(claim, keys[i])
		}
	}
	slices.Sort(claim) // the claims' row locks in a stable order
	rows, err := tx.Query(ctx, `
		INSERT INTO inventory.stock_orders (order_id, status) SELECT o::uuid, 'reserved' FROM unnest($1::text[]) AS u(o)
		ON CONFLICT DO NOTHING RETURNING order_id::text`, claim)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for %d orders: %w", len(claim), err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reserve stock for %d orders: %w", len(claim), err)
	}
	status := make(map[string]string, len(claim)) // what a later message of the order finds
	for _, id := range claimed {
		status[id] = ""
	}
	var known []string
	for _, id := range claim {
		if _, ok := status[id]; !ok {
			known = append(known, id)
		}
	}
	if err := stockOrderStatuses(ctx, tx, known, status); err != nil {
		return nil, err
	}
	for _, id := range known {
		if status[id] == "" {
			return nil, fmt.Errorf("reserve stock for order %s: claimed before, yet no status", id)
		}
	}
	// Lock every SKU of the claimed orders at once, in SKU order.
	lines := make([][]events.StockLine, n)
	var skus []string
	for id := range status {
		if status[id] != "" {
			continue
		}
		i := first[id]
		lines[i] = stockByOrder(placed[i].Lines)
		for _, l := range lines[i] {
			skus = append(skus, l.SKU)
		}
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)
	stock, err := lockStock(ctx, tx, skus)
	if err != nil {
		return nil, fmt.Errorf("reserve stock for %d orders: %w", len(claimed), err)
	}
	out := make([][]*event.Event, n)
	var rejOrders, rejReasons, resOrders, resSKUs []string
	var resQs []int64
	delta := map[string]int64{}
	for i, m := range msgs {
		id := keys[i]
		if first[id] != i || status[id] != "" {
			if _, err := handlers.Ignore(m.Ctx, tx, placed[i].OrderID, "reserve_stock", handlers.Inventory, m.Event, "order is already "+status[id]); err != nil {
				return nil, err
			}
			continue
		}
		if rej, short := shortage(stock, lines[i]); short {
			rej.OrderID = placed[i].OrderID
			status[id] = "rejected"
			rejOrders, rejReasons = append(rejOrders, id), append(rejReasons, rej.Reason)
			ev, err := rejectStock(m.Ctx, tx, m.Event, rej)
			if err != nil {
				return nil, err
			}
			out[i] = []*event.Event{ev}
			continue
		}
		status[id] = stockReserved
		for _, l := range lines[i] {
			row := stock[l.SKU]
			row.reserved += l.Quantity
			stock[l.SKU] = row
			delta[l.SKU] += l.Quantity
			resOrders, resSKUs, resQs = append(resOrders, id), append(resSKUs, l.SKU), append(resQs, l.Quantity)
		}
		ev, err := reserved(m.Ctx, tx, m.Event, placed[i], lines[i])
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{ev}
	}
	if len(rejOrders) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE inventory.stock_orders s SET status = 'rejected', reason = u.r
			FROM unnest($1::text[], $2::text[]) AS u(o, r) WHERE s.order_id = u.o::uuid`, rejOrders, rejReasons); err != nil {
			return nil, fmt.Errorf("reject %d orders: %w", len(rejOrders), err)
		}
	}
	if len(resOrders) == 0 {
		return out, nil
	}
	deltaSKUs := slices.Sorted(maps.Keys(delta))
	deltaQs := make([]int64, len(deltaSKUs))
	for j, sku := range deltaSKUs {
		deltaQs[j] = delta[sku]
	}
	b := &pgx.Batch{}
	b.Queue(`
		UPDATE inventory.inventory i SET reserved = i.reserved + t.q, updated_at = now()
		FROM unnest($1::text[], $2::bigint[]) AS t(sku, q) WHERE i.sku = t.sku`, deltaSKUs, deltaQs)
	b.Queue(`
		INSERT INTO inventory.reservations (order_id, sku, quantity, status)
		SELECT o::uuid, s, q, 'reserved' FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(o, s, q)`, resOrders, resSKUs, resQs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("reserve stock for %d orders: %w", len(resOrders), err)
	}
	return out, nil
}
