package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// OrderTimeline maintains public.order_timeline: the saga's log per order,
// one row per step (every orders, inventory and payments event of the
// order) with its time, the time since the order's previous step and since
// it was placed, and the event's data. Rows are only ever added, keyed by
// (order id, stream position).
type OrderTimeline struct{}

var _ projector.Projection = OrderTimeline{}

// Name implements projector.Projection.
func (OrderTimeline) Name() string { return "order_timeline" }

// Tables implements projector.Projection.
func (OrderTimeline) Tables() []string { return []string{"order_timeline"} }

// Subjects implements projector.Projection.
func (OrderTimeline) Subjects() []string { return filters(orderSagaTypes...) }

type timelineState struct{ placed, prev time.Time }

// Step names an event type as a timeline step: "payments.authorized".
func Step(ceType string) string {
	ctx, name, _, err := events.ParseType(ceType)
	if err != nil {
		return ceType
	}
	return ctx + "." + name
}

// Apply implements projector.Projection: one query for the previous step
// of orders seen before the batch, then one COPY.
func (OrderTimeline) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	ids := make([][16]byte, len(b.Events))
	state := map[[16]byte]*timelineState{}
	var load [][16]byte
	for i := range b.Events {
		id, err := orderID(b.Events[i].Subject)
		if err != nil {
			b.Reject(&b.Events[i], err)
			continue
		}
		ids[i] = id
		if _, ok := state[id]; !ok {
			state[id] = nil
			if !opensOrder(b.Events[i].Type) {
				load = append(load, id)
			}
		}
	}
	if len(load) > 0 {
		rows, err := tx.Query(ctx, `SELECT order_id, min(at) FILTER (WHERE step = 'orders.placed'), (array_agg(at ORDER BY seq DESC))[1]
			FROM `+b.Table("order_timeline")+` WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`, load)
		if err != nil {
			return fmt.Errorf("load timelines: %w", err)
		}
		for rows.Next() {
			var id [16]byte
			var placed *time.Time
			var prev time.Time
			if err := rows.Scan(&id, &placed, &prev); err != nil {
				rows.Close()
				return fmt.Errorf("load timelines: %w", err)
			}
			st := &timelineState{prev: prev, placed: prev}
			if placed != nil {
				st.placed = *placed
			}
			state[id] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load timelines: %w", err)
		}
	}
	out := make([][]any, 0, len(b.Events))
	for i := range b.Events {
		ev := &b.Events[i]
		if ids[i] == ([16]byte{}) {
			continue
		}
		st := state[ids[i]]
		if st == nil {
			if !opensOrder(ev.Type) {
				b.Reject(ev, errors.New("timeline step before the order was placed"))
				continue
			}
			st = &timelineState{placed: ev.Time, prev: ev.Time}
			state[ids[i]] = st
		}
		if !strings.HasPrefix(string(ev.Data), "{") {
			b.Reject(ev, errors.New("data is not a JSON object"))
			continue
		}
		out = append(out, []any{ids[i], int64(ev.Seq), ev.ID, ev.Type, Step(ev.Type), ev.Time,
			ev.Time.Sub(st.prev).Milliseconds(), ev.Time.Sub(st.placed).Milliseconds(), ev.Data})
		st.prev = ev.Time
	}
	return b.Copy(ctx, tx, "order_timeline", []string{"order_id", "seq", "event_id", "event_type", "step", "at",
		"since_prev_ms", "since_placed_ms", "detail"}, out)
}
