package inventory

import (
	"context"
	"fmt"
	"maps"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// CommitStock reacts to orders.confirmed: the reservation leaves the
// warehouse (on_hand and reserved both decrease; inventory.committed). If
// the reservation was already released (the order was cancelled and
// inventory saw that first), nothing happens.
type CommitStock struct{}

var _ handlers.BatchReactor = CommitStock{}

// Reaction implements Reactor.
func (CommitStock) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "commit_stock", Participant: handlers.Inventory, Trigger: events.OrderConfirmedV1,
		Emits: []string{events.StockCommittedV1}}
}

// commitOutcome is commit_stock's decision for one orders.confirmed.
type commitOutcome int

const (
	commitWait   commitOutcome = iota // no reservation recorded yet: fail, to be retried
	commitApply                       // reserved: the reservation leaves the warehouse
	commitIgnore                      // released, committed, ...: nothing changes
)

// decideCommit is commit_stock's transition for an order whose inventory
// status is status ("" when inventory has no row of it).
func decideCommit(status string) commitOutcome {
	switch status {
	case stockReserved:
		return commitApply
	case "":
		// A confirmation implies a reservation this participant made; it
		// is not visible yet, so try again later.
		return commitWait
	default:
		return commitIgnore
	}
}

// commitStep is the decision for one message of a batch and the status
// its order had when it was decided.
type commitStep struct {
	outcome commitOutcome
	status  string
}

// planCommits decides a batch of orders.confirmed: keys[i] is the order
// of message i (stream order), status inventory's status of each order
// before the batch (absent: no row). Messages of one order apply in
// stream order to its status in memory, so a second confirmation of an
// order committed earlier in the batch is ignored, as Handle would
// decide message by message. status is not modified.
func planCommits(status map[string]string, keys []string) []commitStep {
	cur := maps.Clone(status)
	out := make([]commitStep, len(keys))
	for i, k := range keys {
		out[i] = commitStep{outcome: decideCommit(cur[k]), status: cur[k]}
		if out[i].outcome == commitApply {
			cur[k] = stockCommitted
		}
	}
	return out
}

// Handle implements runner.Handler. It is also the fallback of
// HandleBatch: a failed batch is redone message by message here.
func (CommitStock) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var c events.OrderConfirmed
	if err := handlers.Decode(ev, &c); err != nil {
		return nil, err
	}
	status, err := stockOrderStatus(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	switch decideCommit(status) {
	case commitWait:
		return nil, fmt.Errorf("commit stock of order %s: no reservation yet", c.OrderID)
	case commitIgnore:
		return handlers.Ignore(ctx, tx, c.OrderID, "commit_stock", handlers.Inventory, ev, "reservation is "+status)
	}
	lines, err := reservedLines(ctx, tx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if err := moveStock(ctx, tx, c.OrderID, lines, -1, -1, stockCommitted); err != nil {
		return nil, err
	}
	out, err := emitCommitted(ctx, tx, c.OrderID, lines, ev)
	if err != nil {
		return nil, err
	}
	return []*event.Event{out}, nil
}

// HandleBatch implements BatchReactor: every message of the batch in a
// fixed number of statements whatever the batch's size — lock the orders'
// stock_orders rows (in order_id order), read their reservation lines,
// lock the inventory rows of every SKU involved (in SKU order), one
// update per table (inventory gets one aggregated change per SKU). The
// decisions are planCommits'; the events and saga log steps are Handle's,
// message by message, in stream order, logged under ctx (the Router's
// step log, which the Router writes in one statement).
//
// Any error fails the batch, which the runner redoes with Handle: an
// undecodable message (Handle dead-letters it) and an order with no
// reservation yet (Handle retries it) included.
func (CommitStock) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	ids := make([]string, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		var c events.OrderConfirmed
		if err := handlers.Decode(m.Event, &c); err != nil {
			return nil, fmt.Errorf("commit stock: message %s: %w", m.Event.ID(), err)
		}
		k, err := handlers.OrderKey(c.OrderID)
		if err != nil {
			return nil, fmt.Errorf("commit stock: message %s: %w", m.Event.ID(), err)
		}
		ids[i], keys[i] = c.OrderID, k
	}
	status := map[string]string{}
	if err := stockOrderStatuses(ctx, tx, keys, status); err != nil {
		return nil, err
	}
	plan := planCommits(status, keys)
	var committed []string
	for i, s := range plan {
		switch s.outcome {
		case commitWait:
			return nil, fmt.Errorf("commit stock of order %s: no reservation yet", ids[i])
		case commitApply:
			committed = append(committed, keys[i])
		}
	}
	var lines map[string][]events.StockLine
	if len(committed) > 0 {
		var err error
		if lines, err = reservedLinesOf(ctx, tx, committed); err != nil {
			return nil, err
		}
		if err := moveStocks(ctx, tx, committed, lines, -1, -1, stockCommitted); err != nil {
			return nil, err
		}
	}

	out := make([][]*event.Event, len(msgs))
	for i, m := range msgs {
		switch plan[i].outcome {
		case commitIgnore:
			if _, err := handlers.Ignore(ctx, tx, ids[i], "commit_stock", handlers.Inventory, m.Event, "reservation is "+plan[i].status); err != nil {
				return nil, err
			}
		case commitApply:
			ev, err := emitCommitted(ctx, tx, ids[i], lines[keys[i]], m.Event)
			if err != nil {
				return nil, err
			}
			out[i] = []*event.Event{ev}
		}
	}
	return out, nil
}

// emitCommitted logs the commit of an order's reservation lines (caused
// by its confirmation cause) and returns inventory.committed.
func emitCommitted(ctx context.Context, tx pgx.Tx, orderID string, lines []events.StockLine, cause *event.Event) (*event.Event, error) {
	return handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: orderID, Step: "commit_stock", Participant: handlers.Inventory, Cause: cause, Outcome: "committed"},
		events.StockCommittedV1, orderID, events.StockMovement{OrderID: orderID, Lines: lines})
}
