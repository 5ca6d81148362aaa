// Package outbox stores messages in PostgreSQL in the same transaction as
// the effects that produced them, and relays them to JetStream after commit.
//
// Invariant: a message is in the outbox if and only if the transaction that
// produced it committed. The relay deletes a row only after JetStream has
// acknowledged it, and publishes with Nats-Msg-Id = event id, so a relay
// that dies between publish and delete republishes a row the broker then
// drops as a duplicate (inside the stream's duplicate window).
package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
)

// NotifyChannel is the LISTEN/NOTIFY channel a commit with outbox rows
// signals, so relays in other processes wake at once.
const NotifyChannel = "tradewind_outbox"

// Message is one message ready for the outbox.
type Message struct {
	EventID string
	Subject string
	Header  map[string][]string
	Body    []byte
}

// Encode renders an event as the NATS message the relay will publish:
// binary content mode on the subject its type routes to.
func Encode(ctx context.Context, e *event.Event) (Message, error) {
	subject, err := events.NATSSubject(e)
	if err != nil {
		return Message{}, err
	}
	h, body, err := cenats.Encode(ctx, e)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s %s: %w", e.Type(), e.ID(), err)
	}
	return Message{EventID: e.ID(), Subject: subject, Header: h, Body: body}, nil
}

// Add inserts events into the outbox inside tx, in order, in one round
// trip, and queues a NOTIFY that PostgreSQL delivers on commit.
func Add(ctx context.Context, tx pgx.Tx, evs ...*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs := make([]Message, 0, len(evs))
	for _, e := range evs {
		m, err := Encode(ctx, e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return AddMessages(ctx, tx, msgs...)
}

// AddMessages inserts already encoded messages (see Add).
func AddMessages(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	subjects := make([]string, len(msgs))
	headers := make([]string, len(msgs))
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		hb, err := json.Marshal(m.Header)
		if err != nil {
			return fmt.Errorf("outbox: marshal headers of %s: %w", m.EventID, err)
		}
		ids[i], subjects[i], headers[i], bodies[i] = m.EventID, m.Subject, string(hb), m.Body
	}
	_, err := tx.Exec(ctx, `
		WITH ins AS (
			INSERT INTO core.outbox (event_id, subject, headers, body)
			SELECT e, s, h::jsonb, b
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS t(e, s, h, b, n)
			ORDER BY n
			RETURNING 1
		)
		SELECT pg_notify($5, '') FROM (SELECT 1 FROM ins LIMIT 1) x`,
		ids, subjects, headers, bodies, NotifyChannel)
	if err != nil {
		return fmt.Errorf("outbox: insert %d messages: %w", len(msgs), err)
	}
	return nil
}
