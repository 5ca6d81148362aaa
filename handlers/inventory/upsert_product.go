package inventory

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// UpsertProduct records a product from the catalog service and emits
// catalog.product_upserted. It makes the SKU known to inventory (a
// inventory.inventory row with no stock), so orders for it are rejected
// out_of_stock rather than unknown_sku until it is restocked. Older
// commands arriving late change nothing.
type UpsertProduct struct{}

// Reaction implements Reactor.
func (UpsertProduct) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "upsert_product", Participant: handlers.Inventory, Trigger: events.UpsertProductV1, Emits: []string{events.ProductUpsertedV1}}
}

// Handle implements runner.Handler.
func (UpsertProduct) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.Product
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO inventory.products (sku, name, description, category_id, price, currency, updated_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7)
		ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
			category_id = excluded.category_id, price = excluded.price, currency = excluded.currency,
			updated_at = excluded.updated_at
		WHERE inventory.products.updated_at <= excluded.updated_at`,
		in.SKU, in.Name, in.Description, in.CategoryID, in.Price, in.Currency, cmd.Time())
	if err != nil {
		return nil, fmt.Errorf("upsert product %s: %w", in.SKU, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inventory.inventory (sku) VALUES ($1) ON CONFLICT DO NOTHING`, in.SKU); err != nil {
		return nil, fmt.Errorf("upsert product %s: inventory row: %w", in.SKU, err)
	}
	ev, err := events.New(events.ProductUpsertedV1, in.SKU, in, events.CausedBy(cmd), events.WithTime(cmd.Time()))
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
