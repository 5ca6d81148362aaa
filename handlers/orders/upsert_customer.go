package orders

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
)

// UpsertCustomer records a customer from the CRM and emits
// customers.upserted (every change is an event, so the read side keeps
// history). Upserts are ordered by the command's time: an older command
// arriving late changes nothing and emits nothing.
type UpsertCustomer struct{}

// Reaction implements Reactor.
func (UpsertCustomer) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "upsert_customer", Participant: handlers.Orders, Trigger: events.UpsertCustomerV1, Emits: []string{events.CustomerUpsertedV1}}
}

// Handle implements runner.Handler.
func (UpsertCustomer) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	var in events.Customer
	if err := handlers.Decode(cmd, &in); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO orders.customers (customer_id, email, name, segment, country, updated_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6)
		ON CONFLICT (customer_id) DO UPDATE SET email = excluded.email, name = excluded.name,
			segment = excluded.segment, country = excluded.country, updated_at = excluded.updated_at
		WHERE orders.customers.updated_at <= excluded.updated_at`,
		in.CustomerID, in.Email, in.Name, in.Segment, in.Country, cmd.Time())
	if err != nil {
		return nil, fmt.Errorf("upsert customer %s: %w", in.CustomerID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil // superseded by a newer upsert
	}
	ev, err := events.New(events.CustomerUpsertedV1, in.CustomerID, in, events.CausedBy(cmd), events.WithTime(cmd.Time()))
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
