package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
)

// Orders maintains public.orders, the current state of each order.
type Orders struct{}

// Handle implements runner.Handler.
func (Orders) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	d, _ := runner.DeliveryFrom(ctx)
	switch ev.Type() {
	case events.OrderPlacedV1:
		var p events.OrderPlaced
		if err := events.DecodeData(ev, &p); err != nil {
			return nil, runner.Invalid(err)
		}
		placed, err := time.Parse(time.RFC3339Nano, p.PlacedAt)
		if err != nil {
			return nil, runner.Invalid(fmt.Errorf("placed_at: %w", err))
		}
		deadline, err := time.Parse(time.RFC3339Nano, p.Deadline)
		if err != nil {
			return nil, runner.Invalid(fmt.Errorf("deadline: %w", err))
		}
		lines, _ := json.Marshal(p.Lines)
		_, err = tx.Exec(ctx, `
			INSERT INTO public.orders (order_id, customer_id, status, currency, total, lines, placed_at, deadline, updated_at, last_seq)
			VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $6, $8)
			ON CONFLICT (order_id) DO NOTHING`,
			p.OrderID, p.CustomerID, p.Currency, p.Total, lines, placed, deadline, int64(d.StreamSeq))
		if err != nil {
			return nil, fmt.Errorf("project order %s: %w", p.OrderID, err)
		}
	}
	return nil, nil
}
