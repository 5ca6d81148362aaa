package inventory

import (
	"context"
	"maps"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// ReturnStock reacts to orders.cancelled of an order whose stock was
// committed (a customer cancelling after confirmation): the units go back
// on hand (inventory.returned). Runs after ReleaseStock on the same
// message; for any other state it does nothing.
type ReturnStock struct{}

var _ handlers.BatchReactor = ReturnStock{}

// Reaction implements Reactor.
func (ReturnStock) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "return_stock", Participant: handlers.Inventory, Trigger: events.OrderCancelledV1,
		Emits: []string{events.StockReturnedV1}}
}

// Handle implements runner.Handler.
func (ReturnStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderCancelled
	if err := handlers.Decode(ev, &c); err != nil {
		return nil, err
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil || status != stockCommitted {
		return nil, err
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, +1, 0, stockReturned); err != nil {
		return nil, err
	}
	out, err := emitReturned(ctx, tx, c, lines, ev)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// decideReturn is return_stock's transition: only an order whose stock
// was committed gets it back; any other status (none included) does
// nothing and logs nothing.
func decideReturn(status string) bool { return status == stockCommitted }

// planReturns decides a batch of orders.cancelled: keys[i] is the order
// of message i (stream order), status inventory's status of each order
// after release_stock's pass (absent: no row). A return leaves the order
// 'returned', so an order's later messages do nothing, as Handle decides
// message by message. status is not modified.
func planReturns(status map[string]string, keys []string) []bool {
	cur := maps.Clone(status)
	out := make([]bool, len(keys))
	for i, k := range keys {
		out[i] = decideReturn(cur[k])
		if out[i] {
			cur[k] = stockReturned
		}
	}
	return out
}

// HandleBatch implements BatchReactor: lock the orders' stock_orders rows
// (one statement, order_id order) and, if any was committed, read their
// reservation lines and move them back on hand with moveStocks (one lock
// of the SKUs, one update per table). The decisions are planReturns'; the
// events and saga log steps are Handle's, message by message, in stream
// order. It runs after ReleaseStock's HandleBatch over the same group
// (see there why that equals release then return per message). Any error
// fails the batch, which the runner redoes with Handle.
func (ReturnStock) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	cs, keys, err := stockOrderKeys("return stock", msgs)
	if err != nil {
		return nil, err
	}
	status := map[string]string{}
	if err := stockOrderStatuses(ctx, tx, keys, status); err != nil {
		return nil, err
	}
	plan := planReturns(status, keys)
	var returned []string
	for i, r := range plan {
		if r { // at most once per order (planReturns)
			returned = append(returned, keys[i])
		}
	}
	var lines map[string][]events.StockLine
	if len(returned) > 0 {
		if lines, err = reservedLinesOf(ctx, tx, returned); err != nil {
			return nil, err
		}
		if err := moveStocks(ctx, tx, returned, lines, +1, 0, stockReturned); err != nil {
			return nil, err
		}
	}
	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		if !plan[i] {
			continue
		}
		ev, err := emitReturned(ctx, tx, cs[i], lines[keys[i]], m.Event)
		if err != nil {
			return nil, err
		}
		out[i] = []*event.Event{ev}
	}
	return out, nil
}

// emitReturned logs the return of c's order's lines (caused by its
// cancellation cause) and returns inventory.returned.
func emitReturned(ctx context.Context, tx pgx.Tx, c events.OrderCancelled, lines []events.StockLine, cause *event.Event) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: c.OrderID, Step: "return_stock", Participant: handlers.Inventory, Cause: cause,
		Outcome: "returned", Detail: c.Reason},
		events.StockReturnedV1, c.OrderID, events.StockMovement{OrderID: c.OrderID, Lines: lines})
}
