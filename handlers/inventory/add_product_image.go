package inventory

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// AddProductImage turns the gateway's catalog.add_product_image into
// catalog.product_image_added, as the other catalog commands become their
// events here: the inventory participant owns the catalog's context
// (evt.catalog.>), so the gateway, which may only publish commands, never
// publishes catalog events itself. The image's bytes are already in the
// Object Store; this records nothing of its own (the read model keeps the
// list), it only checks that the product exists.
//
// Idempotent: the gateway derives the command id from (SKU, hash), so the
// same image uploaded again is dropped by JetStream's duplicate window or
// this consumer's inbox and never becomes a second event.
//
// Trust: a catalog producer may send this command over NATS too, naming
// a hash the store does not hold; its schema confines the URLs to the
// gateway's /v1/images/<sha256>/<file>, so the worst is a broken image
// (404), never a foreign URL.
type AddProductImage struct{}

// Reaction implements Reactor.
func (AddProductImage) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "add_product_image", Participant: handlers.Inventory, Trigger: events.AddProductImageV1, Emits: []string{events.ProductImageAddedV1}}
}

// Handle implements runner.Handler. An image of a SKU the catalog does not
// know is dead-lettered (the gateway checked the read model, which trails
// inventory.products, so this is a command that did not come through it).
func (AddProductImage) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.ProductImage
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	var known bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inventory.products WHERE sku = $1)`, in.SKU).Scan(&known); err != nil {
		return nil, fmt.Errorf("add image to %s: %w", in.SKU, err)
	}
	if !known {
		return nil, runner.Permanent(fmt.Errorf("add image to %s: unknown SKU", in.SKU))
	}
	ev, err := events.New(events.ProductImageAddedV1, in.SKU, in, events.CausedBy(cmd), events.WithTime(cmd.Time()))
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
