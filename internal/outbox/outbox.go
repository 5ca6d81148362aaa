// Package outbox stores messages in PostgreSQL in the same transaction as
// the effects that produced them, and publishes them to JetStream after
// commit.
//
// Invariant: a message is in the outbox if and only if the transaction that
// produced it committed. A row is deleted only after JetStream has
// acknowledged it, and every publish carries Nats-Msg-Id = event id, so a
// row published twice (a crash between publish and delete, or the relay
// sweeping a row its writer is still publishing) is dropped by the broker
// inside the stream's duplicate window, and by the consumers' inboxes after.
//
// Two paths publish. The direct path: the writer collects what its
// transaction wrote (Collect), commits and publishes those rows itself
// (Publisher.Commit), then deletes them in the background without waiting
// for a WAL flush (a lost delete only means a duplicate publish). This
// takes the relay's read, its commit and its wake-up out of every saga hop.
// The relay is the durable fallback: it sweeps rows older than a few
// seconds — what a crashed writer or a NATS outage left behind.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/schemas"
)

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
// trip. The consumers of the EVENTS stream trust what the relay published
// (see runner.Config.Trusted); what Tradewind emits is checked against its
// schemas by the tests, not at run time (schemas.CheckEmitted).
func Add(ctx context.Context, tx pgx.Tx, evs ...*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs := make([]Message, 0, len(evs))
	for _, e := range evs {
		if err := schemas.CheckEmitted(e); err != nil {
			return fmt.Errorf("outbox: %s %s does not match its schema: %w", e.Type(), e.ID(), err)
		}
		m, err := Encode(ctx, e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return AddMessages(ctx, tx, msgs...)
}

// AddMessages inserts already encoded and validated messages (see Add).
// When ctx carries a Pending (Collect), the rows are recorded in it for
// publishing after commit.
func AddMessages(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	subjects := make([]string, len(msgs))
	headers := make([][]byte, len(msgs))
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		ids[i], subjects[i], headers[i], bodies[i] = m.EventID, m.Subject, headerBlock(m.Header), m.Body
	}
	const insert = `
		INSERT INTO core.outbox (event_id, subject, header, body)
		SELECT e, s, h, b
		FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS t(e, s, h, b, n)
		ORDER BY n
		RETURNING id`
	record := func(rows pgx.Rows) error {
		rowIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("outbox: insert %d messages: %w", len(msgs), err)
		}
		if p, ok := ctx.Value(pendingKey{}).(*Pending); ok {
			// Identity values are handed out in insertion order, so
			// sorting the returned ids pairs them with msgs.
			slices.Sort(rowIDs)
			for i, m := range msgs {
				p.rows = append(p.rows, pendingRow{id: rowIDs[i], msg: m})
			}
		}
		return nil
	}
	if tail := pgtx.From(ctx); tail != nil {
		// Nothing in the transaction reads the outbox back: the insert
		// goes with the transaction's tail, just before commit.
		tail.Queue(insert, ids, subjects, headers, bodies).Query(record)
		return nil
	}
	rows, err := tx.Query(ctx, insert, ids, subjects, headers, bodies)
	if err != nil {
		return fmt.Errorf("outbox: insert %d messages: %w", len(msgs), err)
	}
	return record(rows)
}

// headerBlock renders h as the header block of a NATS message ("NATS/1.0",
// a "key: value" line per value, a blank line; CRLF line ends), which
// nats.DecodeHeadersMsg reads back with the keys' case kept. Values are
// written as nats.go writes them when it publishes: trimmed, CR and LF
// replaced by spaces. Hand-written because nats.go does not export its
// encoder; the decoder is the library's.
func headerBlock(h map[string][]string) []byte {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, "NATS/1.0\r\n"...)
	for k, vs := range h {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, headerValue.Replace(strings.TrimSpace(v))...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// decodeHeaders reads a row's headers: the header block (headerBlock), or
// the JSON object rows written before it (migration 01410) hold.
func decodeHeaders(block, legacy []byte) (map[string][]string, error) {
	if block != nil {
		h, err := nats.DecodeHeadersMsg(block)
		return h, err
	}
	var h map[string][]string
	err := json.Unmarshal(legacy, &h)
	return h, err
}

// Pending is what one transaction wrote to the outbox, for its writer to
// publish after commit. It belongs to one transaction attempt: a rolled
// back attempt's Pending must be dropped.
type Pending struct {
	rows []pendingRow
}

type pendingRow struct {
	id  int64
	msg Message
}

type pendingKey struct{}

// Collect returns a context under which Add and AddMessages record the
// rows they insert in the returned Pending.
func Collect(ctx context.Context) (context.Context, *Pending) {
	p := &Pending{}
	return context.WithValue(ctx, pendingKey{}, p), p
}

// Join appends what other recorded (a savepoint's own Pending, once the
// savepoint is released).
func (p *Pending) Join(other *Pending) { p.rows = append(p.rows, other.rows...) }

// Len is how many rows were recorded.
func (p *Pending) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rows)
}
