package inventory

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// Restock adds units to a SKU's on_hand (creating the SKU if new), records
// the restock in inventory.restocks under the command's id, and emits
// inventory.restocked with the new on_hand.
type Restock struct{}

// Reaction implements Reactor.
func (Restock) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "restock", Participant: handlers.Inventory, Trigger: events.RestockV1, Emits: []string{events.RestockedV1}}
}

// Handle implements runner.Handler.
func (Restock) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.Restock
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	var onHand int64
	err := tx.QueryRow(ctx, `
		INSERT INTO inventory.inventory (sku, on_hand) VALUES ($1, $2)
		ON CONFLICT (sku) DO UPDATE SET on_hand = inventory.inventory.on_hand + excluded.on_hand, updated_at = now()
		RETURNING on_hand`, in.SKU, in.Quantity).Scan(&onHand)
	if err != nil {
		return nil, fmt.Errorf("restock %s: %w", in.SKU, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inventory.restocks (event_id, sku, quantity) VALUES ($1, $2, $3)`,
		cmd.ID(), in.SKU, in.Quantity); err != nil {
		return nil, fmt.Errorf("restock %s: record: %w", in.SKU, err)
	}
	ev, err := events.New(events.RestockedV1, in.SKU, events.Restocked{SKU: in.SKU, Quantity: in.Quantity, OnHand: onHand}, events.CausedBy(cmd))
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
