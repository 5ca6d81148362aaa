package inventory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// ReleaseStock reacts to orders.cancelled: a reservation still held is
// given back (reserved decreases; inventory.released). This compensates a
// decline, a timeout and a customer cancel before confirmation, and
// releases a reservation made after the order was already cancelled (a
// late reservation). If inventory has not seen the order yet, it leaves a
// tombstone so that a late orders.placed reserves nothing.
type ReleaseStock struct{}

var _ handlers.BatchReactor = ReleaseStock{}

// Reaction implements Reactor.
func (ReleaseStock) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "release_stock", Participant: handlers.Inventory, Trigger: events.OrderCancelledV1,
		Emits: []string{events.StockReleasedV1}}
}

// Handle implements runner.Handler.
func (ReleaseStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := handlers.Decode(ev, &c); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO inventory.stock_orders (order_id, status) VALUES ($1, 'cancelled') ON CONFLICT DO NOTHING`, c.OrderID)
	if err != nil {
		return nil, fmt.Errorf("release stock of order %s: %w", c.OrderID, err)
	}
	if tag.RowsAffected() == 1 {
		return handlers.Ignore(ctx, tx, c.OrderID, "release_stock", handlers.Inventory, ev, releaseTombstoneWhy)
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil || status != stockReserved {
		return nil, err // nothing held (rejected, released) or committed (return_stock's case)
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, 0, -1, stockReleased); err != nil {
		return nil, err
	}
	out, err := emitReleased(ctx, tx, c, lines, ev)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// releaseOutcome is release_stock's decision for one orders.cancelled.
type releaseOutcome int

const (
	releaseNone      releaseOutcome = iota // nothing held (rejected, released, cancelled) or committed: nothing, no log
	releaseTombstone                       // no row: a 'cancelled' row stops a late orders.placed (logged ignored)
	releaseApply                           // reserved: the reservation is given back
)

// decideRelease is release_stock's transition for an order whose
// inventory status is status; known is false when inventory has no row.
func decideRelease(status string, known bool) releaseOutcome {
	switch {
	case !known:
		return releaseTombstone
	case status == stockReserved:
		return releaseApply
	default:
		return releaseNone
	}
}

// planReleases decides a batch of orders.cancelled: keys[i] is the order
// of message i (stream order), status inventory's status of each order
// before the batch (absent: no row). Messages of one order apply in
// stream order to its status in memory (a tombstone leaves 'cancelled', a
// release 'released'), so only an order's first message can change it,
// as Handle decides message by message. status is not modified.
func planReleases(status map[string]string, keys []string) []releaseOutcome {
	cur := maps.Clone(status)
	out := make([]releaseOutcome, len(keys))
	for i, k := range keys {
		st, known := cur[k]
		out[i] = decideRelease(st, known)
		switch out[i] {
		case releaseTombstone:
			cur[k] = "cancelled"
		case releaseApply:
			cur[k] = stockReleased
		}
	}
	return out
}

// HandleBatch implements BatchReactor: every message of the batch in a
// fixed number of statements — tombstone the orders inventory has no row
// of (one insert), lock the others' stock_orders rows (order_id order),
// then, if any is reserved, read their reservation lines and move them
// with moveStocks (one lock of the SKUs, one update per table). The
// decisions are planReleases'; the events and saga log steps are
// Handle's, message by message, in stream order.
//
// The Router runs this over the whole group before ReturnStock's
// HandleBatch: release never makes an order committed and return never
// makes one reserved or unknown, so for every order the outcome is the
// one Handle gives running release then return per message. Any error
// fails the batch, which the runner redoes with Handle.
func (ReleaseStock) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	cs, keys, err := stockOrderKeys("release stock", msgs)
	if err != nil {
		return nil, err
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(keys)))
	tombstoned, err := tombstoneStockOrders(ctx, tx, distinct)
	if err != nil {
		return nil, err
	}
	var known []string
	for _, k := range distinct {
		if !tombstoned[k] {
			known = append(known, k)
		}
	}
	status := map[string]string{}
	if err := stockOrderStatuses(ctx, tx, known, status); err != nil {
		return nil, err
	}
	for _, k := range known {
		if _, ok := status[k]; !ok {
			return nil, fmt.Errorf("release stock of order %s: not tombstoned, yet no row", k)
		}
	}
	plan := planReleases(status, keys)
	var released []string
	for i, o := range plan {
		if o == releaseApply { // at most once per order (planReleases)
			released = append(released, keys[i])
		}
	}
	var lines map[string][]events.StockLine
	if len(released) > 0 {
		if lines, err = reservedLinesOf(ctx, tx, released); err != nil {
			return nil, err
		}
		if err := moveStocks(ctx, tx, released, lines, 0, -1, stockReleased); err != nil {
			return nil, err
		}
	}
	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		switch plan[i] {
		case releaseTombstone:
			if _, err := handlers.Ignore(ctx, tx, cs[i].OrderID, "release_stock", handlers.Inventory, m.Event, releaseTombstoneWhy); err != nil {
				return nil, err
			}
		case releaseApply:
			ev, err := emitReleased(ctx, tx, cs[i], lines[keys[i]], m.Event)
			if err != nil {
				return nil, err
			}
			out[i] = []*event.Event{ev}
		}
	}
	return out, nil
}

// releaseTombstoneWhy is the detail of a tombstone's saga log step.
const releaseTombstoneWhy = "nothing reserved yet; a late orders.placed will reserve nothing"

// emitReleased logs the release of c's order's reservation lines (caused
// by its cancellation cause) and returns inventory.released.
func emitReleased(ctx context.Context, tx pgx.Tx, c events.OrderCancelled, lines []events.StockLine, cause *event.Event) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: c.OrderID, Step: "release_stock", Participant: handlers.Inventory, Cause: cause,
		Outcome: "released", Detail: c.Reason},
		events.StockReleasedV1, c.OrderID, events.StockMovement{OrderID: c.OrderID, Lines: lines})
}
