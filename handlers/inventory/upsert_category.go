package inventory

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// UpsertCategory records a category of the catalog's tree and emits
// catalog.category_upserted. A child may arrive before its parent (no
// foreign key); older commands arriving late change nothing.
type UpsertCategory struct{}

// Reaction implements Reactor.
func (UpsertCategory) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "upsert_category", Participant: handlers.Inventory, Trigger: events.UpsertCategoryV1, Emits: []string{events.CategoryUpsertedV1}}
}

// Handle implements runner.Handler.
func (UpsertCategory) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.Category
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO inventory.categories (category_id, parent_id, name, updated_at)
		VALUES ($1, NULLIF($2, ''), $3, $4)
		ON CONFLICT (category_id) DO UPDATE SET parent_id = excluded.parent_id, name = excluded.name,
			updated_at = excluded.updated_at
		WHERE inventory.categories.updated_at <= excluded.updated_at`,
		in.CategoryID, in.ParentID, in.Name, cmd.Time())
	if err != nil {
		return nil, fmt.Errorf("upsert category %s: %w", in.CategoryID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil
	}
	ev, err := events.New(events.CategoryUpsertedV1, in.CategoryID, in, events.CausedBy(cmd), events.WithTime(cmd.Time()))
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
